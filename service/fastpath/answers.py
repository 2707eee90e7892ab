"""The tracking calls' answers: a litestar Response sent without litestar's generic machinery.

Litestar turns a Response into its ASGI messages by merging the route's headers and cookies
into it, resolving type encoders, looking up a serializer and building an ASGIResponse whose
header container searches its list for each header it sets: 5-8 µs of a track-click's
~60 µs in-process (alternating A/B, README performance section). A tracking call's answer
is a small msgspec Struct with a status code and, in the common case, nothing else (no
cookie, no header, no background task, no route-level header or cookie): that one is
encoded by msgspec and sent as two ASGI messages. Any other goes through litestar's own
Response.to_asgi_response, unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Response

if TYPE_CHECKING:
    from litestar.types import Receive, Scope, Send

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()
_CONTENT_TYPE = (b"content-type", b"application/json")
_JSON = (None, "", "application/json")  # the route's: none given, or JSON


class _Encoded:
    """The ASGI app of an encoded answer: response start (status, two headers), then body."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A new header list every time: the outermost layer appends the security headers.
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [_CONTENT_TYPE, (b"content-length", b"%d" % len(self.body))]})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class TrackAnswer(Response[T]):
    """A JSON answer of a tracking call (see the module's docstring)."""

    def to_asgi_response(self, app: Any, request: Any, *, background: Any = None,
                         cookies: Any = None, encoded_headers: Any = None, headers: Any = None,
                         is_head_response: bool = False, media_type: Any = None,
                         status_code: int | None = None, type_encoders: Any = None) -> Any:
        if (background or cookies or encoded_headers or headers or is_head_response
                or self.background or self.cookies or self.headers or self.media_type
                or self.response_type_encoders or media_type not in _JSON):
            return super().to_asgi_response(
                app, request, background=background, cookies=cookies,
                encoded_headers=encoded_headers, headers=headers,
                is_head_response=is_head_response, media_type=media_type,
                status_code=status_code, type_encoders=type_encoders)
        return _Encoded(self.status_code or status_code or 200, _ENCODER.encode(self.content))
