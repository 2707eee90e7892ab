"""The system under test, started as in production: a durable PostgreSQL, migrations, service."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.queries import bq
from cli.dev.embedded import EmbeddedPostgres, free_port

ROOT = Path(__file__).resolve().parents[1]

# Server settings a production deployment of this size would set; fsync and
# synchronous_commit stay on (the EmbeddedPostgres default when durable).
PG_SETTINGS = {
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
}


@dataclass
class Database:
    cluster: EmbeddedPostgres
    url: str
    root: Path

    def connect(self, **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, **kwargs)  # type: ignore[arg-type]

    @property
    def postmaster_pid(self) -> int:
        return int((self.cluster.data_dir / "postmaster.pid").read_text().splitlines()[0])


@contextmanager
def database(projects: int, keep: bool = False) -> Iterator[Database]:
    """A durable cluster in a temp dir, migrated by `engagement migrate`, with `projects` seeded."""
    root = Path(tempfile.mkdtemp(prefix="engagement-bench-"))
    os.chmod(root, 0o755)  # as root the cluster runs as `postgres`, which must reach it
    cluster = EmbeddedPostgres(root / "pgdata", durable=True, settings=PG_SETTINGS)
    cluster.start()
    try:
        url = cluster.ensure_database("engagement")
        subprocess.run([sys.executable, "-m", "cli.main", "migrate"], check=True, cwd=ROOT,
                       env=service_env(url), stdout=subprocess.DEVNULL)
        db = Database(cluster, url, root)
        with db.connect() as conn:
            conn.execute(bq("seed_projects"), {"count": projects})
            conn.execute("VACUUM ANALYZE projects")
        yield db
    finally:
        if not keep:
            cluster.destroy()
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class ExternalDatabase:
    """A database of its own on a server the bench did not start (e.g. one with TimescaleDB)."""
    url: str

    def connect(self, **kwargs: object) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, **kwargs)  # type: ignore[arg-type]


def with_dbname(url: str, dbname: str) -> str:
    """`url` naming database `dbname` instead."""
    params = conninfo_to_dict(make_conninfo(url))
    params["dbname"] = dbname
    auth = str(params.get("user") or "") + (f":{params['password']}" if params.get("password") else "")
    return f"postgresql://{auth}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{dbname}"


@contextmanager
def external_database(server_url: str, profile: str) -> Iterator[ExternalDatabase]:
    """A new database on the server at `server_url`, migrated as `profile`; dropped after."""
    name = f"engagement_bench_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        # The session settings of the bench's own cluster (the server's are the server's).
        for key in ("work_mem", "maintenance_work_mem"):
            admin.execute(f'ALTER DATABASE "{name}" SET {key} = \'{PG_SETTINGS[key]}\'')
    url = with_dbname(server_url, name)
    try:
        subprocess.run([sys.executable, "-m", "cli.main", "migrate", "--profile", profile],
                       check=True, cwd=ROOT, env=service_env(url), stdout=subprocess.DEVNULL)
        yield ExternalDatabase(url)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def count_rows(conn: psycopg.Connection, table: str) -> int:
    """Rows in one of our own tables (the name is ours, never input)."""
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    return int(row[0])  # type: ignore[index]


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": database_url,
        "ENGAGEMENT_JWT_SECRET": secrets.token_urlsafe(32),
        "ENGAGEMENT_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "ENGAGEMENT_SESSION_SECRET": secrets.token_urlsafe(32),
        # One load generator on one address would trip the per-client limit at once.
        "ENGAGEMENT_RATE_LIMIT": "",
        "ENGAGEMENT_LOG_LEVEL": "warning",
    })
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    name: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{server.name} did not answer within {timeout}s")


@contextmanager
def serve(command: list[str], env: dict[str, str], name: str,
          port: int | None = None) -> Iterator[Server]:
    port = port or free_port()
    proc = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env)
    server = Server(proc, port, name)
    try:
        _wait_healthy(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def service(db: Database, workers: int, settings: Mapping[str, str] | None = None,
            port: int | None = None) -> AbstractContextManager[Server]:
    """`engagement serve --workers N` as its own process; settings as ENGAGEMENT_* overrides."""
    extra = {f"ENGAGEMENT_{k.upper()}": v for k, v in (settings or {}).items()}
    return serve([sys.executable, "-m", "cli.main", "serve", "--workers", str(workers)],
                 service_env(db.url, **extra), "service", port)


def framework_ceiling(workers: int, port: int | None = None) -> AbstractContextManager[Server]:
    """The no-database baseline app (bench/ceiling_app.py) on the same server and workers."""
    env = service_env("postgresql://unused")
    return serve([sys.executable, "-m", "bench.ceiling_app", "--workers", str(workers)],
                 env, "framework ceiling", port)


# -- process accounting (from /proc) --------------------------------------------------------

def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return found


_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of pid's process tree, including reaped children."""
    total = 0.0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / _TICK
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of pid's process tree."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except OSError:
            continue
    return total
