"""Parsing of ids taken from URL paths, with messages that name the problem."""

from __future__ import annotations

import re
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


# Plain ASCII decimal digits and nothing else: int() would also take a sign, spaces,
# underscores ("7_7") and digits of other scripts ("\uff10\uff17\uff17"), each a second
# spelling of some other id.
_DECIMAL = re.compile(r"[0-9]{1,19}")


def parse_id(raw: object) -> int | None:
    """A positive 64-bit id written as plain ASCII decimal digits; None for anything else."""
    if not isinstance(raw, str) or not _DECIMAL.fullmatch(raw):
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


def parse_path_id(raw: str, name: str) -> int:
    """A positive 64-bit id from a path segment, or a 400 naming the parameter."""
    value = parse_id(raw)
    if value is None:
        raise BadRequest(f"`{name}` must be an integer between 1 and {MAX_ID} in plain digits, "
                         f"got {raw[:40]!r}")
    return value
