"""GET /api/v1/trending/: the list other services read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import get
from litestar.params import QueryParameter
from psycopg_pool import AsyncConnectionPool

from engagement.db.queries import q
from service.dependencies import Injected
from service.errors import error_responses

TRENDING_PATH = "/api/v1/trending/"
MAX_OFFSET = 10_000


class TrendingItem(msgspec.Struct, frozen=True):
    rank: int
    project_id: int
    score: float
    velocity: float
    like_velocity: float
    view_velocity: float
    recent_likes: int
    previous_likes: int
    recent_views: int
    previous_views: int
    days_old: int


class TrendingOut(msgspec.Struct, frozen=True):
    computed_at: datetime | None
    results: list[TrendingItem]


@get(TRENDING_PATH, operation_id="listTrending", cache_control=None,
     responses=error_responses(400, 429, 503))
async def list_trending(
    pool: Injected[AsyncConnectionPool],
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="page size, 1-100")] = 20,
    offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="rows to skip")] = 0,
) -> TrendingOut:
    """Public projects ranked by trending score (score, then recent views, then id)."""
    async with pool.connection() as conn:
        cur = await conn.execute(q("trending_computed_at"))
        row = await cur.fetchone()
        cur = await conn.execute(q("trending_page"), {"limit": limit, "offset": offset})
        rows = await cur.fetchall()
    results = [TrendingItem(offset + i + 1, *r) for i, r in enumerate(rows)]
    return TrendingOut(computed_at=row[0] if row else None, results=results)
