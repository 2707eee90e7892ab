"""Parsing of ids taken from URL paths, with messages that name the problem."""

from __future__ import annotations

from typing import Annotated

import msgspec

from service.errors import BadRequest

MAX_ID = 2**63 - 1
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID, description="a positive 64-bit integer id")]
Position = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1, description="0-indexed feed position")]


def parse_path_id(raw: str, name: str) -> int:
    """A positive 64-bit id from a path segment, or a 400 naming the parameter."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise BadRequest(f"`{name}` must be a positive integer, got {raw[:40]!r}")
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise BadRequest(f"`{name}` must be between 1 and {MAX_ID}")
    return value
