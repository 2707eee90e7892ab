"""Request bodies must have exactly the JSON types the OpenAPI document promises.

Litestar converts request data with msgspec in lax mode, which turns `"5"` into 5, `"true"`
into True and 0 into 1970-01-01. A client relying on that would break on any stricter
implementation, and a fuzzer rightly calls it a schema-violating request accepted. This
`before_request` hook decodes the body once more, strictly, against the handler's `data`
type and answers 400 naming the field; malformed JSON and missing bodies are left to
Litestar, which already answers them.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException

_ERROR = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)


def _data_type(request: Request) -> Any | None:
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    return None if field is None else field.annotation


async def strict_json_body(request: Request) -> None:
    """400 when the body parses as JSON but not, without coercion, as the handler's type."""
    target = _data_type(request)
    if target is None:
        return
    body = await request.body()
    if not body.strip():
        return
    try:
        msgspec.json.decode(body, type=target, strict=True)
    except msgspec.ValidationError as exc:
        match = _ERROR.match(str(exc))
        message = match["message"] if match else str(exc)
        key = (match["path"] if match else None) or "data"
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": message, "key": key, "source": "body"}],
        ) from None
    except (msgspec.DecodeError, RecursionError):
        return  # Litestar's own decoding answers these
