"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.openapi import ResponseSpec

from engagement.db.profiles import PROFILES
from engagement.db.queries import q
from service.dependencies import Injected
from service.runtime import Runtime


class Health(msgspec.Struct, frozen=True):
    status: str


class Ready(msgspec.Struct, frozen=True):
    status: str
    database: str
    profile: str | None


@get("/healthz", operation_id="healthz", include_in_schema=True)
async def healthz() -> Health:
    """The process is up (does not touch the database)."""
    return Health(status="ok")


@get("/readyz", operation_id="readyz", responses={
    503: ResponseSpec(Ready, generate_examples=False,
                      description="not ready: the database is unreachable or not migrated")})
async def readyz(runtime: Injected[Runtime]) -> Response[Ready]:
    """Ready when the database answers and is migrated; reports the storage profile."""
    try:
        async with runtime.pool.connection(timeout=2.0) as conn:
            cur = await conn.execute(q("read_profile"))
            row = await cur.fetchone()
    except Exception:  # any failure means "not ready", never a 500
        return Response(Ready("unavailable", "unreachable", runtime.profile), status_code=503)
    profile = row[0] if row else None
    runtime.profile = profile
    if profile not in PROFILES:
        return Response(Ready("unavailable", "not migrated", None), status_code=503)
    return Response(Ready("ok", "ok", profile), status_code=200)
