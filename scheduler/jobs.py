"""The jobs. Each is idempotent, takes its own advisory lock, and opens its own connection."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg

from engagement.db.migrations import CAGG_SOURCES, CAGGS, refresh_continuous_aggregates
from engagement.db.queries import q
from scheduler import metrics
from scheduler.context import JobContext
from scheduler.trending.window import compute_trending, update_trending_blocks

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



def refresh_rollups(ctx: JobContext) -> str:
    """Bring the hourly counts up to date with every committed raw event."""
    if ctx.storage.continuous_aggregates:
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
        # hold data; engagement_rollup_lag_seconds reads the same figure at scrape time.
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
    touched = sum(len(h) for h in buckets.values())
    return (f"{touched} relation-hours recomputed from {len(claimed)} log rows, "
            f"{blocks} trending blocks")


def materialised_lag(conn: psycopg.Connection) -> float:
    """Seconds by which materialisation trails the newest raw events (up to the current
    bucket), for the continuous aggregate furthest behind; those without data count 0."""
    row = conn.execute(q("cagg_materialised_lag"), {
        "views": list(CAGGS), "sources": [CAGG_SOURCES[v] for v in CAGGS],
        "widths": [timedelta(days=1) if v.endswith("_daily") else timedelta(hours=1)
                   for v in CAGGS]}).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


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
    if not ctx.storage.retention_job:
        return "handled by TimescaleDB retention policies"
    removed = 0
    with ctx.connect(autocommit=True) as conn:
        cutoff = conn.execute(
            "SELECT now() - make_interval(days => %s)", (ctx.settings.raw_retention_days,)
        ).fetchone()[0]  # type: ignore[index]
        for kind in RAW_KINDS:
            if ctx.storage.retention == "drop chunks":
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
    unit = "chunks" if ctx.storage.retention == "drop chunks" else "rows"
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
    log.info("job %s ok in %.3fs: %s", name, elapsed, summary)
    record_success(name, ctx)
    return summary


def record_success(name: str, ctx: JobContext) -> None:
    """Note the success in the database, where every scheduler's /metrics reads it."""
    try:
        with ctx.connect(autocommit=True) as conn:
            conn.execute(q("record_job_success"), {"job_name": name})
    except psycopg.Error as exc:  # the job's work is done; only the gauge misses this run
        log.warning("job %s: its success could not be recorded (%s)", name, type(exc).__name__)
