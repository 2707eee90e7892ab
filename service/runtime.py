"""Everything a request handler needs, built once per worker in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request
from psycopg_pool import AsyncConnectionPool

from engagement.settings import Settings
from service.fingerprint import Fingerprinter
from service.identity import IdentityResolver
from service.ratelimit import ClientAddress
from service.tracking.store import ClickEvent, ImpressionEvent, ViewEvent, ViewOutcome
from service.tracking.writer import BatchWriter


@dataclass(slots=True)
class Runtime:
    settings: Settings
    pool: AsyncConnectionPool
    identity: IdentityResolver
    views: BatchWriter[ViewEvent, ViewOutcome]
    clicks: BatchWriter[ClickEvent, bool]
    impressions: BatchWriter[ImpressionEvent, bool]
    profile: str | None = None
    clients: ClientAddress | None = None
    fingerprints: Fingerprinter | None = None  # None: anonymous views are not capped


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime
