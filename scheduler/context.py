"""What every job is given: the settings and the storage profile, and its own connection."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from engagement.db.profiles import StorageProfile, profile_named
from engagement.settings import Settings


@dataclass(frozen=True, slots=True)
class JobContext:
    settings: Settings
    profile: str  # the name recorded by `engagement migrate`

    @property
    def storage(self) -> StorageProfile:
        return profile_named(self.profile)

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        conn = psycopg.connect(self.settings.database_url, autocommit=autocommit,
                               connect_timeout=5, application_name="engagement-scheduler")
        conn.execute("SET TIME ZONE 'UTC'")
        return conn
