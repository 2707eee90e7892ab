"""The per-fingerprint cap on anonymous views: one client cannot buy a project's views."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from litestar.testing import TestClient

from scheduler.jobs import JobContext, run_job
from service.app import create_app
from service.fingerprint import Fingerprinter
from tests.processes import service_process
from tests.support import Api

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
CAP = 3


@pytest.fixture
def capped(make_settings) -> Iterator[Api]:
    with TestClient(create_app(make_settings(views_per_fingerprint=CAP))) as client:
        api = Api(client, client.app.state.runtime.settings)
        api.put_project(1)
        api.put_project(2)
        yield api


def views_of(db, project_id: int) -> int:
    return db.execute("SELECT count(*) FROM project_views WHERE project_id = %s",
                      (project_id,)).fetchone()[0]


def capped_total(api: Api) -> float:
    text = api.client.get("/metrics").text
    pattern = r'^engagement_events_total{[^}]*kind="view"[^}]*outcome="capped"[^}]*} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


def test_rotating_session_keys_from_one_client_record_at_most_the_cap(capped, db):
    before = capped_total(capped)
    answers = [capped.view(1, session=f"key-{i}", headers={"User-Agent": FIREFOX})
               for i in range(10)]
    assert [r.status_code for r in answers] == [201] * CAP + [200] * (10 - CAP)
    assert {r.json()["status"] for r in answers[CAP:]} == {"deduplicated"}
    assert views_of(db, 1) == CAP
    assert capped_total(capped) == before + 10 - CAP


def test_no_key_and_no_cookie_each_fresh_et_sid_is_capped(capped, db):
    answers = [capped.view(1, session=None, headers={"User-Agent": FIREFOX}) for _ in range(8)]
    assert all("et_sid" in r.cookies for r in answers)  # a new session every time
    assert [r.status_code for r in answers] == [201] * CAP + [200] * (8 - CAP)
    assert views_of(db, 1) == CAP


def test_spoofed_forwarding_headers_do_not_escape_the_cap(capped, db):
    for i in range(8):
        spoof = f"198.51.100.{i + 1}"
        capped.view(1, session=f"key-{i}", headers={
            "User-Agent": FIREFOX, "X-Forwarded-For": spoof, "X-Real-IP": spoof,
            "Forwarded": f"for={spoof}"})
    assert views_of(db, 1) == CAP


def test_a_few_browsers_behind_one_address_count_each(capped, db):
    agents = [f"{FIREFOX} build/{i}" for i in range(6)]
    answers = [capped.view(1, session=f"browser-{i}", headers={"User-Agent": agent})
               for i, agent in enumerate(agents)]
    assert [r.status_code for r in answers] == [201] * 6
    assert views_of(db, 1) == 6


def test_signed_in_users_behind_one_address_all_count(capped, db):
    answers = [capped.view(1, session="shared-office-cookie", user=100 + i,
                           headers={"User-Agent": FIREFOX}) for i in range(20)]
    assert [r.status_code for r in answers] == [201] * 20
    assert views_of(db, 1) == 20
    assert db.execute("SELECT count(*) FROM view_fingerprints").fetchone()[0] == 0


def test_the_cap_is_per_project(capped, db):
    for i in range(5):
        capped.view(1, session=f"key-{i}", headers={"User-Agent": FIREFOX})
        capped.view(2, session=f"key-{i}", headers={"User-Agent": FIREFOX})
    assert (views_of(db, 1), views_of(db, 2)) == (CAP, CAP)


def test_a_repeat_of_one_session_does_not_spend_the_allowance(capped, db):
    for _ in range(5):
        capped.view(1, session="reloader", headers={"User-Agent": FIREFOX})
    answers = [capped.view(1, session=f"other-{i}", headers={"User-Agent": FIREFOX})
               for i in range(CAP - 1)]
    assert [r.status_code for r in answers] == [201] * (CAP - 1)
    assert views_of(db, 1) == CAP


def test_the_cap_ends_with_the_dedup_window(make_settings, db):
    import time

    from tests.support import serving

    with serving(make_settings(views_per_fingerprint=1, view_dedup_seconds=1.0)) as api:
        assert api.view(1, session="a").status_code == 201
        assert api.view(1, session="b").status_code == 200
        time.sleep(1.1)
        assert api.view(1, session="c").status_code == 201
    assert views_of(db, 1) == 2


def test_cap_zero_turns_it_off(make_settings, db):
    settings = make_settings(views_per_fingerprint=0)
    with TestClient(create_app(settings)) as client:
        api = Api(client, settings)
        api.put_project(1)
        assert all(api.view(1, session=f"k{i}").status_code == 201 for i in range(6))
    assert views_of(db, 1) == 6


def test_prune_dedup_forgets_fingerprints_past_the_window(capped, db, settings, profile):
    capped.view(1, session="a", headers={"User-Agent": FIREFOX})
    db.execute("UPDATE view_fingerprints SET window_start = now() - interval '10 minutes'")
    summary = run_job("prune-dedup", JobContext(settings, profile))
    assert "1 fingerprints" in summary
    assert db.execute("SELECT count(*) FROM view_fingerprints").fetchone()[0] == 0


def test_fingerprint_takes_ipv6_by_its_64_and_the_user_agent():
    prints = Fingerprinter("secret")
    same = prints.of("2001:db8:1:2::1", FIREFOX)
    assert prints.of("2001:db8:1:2:ffff::9", FIREFOX) == same
    assert prints.of("2001:db8:1:3::1", FIREFOX) != same
    assert prints.of("2001:db8:1:2::1", FIREFOX + " other") != same
    assert Fingerprinter("another secret").of("2001:db8:1:2::1", FIREFOX) != same
    assert len(same) == 40


def _views_from(base: str, local: str, count: int, *, agent: str = FIREFOX,
                forwarded: str | None = None) -> list[int]:
    transport = httpx.HTTPTransport(local_address=local)
    headers = {"User-Agent": agent, **({"X-Forwarded-For": forwarded} if forwarded else {})}
    with httpx.Client(base_url=base, transport=transport, timeout=10) as http:
        def one(i: int) -> int:
            return http.post("/api/v1/projects/1/track-view/", json={"source": "direct"},
                             headers={**headers, "X-Session-Key": f"{local}-{forwarded}-{i}"}
                             ).status_code
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, range(count)))


def test_two_workers_hold_the_cap_and_distinct_addresses_count(make_settings, db):
    settings = make_settings(views_per_fingerprint=CAP)
    with TestClient(create_app(settings)) as client:
        Api(client, settings).put_project(1)
    with service_process(settings, workers=2) as base:
        attack = _views_from(base, "127.0.0.1", 60)
        others = [_views_from(base, f"127.0.0.{n}", 1) for n in range(2, 7)]
    assert sorted(attack) == [200] * (60 - CAP) + [201] * CAP
    assert others == [[201]] * 5
    assert views_of(db, 1) == CAP + 5


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_cap(make_settings, db):
    settings = make_settings(views_per_fingerprint=CAP)
    with TestClient(create_app(settings)) as client:
        Api(client, settings).put_project(1)
    with service_process(settings, ENGAGEMENT_TRUSTED_PROXIES="127.0.0.1") as base:
        first = _views_from(base, "127.0.0.1", 6, forwarded="203.0.113.5")
        second = _views_from(base, "127.0.0.1", 6, forwarded="203.0.113.6")
    assert sorted(first) == sorted(second) == [200] * (6 - CAP) + [201] * CAP
    assert views_of(db, 1) == 2 * CAP


def test_attacked_project_does_not_outrank_genuine_distinct_viewers(capped, db, settings,
                                                                      profile):
    for i in range(200):  # the attack: a new key on every request, one client
        capped.view(1, session=f"bought-{i}", headers={"User-Agent": FIREFOX})
    for i in range(10):  # ten real people, each on a browser of their own
        capped.view(2, session=f"person-{i}", headers={"User-Agent": f"{FIREFOX} p/{i}"})
    ctx = JobContext(settings, profile)
    run_job("refresh-rollups", ctx)
    run_job("compute-trending", ctx)
    results = capped.client.get("/api/v1/trending/").json()["results"]
    rank = {r["project_id"]: r["rank"] for r in results}
    assert rank[2] < rank[1]
    assert {r["project_id"]: r["recent_views"] for r in results} == {1: CAP, 2: 10}


def test_nothing_raw_about_a_viewer_is_stored_anywhere(capped, db):
    agent = "Mozilla/5.0 RawAgentMarker-7f3a"
    for i in range(6):
        capped.view(1, session=f"raw-session-marker-{i}", headers={
            "User-Agent": agent, "X-Forwarded-For": "203.0.113.77"})
    capped.click(1, session="raw-session-marker-click")
    tables = [name for (name,) in db.execute(
        "SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
        "AND table_type IN ('BASE TABLE', 'VIEW')")]
    assert "public.view_fingerprints" in tables
    # Each row as PostgreSQL's own text: TimescaleDB's catalog holds -infinity timestamps,
    # which Python's datetime cannot load.
    dump = "".join(str(db.execute(f"SELECT r::text FROM {t} AS r").fetchall()) for t in tables)
    assert db.execute("SELECT count(*) FROM view_fingerprints").fetchone()[0] == 1
    for raw in ("RawAgentMarker", "raw-session-marker", "203.0.113.77", "testclient"):
        assert raw not in dump
