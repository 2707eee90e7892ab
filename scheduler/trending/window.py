"""The trending job (ARCHITECTURE §5): its window totals, kept between runs and shifted as the
hour turns, rebuilt from the aligned blocks of `blocks` when an hour they count changed, and
the scores computed from them plus the live hours. The SQL is sql/queries/trending.sql.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import psycopg

from engagement.db.queries import q
from engagement.settings import Settings
from scheduler import metrics
from scheduler.context import JobContext
from scheduler.trending import blocks

# Swapping in the new trending_scores waits for the old one's readers; each wait is short so
# that readers arriving meanwhile (queued behind the swap) are not held up for long.
SWAP_LOCK_TIMEOUT_MS = 200
SWAP_LOCK_ATTEMPTS = 25
# Hours of the trending window read afresh by every run: the current one and the one before,
# which refresh-rollups still rewrites after the hour turns. The rest are kept as totals.
LIVE_HOURS = 1


@dataclass(frozen=True, slots=True)
class TrendingParams:
    """One run's moment and the formula's constants, as the queries take them."""
    now: datetime
    hour: datetime  # the current hour
    counted_to: datetime  # the window totals count the hours before this one
    recent_start: datetime
    previous_start: datetime
    like_weight: float
    view_weight: float
    recency_per_day: float

    def sql(self) -> dict[str, object]:
        return asdict(self)


def trending_params(settings: Settings, now: datetime) -> TrendingParams:
    hour = now.replace(minute=0, second=0, microsecond=0)
    return TrendingParams(
        now=now,
        hour=hour,
        counted_to=hour - timedelta(hours=LIVE_HOURS),
        recent_start=hour - timedelta(hours=settings.trending_recent_hours),
        previous_start=hour - timedelta(hours=settings.trending_previous_hours),
        like_weight=settings.trending_like_weight,
        view_weight=settings.trending_view_weight,
        recency_per_day=settings.trending_recency_per_day,
    )


def replace_trending(conn: psycopg.Connection, query: str, params: Mapping[str, object]) -> int:
    """Replace trending_scores with `query`'s rows (it inserts into trending_scores_next).

    Run inside the caller's transaction: the new table is filled, indexed in bulk, its
    foreign key checked in one pass, then swapped in. Readers see the old table until the
    commit and wait only for the swap itself. Returns the number of rows.
    """
    conn.execute(q("lock_trending"))
    conn.execute(q("create_trending_next"))
    count = conn.execute(query, params).rowcount
    conn.execute(q("index_trending_next"))
    for attempt in range(SWAP_LOCK_ATTEMPTS):
        try:
            with conn.transaction():  # a savepoint: a lock timeout undoes only the LOCK
                conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_MS}ms'")
                conn.execute(q("lock_trending_for_swap"))
            break
        except psycopg.errors.LockNotAvailable:
            if attempt == SWAP_LOCK_ATTEMPTS - 1:
                raise
            time.sleep(SWAP_LOCK_TIMEOUT_MS / 1000)
    conn.execute("SET LOCAL lock_timeout = DEFAULT")
    conn.execute(q("swap_trending"))
    return count


def update_window_totals(conn: psycopg.Connection, settings: Settings,
                         params: TrendingParams, *, blocks_kept: bool = True) -> str:
    """Make trending_window_totals count the window's hours before params' counted_to.

    The totals left by the last run (trending_window_state says for which hour) are reused
    within the same hour and shifted (shift_trending_window_totals) when the hour has turned
    since, provided trending_window_changes shows nothing has rewritten an hour they count
    (triggers log the rewrites of the rollup tables; on the timescale profile refresh-rollups
    logs its refreshes). Otherwise, or when the window lengths changed, they are rebuilt
    from the whole window, reading trending_blocks as refresh-rollups keeps them (without
    `blocks_kept`, from the hourly rows alone: the benchmark's comparison). Runs in the
    caller's transaction, under the job's advisory lock. Returns "reused", "shifted" or
    "rebuilt".
    """
    hour, counted_to = params.hour, params.counted_to
    recent, previous = settings.trending_recent_hours, settings.trending_previous_hours
    state = conn.execute(q("trending_window_state")).fetchone()
    old_hour: datetime | None = None
    old_counted_to = counted_to
    if (state is not None and (state[2], state[3]) == (recent, previous) and state[0] <= hour
            and state[0] - state[1] == hour - counted_to):
        old_hour, old_counted_to = state[0], state[1]

    def changes(seen: list[int], counted: datetime) -> tuple[list[int], bool]:
        """Log rows not in `seen`, and whether one rewrote an hour before `counted`."""
        row = conn.execute(q("trending_window_changes"),
                           {"counted_to": counted, "seen": seen}).fetchone()
        assert row is not None  # an aggregate: always one row
        return row[0], row[1]

    def rebuild() -> str:
        conn.execute(q("clear_trending_window_totals"))
        planned, hours = block_plan() if blocks_kept else ([], [])
        if planned:
            conn.execute(q("build_trending_window_totals_from_blocks"), {
                **params.sql(), "block_hours": [size for size, _ in planned],
                "block_starts": [start for _, start in planned], "hours": hours})
        else:  # no blocks on this profile, or none kept yet (no refresh since the migration)
            conn.execute(q("build_trending_window_totals"), params.sql())
        return "rebuilt"

    def block_plan() -> tuple[list[blocks.Block], list[datetime]]:
        """Each window as aligned blocks of summed hours where refresh-rollups keeps them
        (trending_blocks_state) and no change has made them stale since, single hours
        elsewhere. The rebuild's statement checks the plan again against what it reads."""
        state = conn.execute(q("trending_blocks_state")).fetchone()
        covered = (state[0], state[1]) if state else None
        stale = [row[0] for row in conn.execute(q("trending_blocks_stale_hours"))]
        first = params.previous_start + blocks.HOUR
        split = params.recent_start + blocks.HOUR
        previous = blocks.plan(first, split, covered, stale)
        recent = blocks.plan(split, counted_to, covered, stale)
        return previous[0] + recent[0], previous[1] + recent[1]

    # The log is read before the counts: a change committed in between is then in both the
    # counts and the log, which costs at most one needless rebuild, never a missed change.
    change_ids, rewritten = changes([], old_counted_to)
    # A shift by more than a third of the window reads about as many hours as a rebuild.
    if old_hour is None or rewritten or 3 * (hour - old_hour) >= timedelta(hours=previous):
        mode = rebuild()
    elif old_hour == hour:
        mode = "reused"
    else:
        mode = "shifted"
        conn.execute(q("shift_trending_window_totals"), {
            **params.sql(), "old_hour": old_hour, "old_counted_to": old_counted_to,
            "old_recent_start": old_hour - timedelta(hours=recent),
            "old_previous_start": old_hour - timedelta(hours=previous)})
        # The shift subtracts hours as they are now from totals that counted them as they
        # were, and adds the newly counted ones as they were when it read them. A rewrite of
        # either committed after the first read of the log may have come too late for the
        # shift; it is in this second read, and then the totals are rebuilt (after it, so
        # counting it). The log rows deleted below are then all counted, or of live hours.
        later_ids, rewritten = changes(change_ids, counted_to)
        change_ids += later_ids
        if rewritten:
            mode = rebuild()
        else:
            conn.execute(q("clear_trending_window_totals"))
            conn.execute(q("replace_trending_window_totals"))
    if mode != "reused":
        conn.execute(q("record_trending_window_state"),
                     {"hour": hour, "counted_to": counted_to, "recent_hours": recent,
                      "previous_hours": previous})
    if change_ids:
        conn.execute(q("forget_trending_window_changes"), {"ids": change_ids})
    return mode


def compute_trending(ctx: JobContext) -> str:
    """Recompute trending_scores from the hourly counts, replacing it in one transaction."""
    with ctx.connect() as conn:
        # Off: the planner overestimates the full joins' rows by ~400x, and at 10k projects
        # JIT compilation then took 0.35 s of a 0.45 s run; without it the run takes 0.09 s.
        conn.execute("SET LOCAL jit = off")
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        params = trending_params(ctx.settings, now)
        conn.execute(q("lock_trending"))
        mode = update_window_totals(conn, ctx.settings, params)
        count = replace_trending(conn, q("compute_trending"), params.sql())
        conn.execute(q("record_trending_run"), {"now": now})
    metrics.TRENDING_WINDOW_TOTALS.labels(mode).inc()
    return f"{count} projects ({mode} window totals)"


def update_trending_blocks(conn: psycopg.Connection, settings: Settings, now: datetime) -> int:
    """Keep trending_blocks (rollups/0205) over the complete hours a trending run at `now`
    counts in its window totals: from the window's first hour to params' counted_to."""
    params = trending_params(settings, now)
    return blocks.update(conn, params.previous_start + blocks.HOUR, params.counted_to)
