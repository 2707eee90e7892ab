"""The storage profiles: what each kind of database keeps and who keeps it, chosen once.

`engagement migrate` detects the profile of a new database and records it
(engagement_meta); everything after asks the recorded profile what to do rather than
comparing its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg


@dataclass(frozen=True, slots=True)
class StorageProfile:
    name: str
    # Migration folders under sql/migrations, in order.
    migrations: tuple[str, ...]
    # The raw event tables are TimescaleDB hypertables (the extension must be created).
    hypertables: bool
    # The hourly counts: rollup tables that refresh-rollups recomputes from the hours the
    # rollup_invalidations log names, or continuous aggregates it refreshes within raw
    # retention (rollups/ or caggs/ migrations). Both log their rewrites for the trending
    # job (trending_window_changes, trending_blocks_changes) and keep trending_blocks.
    hourly_counts: Literal["rollup tables", "continuous aggregates"]
    # Who drops raw events past ENGAGEMENT_RAW_RETENTION_DAYS: the scheduler's retention
    # job deleting rows or dropping whole chunks, or TimescaleDB's retention policies.
    retention: Literal["delete rows", "drop chunks", "policy"]

    @property
    def continuous_aggregates(self) -> bool:
        return self.hourly_counts == "continuous aggregates"

    @property
    def retention_job(self) -> bool:
        """Whether the scheduler runs the retention job (not where a policy does it)."""
        return self.retention != "policy"


POSTGRES = StorageProfile("postgres", ("core", "rollups", "views"), hypertables=False,
                          hourly_counts="rollup tables", retention="delete rows")
TIMESCALE_APACHE = StorageProfile("timescale-apache", ("core", "hypertables", "rollups", "views"),
                                  hypertables=True, hourly_counts="rollup tables",
                                  retention="drop chunks")
TIMESCALE = StorageProfile("timescale", ("core", "hypertables", "caggs", "views"),
                           hypertables=True, hourly_counts="continuous aggregates",
                           retention="policy")
BY_NAME = {p.name: p for p in (TIMESCALE, TIMESCALE_APACHE, POSTGRES)}
PROFILES = tuple(BY_NAME)


def profile_named(name: str) -> StorageProfile:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}") from None


def detect_profile(conn: psycopg.Connection) -> str:
    """timescale (Community), timescale-apache, or postgres, from what the server has loaded
    (or would load: the extension need not be created yet). Reads only."""
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
    # The preloaded library defines the setting, with or without the extension created.
    license_row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return "timescale" if license_row and license_row[0] == "timescale" else "timescale-apache"


def recorded_profile(conn: psycopg.Connection) -> str | None:
    """The profile `engagement migrate` recorded, or None before the first migration."""
    if conn.execute("SELECT to_regclass('engagement_meta')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT value FROM engagement_meta WHERE key = 'profile'").fetchone()
    return row[0] if row else None
