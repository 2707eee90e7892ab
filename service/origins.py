"""Foreign origins are refused on the track endpoints.

The track endpoints take `text/plain` JSON (for beacons), which a browser sends cross-site
without a CORS preflight: without this check any page could make its visitors record views
and clicks. A request whose `Origin` is present must come from the service's own origin
(the host the request was sent to, http or https: a TLS-terminating proxy hides the
scheme) or from one ENGAGEMENT_CORS_ORIGINS allows. No `Origin` (server-side callers,
curl, same-origin GETs) is not a browser's cross-site request, so it is unaffected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from engagement.settings import Settings
from service.browser_client import cors_config
from service.errors import Forbidden


class OriginPolicy:
    def __init__(self, settings: Settings) -> None:
        self._cors = cors_config(settings)

    def allows(self, origin: str, host: str | None) -> bool:
        if host is not None:
            parts = urlsplit(origin)
            if parts.scheme in {"http", "https"} and parts.netloc.lower() == host.lower():
                return True
        return self._cors is not None and self._cors.is_origin_allowed(origin)


async def check_origin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Guard of the track endpoints: 403 for a call sent by a page of another site.

    A coroutine though it never waits: litestar runs a plain function guard in a worker
    thread, a hop on every track call.
    """
    origin = host = None
    for name, value in connection.scope["headers"]:
        if name == b"origin" and origin is None:
            origin = value.decode("latin-1")
        elif name == b"host" and host is None:
            host = value.decode("latin-1")
    if origin is None:
        return
    policy: OriginPolicy = connection.app.state.origin_policy
    if policy.allows(origin, host):
        return
    raise Forbidden(
        f"Origin {origin[:200]!r} may not send tracking calls: call from this service's "
        "own origin, or add the page's origin to ENGAGEMENT_CORS_ORIGINS")
