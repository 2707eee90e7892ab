"""The tracking writers' connections: each ingest statement is planned once per connection."""

from __future__ import annotations

import asyncio

import pytest
from litestar.testing import TestClient

from engagement.db.pool import make_pool
from service.app import create_app
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
                click = ClickEvent(1, None, f"s{batch}", "search", 3)
                assert await flush_clicks(conn, [click]) == [True]
                view = ViewEvent(1, None, f"s{batch}", "explore", f"s:{batch}")
                assert await views.flush(conn, [view]) == ["recorded"]
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


def test_the_app_gives_its_writers_those_connections(settings):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings)) as client:
        writer_pool = client.app.state.runtime.clicks._pool

        async def show() -> tuple[str, str]:
            async with writer_pool.connection() as conn:
                cur = await conn.execute("SELECT current_setting('plan_cache_mode'),"
                                         " current_setting('statement_timeout')")
                row = await cur.fetchone()
                assert row is not None
                return row

        with client.portal() as portal:  # the app's own event loop, where its pools live
            mode, timeout = portal.call(show)
    assert mode == "force_generic_plan"
    assert timeout == f"{int(settings.write_timeout_seconds * 1000)}ms"
