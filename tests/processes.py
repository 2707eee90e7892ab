"""Real service and scheduler processes for tests that need more than the in-process client."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from cli.dev.embedded import EmbeddedPostgres, EmbeddedPostgresError, free_port
from engagement.db.migrations import migrate
from engagement.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": settings.database_url,
        "ENGAGEMENT_JWT_SECRET": settings.jwt_secret,
        "ENGAGEMENT_SERVICE_TOKEN": settings.service_token,
        "ENGAGEMENT_SESSION_SECRET": settings.session_secret,
        "ENGAGEMENT_RATE_LIMIT": settings.rate_limit,
        "ENGAGEMENT_VIEWS_PER_FINGERPRINT": str(settings.views_per_fingerprint),
        "ENGAGEMENT_LOG_LEVEL": "warning",
    })
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    return env


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def service_process(settings: Settings, *, workers: int = 1, port: int | None = None,
                    **extra_env: str) -> Iterator[str]:
    """`engagement serve` on a free loopback port; yields its base URL."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers)],
        env=process_env(settings, **extra_env), cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base + "/healthz", proc)
        yield base
    finally:
        stop(proc)


def scheduler_process(settings: Settings, *, metrics_port: int = 0,
                      **extra_env: str) -> subprocess.Popen[bytes]:
    """`engagement scheduler` (caller stops it); metrics_port 0 turns its /metrics off."""
    env = process_env(settings, ENGAGEMENT_SCHEDULER_PORT=str(metrics_port), **extra_env)
    return subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler"], env=env, cwd=ROOT)


@contextmanager
def durable_cluster(prefix: str, settings_for: Callable[[str], Settings]
                    ) -> Iterator[tuple[EmbeddedPostgres, Settings]]:
    """A PostgreSQL cluster of the test's own (durable: fsync on), with a migrated database;
    destroyed after. Skips the test where the server binaries are missing."""
    import pytest

    try:
        root = Path(tempfile.mkdtemp(prefix=prefix))
        root.chmod(0o755)  # as root the cluster runs as `postgres`, which must reach it
        cluster = EmbeddedPostgres(root / "pgdata", durable=True)
    except EmbeddedPostgresError as exc:
        pytest.skip(f"needs PostgreSQL server binaries (initdb, pg_ctl): {exc}")
    cluster.start()
    try:
        settings = settings_for(cluster.ensure_database("engagement"))
        migrate(settings)
        yield cluster, settings
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)
