"""/metrics of the service: route-template labels, rejected events, multiprocess sums."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli.dev.demo import run_demo
from cli.dev.embedded import free_port
from tests.processes import scheduler_process, service_process, stop, wait_until_healthy

# ARCHITECTURE §7: every family the two /metrics endpoints must expose.
SERVICE_FAMILIES = {
    "engagement_events", "engagement_click_position",
    "engagement_http_requests", "engagement_http_request_duration_seconds",
    "engagement_database_up",
}
SCHEDULER_FAMILIES = {
    "engagement_job_runs", "engagement_job_duration_seconds",
    "engagement_job_last_success_timestamp_seconds", "engagement_trending_projects",
    "engagement_rollup_lag_seconds", "engagement_scheduler_leader", "engagement_database_up",
    "engagement_trending_runs",
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples(text).items() if n == name and wanted <= lab)


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                          capture_output=True, timeout=30)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_requests_are_labelled_by_route_template_not_path(api, client):
    api.put_project(4242)
    assert api.view(4242, "explore").status_code == 201
    text = client.get("/metrics").text
    route = "/api/v1/projects/{project_id}/track-view"
    assert value(text, "engagement_http_requests_total", path=route, status_code="201") >= 1
    assert value(text, "engagement_http_request_duration_seconds_count", path=route) >= 1
    http_labels = [lab for (name, lab) in samples(text) if name.startswith("engagement_http")]
    assert http_labels
    assert not any("4242" in v for lab in http_labels for _, v in lab)


def test_unrouted_requests_are_counted_under_one_label(client):
    """A 404 for a path no route matches is counted (scanners show), as path "other"."""
    def count() -> float:
        return value(client.get("/metrics").text, "engagement_http_requests_total",
                     path="other", status_code="404", method="GET")

    before = count()
    assert client.get("/no/such/page/12345").status_code == 404
    assert client.get("/no/such/page/67890").status_code == 404
    assert count() == before + 2
    text = client.get("/metrics").text
    assert not any("12345" in v for (name, lab) in samples(text) for _, v in lab)


@pytest.mark.parametrize(("path", "body", "kind"), [
    ("/api/v1/projects/track-click/", {"project_id": 1, "source": "feed"}, "click"),
    ("/api/v1/projects/track-clicks/", {"clicks": []}, "click"),
    ("/api/v1/projects/abc/track-view/", {"source": "explore"}, "view"),
    ("/api/v1/projects/1/track-view/", {"source": "twitter"}, "view"),
])
def test_malformed_tracking_call_counts_as_rejected(client, path, body, kind):
    def rejected() -> float:
        return value(client.get("/metrics").text, "engagement_events_total", kind=kind,
                     source="invalid", outcome="rejected")

    before = rejected()
    assert client.post(path, json=body).status_code == 400
    assert rejected() == before + 1


def test_rate_limited_tracking_call_is_rejected_as_rate_limited(make_settings):
    from litestar.testing import TestClient

    from service.app import create_app

    with TestClient(create_app(make_settings(rate_limit="1/minute"))) as limited:
        def count(source: str) -> float:
            return value(limited.get("/metrics").text, "engagement_events_total", kind="view",
                         source=source, outcome="rejected")

        before, invalid = count("rate_limited"), count("invalid")
        statuses = [limited.post("/api/v1/projects/1/track-view/", json={}).status_code
                    for _ in range(3)]
        assert statuses[-1] == 429
        assert count("rate_limited") == before + statuses.count(429)
        assert count("invalid") == invalid
        text = limited.get("/metrics").text
        # the limiter raises from inside the middleware stack: still a 429, not a 200
        assert value(text, "engagement_http_requests_total", status_code="429",
                     path="/api/v1/projects/{project_id}/track-view") >= statuses.count(429)


def test_click_on_unknown_project_is_skipped_not_rejected(api, client):
    def count(outcome: str) -> float:
        return value(client.get("/metrics").text, "engagement_events_total", kind="click",
                     outcome=outcome)

    skipped, rejected = count("skipped"), count("rejected")
    assert api.click(77_777, "search", 2).status_code == 404
    assert (count("skipped"), count("rejected")) == (skipped + 1, rejected)


def test_database_up_is_probed_at_scrape_time(client):
    assert value(client.get("/metrics").text, "engagement_database_up") == 1


def test_database_down_shows_in_metrics(make_settings):
    from litestar.testing import TestClient

    from service.app import create_app

    # Nothing listens on this port: the probe must fail fast and /metrics still answer.
    dead = make_settings(database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none",
                         pool_min_size=0, pool_timeout_seconds=0.5)
    with TestClient(create_app(dead)) as test_client:
        response = test_client.get("/metrics")
    assert response.status_code == 200
    assert value(response.text, "engagement_database_up") == 0


@pytest.mark.slow
def test_serve_removes_the_metrics_dir_it_created(settings, tmp_path):  # type: ignore[no-untyped-def]
    """With several workers and no PROMETHEUS_MULTIPROC_DIR, serve makes a temp dir for the
    workers' metric files; it goes away when serve stops (they used to pile up in /tmp)."""
    with service_process(settings, workers=2, TMPDIR=str(tmp_path)):
        assert [p.name.startswith("engagement-metrics-") for p in tmp_path.iterdir()] == [True]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_two_workers_sum_their_counters_and_pass_promtool(settings, tmp_path):
    multiproc = tmp_path / "metrics"
    with service_process(settings, workers=2, PROMETHEUS_MULTIPROC_DIR=str(multiproc)) as base:
        token = {"Authorization": f"Bearer {settings.service_token}"}
        assert httpx.put(f"{base}/api/v1/internal/projects/5", headers=token, json={
            "owner_id": 1, "is_private": False, "created_at": "2026-01-01T00:00:00Z",
        }).status_code == 201

        def view(i: int) -> int:
            # A fresh connection per call so the kernel spreads them over both workers.
            with httpx.Client(base_url=base) as http:
                return http.post("/api/v1/projects/5/track-view/", json={"source": "search"},
                                 headers={"X-Session-Key": f"viewer-{i}"}).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(view, range(60)))
        assert statuses == [201] * 60

        def counted(text: str) -> bool:
            return value(text, "engagement_http_requests_total", status_code="201",
                         path="/api/v1/projects/{project_id}/track-view") == 60

        # Each worker writes its updates out within metrics.FLUSH_SECONDS of making them.
        _wait_for(f"{base}/metrics", counted)
        scrapes = [httpx.get(f"{base}/metrics").text for _ in range(6)]
        pids = {p.name.split("_")[-1] for p in multiproc.glob("counter_*.db")}

    assert len(pids) >= 2, f"only {pids} served requests; cannot prove the sum"
    for text in scrapes:  # whichever worker answers, the totals are the same
        assert value(text, "engagement_events_total", kind="view", source="search",
                     outcome="recorded") == 60
        assert value(text, "engagement_http_requests_total", status_code="201",
                     path="/api/v1/projects/{project_id}/track-view") == 60
    promtool_check(scrapes[-1])


@pytest.mark.slow
def test_both_metrics_endpoints_after_demo_traffic(settings):
    scheduler_port = free_port()
    scheduler = scheduler_process(
        settings, metrics_port=scheduler_port, ENGAGEMENT_TRENDING_INTERVAL_SECONDS="1",
        ENGAGEMENT_ROLLUP_INTERVAL_SECONDS="1", ENGAGEMENT_LEADER_POLL_SECONDS="0.5",
    )
    try:
        with service_process(settings, workers=2) as base:
            report = run_demo(base, settings.service_token, projects=4, days=1,
                              live_seconds=1.5, rate=60, seed=7, log=lambda _: None)
            assert report.imported["views"] > 0 and report.live
            service_text = httpx.get(f"{base}/metrics").text
        scheduler_url = f"http://127.0.0.1:{scheduler_port}/metrics"
        wait_until_healthy(scheduler_url, scheduler)
        # 4 projects minus the private one, once a run has seen the imported history
        scheduler_text = _wait_for(
            scheduler_url, lambda text: value(text, "engagement_trending_projects") == 3)
    finally:
        stop(scheduler)

    service_families = {f.name for f in text_string_to_metric_families(service_text)}
    assert service_families >= SERVICE_FAMILIES
    for kind, outcome in [("view", "recorded"), ("view", "deduplicated"), ("click", "recorded"),
                          ("click", "rejected"), ("click", "skipped"), ("like", "recorded")]:
        assert value(service_text, "engagement_events_total", kind=kind, outcome=outcome) > 0, (
            kind, outcome)
    assert value(service_text, "engagement_click_position_count") > 0
    scheduler_families = {f.name for f in text_string_to_metric_families(scheduler_text)}
    assert scheduler_families >= SCHEDULER_FAMILIES
    runs = value(scheduler_text, "engagement_job_runs_total", job_name="compute-trending",
                 outcome="success")
    assert runs > 0
    # each successful run counts one mode, just before the run itself is counted
    modes = {mode: value(scheduler_text, "engagement_trending_runs_total", mode=mode)
             for mode in ("reused", "shifted", "rebuilt")}
    assert runs <= sum(modes.values()) <= runs + 1, (runs, modes)
    assert modes["rebuilt"] >= 1
    assert value(scheduler_text, "engagement_scheduler_leader") == 1
    for text in (service_text, scheduler_text):
        assert not re.search(r'(project_id|user_id|session)="', text)
        promtool_check(text)


def _wait_for(url: str, ready: Callable[[str], bool], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = httpx.get(url).text
        if ready(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never got ready:\n{text}")
        time.sleep(0.2)


def test_worker_shutdown_marks_its_live_gauges_dead(tmp_path, monkeypatch):
    from service import metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    stale = Path(tmp_path) / f"gauge_livesum_{os.getpid()}.db"
    stale.write_bytes(b"")
    metrics.mark_worker_stopped()
    assert not stale.exists()


def test_buffered_updates_expose_exactly_what_direct_updates_do():
    """The request path's UpdateBuffer writes the same counts, sums and buckets, only later."""
    import asyncio
    import random

    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    from service.fastpath.prometheus import FLUSH_SECONDS, UpdateBuffer

    def family(registry: CollectorRegistry) -> tuple[Counter, Histogram, Gauge]:
        return (Counter("c", "c", ["a"], registry=registry),
                Histogram("h", "h", ["a"], buckets=(0, 1, 2.5, 10), registry=registry),
                Gauge("g", "g", ["a"], registry=registry))

    direct, buffered = CollectorRegistry(), CollectorRegistry()
    (dc, dh, dg), (bc, bh, bg) = family(direct), family(buffered)
    rng = random.Random(5)
    # Values on and around every bucket bound, negative and large ones included.
    values = [rng.choice([-1, 0, 0.5, 1, 1.0000001, 2.5, 3, 10, 11, 1e9]) for _ in range(500)]
    buffer = UpdateBuffer()
    level = {"x": 0, "y": 0}

    async def record() -> None:
        for i, v in enumerate(values):
            label = "xy"[i % 2]
            dc.labels(label).inc(2)
            buffer.inc(bc, (label,), 2)
            times = 1 + i % 3  # several observations of one value at once, too
            for _ in range(times):
                dh.labels(label).observe(v)
            buffer.observe(bh, (label,), v, times)
            dg.labels(label).inc(1 if i % 3 else -1)
            level[label] += 1 if i % 3 else -1
            buffer._set(bg, (label,), level[label])  # as a collector sets a live level
        assert samples(generate_latest(buffered).decode()) != samples(generate_latest(direct).decode())
        await asyncio.sleep(FLUSH_SECONDS * 3)  # the timer writes them out

    asyncio.run(record())
    expected = {k: v for k, v in samples(generate_latest(direct).decode()).items()
                if not k[0].endswith("_created")}
    got = {k: v for k, v in samples(generate_latest(buffered).decode()).items()
           if not k[0].endswith("_created")}
    assert got == expected


def test_requests_in_progress_counts_requests_until_they_answer():
    """The in-flight gauge goes up while a request runs and back down when it answers or fails."""
    import asyncio

    from prometheus_client import REGISTRY

    from service.fastpath.asgi import HttpMetricsMiddleware
    from service.metrics import BUFFER

    def in_progress() -> float | None:
        BUFFER.flush()
        return REGISTRY.get_sample_value("engagement_http_requests_in_progress",
                                         {"method": "POST", "path": "/test/in-flight"})

    async def scenario() -> list[float | None]:
        release = asyncio.Event()

        async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
            await release.wait()
            if scope["path"] == "/fail":
                raise RuntimeError("boom")
            await send({"type": "http.response.start", "status": 201, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def send(message):  # type: ignore[no-untyped-def]
            pass

        middleware = HttpMetricsMiddleware(inner)
        scope = {"type": "http", "method": "POST", "path_template": "/test/in-flight"}
        seen = [in_progress()]
        calls = [asyncio.create_task(middleware({**scope, "path": p}, None, send))
                 for p in ("/ok", "/ok", "/fail")]
        await asyncio.sleep(0)
        seen.append(in_progress())
        release.set()
        await asyncio.gather(*calls, return_exceptions=True)
        seen.append(in_progress())
        return seen

    before, during, after = asyncio.run(scenario())
    assert before is None  # no request on this route yet
    assert during == 3
    assert after == 0  # a sample, not a missing series


def test_a_route_answered_between_flushes_shows_zero_in_flight(client):
    assert client.get("/healthz").status_code == 200
    text = client.get("/metrics").text
    assert value(text, "engagement_http_requests_in_progress", path="/healthz") == 0
    assert any(name == "engagement_http_requests_in_progress" and ("path", "/healthz") in lab
               for name, lab in samples(text))


EXOTIC_METHODS = ["PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH",
                  "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
                  "UNSUBSCRIBE", "PURGE", "LINK", "UNLINK", "BREW", "XYZZY", "get", "Post"]


def test_exotic_methods_share_one_method_label(client):
    """Each method a parser passes on must not add series: they are all `other`."""
    def http_series() -> set[tuple[str, frozenset[tuple[str, str]]]]:
        return {key for key in samples(client.get("/metrics").text)
                if key[0].startswith("engagement_http")}

    for method in ("GET", "POST"):  # the standard ones exist before the count
        client.request(method, "/no/such/page")
        client.request(method, "/api/v1/projects/1/track-view/")
    client.request("PROPFIND", "/no/such/page")
    client.request("PROPFIND", "/api/v1/projects/1/track-view/")
    before = http_series()
    for i, method in enumerate(EXOTIC_METHODS):
        assert client.request(method, f"/no/such/page/{i}").status_code < 500
        assert client.request(method, "/api/v1/projects/1/track-view/").status_code < 500
    after = http_series()
    assert after == before
    methods = {dict(labels).get("method") for _, labels in after} - {None}
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT",
                       "TRACE", "other"}
