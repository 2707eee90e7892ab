"""The service's error hierarchy and its single mapping onto HTTP responses."""

from __future__ import annotations

import logging

import msgspec
import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger("engagement.errors")


class EngagementError(Exception):
    """Base of every error the service answers on purpose."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(EngagementError):
    status_code = 400


class Unauthorized(EngagementError):
    status_code = 401


class NotFound(EngagementError):
    status_code = 404


class ServiceUnavailable(EngagementError):
    """The database cannot take the request now; the client should retry later."""

    status_code = 503


RETRY_AFTER_SECONDS = "2"


def _body(status: int, detail: str, extra: object | None = None) -> dict[str, object]:
    body: dict[str, object] = {"status_code": status, "detail": detail}
    if extra is not None:
        body["extra"] = extra
    return body


def handle_exception(request: Request, exc: Exception) -> Response:
    """Map every exception onto Litestar's error shape; never leak internals."""
    headers: dict[str, str] = {}
    if isinstance(exc, EngagementError):
        status, detail, extra = exc.status_code, exc.detail, None
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, ServiceUnavailable):
            headers["Retry-After"] = RETRY_AFTER_SECONDS
    elif isinstance(exc, ValidationException):
        status, extra = exc.status_code, exc.extra
        detail = _validation_detail(exc)
    elif isinstance(exc, HTTPException):
        status, detail, extra = exc.status_code, exc.detail, None
        if status == 400 and _caused_by_bad_json(exc):
            detail = f"the request body is not valid JSON: {detail}"
        headers.update(exc.headers or {})
    elif isinstance(exc, psycopg.OperationalError | TimeoutError):  # PoolTimeout is one
        log.warning("database unavailable: %s", type(exc).__name__)
        status, detail, extra = 503, "the database is unavailable; retry later", None
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        status, detail, extra = HTTP_500_INTERNAL_SERVER_ERROR, "internal error", None
    return Response(
        content=_body(status, detail, extra),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _caused_by_bad_json(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, msgspec.DecodeError) and not isinstance(seen, msgspec.ValidationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _validation_detail(exc: ValidationException) -> str:
    """Put the first field problem in `detail` so a frontend developer sees it at once."""
    extra = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        first = extra[0]
        message, key = first.get("message"), first.get("key")
        if message and key and key != "data":
            return f"invalid request: {message} (at `{key}`)"
        if message:
            return f"invalid request: {message}"
    return str(exc.detail)

