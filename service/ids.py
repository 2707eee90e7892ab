"""Parsing of ids taken from URL paths, with messages that name the problem."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.openapi.spec import OpenAPIType
from litestar.params import Parameter

from service.errors import BadRequest

MAX_ID = 2**63 - 1
MAX_POSITION = 2**31 - 1
# Litestar writes Meta bounds into the OpenAPI as floats (2**63 - 1 becomes 2**63) and drops
# a zero minimum; the "extra" entries put the exact bounds back, so schema-valid means valid.
Id = Annotated[int, msgspec.Meta(
    ge=1, le=MAX_ID, description="a positive 64-bit integer id",
    extra_json_schema={"extra": {"minimum": 1, "maximum": MAX_ID}})]
Position = Annotated[int, msgspec.Meta(
    ge=0, le=MAX_POSITION, description="0-indexed feed position",
    extra_json_schema={"extra": {"minimum": 0, "maximum": MAX_POSITION}})]
# An id in a URL path: taken as text so a bad one gets a 400 that names it (see
# parse_path_id) rather than a routing 404, and documented as the integer it must be.
PathId = Annotated[str, Parameter(
    description="a positive 64-bit integer id",
    schema_extra={"type": OpenAPIType.INTEGER, "minimum": 1, "maximum": MAX_ID})]


def parse_path_id(raw: str, name: str) -> int:
    """A positive 64-bit id from a path segment, or a 400 naming the parameter."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise BadRequest(f"`{name}` must be a positive integer, got {raw[:40]!r}")
    value = int(raw)
    if not 1 <= value <= MAX_ID:
        raise BadRequest(f"`{name}` must be between 1 and {MAX_ID}")
    return value
