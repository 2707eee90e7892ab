"""Request bodies must have exactly the JSON types the OpenAPI document promises.

Litestar decodes a JSON body to Python objects and then converts them to the handler's
`data` type with msgspec in lax mode, which turns `"5"` into 5, `"true"` into True and 0
into 1970-01-01. A client relying on that would break on any stricter implementation, and
a fuzzer rightly calls it a schema-violating request accepted. `StrictRequest` (the app's
request class) decodes the body once, strictly, straight into the handler's `data` type
and answers 400 naming the field; litestar's conversion then has nothing left to coerce.
Malformed JSON is left to litestar, which already answers it.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, InternalServerException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Empty

from service.errors import allowed_values

_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
# id(route handler) -> (the handler, a strict decoder for its `data` type or None). The
# handler is kept so its id cannot be reused by another one (tests build many apps).
_DECODERS: dict[int, tuple[object, msgspec.json.Decoder[Any] | None]] = {}


def _decoder(request: Request[Any, Any, Any]) -> msgspec.json.Decoder[Any] | None:
    handler = request.route_handler
    cached = _DECODERS.get(id(handler))
    if cached is None or cached[0] is not handler:
        field = handler.parsed_fn_signature.parameters.get("data")
        cached = _DECODERS[id(handler)] = (
            handler, None if field is None else msgspec.json.Decoder(field.annotation, strict=True))
    return cached[1]


class StrictRequest(Request[Any, Any, Any]):
    async def body(self) -> bytes:
        """Request.body without its async generator and its Headers object.

        The same limits and errors as litestar's Request.stream (413 when the announced or
        the received length passes the route's limit, 400 for a bad Content-Length, an error
        when the client leaves before the end; tests/test_request_body.py passes with both).
        A tracking call's body is one small message, and litestar built a Headers of every
        request header to read Content-Length and an async generator to yield that one
        chunk: about 5 µs of a track-click in-process.
        """
        if self._body is Empty and self._connection_state.body is Empty and self.is_connected:
            limit = self.route_handler.resolve_request_max_body_size() or math.inf
            announced = _content_length(self.scope["headers"])
            if announced is not None and announced > limit:
                raise RequestEntityTooLarge
            chunks: list[bytes] = []
            received = 0
            while True:
                event = await self.receive()
                if event["type"] == "http.request":
                    chunk = event["body"]
                    if chunk:
                        received += len(chunk)
                        if received > limit:
                            raise RequestEntityTooLarge
                        chunks.append(chunk)
                    if not event.get("more_body", False):
                        break
                elif event["type"] == "http.disconnect":
                    raise InternalServerException("client disconnected prematurely")
            self.is_connected = False
            self._body = self._connection_state.body = (
                chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return await super().body()

    async def json(self) -> Any:
        """The body decoded strictly as the handler's `data` type (400 naming the field)."""
        decoder = _decoder(self)
        if decoder is None or self._json is not Empty or self._connection_state.json is not Empty:
            return await super().json()
        body = await self.body()
        if not body.strip():
            return await super().json()
        try:
            value = decoder.decode(body)
        except msgspec.ValidationError as exc:
            match = _ERROR.match(str(exc))
            message = match["message"] if match else str(exc)
            key = (match["path"] if match else None) or "data"
            if message.startswith("Invalid enum value"):
                allowed = allowed_values(decoder.type, key)
                if allowed:
                    message += " - expected one of " + ", ".join(repr(v) for v in allowed)
            raise ValidationException(
                detail=f"Validation failed for {self.method} {self.url.path}",
                extra=[{"message": message, "key": key, "source": "body"}],
            ) from None
        except (msgspec.DecodeError, RecursionError):
            return await super().json()  # litestar's own decoding answers these
        self._json = self._connection_state.json = value
        return value


def _content_length(headers: Any) -> int | None:
    """The Content-Length header's value, as Request.content_length reads it (400 if bad)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise ClientException(f"Invalid content-length: {value.decode('latin-1')!r}") from None
    return None
