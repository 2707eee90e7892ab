"""The app's outermost ASGI layer: request metrics and security headers in one send wrapper.

Installed over litestar's `Litestar.asgi_handler` (what `Litestar.__call__` awaits) and reads
the route template litestar's router leaves in `scope["path_template"]` (both guarded by
tests/test_fastpath_guards.py; the pin is in pyproject.toml).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from litestar import Litestar
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

from engagement.logs import REQUEST_SCOPE
from service.metrics import BUFFER, HTTP_ANSWERED, HTTP_IN_FLIGHT, HTTP_METHODS


class HttpMetricsMiddleware:
    """Request count and latency by route template; 4xx answers to tracking calls as rejected.

    The app's outermost layer: create_app wraps litestar's own handler (`asgi_handler`:
    CORS, exception handling, routing) in it, so it sees every answer, routed or not (404,
    405, preflights; unrouted ones as path "other"), after exceptions became responses:
    an inner middleware's 429 is a 429. `on_start` may edit each response's start message
    (the security headers): one send wrapper for both. A litestar middleware would cost a
    second exception handler around every route and a before_send hook a second wrapper.
    Runs on every request, so it only appends what happened; the counts are worked out
    once per flush (service.metrics._collect_http).
    """

    def __init__(self, app: ASGIApp,
                 on_start: Callable[[HTTPResponseStartEvent], None] | None = None) -> None:
        self.app = app
        self.on_start = on_start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        if method not in HTTP_METHODS:
            method = "other"
        status = 500  # unless an answer starts
        on_start = self.on_start

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if on_start is not None:
                    on_start(message)
            await send(message)

        key = id(scope)
        logged_request = REQUEST_SCOPE.set(scope)  # lines logged meanwhile name the request
        HTTP_IN_FLIGHT[key] = (method, scope)
        BUFFER.schedule()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, capture)
        finally:
            del HTTP_IN_FLIGHT[key]
            # The router has set the route template by now (if any route matched).
            HTTP_ANSWERED.append((method, scope.get("path_template", "other"), status,
                                   time.perf_counter() - started))
            BUFFER.schedule()
            REQUEST_SCOPE.reset(logged_request)


def install(app: Litestar, on_start: Callable[[HTTPResponseStartEvent], None] | None) -> None:
    """Wrap litestar's own handler (CORS, exception handling, routing) in the metrics layer."""
    app.asgi_handler = HttpMetricsMiddleware(app.asgi_handler, on_start=on_start)
