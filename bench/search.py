"""Steps: one open-loop load step in its own process, and the search for the maximum sustained rate."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.stack import ROOT, cpu_seconds

# A step is sustained when the server keeps up with the offered rate, almost nothing fails
# and the queue does not grow: measured from the intended send time, an open-loop p99 runs
# into seconds within a step as soon as it does. 250 ms leaves room for the fsync and
# scheduling stalls of a shared 2-core machine without calling an overload sustained.
MIN_ACHIEVED_SHARE = 0.95
MAX_ERROR_SHARE = 0.001
MAX_P99_MS = 250.0
COOL_DOWN_SECONDS = 3.0


@dataclass
class Step:
    offered: float
    result: dict[str, Any]
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per component

    @property
    def achieved(self) -> float:
        return float(self.result["achieved_rate"])

    @property
    def p99(self) -> float:
        return float(self.result["latency_ms"].get("p99", float("inf")))

    @property
    def error_share(self) -> float:
        return self.result["errors"] / max(self.result["sent"], 1)

    def sustained(self) -> bool:
        return (self.achieved >= MIN_ACHIEVED_SHARE * self.offered
                and self.error_share <= MAX_ERROR_SHARE and self.p99 <= MAX_P99_MS)

    def summary(self) -> str:
        lat = self.result["latency_ms"]
        return (f"offered {self.offered:8.0f}/s achieved {self.achieved:8.0f}/s "
                f"p50 {lat.get('p50', 0):7.1f} ms p99 {lat.get('p99', 0):7.1f} ms "
                f"errors {self.result['errors']:5d} {'ok' if self.sustained() else 'FAIL'}")


def run_step(port: int, scenario: str, rate: float, *, duration: float, warmup: float,
             projects: int, watch: dict[str, int], extra: list[str] | None = None) -> Step:
    """One load step from a separate load-generator process; CPU of `watch` trees measured."""
    before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--scenario", scenario,
         "--rate", f"{rate:.1f}", "--duration", str(duration), "--warmup", str(warmup),
         "--projects", str(projects), *(extra or [])],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    result = json.loads(out)
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in watch.items()}
    cpu["loadgen"] = result["loadgen_cpu_seconds"]
    return Step(rate, result, cpu)


def find_max_rate(step: Callable[[float], Step], start: float, *, log: Callable[[str], None],
                  growth: float = 1.4, refinements: int = 3) -> tuple[Step | None, list[Step]]:
    """Step the offered rate up until a step is not sustained, then bisect; best step + all."""
    steps: list[Step] = []

    def attempt(rate: float) -> Step:
        s = step(rate)
        steps.append(s)
        log(s.summary())
        if not s.sustained():  # one retry: a neighbour's burst should not end the search
            time.sleep(COOL_DOWN_SECONDS)
            s = step(rate)
            steps.append(s)
            log(s.summary() + " (retry)")
        if not s.sustained():
            time.sleep(COOL_DOWN_SECONDS)  # let an overloaded server drain its backlog
        return s

    best: Step | None = None
    rate = start
    while True:
        s = attempt(rate)
        if s.sustained():
            best = s
            rate *= growth
            continue
        if best is None and rate > start / 16:
            rate /= 2
            continue
        break
    low = best.offered if best else 0.0
    high = rate
    for _ in range(refinements if best else 0):
        middle = (low + high) / 2
        s = attempt(middle)
        if s.sustained():
            best, low = s, middle
        else:
            high = middle
    return best, steps
