"""Everything the request handlers need, built once per worker in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from service.tracking.context import TrackingContext


@dataclass(slots=True, kw_only=True)
class Runtime(TrackingContext):
    """The track calls' context, and the pool of every other endpoint's queries."""

    pool: AsyncConnectionPool
    profile: str | None = None  # the storage profile /readyz read last
