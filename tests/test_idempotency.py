"""Idempotency-Key on the track endpoints: retries are answered as the first request was."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from scheduler.jobs import JobContext, run_job
from tests.processes import service_process

VIEW = "/api/v1/projects/{}/track-view/"
CLICK = "/api/v1/projects/track-click/"
CLICKS = "/api/v1/projects/track-clicks/"


def key() -> str:
    return str(uuid.uuid4())


def count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def post(api, path: str, body: object, idem: str | None, session: str = "s1"):
    headers = {"X-Session-Key": session}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    api.client.cookies.clear()
    return api.client.post(path, json=body, headers=headers)


def test_retried_view_is_answered_as_the_first_and_stored_once(api, db):
    api.put_project(1)
    k = key()
    first = post(api, VIEW.format(1), {"source": "explore"}, k)
    again = post(api, VIEW.format(1), {"source": "explore"}, k)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() == {"status": "recorded"}
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert count(db, "project_views") == 1
    # Without the key the same viewer is simply deduplicated: the replay is not that.
    assert post(api, VIEW.format(1), {"source": "explore"}, None).json() == {
        "status": "deduplicated"}


def test_retried_click_and_batch_store_nothing_twice(api, db):
    api.put_project(1)
    api.put_project(2)
    k1, k2 = key(), key()
    click = {"project_id": 1, "source": "search", "position": 3}
    batch = {"clicks": [{"project_id": 1, "source": "search"},
                        {"project_id": 2, "source": "related", "position": 0},
                        {"project_id": 999, "source": "related"}]}
    answers = [post(api, CLICK, click, k1) for _ in range(3)]
    assert {r.status_code for r in answers} == {201}
    batches = [post(api, CLICKS, batch, k2) for _ in range(3)]
    assert [r.status_code for r in batches] == [201, 201, 201]
    assert {tuple(sorted(r.json().items())) for r in batches} == {(("count", 2), ("skipped", 1))}
    assert count(db, "project_clicks") == 1 + 2


def test_key_reused_for_another_request_is_422_and_stores_nothing(api, db):
    api.put_project(1)
    api.put_project(2)
    k = key()
    assert post(api, CLICK, {"project_id": 1, "source": "search"}, k).status_code == 201
    other_body = post(api, CLICK, {"project_id": 2, "source": "search"}, k)
    assert other_body.status_code == 422
    assert "Idempotency-Key" in other_body.json()["detail"]
    other_viewer = post(api, CLICK, {"project_id": 1, "source": "search"}, k, session="s2")
    assert other_viewer.status_code == 422
    assert count(db, "project_clicks") == 1


def test_same_key_on_another_endpoint_is_independent(api, db):
    api.put_project(1)
    k = key()
    assert post(api, VIEW.format(1), None, k).status_code == 201
    assert post(api, CLICK, {"project_id": 1, "source": "search"}, k).status_code == 201
    assert count(db, "project_views") == count(db, "project_clicks") == 1


def test_replay_of_a_not_found_answer_is_the_same_404(api, db):
    k = key()
    assert post(api, CLICK, {"project_id": 7, "source": "search"}, k).status_code == 404
    api.put_project(7)
    again = post(api, CLICK, {"project_id": 7, "source": "search"}, k)
    assert again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"
    assert count(db, "project_clicks") == 0


@pytest.mark.parametrize("bad", ["", " ", "x" * 256, "tab\there", "ünïcode".encode()])
def test_malformed_key_is_400(api, db, bad):
    api.put_project(1)
    r = api.client.post(CLICK, json={"project_id": 1, "source": "search"},
                        headers={"Idempotency-Key": bad})
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["detail"]
    assert count(db, "project_clicks") == 0


def test_structured_field_quotes_are_accepted(api, db):
    api.put_project(1)
    k = key()
    assert post(api, CLICK, {"project_id": 1, "source": "search"}, f'"{k}"').status_code == 201
    assert post(api, CLICK, {"project_id": 1, "source": "search"}, k).headers[
        "idempotent-replayed"] == "true"
    assert count(db, "project_clicks") == 1


def test_concurrent_requests_with_one_key_store_once(api, db):
    """Same key at once from many threads: coalesced into one batch or racing batches."""
    api.put_project(1)
    k = key()
    body = {"clicks": [{"project_id": 1, "source": "search"}] * 5}

    def send(_: int):
        return api.client.post(CLICKS, json=body,
                               headers={"X-Session-Key": "s1", "Idempotency-Key": k})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, range(32)))
    assert [r.status_code for r in answers] == [201] * 32
    assert {r.text for r in answers} == {answers[0].text}
    assert sum("idempotent-replayed" not in r.headers for r in answers) == 1
    assert count(db, "project_clicks") == 5


@pytest.mark.slow
def test_concurrent_retries_across_worker_processes_store_once(settings, db):
    """Two workers, separate transactions: the claim is decided by the database."""
    db.execute("INSERT INTO projects VALUES (1, 1, false, now(), NULL)")
    keys = [key() for _ in range(20)]

    async def hammer(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            calls = [client.post(CLICK, json={"project_id": 1, "source": "search"},
                                 headers={"X-Session-Key": "s1", "Idempotency-Key": k,
                                          "Connection": "close"})
                     for k in keys for _ in range(6)]
            return list(await asyncio.gather(*calls))

    with service_process(settings, workers=2) as base:
        answers = asyncio.run(hammer(base))
    assert [r.status_code for r in answers] == [201] * len(answers)
    assert count(db, "project_clicks") == len(keys)
    assert count(db, "idempotency_keys") == len(keys)


def test_failed_transaction_leaves_neither_key_nor_events(api, db, settings):
    """The key is claimed in the events' transaction: a failure rolls both back."""
    api.put_project(1)
    session_hash = api.client.app.state.runtime.identity.hash_session("boom")
    db.execute(f"""
        CREATE FUNCTION fail_boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM new_rows WHERE session_key = '{session_hash}') THEN
                RAISE EXCEPTION 'injected failure';
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER fail_boom AFTER INSERT ON project_clicks
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION fail_boom();
    """)
    k = key()
    failed = post(api, CLICK, {"project_id": 1, "source": "search"}, k, session="boom")
    assert failed.status_code == 500
    assert count(db, "idempotency_keys") == 0
    assert count(db, "project_clicks") == 0
    db.execute("DROP TRIGGER fail_boom ON project_clicks")
    retry = post(api, CLICK, {"project_id": 1, "source": "search"}, k, session="boom")
    assert retry.status_code == 201
    assert "idempotent-replayed" not in retry.headers
    assert count(db, "project_clicks") == 1


def test_expired_keys_are_taken_over_and_pruned(make_settings, db, profile):
    from litestar.testing import TestClient

    from service.app import create_app
    from tests.support import Api

    settings = make_settings(idempotency_ttl_seconds=60)
    with TestClient(create_app(settings)) as client:
        api = Api(client, settings)
        api.put_project(1)
        k, fresh = key(), key()
        assert post(api, CLICK, {"project_id": 1, "source": "search"}, k).status_code == 201
        assert post(api, CLICK, {"project_id": 1, "source": "search"}, fresh).status_code == 201
        db.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 minutes' "
                   "WHERE key = %s", (k,))
        again = post(api, CLICK, {"project_id": 1, "source": "search"}, k)
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers  # expired: a new request
        assert count(db, "project_clicks") == 3
        db.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 minutes'")
    summary = run_job("prune-dedup", JobContext(settings, profile))
    assert "2 idempotency keys pruned" in summary
    assert count(db, "idempotency_keys") == 0


@pytest.mark.parametrize(("path", "body", "table"), [
    (CLICK, {"project_id": 1, "source": "search", "position": 2}, "project_clicks"),
    (VIEW.format(1), {"source": "explore"}, "project_views"),
    (CLICKS, {"clicks": [{"project_id": 1, "source": "search"}]}, "project_clicks"),
])
def test_anonymous_retry_with_the_issued_cookie_is_a_replay(api, db, path, body, table):
    """A browser's first try has no cookie; its retry sends back the et_sid that answer set."""
    api.put_project(1)
    k = key()
    api.client.cookies.clear()
    first = api.client.post(path, json=body, headers={"Idempotency-Key": k})
    assert first.status_code == 201
    issued = first.cookies["et_sid"]
    api.client.cookies.clear()
    again = api.client.post(path, json=body, headers={"Idempotency-Key": k,
                                                      "Cookie": f"et_sid={issued}"})
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    api.client.cookies.clear()  # the first answer lost: the retry has no cookie either
    lost = api.client.post(path, json=body, headers={"Idempotency-Key": k})
    assert lost.headers["idempotent-replayed"] == "true"
    assert count(db, table) == 1


def test_another_named_session_with_the_same_key_is_still_refused(api, db):
    api.put_project(1)
    k = key()
    body = {"project_id": 1, "source": "search"}
    assert post(api, CLICK, body, k, session="s1").status_code == 201
    assert post(api, CLICK, body, k, session="s2").status_code == 422
    assert count(db, "project_clicks") == 1
