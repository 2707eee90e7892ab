"""Soak: a long constant-rate run while the service's memory (all worker processes) is sampled."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.search import MAX_ERROR_SHARE
from bench.stack import ROOT, Server, rss_bytes

SAMPLE_SECONDS = 5.0
WARM_SHARE = 0.2  # memory is compared from the end of the first fifth on: caches are warm
FLAT_WITHIN = 0.10


def run(server: Server, rate: float, seconds: float, projects: int,
        log: Callable[[str], None]) -> dict[str, Any]:
    gen = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", "--port", str(server.port),
         "--scenario", "track-click", "--rate", f"{rate:.1f}", "--duration", str(seconds),
         "--warmup", "0", "--projects", str(projects)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while gen.poll() is None:
        samples.append((time.monotonic() - started, rss_bytes(server.proc.pid)))
        time.sleep(SAMPLE_SECONDS)
    out, _ = gen.communicate()
    result = json.loads(out)
    warm = [rss for t, rss in samples if t >= seconds * WARM_SHARE and t <= seconds]
    baseline = warm[0] if warm else samples[-1][1]
    peak = max(warm) if warm else baseline
    final = warm[-1] if warm else baseline
    growth = (peak - baseline) / baseline
    errors = result["errors"]
    log(f"  rss {baseline / 2**20:.0f} MiB after warm-up, peak {peak / 2**20:.0f} MiB, "
        f"end {final / 2**20:.0f} MiB ({growth:+.1%}); errors {errors}; "
        f"achieved {result['achieved_rate']:.0f}/s; p99 {result['latency_ms'].get('p99', 0):.1f} ms")
    return {
        "rate": rate, "seconds": seconds, "result": result,
        "rss_samples": [(round(t, 1), rss) for t, rss in samples],
        "rss_after_warmup": baseline, "rss_peak": peak, "rss_end": final,
        "rss_growth": growth, "memory_flat": growth <= FLAT_WITHIN,
        "zero_errors": errors == 0, "error_share_ok": errors / max(result["sent"], 1) <= MAX_ERROR_SHARE,
    }
