"""`engagement migrate`: profile detection, yoyo migrations from sql/, TimescaleDB policies."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import datetime, timedelta
from importlib import resources

import psycopg
from yoyo import get_backend, read_migrations

from engagement.db.profiles import TIMESCALE, detect_profile, profile_named, recorded_profile
from engagement.db.queries import q
from engagement.settings import Settings

log = logging.getLogger("engagement.migrate")

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
# The aggregates the trending job reads: their refreshes are logged for it.
TRENDING_CAGGS = ("project_views_hourly", "project_likes_hourly")
_MIGRATE_LOCK = 7_361_001  # advisory lock key: one `engagement migrate` at a time
# TimescaleDB refuses a refresh overlapping one already running (another process's, which
# may not hold our advisory lock) at once. Wait for it this long, at most.
_CONCURRENT_REFRESH_WAIT_SECONDS = 120.0


def _yoyo_url(database_url: str) -> str:
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("DATABASE_URL must be a postgresql:// URL")
    return "postgresql+psycopg://" + rest


def _folders(profile: str) -> list[str]:
    base = resources.files("sql").joinpath("migrations")
    return [str(base.joinpath(name)) for name in profile_named(profile).migrations]


def migrate(settings: Settings, *, profile: str | None = None) -> str:
    """Apply pending migrations (idempotent) and return the profile in force."""
    if profile is not None:
        profile_named(profile)  # a ValueError naming the profiles if it is none of them
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
        try:
            recorded = recorded_profile(conn)
            chosen = recorded or profile
            if chosen is None:
                chosen = detect_profile(conn)
                if profile_named(chosen).hypertables:
                    # migrate creates the extension (detection only reads); then the
                    # license is read again, as the extension itself reports it.
                    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    chosen = detect_profile(conn)
            if recorded and profile and profile != recorded:
                log.warning("database already migrated as %s; keeping it (asked for %s)",
                            recorded, profile)
            if profile_named(chosen).hypertables:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            backend = get_backend(_yoyo_url(settings.database_url))
            migrations = read_migrations(*_folders(chosen))
            with backend.lock(), _yoyo_lines_at_debug():
                pending = backend.to_apply(migrations)
                for migration in pending:
                    log.debug("applying %s", migration.id)
                backend.apply_migrations_only(pending)
                backend.run_post_apply(migrations)  # idempotent views, re-applied every run
            conn.execute(q("record_profile"), {"profile": chosen})
            if profile_named(chosen) is TIMESCALE:
                apply_timescale_policies(conn, settings)
            log.info("migrations: %d applied now, %d in all, profile %s",
                     len(pending), len(migrations), chosen)
            return chosen
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))


@contextmanager
def _yoyo_lines_at_debug() -> Iterator[None]:
    """yoyo logs every migration and step at INFO (~85 lines on a fresh database), and prints
    the rows of every step that returns some to stdout as a table (on timescale, each
    create_hypertable: 18 lines); they are shown only when our own log is at DEBUG, and
    migrate() logs a one-line summary."""
    yoyo = logging.getLogger("yoyo")
    level = yoyo.level
    if not log.isEnabledFor(logging.DEBUG):
        yoyo.setLevel(logging.WARNING)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            yield
    finally:
        yoyo.setLevel(level)
        if printed.getvalue().strip():
            log.debug("rows the migrations returned:\n%s", printed.getvalue().rstrip())


def apply_timescale_policies(conn: psycopg.Connection, settings: Settings) -> None:
    """Chunk interval, retention and compression policies from the settings, no refresh
    policies (see below); then the continuous aggregates are brought up to date."""
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
        # No refresh policy: a policy's refresh cannot log the hours it rewrites, which the
        # trending job's window totals and blocks rely on. refresh-rollups, run by the
        # scheduler every ENGAGEMENT_ROLLUP_INTERVAL_SECONDS, refreshes them instead (and
        # removing the policies earlier releases left behind is part of the upgrade).
        conn.execute("SELECT remove_continuous_aggregate_policy(%s::regclass, if_exists => true)",
                     (view,))
    refresh_continuous_aggregates(conn, settings)


def refresh_window(conn: psycopg.Connection, settings: Settings,
                   view: str) -> tuple[datetime, datetime] | None:
    """Where `view` may be refreshed without erasing counts: from the first bucket whose raw
    events are all still stored to the end of the current bucket, which is materialised as
    it stands, as the rollup tables hold it on the other profiles (None: no whole bucket
    there, or its hypertable holds no chunk: nothing to refresh).

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
    """Materialise every hour the raw events still hold, the current one as it stands:
    exactly the buckets TimescaleDB has logged as invalidated there, imports and late
    events included, and those past the last refresh. Counts of hours whose raw events
    are gone are never touched. Autocommit only. Returns how many aggregates were refreshed.

    The refreshes of the hourly views and likes, which the trending job's window totals and
    blocks sum, are logged for it as the triggers of rollups/0204 and 0205 log rewrites on
    the other profiles: each refresh is limited to the hours it may change (from the
    earliest invalidation reaching into its window, or the raw hypertable's invalidation
    threshold, to the end of the current hour), and those hours are logged before it
    starts, so a trending run during it reads them afresh, and again once it has
    committed, so the next run counts what it wrote. An event committed while a refresh
    runs can only be materialised by it if its hour lies in that logged range; one outside
    is left for the next refresh.
    """
    refreshed = 0
    for view in CAGGS:  # hourly before the daily ones built on them
        deadline = time.monotonic() + _CONCURRENT_REFRESH_WAIT_SECONDS
        delay = 0.2
        while True:
            window = refresh_window(conn, settings, view)
            if window is not None and view in TRENDING_CAGGS:
                window = _rewritten_range(conn, view, window)
            if window is None:
                break
            try:
                if view in TRENDING_CAGGS:
                    _log_trending_hours(conn, settings, window)
                conn.execute("CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, "
                             "%s::timestamptz)", (view, *window))
                if view in TRENDING_CAGGS:
                    _log_trending_hours(conn, settings, window)
                refreshed += 1
                break
            except psycopg.errors.LockNotAvailable:
                # A refresh of an overlapping window is running (another `engagement
                # migrate`, or one started by hand): it will be done soon.
                if time.monotonic() + delay > deadline:
                    raise
                log.info("%s: a concurrent refresh is running; retrying in %.1fs", view, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
    return refreshed


def _rewritten_range(conn: psycopg.Connection, view: str,
                     window: tuple[datetime, datetime]) -> tuple[datetime, datetime] | None:
    """The part of `window` a refresh of `view` may change for its readers: from the
    earliest invalidation reaching into it, or the raw hypertable's invalidation threshold
    (events past it are not logged: readers see them in real time), to its end. None when that is empty."""
    row = conn.execute(q("cagg_rewritten_from"), {"view": view, "start": window[0]}).fetchone()
    start = row[0] if row and row[0] is not None else window[0]
    return (start, window[1]) if start < window[1] else None


def _log_trending_hours(conn: psycopg.Connection, settings: Settings,
                        window: tuple[datetime, datetime]) -> None:
    conn.execute(q("log_trending_hours"), {
        "start": window[0], "stop": window[1],
        "previous_hours": settings.trending_previous_hours})


def current_profile(database_url: str) -> str | None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return recorded_profile(conn)
