"""The service's error hierarchy and its single mapping onto HTTP responses."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
import msgspec.inspect
import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

log = logging.getLogger("engagement.errors")


class EngagementError(Exception):
    """Base of every error the service answers on purpose."""

    status_code = 400

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(EngagementError):
    status_code = 400


class Unauthorized(EngagementError):
    status_code = 401


class Forbidden(EngagementError):
    """Refused whoever asks: a track call from a page of another site."""

    status_code = 403


class NotFound(EngagementError):
    status_code = 404


class UnprocessableContent(EngagementError):
    """Well-formed but not doable as asked (an Idempotency-Key reused for another request)."""

    status_code = 422


class TooManyRequests(EngagementError):
    """This client sent more than its rate limit allows."""

    status_code = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(EngagementError):
    """The database cannot take the request now; the client should retry later."""

    status_code = 503


RETRY_AFTER_SECONDS = "2"

# Errors the database raises for a value of one row, not for the state of the server: the
# request that sent the row is at fault (and validation missed a case); nobody else is.
EVENT_TABLES = ("project_views", "project_clicks", "project_likes", "project_impressions")
ROW_ERRORS = (psycopg.errors.DataError, psycopg.errors.CheckViolation,
              psycopg.errors.NotNullViolation)


def rejected_field(exc: psycopg.Error) -> str | None:
    """The column a refused row names: NOT NULL tells it, a CHECK by `<table>_<column>_check`."""
    if exc.diag.column_name:
        return exc.diag.column_name
    constraint, table = exc.diag.constraint_name, exc.diag.table_name
    if not constraint or not constraint.endswith("_check"):
        return None
    # On a hypertable the row lands in a chunk (`_hyper_1_2_chunk`), whose inherited CHECK
    # keeps the hypertable's name: try the event tables' names as well as the one reported.
    for name in (table, *EVENT_TABLES):
        if name and constraint.startswith(name + "_"):
            return constraint[len(name) + 1:-len("_check")] or None
    return None


def _refused_row_detail(request: Request, exc: psycopg.Error) -> str:
    field = rejected_field(exc)
    log.error("the database refused a value that passed validation on %s %s (%s, %s): %s",
              request.method, request.url.path, type(exc).__name__, field or "field unknown",
              (exc.diag.message_primary or "")[:200])
    if field is None:
        return "invalid request: the database refused a value of this request"
    return f"invalid request: the value is not accepted (at `{field}`)"


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    """Litestar's error shape, as every error answer carries it."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None


ERROR_DESCRIPTIONS = {
    400: "invalid request: `detail` names the problem",
    401: "missing, invalid or expired bearer token",
    403: "the request's Origin is neither this service nor in ENGAGEMENT_CORS_ORIGINS",
    404: "not found",
    413: "request body too large",
    422: "Idempotency-Key reused for a different request",
    429: "rate limit exceeded; see Retry-After",
    503: "database unavailable or service overloaded; retry after Retry-After seconds",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers a handler can give (all in Litestar's shape)."""
    return {code: ResponseSpec(ErrorBody, generate_examples=False,
                               description=ERROR_DESCRIPTIONS[code]) for code in codes}


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
        headers.update(exc.headers)
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, ServiceUnavailable):
            headers["Retry-After"] = RETRY_AFTER_SECONDS
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, ValidationException):
        status, extra = exc.status_code, exc.extra
        detail = _validation_detail(exc)
    elif isinstance(exc, HTTPException):
        status, detail, extra = exc.status_code, exc.detail, None
        if status == 400 and _caused_by_bad_json(exc):
            detail = f"the request body is not valid JSON: {detail}"
        headers.update(exc.headers or {})
    elif isinstance(exc, RecursionError):
        # Only a hostile body gets here: Litestar decodes JSON before checking its shape,
        # and msgspec refuses nesting deeper than the interpreter's recursion limit.
        status, detail, extra = 400, "the request body is nested too deeply", None
    elif isinstance(exc, ROW_ERRORS):
        status, detail, extra = 400, _refused_row_detail(request, exc), None
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


_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def allowed_values(tp: Any, path: str) -> tuple[Any, ...] | None:
    """The values a Literal field of `tp` at a msgspec error path (`$.items[0].source`)
    accepts, or None when the field there is not a Literal: what a 400 for an invalid enum
    value lists."""
    info: Any = msgspec.inspect.type_info(tp)
    path = path.removeprefix("$")
    if path and path[0] not in ".[":
        path = "." + path
    for name, index in _PATH_PART.findall(path):
        while isinstance(info, msgspec.inspect.UnionType):  # Optional[...]: the non-None one
            rest = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
            if len(rest) != 1:
                return None
            info = rest[0]
        if name and isinstance(info, msgspec.inspect.StructType):
            field = next((f for f in info.fields if f.encode_name == name), None)
            if field is None:
                return None
            info = field.type
        elif index and isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.VarTupleType)):
            info = info.item_type
        elif index and isinstance(info, msgspec.inspect.TupleType):
            info = info.item_types[int(index)]
        else:
            return None
    if isinstance(info, msgspec.inspect.LiteralType):
        return tuple(info.values)
    return None


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

