"""A row the database refuses fails only the request that sent it, never its batch-mates."""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from threading import Barrier

import httpx
import pytest

from tests.processes import service_process

VALID, POISONED = 39, 2
ROUNDS = 10
# Validation lets position 13 through; the database, after this test's extra rule, does not.
POISON = 13
STRICTER_POSITION_CHECK = """
    ALTER TABLE project_clicks DROP CONSTRAINT project_clicks_position_check;
    ALTER TABLE project_clicks ADD CONSTRAINT project_clicks_position_check
        CHECK (position >= 0 AND position <> 13);
    ALTER TABLE project_impressions DROP CONSTRAINT project_impressions_position_check;
    ALTER TABLE project_impressions ADD CONSTRAINT project_impressions_position_check
        CHECK (position >= 0 AND position <> 13);
"""


@pytest.fixture
def stricter_db(db, api):  # type: ignore[no-untyped-def]
    api.put_project(1)
    db.execute(STRICTER_POSITION_CHECK)
    return db


def _concurrent_round(base: str, path: str, bodies: list[dict]) -> list[httpx.Response]:
    barrier = Barrier(len(bodies))

    def send(body: dict) -> httpx.Response:
        with httpx.Client(timeout=10) as client:
            barrier.wait()
            return client.post(f"{base}{path}", json=body, headers={"X-Session-Key": "s"})

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def test_poisoned_clicks_among_concurrent_valid_ones_fail_alone(settings, stricter_db):
    with service_process(settings) as base:
        answers: list[httpx.Response] = []
        for _ in range(ROUNDS):
            bodies = [{"project_id": 1, "source": "search", "position": 100 + i}
                      for i in range(VALID)]
            bodies[10:10] = [{"project_id": 1, "source": "search", "position": POISON}]
            bodies[30:30] = [{"project_id": 1, "source": "search", "position": POISON}]
            answers += _concurrent_round(base, "/api/v1/projects/track-click/", bodies)
    poisoned = [r for r in answers if json.loads(r.request.content)["position"] == POISON]
    valid = [r for r in answers if json.loads(r.request.content)["position"] != POISON]
    assert len(poisoned) == POISONED * ROUNDS
    assert Counter(r.status_code for r in valid) == {201: VALID * ROUNDS}
    assert Counter(r.status_code for r in poisoned) == {400: POISONED * ROUNDS}
    assert all("`position`" in r.json()["detail"] for r in poisoned)
    stored = stricter_db.execute("SELECT count(*) FROM project_clicks").fetchone()[0]
    assert stored == VALID * ROUNDS


def test_poisoned_batches_of_clicks_and_impressions_fail_alone(settings, stricter_db):
    with service_process(settings) as base:
        for path, key in (("/api/v1/projects/track-clicks/", "clicks"),
                          ("/api/v1/projects/track-impressions/", "impressions")):
            bodies = [{key: [{"project_id": 1, "source": "search", "position": 100 + i}] * 3}
                      for i in range(20)]
            bodies[7] = {key: [{"project_id": 1, "source": "search", "position": 1},
                               {"project_id": 1, "source": "search", "position": POISON}]}
            answers = _concurrent_round(base, path, bodies)
            assert [r.status_code for r in answers] == [201] * 7 + [400] + [201] * 12
    assert stricter_db.execute("SELECT count(*) FROM project_clicks").fetchone()[0] == 19 * 3
    assert stricter_db.execute("SELECT count(*) FROM project_impressions").fetchone()[0] == 19 * 3


def test_a_refused_row_is_an_error_log_line_and_a_400(api, stricter_db, caplog):
    with caplog.at_level(logging.ERROR, logger="engagement.errors"):
        r = api.click(1, "search", POISON)
    assert r.status_code == 400
    assert r.json()["detail"] == "invalid request: the value is not accepted (at `position`)"
    assert any(rec.levelno == logging.ERROR and "position" in rec.getMessage() for rec in caplog.records)
    assert api.click(1, "search", 14).status_code == 201


def test_a_refused_row_in_an_import_is_a_400_and_stores_nothing(api, stricter_db):
    created = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    r = api.import_events(clicks=[
        {"project_id": 1, "created_at": created, "source": "search", "position": 1},
        {"project_id": 1, "created_at": created, "source": "search", "position": POISON}])
    assert r.status_code == 400
    assert "`position`" in r.json()["detail"]
    assert stricter_db.execute("SELECT count(*) FROM project_clicks").fetchone()[0] == 0
