"""How a handler asks for one of the worker's objects: `pool: Injected[AsyncConnectionPool]`.

create_app provides each by its parameter name. Not validated: they are the worker's own
objects, not input, and msgspec would try to convert a dataclass such as Runtime.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias, TypeVar

from litestar.di import Dependency
from litestar.params import SkipValidationMarker

T = TypeVar("T")

Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]
