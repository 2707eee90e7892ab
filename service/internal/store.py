"""Statements behind the internal endpoints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from engagement.db.queries import q
from service.internal.schemas import ImportClick, ImportIn, ImportView

ACTIONS = {"like": 1, "unlike": -1}


async def upsert_project(conn: psycopg.AsyncConnection, project_id: int, owner_id: int,
                         is_private: bool, created_at: object) -> bool:
    """True when the project was created, False when it was updated."""
    cur = await conn.execute(q("upsert_project"), {
        "project_id": project_id, "owner_id": owner_id, "is_private": is_private,
        "created_at": created_at,
    })
    row = await cur.fetchone()
    assert row is not None
    return bool(row[0])


async def delete_project(conn: psycopg.AsyncConnection, project_id: int) -> None:
    await conn.execute(q("delete_project"), {"project_id": project_id})


async def project_exists(conn: psycopg.AsyncConnection, project_id: int) -> bool:
    cur = await conn.execute(q("project_exists"), {"project_id": project_id})
    return await cur.fetchone() is not None


async def apply_like(conn: psycopg.AsyncConnection, project_id: int, user_id: int,
                     action: str) -> bool:
    """True when the like/unlike changed state and was recorded as an event."""
    query = q("like_project") if action == "like" else q("unlike_project")
    cur = await conn.execute(query, {"project_id": project_id, "user_id": user_id})
    return await cur.fetchone() is not None


async def import_events(conn: psycopg.AsyncConnection, data: ImportIn,
                        hash_session: Callable[[str], str]) -> tuple[int, int, int, int]:
    """Insert history in one transaction; returns stored (views, clicks, likes, impressions)."""
    views = clicks = likes = impressions = 0
    if data.views:
        cur = await conn.execute(q("import_views"), _viewed(data.views, hash_session))
        views = cur.rowcount
    if data.clicks:
        cur = await conn.execute(q("import_clicks"), {
            **_viewed(data.clicks, hash_session),
            "positions": [c.position for c in data.clicks],
            "variants": [c.variant for c in data.clicks],
        })
        clicks = cur.rowcount
    if data.likes:
        params = {
            "created_ats": [x.created_at for x in data.likes],
            "project_ids": [x.project_id for x in data.likes],
            "user_ids": [x.user_id for x in data.likes],
            "actions": [ACTIONS[x.action] for x in data.likes],
        }
        cur = await conn.execute(q("import_likes"), params)
        likes = cur.rowcount
        await conn.execute(q("import_like_state"), params)
    if data.impressions:
        cur = await conn.execute(q("import_impressions"), {
            "created_ats": [i.created_at for i in data.impressions],
            "project_ids": [i.project_id for i in data.impressions],
            "sources": [i.source for i in data.impressions],
            "positions": [i.position for i in data.impressions],
            "variants": [i.variant for i in data.impressions],
        })
        impressions = cur.rowcount
    return views, clicks, likes, impressions


def _viewed(events: Sequence[ImportView | ImportClick],
            hash_session: Callable[[str], str]) -> dict[str, list[Any]]:
    """The columns views and clicks share: when, which project, who (hashed), from where."""
    return {
        "created_ats": [e.created_at for e in events],
        "project_ids": [e.project_id for e in events],
        "user_ids": [e.user_id for e in events],
        "session_keys": [hash_session(e.session_key) if e.session_key else "" for e in events],
        "sources": [e.source for e in events],
    }


async def anonymize_user(conn: psycopg.AsyncConnection, user_id: int) -> int:
    params = {"user_id": user_id}
    total = 0
    for name in ("anonymize_views", "anonymize_clicks", "anonymize_likes"):
        cur = await conn.execute(q(name), params)
        total += cur.rowcount
    await conn.execute(q("forget_user_state"), params)
    return total
