"""Reads behind the insights endpoints (sql/queries/insights.sql)."""

from __future__ import annotations

from datetime import date, datetime

import psycopg

from engagement.db.queries import q
from service.insights.schemas import HeatmapKind
from service.insights.window import Window

_HEATMAP_QUERIES: dict[tuple[HeatmapKind, bool], str] = {
    ("views", False): "heatmap_views_site",
    ("views", True): "heatmap_views_project",
    ("clicks", False): "heatmap_clicks_site",
    ("clicks", True): "heatmap_clicks_project",
    ("likes", False): "heatmap_likes_site",
    ("likes", True): "heatmap_likes_project",
}


async def ctr_by_position(conn: psycopg.AsyncConnection, source: str | None,
                          window: Window) -> list[tuple[str, int | None, int, int]]:
    """(source, position, impressions, clicks), by source then position (null last)."""
    cur = await conn.execute(q("ctr_by_position"), {"source": source, **window.params()})
    return await cur.fetchall()


async def ctr_by_variant(conn: psycopg.AsyncConnection, source: str | None,
                         window: Window) -> list[tuple[str, int, int]]:
    """(variant, impressions, clicks) by variant name."""
    cur = await conn.execute(q("ctr_by_variant"), {"source": source, **window.params()})
    return await cur.fetchall()


async def hourly_counts(conn: psycopg.AsyncConnection, kind: HeatmapKind, project_id: int | None,
                        window: Window) -> list[tuple[datetime, int]]:
    """(bucket, count) for every hour with events, of one project or of the whole site."""
    name = _HEATMAP_QUERIES[(kind, project_id is not None)]
    cur = await conn.execute(q(name), {"project_id": project_id, "start": window.start,
                                       "end": window.end})
    return await cur.fetchall()


async def project_exists(conn: psycopg.AsyncConnection, project_id: int) -> bool:
    cur = await conn.execute(q("insights_project_exists"), {"project_id": project_id})
    return await cur.fetchone() is not None


async def retention_cohorts(conn: psycopg.AsyncConnection, project_id: int,
                            window: Window) -> list[tuple[date, int, int]]:
    """(week_start, viewers, returning) per weekly cohort of first views in the window."""
    async with conn.transaction():
        await conn.execute(q("retention_work_mem"))
        cur = await conn.execute(q("retention_cohorts"), {
            "project_id": project_id, "start": window.start, "end": window.end})
        return await cur.fetchall()
