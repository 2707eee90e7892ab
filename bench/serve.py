"""`make bench-serve`: the bench's system under test, left running for another load generator.

Starts what `make bench` measures (a durable PostgreSQL with the bench's settings,
`engagement migrate`, public projects 1..N, `engagement serve --workers 2` with the bench's
settings) and, beside it, the framework ceiling (bench/ceiling_app.py), then prints their
addresses and ready-made commands for wrk (bench/wrk/track.lua) and pgbench. It runs until
interrupted (Ctrl-C or SIGTERM), then prints how many events the database holds, to compare
with the 2xx answers the load generator counted, and removes everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from bench import baselines, stack

WRK_SCRIPT = stack.ROOT / "bench" / "wrk" / "track.lua"
READY = "bench-serve: ready"


def stored_events(db: stack.Database) -> dict[str, int]:
    with db.connect() as conn:
        return {table: stack.count_rows(conn, table)
                for table in ("project_clicks", "project_views")}


def instructions(service: stack.Server, ceiling: stack.Server | None, db: stack.Database,
                 pgbench_script: Path, args: argparse.Namespace) -> str:
    wrk = f"wrk -t1 -c64 -d30s -s {shlex.quote(str(WRK_SCRIPT))}"
    pgbench = shlex.join(baselines.pgbench_command(db.url, pgbench_script,
                                                   clients=args.workers, seconds=30))
    lines = [
        f"service            {service.url}  (engagement serve --workers {args.workers}, "
        "per-client rate limit off, as in make bench)",
    ]
    if ceiling is not None:
        lines.append(f"framework ceiling  {ceiling.url}  (bench/ceiling_app.py: same route, "
                     "validation and server, no database)")
    lines += [
        f"database           {db.url}",
        f"projects           1..{args.projects}, public",
        "",
        "  POST /api/v1/projects/track-click/         {\"project_id\":42,\"source\":\"search\","
        "\"position\":3}",
        "  POST /api/v1/projects/track-clicks/        {\"clicks\":[...up to 50 of those...]}",
        "  POST /api/v1/projects/{id}/track-view/     {\"source\":\"explore\"}",
        "  Give each request a browser-like User-Agent (known crawlers are answered 200",
        "  \"ignored\" and nothing is stored) and, to look like many visitors, an",
        "  X-Session-Key header that varies.",
        "",
        "wrk (Debian: apt-get install wrk; closed-loop, one JSON line at the end):",
        f"  SCENARIO=track-click PROJECTS={args.projects} {wrk} {service.url}",
    ]
    if ceiling is not None:
        lines.append(f"  SCENARIO=track-click PROJECTS={args.projects} {wrk} {ceiling.url}")
    lines += [
        f"  SCENARIO=track-view PROJECTS={args.projects} {wrk} {service.url}",
        f"  SCENARIO=track-clicks PROJECTS={args.projects} {wrk} {service.url}",
        f"pgbench (the database ceiling: the same row, one commit each, {args.workers} "
        "connections):",
        f"  {pgbench}",
        "",
        "Ctrl-C stops everything and prints the events stored (rows pgbench inserted included).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="service (and ceiling) workers")
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=8000, help="the service's port")
    parser.add_argument("--ceiling-port", type=int, default=8001,
                        help="the framework ceiling's port (0: do not start it)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    with stack.database(args.projects) as db, \
            stack.service(db, args.workers, port=args.port) as service, \
            contextlib.ExitStack() as more:
        ceiling = (more.enter_context(stack.framework_ceiling(args.workers, args.ceiling_port))
                   if args.ceiling_port else None)
        script = db.root / "pgbench-track-click.sql"
        script.write_text(baselines.pgbench_script(args.projects))
        print(instructions(service, ceiling, db, script, args), flush=True)
        print(READY, flush=True)
        stop.wait()
        stored = stored_events(db)
        print(f"bench-serve: stored {stored['project_clicks']:,} clicks and "
              f"{stored['project_views']:,} views; stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
