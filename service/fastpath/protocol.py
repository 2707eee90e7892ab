"""uvicorn's httptools protocol with bounds on reading a request: header size and time.

uvicorn reads headers of any size (llhttp sets no limit; one 32 MB header was answered)
and waits forever for headers or a body that never come. Here the request line and headers
together get at most ENGAGEMENT_MAX_HEADER_BYTES (431, then close), and a request must
have fully arrived ENGAGEMENT_REQUEST_READ_TIMEOUT_SECONDS after its first byte (or after
the connection opened): 408 while headers are incomplete, else the connection is closed.
Idle keep-alive connections are closed by uvicorn's own timeout_keep_alive as before.

The byte budget is exact for a request whose first byte starts a read. A pipelined request
that starts inside the same read as the end of the one before it is measured again when its
headers are complete, and answered 431 in its turn (after the answers before it).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import fields
from typing import Any

from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from engagement.settings import Settings

log = logging.getLogger("engagement.http")


def _setting(name: str) -> float:
    """The setting from the environment (cmd_serve puts it there), else Settings' default."""
    raw = os.environ.get(f"ENGAGEMENT_{name.upper()}")
    if raw:
        return float(raw)
    default: float = next(f.default for f in fields(Settings) if f.name == name)  # type: ignore[assignment]
    return default


MAX_HEADER_BYTES = int(_setting("max_header_bytes"))
READ_TIMEOUT_SECONDS = _setting("request_read_timeout_seconds")


async def _headers_too_large(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI answer to a pipelined request whose headers were over the limit."""
    start: HTTPResponseStartEvent = {
        "type": "http.response.start", "status": 431,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"0"),
                    (b"connection", b"close")]}
    await send(start)
    body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
    await send(body)


def _answer(status: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: 0\r\nconnection: close\r\n\r\n")


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses oversized headers and closes stalled requests."""

    max_header_bytes = MAX_HEADER_BYTES
    read_timeout = READ_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Header bytes this request may still send; None once its headers are complete.
        self._header_budget: int | None = self.max_header_bytes
        self._read_timer: asyncio.TimerHandle | None = None
        # A request completed inside the current read: the next one may begin in it, where
        # the byte budget (taken for the whole read before parsing it) did not see it start.
        self._completed_in_read = False
        self._began_in_read = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        budget = self._header_budget
        if budget is None or len(data) <= budget:
            if budget is not None:
                self._header_budget = budget - len(data)
            super().data_received(data)
            self._completed_in_read = False
            return
        # More than the headers may take: feed what they may, and the rest only if they
        # completed within it (the rest is body, or a pipelined request counted anew). A
        # request that began inside what was fed is not judged here: its headers are
        # measured when they complete.
        self._header_budget = 0
        super().data_received(data[:budget])
        if self._header_budget is not None and not self._began_in_read:
            self._refuse(b"431 Request Header Fields Too Large", "request headers too large")
            return
        self._completed_in_read = False
        if not self.transport.is_closing():
            self.data_received(data[budget:])

    def on_headers_complete(self) -> None:
        self._header_budget = None
        if self._began_in_read and self._header_bytes() > self.max_header_bytes:
            self._began_in_read = False
            log.info("refusing a pipelined request: request headers too large")
            # Through uvicorn's own cycle, so the answers before it are sent first.
            app, self.app = self.app, _headers_too_large
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        self._began_in_read = False
        super().on_headers_complete()

    def _header_bytes(self) -> int:
        """The request line and headers as sent, but for optional white space."""
        method = self.parser.get_method()
        return (len(method) + len(self.url) + 11  # "GET /x HTTP/1.1\r\n"
                + sum(len(name) + len(value) + 4 for name, value in self.headers) + 2)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._began_in_read, self._completed_in_read = self._completed_in_read, False
        if self._read_timer is None:
            self._arm_read_timer()

    def on_message_complete(self) -> None:
        self._disarm_read_timer()
        self._header_budget = self.max_header_bytes
        self._completed_in_read = True
        super().on_message_complete()

    def _arm_read_timer(self) -> None:
        self._disarm_read_timer()
        self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def _disarm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        if self._header_budget is not None:  # no request yet, or its headers incomplete
            self._refuse(b"408 Request Timeout", "request headers did not arrive in time")
        else:  # the body stalls: the app's receive() hears a disconnect
            log.info("closing a connection whose request body did not arrive in time")
            self.transport.close()

    def _refuse(self, status: bytes, why: str) -> None:
        log.info("refusing a request: %s", why)
        self._disarm_read_timer()
        self.transport.write(_answer(status))
        self.transport.close()
