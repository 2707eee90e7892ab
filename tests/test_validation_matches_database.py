"""What the API accepts, the database accepts: every CHECK on a row from a request, at its edges.

The database's own verdict is asked of the catalog's expression (pg_constraint), so a changed
or added constraint changes what this test expects; the API's verdict is its status code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import psycopg
import pytest
from psycopg import sql

from service.sources import ClickSource, ViewSource

# Tables that hold values taken from requests; a CHECK on any other table guards what the
# service computes itself (trending state), not input.
REQUEST_TABLES = {"project_views", "project_clicks", "project_impressions", "project_likes"}

SOURCES = [*get_args(ClickSource), *get_args(ViewSource)]
NEAR_SOURCES = ["search\n", "\nsearch", "search ", " search", "Search", "searc", "", "search\r",
                "\uff53earch", "search\x00", "explore_for_you\n"]
VARIANTS = ["a", "a-b_c9", "a" * 32, "a" * 33, "", "a\n", "\na", "a\nb", "a\r", "A", "a b",
            "é", "\uff41", "a\x00", "a" * 32 + "\n", None]
POSITIONS = [None, 0, 1, 2**31 - 1, -1, -(2**31), 2**31, 2**63]
EDGES: dict[str, list[Any]] = {
    "source": [*SOURCES, *NEAR_SOURCES],
    "variant": VARIANTS,
    "position": POSITIONS,
}


def _recent() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def _click(field: str, value: Any) -> dict[str, Any]:
    return {"project_id": 1, "source": "search", field: value}


# How each request-fed table's column reaches the database: (name, send) pairs; send posts
# one request carrying `value` in that column and returns the status.
Sender = Callable[[Any, str, Any], int]


def _track_click(api: Any, field: str, value: Any) -> int:
    return api.client.post("/api/v1/projects/track-click/", json=_click(field, value),
                           headers={"X-Session-Key": "s"}).status_code


def _track_clicks(api: Any, field: str, value: Any) -> int:
    return api.client.post("/api/v1/projects/track-clicks/", json={"clicks": [_click(field, value)]},
                           headers={"X-Session-Key": "s"}).status_code


def _track_impressions(api: Any, field: str, value: Any) -> int:
    return api.client.post("/api/v1/projects/track-impressions/",
                           json={"impressions": [_click(field, value)]},
                           headers={"X-Session-Key": "s"}).status_code


def _import(kind: str) -> Sender:
    def send(api: Any, field: str, value: Any) -> int:
        item = {"project_id": 1, "created_at": _recent(), field: value}
        if kind != "views" and field != "source":
            item["source"] = "search"
        return api.import_events(**{kind: [item]}).status_code
    return send


_view_sessions = iter(range(10**6))


def _track_view(api: Any, field: str, value: Any) -> int:
    assert field == "source"
    api.client.cookies.clear()
    return api.client.post("/api/v1/projects/1/track-view/", json={"source": value},
                           headers={"X-Session-Key": f"v{next(_view_sessions)}"}).status_code


def _like(api: Any, field: str, value: Any) -> int:
    assert field == "action"
    return api.client.post("/api/v1/internal/likes/", headers=api.internal,
                           json={"project_id": 1, "user_id": 5, "action": value}).status_code


SENDERS: dict[tuple[str, str], list[tuple[str, Sender]]] = {
    ("project_clicks", "source"): [("track-click", _track_click), ("track-clicks", _track_clicks),
                                   ("import clicks", _import("clicks"))],
    ("project_clicks", "position"): [("track-click", _track_click),
                                     ("track-clicks", _track_clicks),
                                     ("import clicks", _import("clicks"))],
    ("project_clicks", "variant"): [("track-click", _track_click), ("track-clicks", _track_clicks),
                                    ("import clicks", _import("clicks"))],
    ("project_impressions", "source"): [("track-impressions", _track_impressions),
                                        ("import impressions", _import("impressions"))],
    ("project_impressions", "position"): [("track-impressions", _track_impressions),
                                          ("import impressions", _import("impressions"))],
    ("project_impressions", "variant"): [("track-impressions", _track_impressions),
                                         ("import impressions", _import("impressions"))],
    ("project_views", "source"): [("track-view", _track_view), ("import views", _import("views"))],
}
# The API speaks `like`/`unlike`, stored as 1/-1: the edges are the API's words and what
# the service maps them to.
LIKE_ACTIONS = {"like": 1, "unlike": -1}


def _checks(db: psycopg.Connection) -> list[tuple[str, str, str, str, str]]:
    """(table, constraint, column, column type, expression) of every single-column CHECK."""
    return db.execute("""
        SELECT c.conrelid::regclass::text, c.conname, a.attname,
               format_type(a.atttypid, a.atttypmod), pg_get_expr(c.conbin, c.conrelid)
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.contype = 'c' AND c.connamespace = 'public'::regnamespace
        ORDER BY 1, 2""").fetchall()


def _database_accepts(db: psycopg.Connection, column: str, type_: str, expression: str,
                      value: Any) -> bool:
    """Would a row with `value` in `column` pass the constraint (and fit the column)?"""
    query = sql.SQL("SELECT ({}) IS NOT FALSE FROM (SELECT %(v)s::{} AS {}) AS row").format(
        sql.SQL(expression), sql.SQL(type_), sql.Identifier(column))
    try:
        with db.transaction():
            return bool(db.execute(query, {"v": value}).fetchone()[0])
    except psycopg.DataError:  # out of the type's range, or text PostgreSQL cannot hold
        return False


@pytest.fixture
def checks(api, db):  # type: ignore[no-untyped-def]
    api.put_project(1)
    return _checks(db)


def test_every_check_on_request_input_is_walked(checks):
    on_input = {(table, column) for table, _, column, _, _ in checks if table in REQUEST_TABLES}
    assert on_input == {*SENDERS, ("project_likes", "action")}


def test_the_api_refuses_exactly_what_each_check_refuses(api, db, checks, caplog):
    caplog.set_level(logging.ERROR, logger="engagement.errors")
    mismatches = []
    for table, name, column, type_, expression in checks:
        if (table, column) not in SENDERS:
            continue
        for value in EDGES[column]:
            db_ok = _database_accepts(db, column, type_, expression, value)
            for endpoint, send in SENDERS[(table, column)]:
                status = send(api, column, value)
                assert status < 500, (endpoint, column, value, status)
                api_ok = status in (200, 201)
                assert api_ok or status == 400, (endpoint, column, value, status)
                if api_ok != db_ok:
                    mismatches.append((name, endpoint, value, status, db_ok))
    assert mismatches == []
    # Every 400 came from validation: none is a row the database had to refuse.
    assert [r.getMessage() for r in caplog.records if r.name == "engagement.errors"] == []


def test_like_actions_are_the_ones_the_check_allows(api, db, checks):
    (_, _, column, type_, expression), = [c for c in checks if c[0] == "project_likes"]
    for word, stored in LIKE_ACTIONS.items():
        assert _database_accepts(db, column, type_, expression, stored)
        assert _like(api, "action", word) in (200, 201)
    for word in ("dislike", "like\n", "Like", "", 1, -1, 0):
        assert _like(api, "action", word) == 400
