"""A 201 means committed: kill PostgreSQL right after acknowledgements, every acked row is there.

The service coalesces concurrent requests into shared transactions; this proves it still
answers only after the commit. A durable cluster (fsync and synchronous_commit on), the
service as a real process, clients sending track-click requests non-stop; as soon as some
201s have arrived the database is stopped in immediate mode (no checkpoint, in-flight
transactions die), then restarted. Each request carries its own session key, so its row is
found by the keyed hash the service stores. The broader fault-injection suite is
tests/test_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from cli.dev.embedded import EmbeddedPostgres
from engagement.settings import Settings
from service.identity import IdentityResolver
from tests.processes import durable_cluster, service_process

pytestmark = pytest.mark.slow

CLIENTS = 24
ACKS_BEFORE_KILL = 100
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


@pytest.fixture
def durable(settings_for) -> Iterator[tuple[EmbeddedPostgres, Settings]]:  # type: ignore[no-untyped-def]
    with durable_cluster("engagement-durability-", settings_for) as (cluster, settings):
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            fsync, commit = conn.execute(
                "SELECT current_setting('fsync'), current_setting('synchronous_commit')"
            ).fetchone()
            assert (fsync, commit) == ("on", "on")
            conn.execute("INSERT INTO projects (id, owner_id, is_private, created_at) "
                         "VALUES (1, 1, false, now())")
        yield cluster, settings


async def _load(base: str, cluster: EmbeddedPostgres) -> tuple[list[str], dict[str, int]]:
    """Send clicks until the database is gone; the session keys that got a 201, and outcomes."""
    acked: list[str] = []
    outcomes: dict[str, int] = {}
    killed = asyncio.Event()
    counter = iter(range(10**9))

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            key = f"durability-{next(counter)}"
            try:
                r = await http.post("/api/v1/projects/track-click/",
                                    json={"project_id": 1, "source": "search", "position": 3},
                                    headers={"X-Session-Key": key, "User-Agent": BROWSER})
                outcome = str(r.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "201":
                acked.append(key)
            if killed.is_set():
                return

    async def killer() -> None:
        while len(acked) < ACKS_BEFORE_KILL:
            await asyncio.sleep(0.001)
        # Immediate shutdown while requests are in flight: their transactions die uncommitted.
        await asyncio.to_thread(cluster.kill)
        killed.set()

    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        await asyncio.gather(killer(), *(client(http) for _ in range(CLIENTS)))
    return acked, outcomes


def test_every_acknowledged_click_survives_an_immediate_database_shutdown(durable):
    cluster, settings = durable
    with service_process(settings, workers=1) as base:
        acked, outcomes = asyncio.run(_load(base, cluster))
    cluster.start()  # crash recovery replays the WAL
    hashes = IdentityResolver(settings.jwt_secret, settings.session_secret)
    wanted = {hashes.hash_session(key) for key in acked}
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        stored = {row[0] for row in conn.execute(
            "SELECT session_key FROM project_clicks WHERE session_key = ANY(%s)", (list(wanted),))}
    assert len(acked) >= ACKS_BEFORE_KILL, outcomes
    # Requests still in flight at the kill must not have been acknowledged.
    assert set(outcomes) - {"201"}, f"the kill interrupted nothing: {outcomes}"
    assert wanted - stored == set(), (
        f"{len(wanted - stored)} of {len(wanted)} acknowledged clicks are missing; {outcomes}")
