"""Test fixtures: a real PostgreSQL, a migrated template, one database copy per test.

With TEST_DATABASE_URL the suite uses that server (it creates and drops databases there),
which is how the same suite runs against TimescaleDB Community.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cli.dev.embedded import EmbeddedPostgres
from engagement.db.migrations import migrate
from engagement.settings import Settings, load_settings
from service.app import create_app
from tests.support import Api

TEST_SECRETS = {
    "ENGAGEMENT_JWT_SECRET": "test-jwt-secret-0123456789abcdef0123456789",
    "ENGAGEMENT_SERVICE_TOKEN": "test-service-token",
    "ENGAGEMENT_SESSION_SECRET": "test-session-secret",
}


@dataclass(frozen=True)
class Server:
    admin_url: str

    def url(self, dbname: str) -> str:
        params = conninfo_to_dict(self.admin_url)
        params["dbname"] = dbname
        host = params.get("host", "127.0.0.1")
        user = params.get("user", "")
        password = params.get("password")
        auth = user + (f":{password}" if password else "")
        port = params.get("port", "5432")
        return f"postgresql://{auth}@{host}:{port}/{dbname}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield Server(make_conninfo(url))
        return
    root = Path(tempfile.mkdtemp(prefix="engagement-test-"))
    os.chmod(root, 0o755)
    cluster = EmbeddedPostgres(root / "pgdata", durable=False)
    cluster.start()
    try:
        yield Server(cluster.url("postgres"))
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)  # the server log stays beside pgdata


def _settings_for(url: str, **overrides: object) -> Settings:
    env = {**TEST_SECRETS, "DATABASE_URL": url}
    # Every test client shares one address and User-Agent; tests of the rate limit and of
    # the view cap per fingerprint turn them back on.
    return load_settings(env, **{"rate_limit": "", "views_per_fingerprint": 0, **overrides})


@dataclass(frozen=True)
class Template:
    name: str
    profile: str


def _make_template(server: Server, profile: str | None) -> Template:
    name = f"engagement_tpl_{uuid.uuid4().hex[:8]}"
    with server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    chosen = migrate(_settings_for(server.url(name)), profile=profile)
    with server.admin() as conn:
        # TimescaleDB's background workers connect to every database that has the
        # extension; a template must have no sessions, so keep them out.
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    return Template(name, chosen)


@pytest.fixture(scope="session")
def template(pg_server: Server) -> Iterator[Template]:
    tpl = _make_template(pg_server, os.environ.get("ENGAGEMENT_PROFILE"))
    yield tpl
    _drop(pg_server, tpl.name)


def _drop(server: Server, name: str) -> None:
    with server.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _copy(server: Server, template_name: str) -> str:
    name = f"engagement_t_{uuid.uuid4().hex[:10]}"
    with server.admin() as conn:
        for attempt in range(20):
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s", (template_name,))
    return name


@pytest.fixture
def database(pg_server: Server, template: Template) -> Iterator[str]:
    """A fresh, migrated database for one test; its URL."""
    name = _copy(pg_server, template.name)
    yield pg_server.url(name)
    _drop(pg_server, name)


@pytest.fixture
def profile(template: Template) -> str:
    return template.profile


@pytest.fixture(autouse=True)
def _timescale_marker(request: pytest.FixtureRequest) -> None:
    """Tests marked `timescale` check mechanisms only TimescaleDB Community has."""
    if request.node.get_closest_marker("timescale") is None:
        return
    chosen = request.getfixturevalue("profile")
    if chosen != "timescale":
        pytest.skip(f"TimescaleDB Community is not loaded in the test database (profile "
                    f"{chosen}); point TEST_DATABASE_URL at a server that preloads it "
                    f"(make test-timescale)")


@pytest.fixture
def settings(database: str) -> Settings:
    return _settings_for(database)


@pytest.fixture
def make_settings(database: str):  # type: ignore[no-untyped-def]
    def build(**overrides: object) -> Settings:
        return _settings_for(database, **overrides)
    return build


@pytest.fixture
def db(database: str) -> Iterator[psycopg.Connection]:
    """A direct connection to the test database, for looking at what was stored."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        yield conn


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, settings: Settings) -> Api:
    return Api(client, settings)


@pytest.fixture
def fresh_server_db(pg_server: Server) -> Iterator[str]:
    """An empty, unmigrated database (for migration tests)."""
    name = f"engagement_e_{uuid.uuid4().hex[:10]}"
    with pg_server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.url(name)
    _drop(pg_server, name)


@pytest.fixture
def settings_for():  # type: ignore[no-untyped-def]
    return _settings_for
