"""Migrations: idempotent, step-by-step equals fresh, existing data survives."""

import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from cli.dev.embedded import find_bindir
from engagement.db.migrations import CAGGS, _folders, _yoyo_url, migrate
from engagement.db.profiles import detect_profile
from engagement.settings import SettingsError, load_settings
from tests import catalog
from tests.conftest import Server


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


def _runnable_profiles(server: Server) -> set[str]:
    """The profiles `server` can migrate a database to (read-only detection)."""
    with server.admin() as conn:
        detected = detect_profile(conn)
    return {"postgres", "timescale-apache", "timescale"} if detected == "timescale" else (
        {"postgres", "timescale-apache"} if detected == "timescale-apache" else {"postgres"})


@contextmanager
def _scratch_databases(server: Server, *kinds: str) -> Iterator[list[str]]:
    names = [f"engagement_{kind}_{uuid.uuid4().hex[:10]}" for kind in kinds]
    try:
        with server.admin() as conn:
            for name in names:
                conn.execute(f'CREATE DATABASE "{name}"')
        yield [server.url(name) for name in names]
    finally:
        with server.admin() as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _apply_one_by_one(url: str, profile: str) -> list[str]:
    """Each of the profile's migrations on its own, in order, as successive upgrades would
    apply them; returns their ids."""
    if profile.startswith("timescale"):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    backend = get_backend(_yoyo_url(url))
    migrations = read_migrations(*_folders(profile))
    applied = []
    for migration in backend.to_apply(migrations):
        with backend.lock():
            backend.apply_one(migration)
        applied.append(migration.id)
        left = [m.id for m in backend.to_apply(migrations)]
        assert migration.id not in left and len(left) == len(migrations) - len(applied)
    return applied


@pytest.mark.parametrize("step_profile", ["postgres", "timescale-apache", "timescale"])
def test_migrations_one_by_one_equal_a_fresh_install(step_profile, pg_server, template,
                                                     settings_for):
    """Database A gets the profile's migrations one at a time, then `migrate` (which then
    applies none, only what every run does: post-apply views, profile, policies); database B
    one `migrate`. Their catalogs (tests/catalog.py) and their pg_dump must be the same."""
    if step_profile != template.profile and step_profile not in _runnable_profiles(pg_server):
        pytest.skip(f"the server cannot run the {step_profile} profile (the suite's is "
                    f"{template.profile}); point TEST_DATABASE_URL at a server with "
                    "TimescaleDB Community to cover it")
    with _scratch_databases(pg_server, "stepwise", "fresh") as (stepwise, fresh):
        applied = _apply_one_by_one(stepwise, step_profile)
        assert len(applied) >= 10
        assert migrate(settings_for(stepwise), profile=step_profile) == step_profile
        assert migrate(settings_for(fresh), profile=step_profile) == step_profile

        one_by_one, reference = catalog.schema_of(stepwise), catalog.schema_of(fresh)
        differences = catalog.diff(reference, one_by_one, "fresh install (one migrate)",
                                   f"one by one ({len(applied)} migrations, then migrate)")
        if differences:
            pytest.fail(f"{step_profile}: applied one by one, the migrations give another "
                        f"schema than a fresh install:\n{differences}", pytrace=False)
        # The comparison saw the schema, not two empty lists.
        assert "relation projects kind=r persistence=p options=- rls=false" in reference
        if step_profile != "timescale":  # the rollups' invalidation triggers
            assert any(line.startswith("trigger ") for line in reference)
        if step_profile == "timescale":
            policies = [line for line in reference if line.startswith("timescaledb jobs ")]
            caggs = [line for line in reference
                     if line.startswith("timescaledb continuous_aggregates {")]
            assert len(caggs) == len(CAGGS)
            # retention and compression per hypertable; no refresh policy (refresh-rollups
            # is the only refresher, engagement/db/migrations.py)
            assert sum("policy_retention" in line for line in policies) == 4
            assert not any("policy_refresh_continuous_aggregate" in line for line in policies)
        if step_profile.startswith("timescale"):
            assert sum(line.startswith("timescaledb hypertables ") for line in reference) >= 4

        # pg_dump as well: anything the catalog lines leave out (grants, comments...).
        dumped = catalog.diff(schema_of(fresh).splitlines(), schema_of(stepwise).splitlines(),
                              "pg_dump of the fresh install", "pg_dump one by one")
        if dumped:
            pytest.fail(f"{step_profile}: pg_dump differs:\n{dumped}", pytrace=False)


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
    out = subprocess.run([sys.executable, "-m", "cli.main", "migrate"], env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "DATABASE_URL" in out.stderr


def test_info_reports_the_recorded_profile(database, profile):
    import os
    import sys

    from tests.conftest import TEST_SECRETS

    env = {**os.environ, **TEST_SECRETS, "DATABASE_URL": database}
    out = subprocess.run([sys.executable, "-m", "cli.main", "info"], env=env,
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
    out = subprocess.run([sys.executable, "-m", "cli.main", "info"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    after = state()
    assert after == before, f"engagement info changed the database:\n{out.stdout}"
    assert "timescaledb" not in {name for name, _version in after["extensions"]}
    assert "timescaledb: not loaded" in out.stdout
    detected = re.search(r"profile: not migrated \(detected: ([a-z-]+)\)", out.stdout)
    assert detected, out.stdout
    assert migrate(settings_for(fresh_server_db)) == detected.group(1)
