"""The jobs. Each is idempotent, takes its own advisory lock, and opens its own connection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from scheduler import metrics, trending_blocks
from service.migrations import CAGG_SOURCES, CAGGS, refresh_continuous_aggregates
from service.queries import q
from service.settings import Settings

log = logging.getLogger("engagement.jobs")

RETENTION_BATCH = 50_000
# The rollup tables (clear_/fill_<name> queries) recomputed for each raw relation named in
# rollup_invalidations, in this order: later ones sum earlier ones (per site from per
# project, per day from per hour).
ROLLUP_TABLES: dict[str, tuple[str, ...]] = {
    "views": ("views_hourly", "site_views_hourly"),
    "clicks": ("clicks_hourly", "feed_clicks_hourly", "feed_clicks_daily"),
    "likes": ("likes_hourly",),
    "impressions": ("impressions_hourly", "feed_impressions_hourly", "feed_impressions_daily"),
}
RAW_KINDS = ("views", "clicks", "likes", "impressions")
# Swapping in the new trending_scores waits for the old one's readers; each wait is short so
# that readers arriving meanwhile (queued behind the swap) are not held up for long.
SWAP_LOCK_TIMEOUT_MS = 200
SWAP_LOCK_ATTEMPTS = 25
# Hours of the trending window read afresh by every run: the current one and the one before,
# which refresh-rollups still rewrites after the hour turns. The rest are kept as totals.
LIVE_HOURS = 1


@dataclass(frozen=True, slots=True)
class JobContext:
    settings: Settings
    profile: str

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        conn = psycopg.connect(self.settings.database_url, autocommit=autocommit,
                               connect_timeout=5, application_name="engagement-scheduler")
        conn.execute("SET TIME ZONE 'UTC'")
        return conn


def trending_params(settings: Settings, now: datetime) -> dict[str, object]:
    hour = now.replace(minute=0, second=0, microsecond=0)
    return {
        "now": now,
        "hour": hour,
        # the window totals count the hours before this one (see sql/queries/trending.sql)
        "counted_to": hour - timedelta(hours=LIVE_HOURS),
        "recent_start": hour - timedelta(hours=settings.trending_recent_hours),
        "previous_start": hour - timedelta(hours=settings.trending_previous_hours),
        "like_weight": settings.trending_like_weight,
        "view_weight": settings.trending_view_weight,
        "recency_per_day": settings.trending_recency_per_day,
    }


def replace_trending(conn: psycopg.Connection, query: str, params: dict[str, object]) -> int:
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
                         params: dict[str, object], *, blocks_kept: bool = True) -> str:
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
    hour: datetime = params["hour"]  # type: ignore[assignment]
    counted_to: datetime = params["counted_to"]  # type: ignore[assignment]
    recent, previous = settings.trending_recent_hours, settings.trending_previous_hours
    state = conn.execute(q("trending_window_state")).fetchone()
    old_hour: datetime | None = None
    old_counted_to = counted_to
    if (state is not None and (state[2], state[3]) == (recent, previous) and state[0] <= hour
            and state[0] - state[1] == hour - counted_to):
        old_hour, old_counted_to = state[0], state[1]

    def changes(seen: list[int], counted: datetime) -> tuple[list[int], bool]:
        """Log rows not in `seen`, and whether one rewrote an hour before `counted`."""
        ids, rewritten = conn.execute(q("trending_window_changes"), {  # type: ignore[misc]
            "counted_to": counted, "seen": seen}).fetchone()
        return ids, rewritten

    def rebuild() -> str:
        conn.execute(q("clear_trending_window_totals"))
        blocks, hours = block_plan() if blocks_kept else ([], [])
        if blocks:
            conn.execute(q("build_trending_window_totals_from_blocks"), {
                **params, "block_hours": [size for size, _ in blocks],
                "block_starts": [start for _, start in blocks], "hours": hours})
        else:  # no blocks on this profile, or none kept yet (no refresh since the migration)
            conn.execute(q("build_trending_window_totals"), params)
        return "rebuilt"

    def block_plan() -> tuple[list[trending_blocks.Block], list[datetime]]:
        """Each window as aligned blocks of summed hours where refresh-rollups keeps them
        (trending_blocks_state) and no change has made them stale since, single hours
        elsewhere. The rebuild's statement checks the plan again against what it reads."""
        state = conn.execute(q("trending_blocks_state")).fetchone()
        covered = (state[0], state[1]) if state else None
        stale = [row[0] for row in conn.execute(q("trending_blocks_stale_hours"))]
        previous_start: datetime = params["previous_start"]  # type: ignore[assignment]
        recent_start: datetime = params["recent_start"]  # type: ignore[assignment]
        first = previous_start + trending_blocks.HOUR
        split = recent_start + trending_blocks.HOUR
        previous = trending_blocks.plan(first, split, covered, stale)
        recent = trending_blocks.plan(split, counted_to, covered, stale)
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
            **params, "old_hour": old_hour, "old_counted_to": old_counted_to,
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
        count = replace_trending(conn, q("compute_trending"), params)
        conn.execute(q("record_trending_run"), {"now": now})
    metrics.TRENDING_PROJECTS.set(count)
    metrics.TRENDING_WINDOW_TOTALS.labels(mode).inc()
    return f"{count} projects ({mode} window totals)"


def refresh_rollups(ctx: JobContext) -> str:
    """Bring the hourly counts up to date with every committed raw event."""
    if ctx.profile == "timescale":
        with ctx.connect(autocommit=True) as conn:
            # TimescaleDB refuses overlapping refreshes; queue behind another runner instead.
            conn.execute(q("lock_rollups_session"))
            try:
                refreshed = refresh_continuous_aggregates(conn, ctx.settings)
            finally:
                conn.execute(q("unlock_rollups_session"))
            lag = materialised_lag(conn)
        with ctx.connect() as conn:
            # After the refreshes, which logged the hours they rewrote (caggs/0205).
            now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            blocks = update_trending_blocks(conn, ctx.settings, now)
        # The lag: how far materialisation trails the newest raw events, in aggregates that
        # hold data; the same figure in the log and the metric.
        metrics.ROLLUP_LAG.set(lag)
        return (f"{refreshed} continuous aggregates refreshed within raw retention "
                f"(materialised lag {lag:.0f} s), {blocks} trending blocks")
    with ctx.connect() as conn:
        conn.execute(q("lock_rollups"))
        claimed = conn.execute(q("claim_invalidations")).fetchall()
        buckets: dict[str, set[datetime]] = {}
        for relation, bucket, _recorded_at in claimed:
            buckets.setdefault(relation, set()).add(bucket)
        for relation, hours in sorted(buckets.items()):
            params = {"buckets": sorted(hours)}
            for table in ROLLUP_TABLES[relation]:
                conn.execute(q(f"clear_{table}"), params)
                conn.execute(q(f"fill_{table}"), params)
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        blocks = update_trending_blocks(conn, ctx.settings, now)
    metrics.ROLLUP_LAG.set(0)
    touched = sum(len(h) for h in buckets.values())
    return (f"{touched} relation-hours recomputed from {len(claimed)} log rows, "
            f"{blocks} trending blocks")


def update_trending_blocks(conn: psycopg.Connection, settings: Settings, now: datetime) -> int:
    """Keep trending_blocks (rollups/0205) over the complete hours a trending run at `now`
    counts in its window totals: from the window's first hour to params' counted_to."""
    params = trending_params(settings, now)
    previous_start: datetime = params["previous_start"]  # type: ignore[assignment]
    counted_to: datetime = params["counted_to"]  # type: ignore[assignment]
    return trending_blocks.update(conn, previous_start + trending_blocks.HOUR, counted_to)


def materialised_lag(conn: psycopg.Connection) -> float:
    """Seconds by which materialisation trails the newest raw events (up to the current
    bucket), for the continuous aggregate furthest behind; those without data count 0."""
    row = conn.execute(q("cagg_materialised_lag"), {
        "views": list(CAGGS), "sources": [CAGG_SOURCES[v] for v in CAGGS],
        "widths": [timedelta(days=1) if v.endswith("_daily") else timedelta(hours=1)
                   for v in CAGGS]}).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def measure_rollup_lag(ctx: JobContext) -> None:
    if ctx.profile == "timescale":
        return  # refresh_rollups measured it
    with ctx.connect() as conn:
        oldest = conn.execute(q("oldest_invalidation")).fetchone()
        now = conn.execute("SELECT now()").fetchone()
    if oldest and oldest[0] and now:
        metrics.ROLLUP_LAG.set((now[0] - oldest[0]).total_seconds())


def prune_dedup(ctx: JobContext) -> str:
    """Forget dedup rows and Idempotency-Keys past their windows: keeps both tables bounded."""
    with ctx.connect() as conn:
        cur = conn.execute(q("prune_dedup"),
                           {"window_seconds": ctx.settings.view_dedup_seconds})
        prints = conn.execute(q("prune_view_fingerprints"),
                              {"window_seconds": ctx.settings.view_dedup_seconds})
        keys = conn.execute(q("prune_idempotency_keys"),
                            {"ttl_seconds": ctx.settings.idempotency_ttl_seconds})
        return (f"{cur.rowcount} dedup rows, {prints.rowcount} fingerprints, "
                f"{keys.rowcount} idempotency keys pruned")


def retention(ctx: JobContext) -> str:
    """Drop raw events older than the retention period; hourly counts are kept."""
    if ctx.profile == "timescale":
        return "handled by TimescaleDB retention policies"
    removed = 0
    with ctx.connect(autocommit=True) as conn:
        cutoff = conn.execute(
            "SELECT now() - make_interval(days => %s)", (ctx.settings.raw_retention_days,)
        ).fetchone()[0]  # type: ignore[index]
        for kind in RAW_KINDS:
            if ctx.profile == "timescale-apache":
                row = conn.execute(q("drop_old_chunks"),
                                   {"table": f"project_{kind}", "cutoff": cutoff}).fetchone()
                removed += row[0] if row else 0
                continue
            while True:
                cur = conn.execute(q(f"delete_old_{kind}"),
                                   {"cutoff": cutoff, "batch": RETENTION_BATCH})
                removed += cur.rowcount
                if cur.rowcount < RETENTION_BATCH:
                    break
    unit = "chunks" if ctx.profile == "timescale-apache" else "rows"
    return f"{removed} {unit} older than {ctx.settings.raw_retention_days} days removed"


JOBS: dict[str, Callable[[JobContext], str]] = {
    "compute-trending": compute_trending,
    "refresh-rollups": refresh_rollups,
    "prune-dedup": prune_dedup,
    "retention": retention,
}


def run_job(name: str, ctx: JobContext) -> str:
    """Run one job with its metrics and its one log line; re-raises on failure."""
    started = time.monotonic()
    try:
        summary = JOBS[name](ctx)
    except Exception:
        elapsed = time.monotonic() - started
        metrics.JOB_RUNS.labels(name, "failure").inc()
        metrics.JOB_DURATION.labels(name).observe(elapsed)
        log.exception("job %s failed after %.3fs", name, elapsed)
        raise
    elapsed = time.monotonic() - started
    metrics.JOB_RUNS.labels(name, "success").inc()
    metrics.JOB_DURATION.labels(name).observe(elapsed)
    metrics.JOB_LAST_SUCCESS.labels(name).set(time.time())
    log.info("job %s ok in %.3fs: %s", name, elapsed, summary)
    return summary
