"""Dedup holds across processes: the database, not process memory, decides."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import httpx

from tests.processes import service_process


def test_twenty_simultaneous_views_on_two_processes_record_exactly_one(settings, db, api):
    api.put_project(1)
    with service_process(settings) as a, service_process(settings) as b:
        barrier = Barrier(20)

        def send(i: int) -> int:
            base = a if i % 2 else b
            with httpx.Client() as client:
                barrier.wait()
                r = client.post(f"{base}/api/v1/projects/1/track-view/",
                                json={"source": "explore"}, headers={"X-Session-Key": "same-viewer"})
                return r.status_code

        with ThreadPoolExecutor(20) as pool:
            statuses = sorted(pool.map(send, range(20)))
    assert statuses == [200] * 19 + [201]
    assert db.execute("SELECT count(*) FROM project_views").fetchone()[0] == 1
