"""`engagement migrate`: profile detection, yoyo migrations from sql/, TimescaleDB policies."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from importlib import resources

import psycopg
from yoyo import get_backend, read_migrations

from service.db import PROFILES, detect_profile, recorded_profile
from service.queries import q
from service.settings import Settings

log = logging.getLogger("engagement.migrate")

# Which migration folders make up each profile, in order.
SOURCES = {
    "postgres": ("core", "rollups", "views"),
    "timescale-apache": ("core", "hypertables", "rollups", "views"),
    "timescale": ("core", "hypertables", "caggs", "views"),
}
HYPERTABLES = ("project_views", "project_clicks", "project_likes", "project_impressions")
# Each continuous aggregate and the raw hypertable its counts come from (the daily ones
# through the hourly ones), hourly first: the daily ones are refreshed from them.
CAGG_SOURCES = {
    "project_views_hourly": "project_views",
    "project_clicks_hourly": "project_clicks",
    "project_likes_hourly": "project_likes",
    "project_impressions_hourly": "project_impressions",
    "feed_impressions_hourly": "project_impressions",
    "feed_clicks_hourly": "project_clicks",
    "site_views_hourly": "project_views",
    "feed_impressions_daily": "project_impressions",
    "feed_clicks_daily": "project_clicks",
}
CAGGS = tuple(CAGG_SOURCES)
_MIGRATE_LOCK = 7_361_001  # advisory lock key: one `engagement migrate` at a time
# A refresh policy running in TimescaleDB's own background worker does not take our advisory
# lock; a refresh overlapping it is refused at once. Wait for it this long, at most.
_CONCURRENT_REFRESH_WAIT_SECONDS = 120.0


def _yoyo_url(database_url: str) -> str:
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return "postgresql+psycopg://" + rest


def _folders(profile: str) -> list[str]:
    base = resources.files("sql").joinpath("migrations")
    return [str(base.joinpath(name)) for name in SOURCES[profile]]


def migrate(settings: Settings, *, profile: str | None = None) -> str:
    """Apply pending migrations (idempotent) and return the profile in force."""
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
        try:
            recorded = recorded_profile(conn)
            chosen = recorded or profile
            if chosen is None:
                chosen = detect_profile(conn)
                if chosen.startswith("timescale"):
                    # migrate creates the extension (detection only reads); then the
                    # license is read again, as the extension itself reports it.
                    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    chosen = detect_profile(conn)
            if recorded and profile and profile != recorded:
                log.warning("database already migrated as %s; keeping it (asked for %s)",
                            recorded, profile)
            if chosen.startswith("timescale"):
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            backend = get_backend(_yoyo_url(settings.database_url))
            migrations = read_migrations(*_folders(chosen))
            with backend.lock():
                pending = backend.to_apply(migrations)
                backend.apply_migrations_only(pending)
                backend.run_post_apply(migrations)  # idempotent views, re-applied every run
            conn.execute(q("record_profile"), {"profile": chosen})
            if chosen == "timescale":
                apply_timescale_policies(conn, settings)
            log.info("migrated (%d applied) profile=%s", len(pending), chosen)
            return chosen
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))


def apply_timescale_policies(conn: psycopg.Connection, settings: Settings) -> None:
    """Chunk interval, refresh, retention and compression policies from the settings."""
    chunk = f"{settings.chunk_interval_days} days"
    for table in HYPERTABLES:
        conn.execute("SELECT set_chunk_time_interval(%s::regclass, %s::interval)", (table, chunk))
        conn.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)", (table,))
        conn.execute(
            "SELECT add_retention_policy(%s::regclass, %s::interval)",
            (table, f"{settings.raw_retention_days} days"),
        )
        conn.execute("SELECT remove_compression_policy(%s::regclass, if_exists => true)", (table,))
        conn.execute(
            "SELECT add_compression_policy(%s::regclass, %s::interval)",
            (table, f"{settings.compress_after_days} days"),
        )
    for view in CAGGS:
        conn.execute("SELECT remove_continuous_aggregate_policy(%s::regclass, if_exists => true)",
                     (view,))
        # end_offset of one hour keeps the current hour out of materialisation, so the
        # real-time union always shows it; start_offset stays inside raw retention.
        conn.execute(
            "SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => %s::interval, "
            "end_offset => INTERVAL '1 hour', schedule_interval => %s::interval)",
            (view, f"{settings.cagg_refresh_start_days} days",
             f"{settings.cagg_refresh_interval_seconds} seconds"),
        )
    refresh_continuous_aggregates(conn, settings)


def refresh_window(conn: psycopg.Connection, settings: Settings,
                   view: str) -> tuple[datetime, datetime] | None:
    """Where `view` may be refreshed without erasing counts: from the first bucket whose raw
    events are all still stored to the current bucket, which stays real-time (None: no
    whole bucket there, or its hypertable holds no chunk: nothing to refresh).

    A refresh recomputes every invalidated bucket of its window from the raw events, and
    TimescaleDB invalidates the range of every chunk it drops; refreshing a dropped range
    would replace its counts with nothing. So the window starts at the oldest retained
    chunk, and one chunk plus an hour after the retention cutoff at the earliest, since a
    retention run may drop that chunk while the refresh is under way.
    """
    row = conn.execute(q("cagg_refresh_window"), {
        "table": CAGG_SOURCES[view],
        "retention": timedelta(days=settings.raw_retention_days),
        "margin": timedelta(days=settings.chunk_interval_days, hours=1),
        "width": timedelta(days=1) if view.endswith("_daily") else timedelta(hours=1),
    }).fetchone()
    return (row[0], row[1]) if row else None


def refresh_continuous_aggregates(conn: psycopg.Connection, settings: Settings) -> int:
    """Materialise every complete hour the raw events still hold (the current one stays
    real-time): exactly the buckets TimescaleDB has logged as invalidated there, imports and
    late events included. Counts of hours whose raw events are gone are never touched.
    Autocommit only. Returns how many aggregates were refreshed."""
    refreshed = 0
    for view in CAGGS:  # hourly before the daily ones built on them
        deadline = time.monotonic() + _CONCURRENT_REFRESH_WAIT_SECONDS
        delay = 0.2
        while True:
            window = refresh_window(conn, settings, view)
            if window is None:
                break
            try:
                conn.execute("CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, "
                             "%s::timestamptz)", (view, *window))
                refreshed += 1
                break
            except psycopg.errors.LockNotAvailable:
                # A policy refresh of an overlapping window is running: it will be done soon.
                if time.monotonic() + delay > deadline:
                    raise
                log.info("%s: a concurrent refresh is running; retrying in %.1fs", view, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
    return refreshed


def current_profile(database_url: str) -> str | None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return recorded_profile(conn)
