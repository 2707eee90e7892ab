"""The tracking writers' connections: each ingest statement is planned once per connection."""

from __future__ import annotations

import asyncio

import pytest

from service.db import make_pool
from service.tracking.store import ClickEvent, ViewEvent, ViewStore, flush_clicks

# One-event batches, as the writers send them under light load. psycopg prepares a
# statement after a few executions (prepare_threshold 5); PostgreSQL then plans the first
# five executions of a prepared statement for their parameters in any case.
BATCHES = 14


async def _plans(settings, generic_plans: bool) -> tuple[str, int, int, int, str]:  # type: ignore[no-untyped-def]
    """Run record_views and record_clicks, one event a batch, on one connection."""
    pool = make_pool(settings, min_size=1, max_size=1, autocommit=True,
                     statement_timeout_ms=1500, generic_plans=generic_plans)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            views = ViewStore(300)
            for batch in range(BATCHES):
                size = 1
                clicks = [ClickEvent(1, None, f"s{batch}-{i}", "search", i) for i in range(size)]
                assert await flush_clicks(conn, clicks) == [True] * size
                seen = [ViewEvent(1, None, f"s{batch}-{i}", "explore", f"s:{batch}-{i}")
                        for i in range(size)]
                assert await views.flush(conn, seen) == ["recorded"] * size
            cur = await conn.execute(
                "SELECT current_setting('plan_cache_mode'), count(*)::int, sum(generic_plans)::int,"
                " sum(custom_plans)::int, current_setting('statement_timeout')"
                " FROM pg_prepared_statements")
            row = await cur.fetchone()
            assert row is not None
            return row
    finally:
        await pool.close()


@pytest.fixture
def project(db) -> None:  # type: ignore[no-untyped-def]
    # A catalogue of some size, analyzed: the planner's choice depends on it (with a
    # handful of projects every plan is cheap and auto picks the generic one by itself).
    db.execute("INSERT INTO projects (id, owner_id, is_private, created_at) "
               "SELECT g, g, false, now() - interval '1 day' FROM generate_series(1, 10000) g")
    db.execute("ANALYZE projects")


@pytest.mark.usefixtures("project")
def test_writer_connections_plan_each_ingest_statement_once(settings):  # type: ignore[no-untyped-def]
    mode, prepared, generic, custom, timeout = asyncio.run(_plans(settings, generic_plans=True))
    assert mode == "force_generic_plan"
    assert timeout == "1500ms"  # both server options reach the connection
    assert prepared == 2  # record_clicks and record_views, once psycopg prepared them
    assert custom == 0
    assert generic >= 2


@pytest.mark.usefixtures("project")
def test_left_to_choose_the_server_replans_every_batch(settings):  # type: ignore[no-untyped-def]
    """Why the writers force generic plans: left to choose (plan_cache_mode=auto), PostgreSQL
    compares the generic plan, which assumes 10 rows per array, with the custom plans it
    made for one-row arrays, and keeps planning every execution (~100 µs of server CPU)."""
    mode, prepared, generic, custom, _ = asyncio.run(_plans(settings, generic_plans=False))
    assert mode == "auto"
    assert prepared == 2
    assert generic == 0
    assert custom > 2 * 5  # past the five custom plans every prepared statement gets
