"""The service-token guard of the internal and insights endpoints."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.errors import Unauthorized


class ServiceToken:
    """401 unless `Authorization: Bearer <ENGAGEMENT_SERVICE_TOKEN>` (constant-time check)."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    async def __call__(self, connection: ASGIConnection, _: BaseRouteHandler) -> None:
        # A coroutine though it never waits: litestar runs a plain guard in a worker thread.
        scheme, _sep, token = (connection.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 self._expected):
            raise Unauthorized("this endpoint needs `Authorization: Bearer <service token>`")
