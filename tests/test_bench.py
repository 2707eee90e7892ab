"""The benchmark's own parts: the open-loop load generator against the framework baseline app.

`make bench` is not run by the suite (it takes half an hour); this keeps its measuring
instrument honest: every request due in the window is counted once, at the offered rate,
with its latency measured from the intended send time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench.search import Step
from bench.serve import READY, WRK_SCRIPT
from cli.dev.embedded import free_port
from tests.processes import ROOT, stop, wait_until_healthy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ceiling_app() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.ceiling_app", "--port", str(port),
                             "--workers", "1"], cwd=ROOT)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield port
    finally:
        stop(proc)


def _loadgen(port: int, *args: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", "--port", str(port), *args],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_every_request_due_in_the_window_is_sent_once_and_answered(ceiling_app):
    result = _loadgen(ceiling_app, "--scenario", "framework", "--rate", "200",
                      "--duration", "1.5", "--warmup", "0.3")
    assert result["statuses"] == {"201": 300}
    assert result["errors"] == 0
    assert 180 <= result["achieved_rate"] <= 220
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < 1000
    assert Step(200, result).sustained()


def test_invalid_bodies_are_answered_and_counted_as_errors(ceiling_app):
    # track-view bodies do not fit the click route: the baseline app answers 404/400, and
    # the generator reports them as errors instead of hiding them.
    result = _loadgen(ceiling_app, "--scenario", "track-view", "--rate", "100",
                      "--duration", "1", "--warmup", "0")
    assert result["errors"] == result["sent"] == 100
    assert not any(status.startswith("2") for status in result["statuses"])
    assert not Step(100, result).sustained()


def test_bench_serve_runs_the_bench_stack_for_wrk_and_counts_what_it_stored():
    """`make bench-serve` and bench/wrk/track.lua: what an independent re-measurement uses.

    Every scenario of the wrk script must be answered 2xx by the service (the script's
    bodies are valid), and every click wrk saw acknowledged must be in the database that
    bench-serve reports on when interrupted.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is missing: install the Debian package `wrk` (make test does, as root)")
    port, ceiling_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", "--projects", "200", "--port", str(port),
         "--ceiling-port", str(ceiling_port)],
        # bench-serve starts a plain PostgreSQL of its own: a profile meant for the suite's
        # server (make test-timescale) does not apply to it.
        env={k: v for k, v in os.environ.items() if k != "ENGAGEMENT_PROFILE"},
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.strip() == READY:
                break
        assert lines and lines[-1].strip() == READY, "".join(lines)
        printed = "".join(lines)
        assert f"http://127.0.0.1:{port}" in printed and "pgbench" in printed

        def run_wrk(scenario: str, target: int) -> dict:  # type: ignore[type-arg]
            out = subprocess.run(
                [wrk, "-t1", "-c4", "-d1s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{target}"],
                env={**os.environ, "SCENARIO": scenario, "PROJECTS": "200", "BATCH": "5"},
                capture_output=True, text=True, check=True, timeout=30).stdout
            result = json.loads(out.strip().splitlines()[-1])
            assert result["requests"] > 0, out
            assert result["non_2xx_3xx"] == result["read_errors"] == result["timeouts"] == 0, out
            return result

        ceiling = run_wrk("track-click", ceiling_port)
        click = run_wrk("track-click", port)
        clicks = run_wrk("track-clicks", port)
        view = run_wrk("track-view", port)
        assert ceiling["events_per_request"] == click["events_per_request"] == 1
        assert clicks["events_per_request"] == 5
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    match = re.search(r"stored ([\d,]+) clicks and ([\d,]+) views", rest)
    assert match, rest
    stored_clicks, stored_views = (int(g.replace(",", "")) for g in match.groups())
    # Requests still in flight when wrk stopped may be stored too, never fewer than answered.
    assert stored_clicks >= click["requests"] + 5 * clicks["requests"]
    # Random (project, session) pairs: a repeat within dedup's window is rare, not impossible.
    assert stored_views >= 0.95 * view["requests"]
