"""The connection pool and the storage profile of a database."""

from __future__ import annotations

import select

import psycopg
from psycopg_pool import AsyncConnectionPool

from service.settings import Settings

PROFILES = ("timescale", "timescale-apache", "postgres")
RECONNECT_GIVE_UP_SECONDS = 5.0


async def _check(conn: psycopg.AsyncConnection) -> None:
    """Check a connection before lending it, asking the server only when something happened.

    An idle connection has nothing to read unless the server went away (EOF, or a FATAL
    message on shutdown) or left a notice; only then is a round trip worth its cost. The
    pool's stock check asked on every loan: one more round trip per batch of writes.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()  # not select.select: descriptors above 1024 are fine here
    poller.register(conn.fileno(), select.POLLIN)
    if poller.poll(0):
        await AsyncConnectionPool.check_connection(conn)


async def _configure(conn: psycopg.AsyncConnection) -> None:
    # UTC sessions: hour buckets and returned timestamps never depend on the server's zone.
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.commit()


def make_pool(settings: Settings, *, min_size: int | None = None,
              max_size: int | None = None, name: str = "engagement",
              autocommit: bool = False,
              statement_timeout_ms: int | None = None,
              generic_plans: bool = False) -> AsyncConnectionPool:
    """A pool created closed; the app's lifespan opens it.

    `autocommit`, `statement_timeout_ms` and `generic_plans` are for the tracking writers'
    own pool: a batch there is one statement, committed on its own, so it costs one round
    trip, not four. With `generic_plans` the server plans each prepared statement once:
    left to choose, it kept re-planning the ingest statements for every batch because it
    cannot see the size of their array parameters (about 100 µs of server CPU a batch, a
    third of a one-row batch's cost; README, Performance). Their generic plans are the
    same join shapes (hash joins, the projects primary key per row) at any batch size.
    """
    options: dict[str, object] = {"autocommit": True} if autocommit else {}
    server_options = []
    if statement_timeout_ms is not None:
        server_options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if generic_plans:
        server_options.append("-c plan_cache_mode=force_generic_plan")
    if server_options:
        options["options"] = " ".join(server_options)
    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size if min_size is None else min_size,
        max_size=settings.pool_max_size if max_size is None else max_size,
        timeout=settings.pool_timeout_seconds,
        configure=_configure,
        check=_check,
        kwargs={"connect_timeout": 3, "application_name": name, **options},
        name=name,
        open=False,
        # The pool retries a lost connection with exponential backoff (1, 2, 4, 8 s...);
        # giving up after a few seconds lets the next request try at once instead, so the
        # service is back within a couple of seconds of the database, however long it was away.
        reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
    )


def detect_profile(conn: psycopg.Connection) -> str:
    """timescale (Community), timescale-apache, or postgres, from what the server has loaded.

    Read-only (`engagement info` uses it): TimescaleDB counts when this database has the
    extension, or when the server preloads it and could create it here; the license setting
    (which the preloaded loader defines before the extension exists) tells Community from
    the Apache-2 build. `engagement migrate` creates the extension itself.
    """
    loaded = conn.execute(
        "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if not loaded:
        preloaded = conn.execute("SHOW shared_preload_libraries").fetchone()
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if not (available and preloaded and "timescaledb" in preloaded[0]):
            return "postgres"
    license_row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return "timescale" if license_row and license_row[0] == "timescale" else "timescale-apache"


def recorded_profile(conn: psycopg.Connection) -> str | None:
    """The profile `engagement migrate` recorded, or None before the first migration."""
    if conn.execute("SELECT to_regclass('engagement_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM engagement_meta WHERE key = 'profile'").fetchone()
    return row[0] if row else None
