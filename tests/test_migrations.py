"""Migrations: idempotent, step-by-step equals fresh, existing data survives."""

import re
import subprocess

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from service.embedded import find_bindir
from service.migrations import _folders, _yoyo_url, migrate
from service.settings import SettingsError, load_settings
from tests import catalog


def schema_of(url: str) -> str:
    out = subprocess.run([str(find_bindir() / "pg_dump"), "--schema-only", "--no-owner",
                          "--exclude-schema=_timescaledb*", "--exclude-schema=timescaledb*",
                          "--exclude-table=_yoyo*", "--exclude-table=yoyo_lock", url],
                         capture_output=True, text=True, check=True).stdout
    # yoyo's bookkeeping holds timestamps; everything else must match exactly
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith(("--", "\\restrict", "\\unrestrict"))
                     and not re.match(r"^\s*$", line))


def test_migrating_twice_is_a_noop(fresh_server_db, settings_for, template):
    settings = settings_for(fresh_server_db)
    first = migrate(settings, profile=template.profile)
    before = schema_of(fresh_server_db)
    assert migrate(settings) == first
    assert schema_of(fresh_server_db) == before


def test_migrations_one_by_one_equal_a_fresh_install(fresh_server_db, settings_for, template,
                                                     pg_server):
    settings = settings_for(fresh_server_db)
    with psycopg.connect(fresh_server_db, autocommit=True) as conn:
        if template.profile.startswith("timescale"):
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    backend = get_backend(_yoyo_url(fresh_server_db))
    migrations = read_migrations(*_folders(template.profile))
    with backend.lock():
        for migration in backend.to_apply(migrations):
            backend.apply_one(migration)
    migrate(settings, profile=template.profile)  # records the profile, post-apply, policies
    stepwise = schema_of(fresh_server_db)

    reference = fresh_server_db.rsplit("/", 1)[0] + "/" + template.name
    with pg_server.admin() as conn:
        conn.execute(f'ALTER DATABASE "{template.name}" WITH ALLOW_CONNECTIONS true')
    try:
        assert stepwise == schema_of(reference)
    finally:
        with pg_server.admin() as conn:
            conn.execute(f'ALTER DATABASE "{template.name}" WITH ALLOW_CONNECTIONS false')


def test_migrating_a_database_with_events_keeps_them(fresh_server_db, settings_for, template):
    settings = settings_for(fresh_server_db)
    backend = get_backend(_yoyo_url(fresh_server_db))
    core = read_migrations(_folders(template.profile)[0])
    with backend.lock():
        backend.apply_migrations(backend.to_apply(core))
    with psycopg.connect(fresh_server_db, autocommit=True) as conn:
        conn.execute("INSERT INTO projects VALUES (1, 1, false, now() - interval '3 days', NULL)")
        conn.execute("INSERT INTO project_views (created_at, project_id, source) "
                     "SELECT now() - g * interval '1 hour', 1, 'direct' "
                     "FROM generate_series(1, 50) g")
    migrate(settings, profile=template.profile)
    with psycopg.connect(fresh_server_db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM project_views").fetchone()[0] == 50
        hourly = conn.execute("SELECT coalesce(sum(views), 0) FROM project_engagement_hourly")
        assert hourly.fetchone()[0] in (0, 50)  # rollups fill on their next refresh


def test_missing_required_setting_names_it():
    with pytest.raises(SettingsError, match="ENGAGEMENT_SERVICE_TOKEN"):
        load_settings({"DATABASE_URL": "postgresql://x/y", "ENGAGEMENT_JWT_SECRET": "a",
                       "ENGAGEMENT_SESSION_SECRET": "b"})


def test_cli_stops_with_a_message_naming_the_missing_setting():
    import os
    import sys

    env = {k: v for k, v in os.environ.items()
           if k != "DATABASE_URL" and not k.startswith("ENGAGEMENT_")}
    out = subprocess.run([sys.executable, "-m", "service.cli", "migrate"], env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "DATABASE_URL" in out.stderr


def test_info_reports_the_recorded_profile(database, profile):
    import os
    import sys

    from tests.conftest import TEST_SECRETS

    env = {**os.environ, **TEST_SECRETS, "DATABASE_URL": database}
    out = subprocess.run([sys.executable, "-m", "service.cli", "info"], env=env,
                         capture_output=True, text=True, check=True)
    assert f"profile: {profile}" in out.stdout


def test_info_changes_nothing_in_the_database(fresh_server_db, settings_for):
    """`engagement info` only reads: on a fresh database it creates no extension (not even
    TimescaleDB where the server preloads it), no schema, no table; `migrate` then detects
    the profile info reported."""
    import os
    import sys

    from tests.conftest import TEST_SECRETS

    def state() -> dict[str, list]:
        with psycopg.connect(fresh_server_db, autocommit=True) as conn:
            return {
                "extensions": conn.execute(
                    "SELECT extname, extversion FROM pg_extension ORDER BY 1").fetchall(),
                "schemas": conn.execute(
                    "SELECT nspname FROM pg_namespace ORDER BY 1").fetchall(),
                "relations": conn.execute(
                    "SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
                    "ORDER BY 1, 2").fetchall(),
                "schema": catalog.schema_lines(conn),
            }

    before = state()
    assert before["relations"] == []
    env = {**os.environ, **TEST_SECRETS, "DATABASE_URL": fresh_server_db}
    out = subprocess.run([sys.executable, "-m", "service.cli", "info"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    after = state()
    assert after == before, f"engagement info changed the database:\n{out.stdout}"
    assert "timescaledb" not in {name for name, _version in after["extensions"]}
    assert "timescaledb: not loaded" in out.stdout
    detected = re.search(r"profile: not migrated \(detected: ([a-z-]+)\)", out.stdout)
    assert detected, out.stdout
    assert migrate(settings_for(fresh_server_db)) == detected.group(1)
