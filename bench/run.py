"""`make bench`: ingest and trending figures, each next to a baseline measured in the same run."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import sys
import time
from dataclasses import asdict
from typing import Any

from bench import baselines, report, soak, stack, trending
from bench.search import Step, find_max_rate, run_step

RESULTS = stack.ROOT / "bench-results"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _step_dict(s: Step | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"offered": s.offered, "sustained": s.sustained(), **s.result, "cpu_seconds": s.cpu}


def settle(db: stack.Database) -> None:
    """Vacuum and analyze now, between phases, what the last phase's rows left to do.

    The COPY baseline adds most of a million rows; autovacuum then woke up in the middle of
    the service's search and its I/O stalled commits for seconds (480 timeouts in one
    step). Each phase should pay for its own work only.
    """
    started = time.perf_counter()
    with db.connect() as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")
    log(f"vacuum, analyze and checkpoint between phases: {time.perf_counter() - started:.1f} s")


def ingest(args: argparse.Namespace, out: dict[str, Any]) -> None:
    workers = args.workers
    # The service writes clicks through write_concurrency connections per worker: pgbench
    # gets as many, each committing its own row (the service may share commits).
    connections = workers * args.write_concurrency
    with stack.database(args.projects) as db:

        def searcher(port: int, scenario: str, watch: dict[str, int],
                     extra: list[str] | None = None):  # type: ignore[no-untyped-def]
            def step(rate: float) -> Step:
                return run_step(port, scenario, rate, duration=args.step_seconds,
                                warmup=args.warmup_seconds, projects=args.projects,
                                watch=watch, extra=extra)
            return step

        def measure_baselines(start_rate: float) -> dict[str, Any]:
            found: dict[str, Any] = {}
            log(f"database ceiling: pgbench, {connections} connections")
            found["database"] = asdict(baselines.pgbench_inserts(
                db.url, clients=connections, seconds=args.baseline_seconds,
                projects=args.projects))
            log(f"  {found['database']['rate']:.0f} inserts/s")
            log("bulk ceiling: COPY")
            found["bulk"] = asdict(baselines.copy_rows(
                db.url, connections=args.copy_connections, rows_per_copy=args.copy_rows,
                seconds=args.baseline_seconds, projects=args.projects))
            log(f"  {found['bulk']['rate']:.0f} rows/s")
            with stack.framework_ceiling(workers) as server:
                log(f"framework ceiling: bench/ceiling_app.py, {workers} workers")
                best, steps = find_max_rate(
                    searcher(server.port, "framework", {"server": server.proc.pid}),
                    start_rate, log=log)
                found["framework"] = {"best": _step_dict(best),
                                      "steps": [_step_dict(s) for s in steps]}
            return found

        # Baselines before and after the service's runs; the higher of the two counts, so a
        # quiet moment that flatters one side cannot flatter the ratio.
        before = measure_baselines(args.start_rate)
        settle(db)
        scenarios: dict[str, Any] = {}
        out["scenarios"] = scenarios
        settings = {"pool_max_size": str(args.pool_max_size),
                    "write_concurrency": str(args.write_concurrency),
                    "write_batch_max": str(args.write_batch_max)}
        with stack.service(db, workers, settings) as server:
            watch = {"service": server.proc.pid, "postgres": db.postmaster_pid}
            plan = [("track-click", args.start_rate, None),
                    ("track-view", args.start_rate, None),
                    ("track-clicks", args.start_rate / 10, ["--batch", "50"])]
            for scenario, start, extra in plan:
                if args.only and scenario not in args.only:
                    continue
                if scenarios:  # the previous scenario's rows are not this one's work
                    settle(db)
                log(f"{scenario}: engagement serve --workers {workers}")
                best, steps = find_max_rate(searcher(server.port, scenario, watch, extra),
                                            start, log=log)
                scenarios[scenario] = {"best": _step_dict(best),
                                       "steps": [_step_dict(s) for s in steps]}
            click_best = scenarios.get("track-click", {}).get("best")
            if click_best:
                half = click_best["offered"] / 2
                settle(db)  # the batch scenario's millions of rows are not this step's work
                log(f"latency at half the maximum rate ({half:.0f}/s), {args.latency_seconds:g} s")
                s = run_step(server.port, "track-click", half, duration=args.latency_seconds,
                             warmup=args.warmup_seconds, projects=args.projects, watch=watch)
                log("  " + s.summary())
                out["latency_at_half"] = _step_dict(s)
                if args.soak_seconds > 0:
                    rate = click_best["offered"] * 0.7
                    log(f"soak: track-click at 70% of the maximum ({rate:.0f}/s) for "
                        f"{args.soak_seconds:g} s")
                    out["soak"] = soak.run(server, rate, args.soak_seconds, args.projects, log)
        fw_before = (before["framework"]["best"] or {}).get("offered", args.start_rate)
        settle(db)
        after = measure_baselines(max(fw_before * 0.6, 100.0))
        out["baselines"] = {"before": before, "after": after}
        out["database_ceiling"] = max(before["database"], after["database"],
                                      key=lambda b: b["rate"])
        out["bulk_ceiling"] = max(before["bulk"], after["bulk"], key=lambda b: b["rate"])
        scenarios["framework"] = max(
            before["framework"], after["framework"],
            key=lambda f: (f["best"] or {}).get("offered", 0.0))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    numbers: tuple[tuple[str, float, str | None], ...] = (
        ("workers", 2, "service (and baseline) workers"),
        ("pool-max-size", 8, None), ("write-concurrency", 1, None),
        ("write-batch-max", 1000, None), ("projects", 10_000, "projects the traffic hits"),
        ("start-rate", 500.0, None), ("step-seconds", 4.0, None), ("warmup-seconds", 1.5, None),
        ("baseline-seconds", 8.0, None), ("latency-seconds", 10.0, None),
        ("copy-rows", 1000, "rows per COPY (bulk ceiling)"), ("copy-connections", 2, None),
        ("soak-seconds", 60.0, None),
    )
    for name, default, text in numbers:
        p.add_argument(f"--{name}", type=type(default), default=default, help=text)
    p.add_argument("--trending-scales", default="10000,100000",
                   help="comma-separated project counts for the trending job")
    p.add_argument("--trending-raw-scales", default="10000",
                   help="scales at which the raw-events formula is also timed")
    p.add_argument("--database-url",
                   help="a server with TimescaleDB Community preloaded: the trending job is also "
                        "measured there, on the timescale profile, in a database of its own")
    p.add_argument("--trending-timescale-scales", default="10000",
                   help="project counts for the trending job on --database-url (raw events are "
                        "generated for each: ~2,300 per project)")
    p.add_argument("--only", nargs="*", help="ingest scenarios to run (default: all)")
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--skip-trending", action="store_true")
    args = p.parse_args(argv)
    # A TERM (Ctrl-C from make, a CI timeout) unwinds the stack: clusters and servers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = dt.datetime.now(dt.UTC)
    out: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()},
        "settings": {k: v for k, v in vars(args).items()},
    }
    if not args.skip_ingest:
        ingest(args, out)
    if not args.skip_trending:
        out["trending"] = trending.run(
            [int(x) for x in args.trending_scales.split(",") if x],
            {int(x) for x in args.trending_raw_scales.split(",") if x}, log,
            timescale_url=args.database_url,
            timescale_scales=[int(x) for x in args.trending_timescale_scales.split(",") if x])
    out["machine"]["load_average_at_end"] = os.getloadavg()
    out["summary"] = report.summarize(out)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{started.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2, default=str))
    (RESULTS / "latest.json").write_text(path.read_text())
    print(report.table(out["summary"]))
    print(f"\nfull results: {path.relative_to(stack.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
