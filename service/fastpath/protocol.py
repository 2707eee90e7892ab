"""uvicorn's httptools protocol with bounds on reading a request: header size and time.

uvicorn reads headers of any size (llhttp sets no limit; one 32 MB header was answered)
and waits forever for headers or a body that never come. Here the request line and headers
together get at most ENGAGEMENT_MAX_HEADER_BYTES (431, then close), and a request must
have fully arrived ENGAGEMENT_REQUEST_READ_TIMEOUT_SECONDS after its first byte (or after
the connection opened): 408 while headers are incomplete, else the connection is closed.
Idle keep-alive connections are closed by uvicorn's own timeout_keep_alive as before.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import fields
from typing import Any

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
            return
        # More than the headers may take: feed what they may, and the rest only if they
        # completed within it (the rest is body, or a pipelined request counted anew).
        self._header_budget = 0
        super().data_received(data[:budget])
        if self._header_budget is not None:
            self._refuse(b"431 Request Header Fields Too Large", "request headers too large")
            return
        if not self.transport.is_closing():
            self.data_received(data[budget:])

    def on_headers_complete(self) -> None:
        self._header_budget = None
        super().on_headers_complete()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_timer is None:
            self._arm_read_timer()

    def on_message_complete(self) -> None:
        self._disarm_read_timer()
        self._header_budget = self.max_header_bytes
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
