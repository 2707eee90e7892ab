"""The benchmark's own parts: the open-loop load generator against the framework baseline app.

`make bench` is not run by the suite (it takes half an hour); this keeps its measuring
instrument honest: every request due in the window is counted once, at the offered rate,
with its latency measured from the intended send time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench.search import Step
from service.embedded import free_port
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
