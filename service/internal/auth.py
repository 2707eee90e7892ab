"""The service-token guard of the internal endpoints."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.errors import Unauthorized


def require_service_token(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """401 unless `Authorization: Bearer <ENGAGEMENT_SERVICE_TOKEN>` (constant-time check)."""
    expected = connection.app.state.runtime.settings.service_token
    scheme, _sep, token = (connection.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthorized("this endpoint needs `Authorization: Bearer <service token>`")
