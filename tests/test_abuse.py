"""Abuse containment: per-client rate limits, bots ignored, body limits, security headers."""

from __future__ import annotations

import bisect
import itertools
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from litestar.testing import TestClient

from engagement.settings import Settings
from service.app import create_app
from service.ratelimit import ClientAddress, limit_key
from tests.processes import service_process
from tests.support import Api

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
CLICK = "/api/v1/projects/track-click/"


def client_for(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings)) as client:
        api = Api(client, settings)
        api.put_project(1)
        yield api


@pytest.fixture
def limited(make_settings) -> Iterator[Api]:
    yield from client_for(make_settings(rate_limit="3/minute"))


def count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def ignored_total(api: Api, kind: str) -> float:
    text = api.client.get("/metrics").text
    pattern = rf'^engagement_events_total{{[^}}]*kind="{kind}"[^}}]*outcome="ignored"[^}}]*}} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


# --- rate limits -----------------------------------------------------------------------

def test_client_over_its_limit_gets_429_with_retry_after(limited, db):
    answers = [limited.click(1, "search") for _ in range(5)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429, 429]
    refused = answers[3]
    assert refused.json()["status_code"] == 429
    assert "slow down" in refused.json()["detail"]
    # a hit is remembered for one period plus at most one bucket (a tenth of it): that is
    # what keeps any minute under the limit, across window edges too
    assert 1 <= int(refused.headers["retry-after"]) <= 66
    assert count(db, "project_clicks") == 3


def test_limit_is_shared_by_the_public_endpoints(limited):
    assert limited.view(1).status_code == 201
    assert limited.click(1).status_code == 201
    assert limited.client.get("/api/v1/trending/").status_code == 200
    assert limited.click(1).status_code == 429


def test_internal_health_and_metrics_are_never_limited(limited):
    for _ in range(6):
        assert limited.put_project(2).status_code in (200, 201)
        assert limited.client.get("/healthz").status_code == 200
        assert limited.client.get("/metrics").status_code == 200


def test_staff_insights_with_the_service_token_are_never_limited(limited):
    for _ in range(6):
        r = limited.client.get("/api/v1/insights/ctr/?source=search", headers=limited.internal)
        assert r.status_code == 200, r.text
    # without the token the same route counts against the client like any public call
    answers = [limited.client.get("/api/v1/insights/ctr/?source=search",
                                  headers={"Authorization": "Bearer forged"}) for _ in range(4)]
    assert [r.status_code for r in answers] == [401, 401, 401, 429]


def test_forwarded_for_is_ignored_from_an_untrusted_peer(limited):
    answers = [limited.client.post(CLICK, json={"project_id": 1, "source": "search"},
                                   headers={"X-Forwarded-For": f"198.51.100.{i}"})
               for i in range(4)]
    assert [r.status_code for r in answers] == [201, 201, 201, 429]


def test_rate_limit_can_be_turned_off(make_settings):
    for api in client_for(make_settings(rate_limit="off")):
        assert {api.click(1).status_code for _ in range(10)} == {201}


@pytest.mark.parametrize("peer, forwarded, client", [
    ("10.0.0.2", "203.0.113.7", "203.0.113.7"),
    ("10.0.0.2", "203.0.113.7, 10.0.0.9", "203.0.113.7"),  # two trusted hops
    ("10.0.0.2", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # a spoofed left part
    ("10.0.0.2", "garbage, 10.0.0.9", "10.0.0.9"),
    ("10.0.0.2", "[2001:db8::1]:4431", "2001:db8::1"),
    ("10.0.0.2", "203.0.113.7:55000", "203.0.113.7"),
    ("10.0.0.2", None, "10.0.0.2"),
    ("192.0.2.50", "203.0.113.7", "192.0.2.50"),  # not a trusted proxy: header ignored
])
def test_client_address_believes_only_trusted_proxies(peer, forwarded, client):
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope = {"type": "http", "client": (peer, 1234), "headers": headers}
    assert ClientAddress(["10.0.0.0/8"]).of(scope) == client  # type: ignore[arg-type]


@pytest.mark.parametrize("address, key", [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),  # same subscriber, same bucket
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("testclient", "testclient"),
])
def test_ipv6_clients_are_limited_per_64(address, key):
    assert limit_key(address) == key


@pytest.mark.slow
def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(settings, db):
    """A real server: the loopback peer is the trusted proxy, X-Forwarded-For the client."""
    db.execute("INSERT INTO projects VALUES (1, 1, false, now(), NULL)")
    body = {"project_id": 1, "source": "search"}
    with service_process(settings, ENGAGEMENT_RATE_LIMIT="2/minute",
                         ENGAGEMENT_TRUSTED_PROXIES="127.0.0.1") as base:
        client = httpx.Client(base_url=base, headers={"User-Agent": FIREFOX})

        def send(xff: str) -> int:
            return client.post(CLICK, json=body, headers={"X-Forwarded-For": xff}).status_code

        alice = [send("203.0.113.5") for _ in range(2)]
        spoof = send("9.9.9.9, 203.0.113.5")  # what a proxy makes of a forged header
        bob = send("203.0.113.9")
        client.close()
    assert alice == [201, 201]
    assert spoof == 429
    assert bob == 201


# --- bots ------------------------------------------------------------------------------

def test_known_crawler_is_ignored_and_counted(api, db):
    api.put_project(1)
    before_views, before_clicks = ignored_total(api, "view"), ignored_total(api, "click")
    bot = {"User-Agent": GOOGLEBOT}
    view = api.client.post("/api/v1/projects/1/track-view/", headers=bot)
    click = api.client.post(CLICK, json={"project_id": 1, "source": "search"}, headers=bot)
    batch = api.client.post("/api/v1/projects/track-clicks/", headers=bot, json={
        "clicks": [{"project_id": 1, "source": "search"}, {"project_id": 1, "source": "related"}]})
    assert (view.status_code, view.json()) == (200, {"status": "ignored"})
    assert (click.status_code, click.json()) == (200, {"status": "ignored"})
    assert batch.status_code == 200
    assert batch.json() == {"count": 0, "skipped": 0, "status": "ignored"}
    assert "set-cookie" not in view.headers
    assert count(db, "project_views") == count(db, "project_clicks") == 0
    assert ignored_total(api, "view") - before_views == 1
    assert ignored_total(api, "click") - before_clicks == 3


def test_browsers_and_http_tools_are_recorded_by_default(api, db):
    api.put_project(1)
    for agent in (FIREFOX, "curl/8.5.0", "python-httpx/0.28"):
        r = api.client.post(CLICK, json={"project_id": 1, "source": "search"},
                            headers={"User-Agent": agent})
        assert r.status_code == 201, agent
    assert count(db, "project_clicks") == 3


def test_bot_invalid_body_is_still_400(api):
    r = api.client.post(CLICK, json={"project_id": "x"}, headers={"User-Agent": GOOGLEBOT})
    assert r.status_code == 400


@pytest.mark.parametrize("mode, agent, status", [
    ("all", "curl/8.5.0", 200),
    ("off", GOOGLEBOT, 201),
    ("crawlers", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "HeadlessChrome/120.0.0.0 Safari/537.36", 200),
])
def test_bot_filter_modes(make_settings, mode, agent, status):
    for api in client_for(make_settings(bot_filter=mode)):
        r = api.client.post(CLICK, json={"project_id": 1, "source": "search"},
                            headers={"User-Agent": agent})
        assert r.status_code == status


# --- body limits and headers -----------------------------------------------------------

def test_public_body_over_64_kib_is_413(api, db):
    api.put_project(1)
    r = api.client.post(CLICK, content=b" " * (64 * 1024 + 1),
                        headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["status_code"] == 413


def test_internal_import_takes_large_bodies(api, db):
    """An import of 10,000 items is well over the public limit and must still fit."""
    api.put_project(1)
    from datetime import UTC, datetime, timedelta
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    views = [{"project_id": 1, "created_at": at, "source": "explore",
              "session_key": f"imported-session-{i:06d}"} for i in range(10_000)]
    r = api.import_events(views=views)
    assert r.status_code == 201, r.text[:200]
    assert r.json()["views"] == 10_000


def test_security_headers_on_answers_and_errors(api):
    api.put_project(1)
    for response in (api.click(1), api.client.get("/nope"), api.client.get("/healthz"),
                     api.client.delete(CLICK)):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in response.headers["content-security-policy"]
    page = api.client.get("/schema")
    assert page.headers["x-content-type-options"] == "nosniff"
    # The viewer runs its own scripts and styles; it may load pictures only from here.
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data:" in policy and "script-src" not in policy


def _hammer(base: str, seconds: float, connections: int = 16,
            answers: int | None = None) -> list[tuple[float, int]]:
    """Clicks from one address over many connections: (time answered, status) of each.

    For `seconds`; with `answers`, until that many are answered instead (`seconds` at most),
    so a slow machine still sends as many as the test needs.
    """
    body = {"project_id": 1, "source": "search"}
    stop_at = time.monotonic() + seconds
    answered = itertools.count(1)
    enough = [False]

    def worker(_: int) -> list[tuple[float, int]]:
        out = []
        with httpx.Client(base_url=base, headers={"User-Agent": FIREFOX}, timeout=10) as http:
            while time.monotonic() < stop_at and not enough[0]:
                # a new connection each time: the requests spread over the workers
                status = http.post(CLICK, json=body, headers={"Connection": "close"}).status_code
                out.append((time.monotonic(), status))
                if answers is not None and next(answered) >= answers:
                    enough[0] = True
        return out

    with ThreadPoolExecutor(connections) as pool:
        return [answer for answers in pool.map(worker, range(connections)) for answer in answers]


def _most_in_any(period: float, times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + period) - i for i, t in enumerate(times)),
               default=0)


@pytest.mark.slow
def test_two_workers_share_one_limit_across_window_edges(settings, db):
    """The allowance does not grow with --workers, and no 5 s span sees more than it."""
    db.execute("INSERT INTO projects VALUES (1, 1, false, now(), NULL)")
    with service_process(settings, workers=2, ENGAGEMENT_RATE_LIMIT="20 per 5 seconds") as base:
        answers = _hammer(base, 11.5)
    admitted = [t for t, status in answers if status == 201]
    assert {status for _, status in answers} == {201, 429}
    # a small overshoot: what the workers let in during one flush's round trip (measured
    # +3 to +5 alone, +9 twice in the whole suite on 2 busy cores); per-worker counters
    # would allow 40 (two workers' 20) and let in 59 here
    t0 = min(t for t, _ in answers)
    assert _most_in_any(5.0, admitted) <= 20 + 12, str(sorted(round(t - t0, 3) for t in admitted))
    assert len(admitted) >= 30  # the window moves on: the client is let in again
    assert count(db, "project_clicks") == len(admitted)
    keys = [key for (key,) in db.execute("SELECT DISTINCT client_key FROM rate_limit_counters")]
    assert keys and all("127.0.0.1" not in key for key in keys)  # a keyed hash, not the address


@pytest.mark.slow
def test_a_minute_limit_with_two_workers_lets_in_the_limit(settings, db):
    db.execute("INSERT INTO projects VALUES (1, 1, false, now(), NULL)")
    with service_process(settings, workers=2, ENGAGEMENT_RATE_LIMIT="30/minute") as base:
        # 150 answers, well within the minute: 5 times the limit, 2.5 times per-worker counters
        answers = _hammer(base, 40.0, answers=150)
    admitted = sum(status == 201 for _, status in answers)
    # measured 31 to 34 alone, 41 once in the whole suite on 2 busy cores; per worker: 60
    assert 30 <= admitted <= 30 + 12, admitted
    assert len(answers) >= 150  # many more were sent, and refused


def test_without_the_database_each_worker_still_limits_and_never_fails(make_settings):
    from cli.dev.embedded import free_port

    settings = make_settings(rate_limit="3/minute",
                             database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    with TestClient(create_app(settings)) as client:
        statuses = [client.get("/api/v1/trending/").status_code for _ in range(5)]
    assert statuses[3:] == [429, 429]
    assert all(status in (200, 429, 503) for status in statuses), statuses
