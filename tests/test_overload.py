"""Overload and a stalled database: tracking answers 503 within its budget, never hangs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
from litestar.testing import TestClient

from service.app import create_app
from tests.support import Api

CLICK = "/api/v1/projects/track-click/"


def test_stalled_writes_and_a_full_queue_answer_503_in_time(make_settings, db):
    settings = make_settings(write_queue_max=5, write_concurrency=1, write_timeout_seconds=1.0)
    with TestClient(create_app(settings)) as client:
        api = Api(client, settings)
        api.put_project(1)

        def click(i: int) -> tuple[int, float, str, str | None]:
            started = time.monotonic()
            r = client.post(CLICK, json={"project_id": 1, "source": "search"},
                            headers={"X-Session-Key": f"s{i}"})
            return (r.status_code, time.monotonic() - started, r.json()["detail"],
                    r.headers.get("retry-after"))

        # Another transaction holds the table: every insert would wait for it.
        with psycopg.connect(settings.database_url) as locker:
            locker.execute("LOCK TABLE project_clicks IN ACCESS EXCLUSIVE MODE")
            with ThreadPoolExecutor(30) as pool:
                answers = list(pool.map(click, range(30)))
            locker.rollback()

        assert {status for status, *_ in answers} == {503}
        assert max(elapsed for _, elapsed, *_ in answers) < 2.0
        assert all(retry_after for *_, retry_after in answers)
        overloaded = [a for a in answers if "overloaded" in a[2]]
        assert overloaded, "the queue bound should refuse some requests at once"
        assert max(elapsed for _, elapsed, *_ in overloaded) < 0.5
        assert db.execute("SELECT count(*) FROM project_clicks").fetchone()[0] == 0

        # The lock is gone: the same worker writes again at once.
        assert api.click(1).status_code == 201
        assert db.execute("SELECT count(*) FROM project_clicks").fetchone()[0] == 1
