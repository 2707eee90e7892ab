"""trending_blocks (rollups/0205, caggs/0205): the aligned sums of hourly counts a trending rebuild reads.

The blocks are checked against sums of the hourly rows computed here, after every way the
hourly counts can change, and a rebuild that reads them against one that reads only the
hourly rows. The trending answers themselves are checked in test_trending.py, whose
rebuilds read the blocks too.
"""

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from scheduler.jobs import JobContext, run_job
from scheduler.trending import blocks as tb
from scheduler.trending.window import trending_params, update_trending_blocks, update_window_totals
from tests.test_trending import every_hour_scenario, hour_of, rewrite_hour, send, totals

H = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hours_of(start, end):
    return [start + i * H for i in range((end - start) // H)]


@pytest.mark.parametrize("seed", range(8))
def test_a_plan_reads_every_hour_once_from_aligned_blocks_inside_the_covered_hours(seed):
    rng = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC) + rng.randrange(16) * H
    for _ in range(200):
        start = base + rng.randrange(-5, 30) * H
        end = start + rng.randrange(0, 50) * H
        covered_from = base + rng.randrange(-10, 20) * H
        covered = (covered_from, covered_from + rng.randrange(0, 60) * H)
        stale = [base + rng.randrange(-10, 60) * H for _ in range(rng.randrange(3))]
        blocks, hours = tb.plan(start, end, covered, stale)
        read = list(hours)
        for size, block_start in blocks:
            assert size in tb.SIZES
            assert (block_start - EPOCH) % (size * H) == timedelta(0)
            assert covered[0] <= block_start and block_start + size * H <= covered[1]
            assert not set(hours_of(block_start, block_start + size * H)) & set(stale)
            read += hours_of(block_start, block_start + size * H)
        assert sorted(read) == hours_of(start, end)


@pytest.mark.parametrize("offset", range(16))
def test_a_covered_window_reads_at_most_one_single_hour_at_each_end(offset):
    start = datetime(2026, 11, 1, tzinfo=UTC) + offset * H
    for length in (22, 24, 46):
        end = start + length * H
        blocks, hours = tb.plan(start, end, (start - 20 * H, end + 20 * H))
        assert set(hours) <= {start, end - H}
        assert len(blocks) <= 8
        # a truncation (None) or no coverage: every hour from the hourly rows
        assert tb.plan(start, end, (start, end), [None]) == ([], hours_of(start, end))
        assert tb.plan(start, end, None) == ([], hours_of(start, end))


def stored_blocks(db):
    return db.execute("SELECT hours, block_start, project_id, views, net_likes, active_rows "
                      "FROM trending_blocks ORDER BY 1, 2, 3").fetchall()


def blocks_from_hourly_rows(db):
    """What trending_blocks must hold: every block inside the covered hours, summed here
    from the hourly rows, one row per project with an hourly row in the block."""
    covered_from, covered_to = db.execute(
        "SELECT covered_from, covered_to FROM trending_blocks_state").fetchone()
    views = db.execute("SELECT bucket, project_id, views FROM project_views_hourly").fetchall()
    likes = db.execute("SELECT bucket, project_id, likes, unlikes "
                       "FROM project_likes_hourly").fetchall()
    rows = []
    for size, start in tb.blocks_within(covered_from, covered_to):
        sums: dict[int, list[int]] = {}
        for bucket, pid, n in views:
            if start <= bucket < start + size * H:
                s = sums.setdefault(pid, [0, 0, 0])
                s[0] += n
                s[2] += n > 0
        for bucket, pid, n, un in likes:
            if start <= bucket < start + size * H:
                s = sums.setdefault(pid, [0, 0, 0])
                s[1] += n - un
                s[2] += n > 0
        rows += [(size, start, pid, *s) for pid, s in sums.items()]
    return sorted(rows)


def refresh(settings, profile):
    return run_job("refresh-rollups", JobContext(settings, profile))


def test_refresh_keeps_a_block_for_every_span_of_the_window_before_the_live_hours(
        api, db, settings, profile):
    now = datetime.now(UTC)
    every_hour_scenario(api, now, seed=1)
    refresh(settings, profile)
    covered = db.execute("SELECT covered_from, covered_to FROM trending_blocks_state").fetchone()
    h = hour_of(db.execute("SELECT now()").fetchone()[0])
    assert covered == (h - 47 * H, h - H)  # the window's hours but the current and the last
    expected = blocks_from_hourly_rows(db)
    assert {(size, start) for size, start, *_ in expected} == tb.blocks_within(*covered)
    assert stored_blocks(db) == expected
    assert db.execute("SELECT count(*) FROM trending_blocks_changes").fetchone()[0] == 0


@pytest.mark.parametrize("change", ["late views", "late likes and unlikes", "sql correction",
                                    "project deleted", "truncation"])
def test_blocks_follow_every_change_to_a_covered_hour(api, db, database, settings, profile,
                                                     change):
    if change == "truncation" and profile == "timescale":
        pytest.skip("timescale: a continuous aggregate cannot be truncated")
    now = datetime.now(UTC)
    h = hour_of(now)
    every_hour_scenario(api, now, seed=2)
    refresh(settings, profile)
    before = stored_blocks(db)
    if change == "late views":
        send(api, [(2, h - 5 * H)] * 7 + [(4, h - 40 * H)] * 3, [])
    elif change == "late likes and unlikes":
        send(api, [], [(4, h - 10 * H, 1), (1, h - 25 * H, 1), (3, h - 33 * H, -1)])
    elif change == "sql correction":
        with psycopg.connect(database, autocommit=True) as conn:
            rewrite_hour(conn, settings, profile, "views", h - 20 * H, 10)
    elif change == "project deleted":
        assert api.client.delete("/api/v1/internal/projects/3",
                                 headers=api.internal).status_code == 204
    else:
        db.execute("TRUNCATE project_likes_hourly")
    refresh(settings, profile)
    after = stored_blocks(db)
    assert after != before
    assert after == blocks_from_hourly_rows(db)
    assert db.execute("SELECT count(*) FROM trending_blocks_changes").fetchone()[0] == 0


def test_an_hour_turning_adds_the_blocks_it_completes_and_drops_the_ones_it_leaves(
        api, database, db, settings, profile):
    now = datetime.now(UTC)
    every_hour_scenario(api, now, seed=3)
    refresh(settings, profile)
    with psycopg.connect(database) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        at = conn.execute("SELECT now()").fetchone()[0]
        # as refresh-rollups would have left them five hours ago, then each hour since
        conn.execute("DELETE FROM trending_blocks_state")
        assert update_trending_blocks(conn, settings, at - 5 * H) == len(
            tb.blocks_within(hour_of(at) - 52 * H, hour_of(at) - 6 * H))
        for back in (4, 3, 2, 1, 0):
            assert update_trending_blocks(conn, settings, at - back * H) <= len(tb.SIZES)
            conn.commit()
            assert stored_blocks(db) == blocks_from_hourly_rows(db)
        assert update_trending_blocks(conn, settings, at) == 0  # nothing changed since
    first = db.execute("SELECT min(block_start) FROM trending_blocks").fetchone()[0]
    assert first >= hour_of(at) - 47 * H


def rebuild_as_of(database, settings, at, *, blocks):
    with psycopg.connect(database) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("DELETE FROM trending_window_state")
        mode = update_window_totals(conn, settings, trending_params(settings, at),
                                    blocks_kept=blocks)
    assert mode == "rebuilt"


@pytest.mark.parametrize("back", [0, 1, 2, 3, 5, 8, 13])
def test_a_rebuild_from_blocks_equals_one_from_the_hourly_rows(api, database, db, settings,
                                                               profile, back):
    now = datetime.now(UTC)
    h = hour_of(now)
    every_hour_scenario(api, now, seed=10 + back)
    refresh(settings, profile)
    at = now - back * H
    with psycopg.connect(database) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        update_trending_blocks(conn, settings, at)
    # and a correction not yet through refresh-rollups: its blocks are stale, its hour is read
    with psycopg.connect(database, autocommit=True) as conn:
        rewrite_hour(conn, settings, profile, "likes", h - (back + 9) * H, 3)
    rebuild_as_of(database, settings, at, blocks=True)
    from_blocks = totals(db)
    rebuild_as_of(database, settings, at, blocks=False)
    assert from_blocks == totals(db)
    assert len(from_blocks) >= 10
    assert db.execute("SELECT count(*) FROM trending_blocks").fetchone()[0] > 0


def test_a_block_made_stale_after_the_job_planned_is_read_as_its_hours(api, database, db,
                                                                       settings, profile):
    """A change committed between the job's read of the blocks' state and its read of the
    blocks: the statement checks the plan again in its own snapshot."""
    from engagement.db.queries import q

    now = datetime.now(UTC)
    every_hour_scenario(api, now, seed=21)
    refresh(settings, profile)
    changed = []

    class RewriteBeforeBuild:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, query, params=None):
            if query == q("build_trending_window_totals_from_blocks"):
                size, start = params["block_hours"][0], params["block_starts"][0]
                changed.append(start + (size - 1) * H)
                with psycopg.connect(database, autocommit=True) as other:
                    rewrite_hour(other, settings, profile, "views", changed[0], 50)
            return self.conn.execute(query, params)

    with psycopg.connect(database) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        at = conn.execute("SELECT now()").fetchone()[0]
        mode = update_window_totals(RewriteBeforeBuild(conn), settings,
                                    trending_params(settings, at))
    assert mode == "rebuilt" and changed
    with_check = totals(db)
    rebuild_as_of(database, settings, at, blocks=False)
    assert with_check == totals(db)
