"""Latency of the insights endpoints over a month of synthetic data (`make bench-insights`).

Loads `--days` days of impressions, clicks, views and likes for `--projects` projects with
INSERT ... SELECT generate_series inside PostgreSQL, brings the hourly relations up to date
(the refresh-rollups job, or the continuous aggregates on the timescale profile), starts
`engagement serve` and times every insights endpoint over HTTP. Prints a table and JSON.

    python -m bench.insights                       # embedded PostgreSQL, profile postgres
    python -m bench.insights --database-url postgresql://engagement@127.0.0.1:55439/postgres
                                                   # an existing server, e.g. with TimescaleDB

A measurement, not a test: nothing fails when an endpoint is slow, rows over --budget-ms are
only marked.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from bench import stack
from cli.dev.embedded import EmbeddedPostgres, free_port
from engagement.db.migrations import migrate
from engagement.db.queries import _NAME
from engagement.settings import Settings, load_settings
from scheduler.jobs import JobContext, run_job

ROOT = Path(__file__).resolve().parents[1]
SQL = Path(__file__).resolve().parent / "sql" / "insights.sql"
PG_SETTINGS = {"shared_buffers": "256MB", "work_mem": "32MB", "maintenance_work_mem": "256MB",
               "max_wal_size": "4GB"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _queries() -> dict[str, str]:
    parts = _NAME.split(SQL.read_text(encoding="utf-8"))
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2],
                                                                 strict=True)}


Q = _queries()


@contextmanager
def server_url(database_url: str | None) -> Iterator[str]:
    """An admin URL: the given server, or a throwaway embedded cluster."""
    if database_url:
        yield database_url
        return
    root = Path(tempfile.mkdtemp(prefix="engagement-bench-insights-"))
    os.chmod(root, 0o755)  # as root the cluster runs as `postgres`, which must reach it
    cluster = EmbeddedPostgres(root / "pgdata", durable=False, settings=PG_SETTINGS)
    cluster.start()
    try:
        yield cluster.url("postgres")
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)


def settings_for(url: str) -> Settings:
    return load_settings({
        "DATABASE_URL": url,
        "ENGAGEMENT_JWT_SECRET": secrets.token_urlsafe(32),
        "ENGAGEMENT_SERVICE_TOKEN": secrets.token_urlsafe(32),
        "ENGAGEMENT_SESSION_SECRET": secrets.token_urlsafe(32),
        "ENGAGEMENT_RATE_LIMIT": "",
    })


def load(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    """One statement per day and kind, oldest first (as the events would have arrived)."""
    conn.execute(Q["insights_seed_projects"], {"projects": args.projects})
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    per_day = {"impressions": args.impressions_per_day, "clicks": args.clicks_per_day,
               "views": args.views_per_day, "likes": args.likes_per_day}
    started = time.monotonic()
    for back in range(args.days, 0, -1):
        day = today - timedelta(days=back) + timedelta(hours=datetime.now(UTC).hour)
        for kind, count in per_day.items():
            conn.execute(Q[f"insights_seed_{kind}"],
                         {"day": day, "count": count, "projects": args.projects})
        if back % 5 == 0:
            log(f"  loaded up to {back} days ago ({time.monotonic() - started:.0f} s)")


def time_endpoints(base: str, token: str, cases: list[tuple[str, str, dict[str, str | int]]],
                   runs: int) -> list[dict[str, object]]:
    results = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as http:
        for label, path, params in cases:
            for _ in range(3):  # warm the connection pool and the plan cache
                r = http.get(path, params=params)
                r.raise_for_status()
            samples = []
            for _ in range(runs):
                t0 = time.perf_counter()
                r = http.get(path, params=params)
                samples.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
            samples.sort()
            results.append({"endpoint": label, "path": str(r.request.url.raw_path.decode()),
                            "p50_ms": round(statistics.median(samples), 1),
                            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
                            "max_ms": round(samples[-1], 1), "bytes": len(r.content)})
    return results


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=settings.database_url,
               ENGAGEMENT_JWT_SECRET=settings.jwt_secret,
               ENGAGEMENT_SERVICE_TOKEN=settings.service_token,
               ENGAGEMENT_SESSION_SECRET=settings.session_secret,
               ENGAGEMENT_RATE_LIMIT="", ENGAGEMENT_LOG_LEVEL="warning")
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("engagement serve did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", help="an existing server to create the bench database on; "
                                          "default: a throwaway embedded PostgreSQL")
    p.add_argument("--profile", choices=["postgres", "timescale-apache", "timescale"],
                   help="default: detected")
    for name, default in (("projects", 10_000), ("days", 30), ("impressions-per-day", 300_000),
                          ("clicks-per-day", 15_000), ("views-per-day", 100_000),
                          ("likes-per-day", 5_000)):
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--runs", type=int, default=30, help="timed requests per endpoint")
    p.add_argument("--budget-ms", type=float, default=200.0)
    p.add_argument("--reuse", metavar="DBNAME",
                   help="time a database an earlier --keep run loaded (no loading; kept)")
    p.add_argument("--keep", action="store_true",
                   help="keep the bench database (with --database-url; an embedded cluster goes)")
    args = p.parse_args(argv)

    with server_url(args.database_url) as admin_url:
        name = args.reuse or f"engagement_bench_insights_{uuid.uuid4().hex[:8]}"
        keep = args.keep or bool(args.reuse)
        if not args.reuse:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
        url = stack.with_dbname(admin_url, name)
        try:
            settings = settings_for(url)
            profile = migrate(settings, profile=args.profile)
            t0 = time.monotonic()
            with psycopg.connect(url, autocommit=True) as conn:
                if not args.reuse:
                    log(f"profile {profile}; loading {args.days} days for {args.projects} "
                        "projects")
                    load(conn, args)
                loaded = time.monotonic() - t0
                log(f"loaded in {loaded:.0f} s; refreshing the hourly counts")
                t1 = time.monotonic()
                run_job("refresh-rollups", JobContext(settings, profile))
                refreshed = time.monotonic() - t1
                conn.execute("VACUUM ANALYZE")
                counts = conn.execute(Q["insights_row_counts"]).fetchone()
                busiest = conn.execute(Q["insights_busiest_project"]).fetchone()
            assert counts is not None and busiest is not None
            log(f"refreshed in {refreshed:.0f} s; rows {counts}")
            month_ago = (datetime.now(UTC) - timedelta(days=args.days)).isoformat()
            typical = args.projects // 2  # the long tail
            cases: list[tuple[str, str, dict[str, str | int]]] = [
                ("ctr, one feed, 30 days", "/api/v1/insights/ctr/",
                 {"source": "explore_for_you", "from": month_ago}),
                ("ctr, all feeds, 30 days", "/api/v1/insights/ctr/", {"from": month_ago}),
                ("variants, one feed, 30 days", "/api/v1/insights/variants/",
                 {"source": "explore_for_you", "from": month_ago}),
                ("heatmap views, site, 28 d", "/api/v1/insights/heatmap/", {"kind": "views"}),
                ("heatmap clicks, site, 28 d", "/api/v1/insights/heatmap/", {"kind": "clicks"}),
                ("heatmap likes, site, 28 d", "/api/v1/insights/heatmap/", {"kind": "likes"}),
                ("heatmap views, busiest project, tz", "/api/v1/insights/heatmap/",
                 {"kind": "views", "project_id": busiest[0], "tz": "Europe/Berlin"}),
                ("retention, busiest project, 28 d", f"/api/v1/projects/{busiest[0]}/retention/",
                 {"days": 28}),
                ("retention, typical project, 28 d", f"/api/v1/projects/{typical}/retention/",
                 {"days": 28}),
            ]
            with serve(settings) as base:
                results = time_endpoints(base, settings.service_token, cases, args.runs)
        finally:
            if keep:
                log(f"kept database {name}")
            else:
                with psycopg.connect(admin_url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(f"\nprofile {profile}, {args.projects} projects, {args.days} days: "
          f"{counts[0]:,} impressions, {counts[1]:,} clicks, {counts[2]:,} views, "
          f"{counts[3]:,} likes; hourly rows: {counts[4]:,} project impressions, "
          f"{counts[5]:,} feed impressions, {counts[6]:,} project views")
    print(f"load {loaded:.0f} s, refresh {refreshed:.0f} s\n")
    print(f"{'endpoint':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for row in results:
        mark = "  over budget" if float(row["p95_ms"]) > args.budget_ms else ""  # type: ignore[arg-type]
        print(f"{row['endpoint']:40} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['max_ms']:>8}{mark}")
    print(json.dumps({"profile": profile, "projects": args.projects, "days": args.days,
                      "rows": counts, "load_seconds": round(loaded), "refresh_seconds":
                      round(refreshed), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
