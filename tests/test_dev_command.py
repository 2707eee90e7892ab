"""`engagement dev` (`make run`): one instance per directory, and never stopping a
PostgreSQL it did not start. Real processes in a directory of the test's own."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from cli.dev.embedded import EmbeddedPostgres, EmbeddedPostgresError, free_port
from tests.processes import stop, wait_until_healthy

pytestmark = pytest.mark.slow


class Dev:
    """Where one `engagement dev` runs: its directory, environment and ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.pg_port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if k != "DATABASE_URL" and not k.startswith("ENGAGEMENT_")
                    and k != "PROMETHEUS_MULTIPROC_DIR"}
        self.env.update({"ENGAGEMENT_DEV_PG_PORT": str(self.pg_port),
                         "ENGAGEMENT_SCHEDULER_PORT": str(free_port()),
                         "ENGAGEMENT_LOG_LEVEL": "warning"})
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = root / ".engagement" / "pgdata"

    def start(self, name: str) -> subprocess.Popen[bytes]:
        out = (self.root / f"{name}.out").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev", "--port", str(self.port), "--workers", "1"],
            cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def output(self, name: str) -> str:
        return (self.root / f"{name}.out").read_text()

    def database_url(self) -> str:
        return f"postgresql://engagement@127.0.0.1:{self.pg_port}/engagement"


@pytest.fixture
def dev() -> Iterator[Dev]:
    root = Path(tempfile.mkdtemp(prefix="engagement-dev-"))
    root.chmod(0o755)  # as root the cluster runs as `postgres`, which must reach it
    try:
        EmbeddedPostgres(root / "probe")
    except EmbeddedPostgresError as exc:
        pytest.skip(f"needs PostgreSQL server binaries (initdb, pg_ctl): {exc}")
    yield Dev(root)
    cluster = EmbeddedPostgres(root / ".engagement" / "pgdata")
    if cluster.initialized:
        cluster.stop(mode="immediate")
    shutil.rmtree(root, ignore_errors=True)


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_second_dev_in_the_same_directory_refuses_at_once_and_names_the_first(dev):
    first = dev.start("first")
    try:
        wait_until_healthy(dev.base + "/readyz", first, timeout=120)
        started = time.monotonic()
        second = dev.start("second")
        assert second.wait(timeout=20) == 1
        assert time.monotonic() - started < 10
        said = dev.output("second")
        assert "already running" in said
        assert f"PID {first.pid}" in said
        assert dev.base in said and dev.database_url() in said
        assert str(dev.data_dir) in said and "postmaster.pid" in said
        assert "migrat" not in said.lower() and "Traceback" not in said
        # The first is untouched: ready, its PostgreSQL up, its lock file still naming it.
        assert httpx.get(dev.base + "/readyz", timeout=5).status_code == 200
        assert _postgres_answers(dev.database_url())
        lock = json.loads((dev.root / ".engagement" / "dev.lock").read_text())
        assert lock["pid"] == first.pid
    finally:
        stop(first, timeout=40)
    # The PostgreSQL the first started goes with it.
    assert not _postgres_answers(dev.database_url())


def _wait_for_banner(dev: Dev, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while "Ctrl-C" not in dev.output(name):
        assert time.monotonic() < deadline, dev.output(name)
        time.sleep(0.2)


def test_dev_prints_a_migration_summary_and_a_banner_and_stops_on_hangup(dev):
    dev.env["ENGAGEMENT_LOG_LEVEL"] = "info"  # as `make run` shows it
    proc = dev.start("dev")
    try:
        wait_until_healthy(dev.base + "/readyz", proc, timeout=120)
        _wait_for_banner(dev, "dev")
    finally:
        proc.send_signal(signal.SIGHUP)  # its terminal closed
        assert proc.wait(timeout=40) == 0
    assert not _postgres_answers(dev.database_url())  # it started it, so it stopped it
    lines = dev.output("dev").splitlines()
    banner = next(i for i, line in enumerate(lines) if "Ctrl-C" in line)
    before = "\n".join(lines[:banner])
    assert "yoyo" not in before and "applying" not in before.lower()
    assert len([line for line in lines if "migrations:" in line]) == 1
    assert "migrations: " in before and " applied now" in before
    assert banner < 25  # was ~110: every migration and step, then every APScheduler line
    shown = "\n".join(lines[banner:banner + 15])
    token = (dev.root / ".engagement" / "dev.env").read_text().split(
        "ENGAGEMENT_SERVICE_TOKEN=")[1].split()[0]
    for expected in (dev.base, f"{dev.base}/schema", dev.database_url(), str(dev.data_dir),
                     token):
        assert expected in shown


def test_dev_leaves_running_a_postgresql_it_did_not_start(dev):
    cluster = EmbeddedPostgres(dev.data_dir, port=dev.pg_port)
    assert cluster.start()
    proc = dev.start("dev")
    try:
        wait_until_healthy(dev.base + "/readyz", proc, timeout=120)
        _wait_for_banner(dev, "dev")
        assert "was already running: left running" in dev.output("dev")
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=40) == 0
    assert cluster.running
    assert _postgres_answers(cluster.url())


def test_dev_says_which_port_is_taken_before_starting_anything(dev):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", dev.port))
        taken.listen()
        proc = dev.start("dev")
        assert proc.wait(timeout=20) == 1
    said = dev.output("dev")
    assert f"port {dev.port}" in said and "in use" in said and "--port" in said
    assert "Traceback" not in said
    assert not dev.data_dir.exists()  # no cluster was made
