"""Fault injection: no acknowledged event is lost or stored twice, whatever breaks.

A dedicated, durable PostgreSQL cluster and a real `engagement serve --workers 2` take
concurrent track-view, track-click and track-clicks load while the suite kills a service
worker with SIGKILL, restarts PostgreSQL (fast, then immediate shutdown) and stops the
scheduler. Every event carries its own session key, so its rows can be found by the keyed
hash the test recomputes. Half of the events carry an Idempotency-Key and are retried until
acknowledged; the other half are sent once. Afterwards: every 201 is stored exactly once,
no batch is half-written, and every retried event ended up stored exactly once.

`make faults` runs more fault cycles (FAULT_CYCLES, default 1 here).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from cli.dev.embedded import EmbeddedPostgres, free_port
from engagement.settings import Settings
from tests.conftest import _settings_for
from tests.processes import ROOT, durable_cluster, process_env, stop, wait_until_healthy

pytestmark = pytest.mark.slow

CYCLES = int(os.environ.get("FAULT_CYCLES", "1"))
PROJECTS = 20
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
REQUEST_TIMEOUT = 10.0  # a request that takes this long counts as hanging
RETRY_FOR = 45.0  # seconds an idempotent event keeps being retried after the load stops


@dataclass
class Cluster:
    pg: EmbeddedPostgres
    settings: Settings

    @property
    def url(self) -> str:
        return self.settings.database_url


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with durable_cluster("engagement-faults-", _settings_for) as (pg, settings):
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            for pid in range(1, PROJECTS + 1):
                conn.execute("INSERT INTO projects (id, owner_id, is_private, created_at) "
                             "VALUES (%s, 1, false, now() - interval '2 days')", (pid,))
        yield Cluster(pg, settings)


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    base: str

    def workers(self) -> list[int]:
        """PIDs of uvicorn's worker processes (children running the app)."""
        pids = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                try:
                    cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"spawn_main" in cmdline:
                    pids.append(int(child))
        return pids


@pytest.fixture(scope="module")
def service(cluster: Cluster) -> Iterator[Service]:
    port = free_port()
    env = process_env(cluster.settings, ENGAGEMENT_LOG_LEVEL="error")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base + "/readyz", proc)
        yield Service(proc, base)
    finally:
        stop(proc)


def start_scheduler(cluster: Cluster) -> subprocess.Popen[bytes]:
    env = process_env(cluster.settings, ENGAGEMENT_SCHEDULER_PORT="0",
                      ENGAGEMENT_LOG_LEVEL="error", ENGAGEMENT_LEADER_POLL_SECONDS="0.5",
                      ENGAGEMENT_ROLLUP_INTERVAL_SECONDS="1",
                      ENGAGEMENT_PRUNE_INTERVAL_SECONDS="1",
                      ENGAGEMENT_TRENDING_INTERVAL_SECONDS="2")
    return subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler"], env=env,
                            cwd=ROOT)


@dataclass
class Event:
    kind: str  # view | click | clicks
    session: str
    items: int
    idempotent: bool
    acked: bool = False
    attempts: int = 0


@dataclass
class Load:
    events: list[Event] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    slowest_503: float = 0.0
    hanging: int = 0
    running: bool = True


def hash_session(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()[:40]


async def send(client: httpx.AsyncClient, event: Event, body: object, path: str,
               idem: str | None, load: Load) -> None:
    """One event: once, or (with an Idempotency-Key) until it is acknowledged."""
    give_up = None
    while True:
        event.attempts += 1
        headers = {"X-Session-Key": event.session}
        if idem:
            headers["Idempotency-Key"] = idem
        started = time.monotonic()
        try:
            r = await client.post(path, json=body, headers=headers)
            status = str(r.status_code)
            if r.status_code == 503:
                load.slowest_503 = max(load.slowest_503, time.monotonic() - started)
        except httpx.TimeoutException:
            status = "timeout"
            load.hanging += 1
        except httpx.TransportError:
            status = "connection error"
        load.statuses[status] += 1
        if status == "201":
            event.acked = True
            return
        if not idem:
            return
        if not load.running:
            give_up = give_up or time.monotonic() + RETRY_FOR
            if time.monotonic() > give_up:
                return
        await asyncio.sleep(0.2 + random.random() * 0.3)


async def client_loop(base: str, load: Load, number: int) -> None:
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT, limits=limits,
                                 headers={"User-Agent": BROWSER}) as client:
        serial = 0
        while load.running:
            serial += 1
            session = f"fault-{number}-{serial}-{uuid.uuid4().hex[:8]}"
            idem = str(uuid.uuid4()) if serial % 2 == 0 else None
            pick = random.random()
            project = random.randint(1, PROJECTS)
            if pick < 0.4:
                event = Event("view", session, 1, idem is not None)
                path, body = f"/api/v1/projects/{project}/track-view/", {"source": "explore"}
            elif pick < 0.7:
                event = Event("click", session, 1, idem is not None)
                path = "/api/v1/projects/track-click/"
                body = {"project_id": project, "source": "explore_trending", "position": 3}
            else:
                size = random.randint(2, 10)
                event = Event("clicks", session, size, idem is not None)
                path = "/api/v1/projects/track-clicks/"
                body = {"clicks": [{"project_id": random.randint(1, PROJECTS),
                                    "source": "search", "position": i} for i in range(size)]}
            load.events.append(event)
            await send(client, event, body, path, idem, load)
            await asyncio.sleep(random.random() * 0.02)


def kill_a_worker(service: Service, log: list[str]) -> None:
    workers = service.workers()
    assert workers, "no uvicorn worker found"
    os.kill(workers[0], signal.SIGKILL)
    log.append(f"SIGKILL worker {workers[0]}")
    # uvicorn's supervisor starts a replacement; wait until there are two again.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = [p for p in service.workers() if p != workers[0]]
        if len(alive) >= 2:
            return
        time.sleep(0.2)
    raise AssertionError("uvicorn did not replace the killed worker within 20 s")


def restart_postgres(cluster: Cluster, mode: str, log: list[str]) -> None:
    cluster.pg.stop(mode=mode)
    log.append(f"PostgreSQL stopped ({mode})")
    time.sleep(2.0)
    cluster.pg.start()
    log.append("PostgreSQL started")


def faults(cluster: Cluster, service: Service, load: Load, log: list[str]) -> None:
    """The fault schedule, run in a thread while the load runs."""
    scheduler = start_scheduler(cluster)
    try:
        for cycle in range(CYCLES):
            log.append(f"cycle {cycle + 1}")
            time.sleep(2)
            kill_a_worker(service, log)
            time.sleep(2)
            restart_postgres(cluster, "fast", log)
            time.sleep(2)
            # The scheduler stops cleanly while jobs run against the recovering database.
            scheduler.send_signal(signal.SIGTERM)
            code = scheduler.wait(timeout=30)
            log.append(f"scheduler stopped with SIGTERM (exit {code})")
            assert code == 0
            restart_postgres(cluster, "immediate", log)
            scheduler = start_scheduler(cluster)
            time.sleep(2)
            kill_a_worker(service, log)
            time.sleep(1)
            scheduler.kill()  # and dies hard, its jobs' transactions roll back
            scheduler.wait()
            log.append("scheduler SIGKILLed")
            scheduler = start_scheduler(cluster)
            time.sleep(2)
    finally:
        load.running = False
        stop(scheduler)


async def run_load(cluster: Cluster, service: Service, log: list[str]) -> Load:
    load = Load()
    clients = [asyncio.create_task(client_loop(service.base, load, n)) for n in range(8)]
    try:
        await asyncio.to_thread(faults, cluster, service, load, log)
    finally:
        load.running = False
        await asyncio.gather(*clients)
    return load


def stored_rows(url: str, secret: str, events: list[Event]) -> dict[str, int]:
    hashes = {hash_session(secret, e.session): e.session for e in events}
    counts: Counter[str] = Counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("project_views", "project_clicks"):
            rows = conn.execute(f"SELECT session_key, count(*) FROM {table} "
                                "WHERE session_key = ANY(%s) GROUP BY 1", (list(hashes),))
            for session_hash, n in rows:
                counts[hashes[session_hash]] += n
    return counts


def test_no_acknowledged_event_is_lost_or_duplicated(cluster, service, capsys):
    log: list[str] = []
    load = asyncio.run(run_load(cluster, service, log))
    wait_until_healthy(service.base + "/readyz", service.proc, timeout=30)

    secret = cluster.settings.session_secret
    counts = stored_rows(cluster.url, secret, load.events)
    acked = [e for e in load.events if e.acked]
    lost = [e for e in acked if counts[e.session] < e.items]
    duplicated = [e for e in load.events if counts[e.session] > e.items]
    partial = [e for e in load.events if 0 < counts[e.session] < e.items]
    retried = [e for e in load.events if e.idempotent]
    unacked_stored = [e for e in load.events if not e.acked and counts[e.session] == e.items]
    with capsys.disabled():
        print(f"\n[faults] {'; '.join(log)}")
        print(f"[faults] events sent {len(load.events)}, acknowledged {len(acked)} "
              f"({sum(e.items for e in acked)} rows), stored rows "
              f"{sum(counts.values())}, lost {len(lost)}, duplicated {len(duplicated)}, "
              f"half-written {len(partial)}; idempotent {len(retried)} "
              f"(acknowledged {sum(e.acked for e in retried)}, "
              f"retries {sum(e.attempts - 1 for e in retried)}); unacknowledged but stored "
              f"{len(unacked_stored)}; answers {dict(load.statuses)}; slowest 503 "
              f"{load.slowest_503:.2f}s; hanging {load.hanging}")
    assert len(acked) > 100, "too little load got through to prove anything"
    assert not lost, f"acknowledged but not stored: {lost[:5]}"
    assert not duplicated, f"stored more than once: {duplicated[:5]}"
    assert not partial, f"half-written batches: {partial[:5]}"
    assert all(e.acked for e in retried), "an idempotent event never got through"
    assert load.hanging == 0
    assert set(load.statuses) <= {"201", "503", "connection error"}
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        keys = conn.execute("SELECT count(*) FROM idempotency_keys").fetchone()[0]
    assert keys == len(retried)  # one claim per idempotent event, however often retried


def test_database_down_answers_503_fast_and_recovers_by_itself(cluster, service):
    paths = [("/api/v1/projects/1/track-view/", None),
             ("/api/v1/projects/track-click/", {"project_id": 1, "source": "search"}),
             ("/api/v1/projects/track-clicks/", {"clicks": [{"project_id": 1,
                                                             "source": "search"}]})]
    with httpx.Client(base_url=service.base, timeout=REQUEST_TIMEOUT,
                      headers={"User-Agent": BROWSER}) as client:
        cluster.pg.stop(mode="fast")
        try:
            for round_ in range(2):  # the first notices dead connections, the second none
                for path, body in paths:
                    started = time.monotonic()
                    r = client.post(path, json=body,
                                    headers={"X-Session-Key": f"down-{round_}-{path}"})
                    elapsed = time.monotonic() - started
                    assert r.status_code == 503, r.text
                    assert r.headers["retry-after"].isdigit()
                    assert elapsed < 2.0, f"{path} took {elapsed:.2f}s"
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
        finally:
            cluster.pg.start()
        back = time.monotonic()
        while True:
            r = client.post(paths[1][0], json=paths[1][1], headers={"X-Session-Key": "back"})
            if r.status_code == 201 or time.monotonic() > back + 20:
                break
            time.sleep(0.25)
        assert r.status_code == 201, "the service did not recover by itself"
        recovered = time.monotonic() - back
        assert recovered < 5, f"took {recovered:.1f}s to recover after the database returned"
        assert client.get("/readyz").status_code == 200
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        hashes = [hash_session(cluster.settings.session_secret, f"down-{i}-{p}")
                  for i in range(2) for p, _ in paths]
        stored = conn.execute("SELECT (SELECT count(*) FROM project_clicks WHERE session_key "
                              "= ANY(%(h)s)) + (SELECT count(*) FROM project_views WHERE "
                              "session_key = ANY(%(h)s))", {"h": hashes}).fetchone()[0]
    assert stored == 0  # nothing half-written while the database was away
