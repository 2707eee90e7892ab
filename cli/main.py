"""The `engagement` command line: the service, the scheduler, migrations, jobs, development."""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engagement.settings import SettingsError, load_database_settings, load_settings

if TYPE_CHECKING:
    from cli.dev.embedded import EmbeddedPostgres
    from cli.dev.instance import InstanceLock

log = logging.getLogger("engagement.cli")

DEV_DIR = Path(".engagement")
DEV_PG_PORT = 54329
DEV_SECRETS = ("ENGAGEMENT_JWT_SECRET", "ENGAGEMENT_SERVICE_TOKEN", "ENGAGEMENT_SESSION_SECRET")


def _setup_logging() -> None:
    """ENGAGEMENT_LOG_FORMAT and _LEVEL (engagement/logs.py); an invalid one stops here."""
    from engagement import logs

    try:
        logs.configure()
    except SettingsError as exc:
        print(f"engagement: {exc}", file=sys.stderr)
        sys.exit(2)


def _error(message: str) -> None:
    """A command's error: a plain line for a person, or one JSON log line in JSON mode."""
    from engagement import logs

    if logs.log_format() == "json":  # checked valid by _setup_logging
        log.error(message)
    else:
        print(message, file=sys.stderr)


class DatabaseUnreachable(RuntimeError):
    """DATABASE_URL names a server that does not answer; the message says which and why."""


def _reachable(database_url: str) -> str:
    """database_url, once a connection to it succeeds; else DatabaseUnreachable."""
    import psycopg

    try:
        psycopg.connect(database_url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        where = re.sub(r"(password=)\S+", r"\1***",
                       re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", database_url))
        reason = str(exc).strip().splitlines()[0].rpartition(": ")[2] or type(exc).__name__
        raise DatabaseUnreachable(
            f"the database at {where} is not reachable ({reason}). Start it first: "
            "`make run` for the local one, or set DATABASE_URL to a running server."
        ) from None
    return database_url


def cmd_migrate(args: argparse.Namespace) -> int:
    from engagement.db.migrations import migrate

    settings = load_database_settings()
    _reachable(settings.database_url)
    profile = migrate(settings, profile=args.profile or os.environ.get("ENGAGEMENT_PROFILE"))
    print(f"migrated; profile={profile}")
    return 0


def cmd_info(_: argparse.Namespace) -> int:
    import psycopg

    from engagement.db.profiles import detect_profile, recorded_profile

    settings = load_database_settings()
    with psycopg.connect(_reachable(settings.database_url), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        ts = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        recorded = recorded_profile(conn)
        detected = recorded or detect_profile(conn)
    print(f"postgresql: {version[0] if version else '?'}")
    print(f"timescaledb: {ts[0] if ts else 'not loaded'}")
    print(f"profile: {recorded or 'not migrated'} (detected: {detected})")
    print(f"raw retention: {settings.raw_retention_days} days; "
          f"dedup window: {settings.view_dedup_seconds:g} s")
    return 0


def _prepare_multiprocess_metrics(workers: int) -> str | None:
    """Empty the workers' metric files directory; returns it if it is ours to remove after."""
    created = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        created = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix="engagement-metrics-")
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:  # stale files from an earlier run would be summed in
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    return created


def server_options() -> dict[str, object]:
    """How uvicorn runs the service (bench/ serves its framework baseline the same way)."""
    from engagement import logs

    level = logs.log_level()
    return {
        # Each worker process sets its logging up from log_config (its own, not ours).
        "log_config": logs.uvicorn_log_config(logs.log_format(), level), "log_level": level,
        # uvloop and httptools (uvicorn[standard]): the C event loop and HTTP parser; the
        # protocol bounds header size and read time (service/fastpath/protocol.py).
        "loop": "uvloop", "http": "service.fastpath.protocol:BoundedHttpToolsProtocol",
        "access_log": False, "proxy_headers": False, "timeout_graceful_shutdown": 10,
    }


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = load_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    created = _prepare_multiprocess_metrics(workers)
    # The protocol reads its bounds from the environment, in every worker process.
    os.environ["ENGAGEMENT_MAX_HEADER_BYTES"] = str(settings.max_header_bytes)
    os.environ["ENGAGEMENT_REQUEST_READ_TIMEOUT_SECONDS"] = str(
        settings.request_read_timeout_seconds)
    try:
        # The demo page lives outside the production app (cli/dev/demo_page.py).
        app = "cli.dev.demo_page:app_from_env" if settings.demo_page else "service.app:app_from_env"
        uvicorn.run(app, factory=True, host=host, port=port,
                    workers=workers, **server_options())  # type: ignore[arg-type]
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
    return 0


def cmd_scheduler(_: argparse.Namespace) -> int:
    from scheduler.main import run_scheduler

    run_scheduler(load_settings())
    return 0


def cmd_run_job(args: argparse.Namespace) -> int:
    from engagement.db.migrations import current_profile
    from scheduler.jobs import JOBS, JobContext, run_job

    if args.name is None:
        print("the jobs (run one now: engagement run-job NAME; next to `make run`: "
              "make job JOB=NAME):\n" + _job_list())
        return 0
    if args.name not in JOBS:
        _error(f"unknown job {args.name!r}; the jobs:\n{_job_list()}")
        return 2
    settings = load_database_settings()
    profile = current_profile(_reachable(settings.database_url))
    if profile is None:
        _error("the database is not migrated; run `engagement migrate` first")
        return 1
    try:
        print(run_job(args.name, JobContext(settings, profile)))
    except Exception as exc:
        _error(f"job {args.name} failed: {exc}")
        return 1
    return 0


def _job_list() -> str:
    from scheduler.jobs import JOBS

    width = max(map(len, JOBS))
    return "\n".join(f"  {name:<{width}}  {(job.__doc__ or '').strip().splitlines()[0]}"
                     for name, job in JOBS.items())


DEV_ENV = DEV_DIR / "dev.env"
DEV_LOCK = DEV_DIR / "dev.lock"


def _read_dev_env() -> dict[str, str]:
    stored: dict[str, str] = {}
    if DEV_ENV.exists():
        for line in DEV_ENV.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                stored[key.strip()] = value.strip()
    return stored


def _write_dev_env(values: dict[str, str]) -> None:
    DEV_DIR.mkdir(exist_ok=True)
    DEV_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    DEV_ENV.chmod(0o600)


def _dev_secrets() -> dict[str, str]:
    """Secrets for the embedded default, generated once and kept in .engagement/dev.env."""
    stored = _read_dev_env()
    for key in DEV_SECRETS:
        stored.setdefault(key, secrets.token_urlsafe(32))
    _write_dev_env(stored)
    return {k: os.environ.get(k) or stored[k] for k in DEV_SECRETS}


def cmd_dev(args: argparse.Namespace) -> int:
    from cli.dev.instance import AlreadyRunning, InstanceLock

    lock = InstanceLock(DEV_LOCK)
    try:
        lock.acquire()  # before anything else: a second instance must change nothing
    except AlreadyRunning as exc:
        _error(str(exc))
        return 1
    try:
        return _run_dev(args, lock)
    finally:
        lock.release()


def _run_dev(args: argparse.Namespace, lock: InstanceLock) -> int:
    from cli.dev.embedded import EmbeddedPostgres, EmbeddedPostgresError
    from cli.dev.instance import PortInUse, check_port_free

    env = dict(os.environ)
    host = env.get("ENGAGEMENT_HOST", "127.0.0.1")
    scheduler_port = int(env.get("ENGAGEMENT_SCHEDULER_PORT", "9100"))
    service_url = f"http://127.0.0.1:{args.port}"
    lock.record(service_url=service_url)
    cluster = None
    started_cluster = False
    try:
        check_port_free(host, args.port, "the service", "choose another with --port")
        if scheduler_port:
            check_port_free(host, scheduler_port, "the scheduler's /metrics",
                            "choose another with ENGAGEMENT_SCHEDULER_PORT (0: none)")
        if not env.get("DATABASE_URL"):
            port = int(env.get("ENGAGEMENT_DEV_PG_PORT", DEV_PG_PORT))
            cluster = EmbeddedPostgres(DEV_DIR / "pgdata", port=port)
            lock.record(data_dir=str(cluster.data_dir))
            if not cluster.running:
                check_port_free("127.0.0.1", port, "the local PostgreSQL",
                                "choose another with ENGAGEMENT_DEV_PG_PORT")
            started_cluster = cluster.start()
    except (PortInUse, EmbeddedPostgresError) as exc:
        _error(f"engagement dev: {exc}")
        return 1
    try:
        if cluster is not None:
            env["DATABASE_URL"] = cluster.ensure_database("engagement")
            log.info("local PostgreSQL on 127.0.0.1:%d, data in %s (%s)", cluster.port,
                     cluster.data_dir, "started" if started_cluster else "already running")
        lock.record(database_url=env["DATABASE_URL"])
        return _serve_dev(args, env, cluster, started_cluster)
    finally:
        if cluster is not None and started_cluster and not args.keep_db:
            cluster.stop()


def _serve_dev(args: argparse.Namespace, env: dict[str, str], cluster: EmbeddedPostgres | None,
               started_cluster: bool) -> int:
    from engagement.db.migrations import migrate

    env.update(_dev_secrets())
    env.setdefault("ENGAGEMENT_DEMO_PAGE", "true")
    # Recorded so `make job JOB=...` and other commands can reach this database.
    _write_dev_env({**_read_dev_env(), "DATABASE_URL": env["DATABASE_URL"]})
    os.environ.update(env)
    profile = migrate(load_settings(), profile=env.get("ENGAGEMENT_PROFILE"))
    exe = [sys.executable, "-m", "cli.main"]
    serve = [*exe, "serve", "--port", str(args.port), "--workers", str(args.workers)]
    children = [subprocess.Popen(serve, env=env), subprocess.Popen([*exe, "scheduler"], env=env)]
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP too: a closed terminal would otherwise end this process without stopping the
    # PostgreSQL it started (pg_ctl runs it in a session of its own, so it gets no signal).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    try:
        # The banner comes once the service answers, after the children's start-up lines.
        if _wait_ready(f"http://127.0.0.1:{args.port}/readyz", children, lambda: stopping):
            print(_dev_banner(args, env, profile, cluster, started_cluster), flush=True)
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
    failed = [c.returncode for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
    if failed and not stopping:
        names = [name for name, c in zip(("service", "scheduler"), children, strict=True)
                 if c.returncode in failed]
        _error(f"engagement dev: the {' and the '.join(names)} exited (code "
               f"{', '.join(map(str, failed))}; its lines above say why); stopped")
        return 1
    return 0


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]],
                stopping: Callable[[], bool], timeout: float = 60) -> bool:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping():
        if any(c.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def _dev_banner(args: argparse.Namespace, env: dict[str, str], profile: str,
                cluster: EmbeddedPostgres | None, started_cluster: bool) -> str:
    from cli.dev.instance import postmaster_pid

    base = f"http://127.0.0.1:{args.port}"
    scheduler_port = env.get("ENGAGEMENT_SCHEDULER_PORT", "9100")
    lines = [
        "",
        f"  engagement dev is running (PID {os.getpid()}); Ctrl-C here stops it",
        "",
        f"  service        {base}   (profile {profile})",
        f"  API docs       {base}/schema",
    ]
    if env.get("ENGAGEMENT_DEMO_PAGE", "").lower() in {"1", "true", "yes", "on"}:
        lines.append(f"  demo page      {base}/demo/")
    lines.append(f"  metrics        {base}/metrics"
                 + (f", scheduler http://127.0.0.1:{scheduler_port}/metrics"
                    if scheduler_port != "0" else ""))
    lines.append(f"  DATABASE_URL   {env['DATABASE_URL']}")
    if cluster is not None:
        pg_pid = postmaster_pid(cluster.data_dir)
        owner = ("stopped with this one, unless --keep-db" if started_cluster
                 else "was already running: left running")
        lines.append(f"  data dir       {cluster.data_dir}   (PostgreSQL PID {pg_pid}; {owner})")
    lines += [
        f"  service token  {env['ENGAGEMENT_SERVICE_TOKEN']}   (also in {DEV_ENV})",
        "",
        "  In another terminal: " + (
            "`make demo` fills it with sample traffic; `make job` lists the jobs to run now."
            if Path("Makefile").exists() else
            f"`{_self_command()} demo` fills it with sample traffic."),
        "",
    ]
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    import httpx
    import psycopg

    from cli.dev.demo import DemoError, run_demo

    # Per-request INFO lines (~1,200 of them) would bury the progress and the summary.
    # The jobs' own lines repeat what the summary says.
    for name in ("httpx", "httpcore", "engagement.jobs"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Next to `make run`, its token and database are in .engagement/dev.env.
    dev = {} if os.environ.get("ENGAGEMENT_SERVICE_TOKEN") else _read_dev_env()
    token = os.environ.get("ENGAGEMENT_SERVICE_TOKEN") or dev.get("ENGAGEMENT_SERVICE_TOKEN")
    if not token:
        _error("engagement demo: set ENGAGEMENT_SERVICE_TOKEN to the service's token "
               "(next to `make run` it is read from .engagement/dev.env)")
        return 2
    database_url = os.environ.get("DATABASE_URL") or dev.get("DATABASE_URL")
    if database_url:
        _reachable(database_url)
        jobs_hint = ("make job JOB=refresh-rollups && make job JOB=compute-trending"
                     if dev.get("DATABASE_URL") and Path("Makefile").exists() else
                     " && ".join(f"DATABASE_URL={database_url} {_self_command()} run-job {job}"
                                 for job in ("refresh-rollups", "compute-trending")))
    else:
        jobs_hint = (f"`{_self_command()} run-job refresh-rollups`, then compute-trending, "
                     "with DATABASE_URL set to the service's database")
    tty = sys.stdout.isatty()
    started = time.monotonic()

    def say(line: str) -> None:
        print(("\r\033[K" if tty else "") + line, flush=True)

    def progress(line: str) -> None:  # one line, rewritten in place; nothing in a log file
        if tty:
            print("\r\033[K" + line, end="", flush=True)

    try:
        report = run_demo(args.url, token, projects=args.projects, days=args.days,
                          first_id=args.first_id, live_seconds=args.live_seconds,
                          rate=args.rate, database_url=database_url, jobs=not args.no_jobs,
                          jobs_hint=jobs_hint, seed=args.seed, log=say, progress=progress)
    except (DemoError, httpx.HTTPError, psycopg.Error) as exc:
        progress("")
        _error(f"engagement demo: {type(exc).__name__}: {exc}")
        return 1
    say(f"demo done in {time.monotonic() - started:.0f} s: {report.projects} projects; "
        f"see {args.url.rstrip('/')}/api/v1/trending/ and {args.url.rstrip('/')}/demo/")
    return 0


def _self_command() -> str:
    """How to run `engagement` again from here: its name if on PATH, else its path."""
    here = shutil.which("engagement")
    if here and Path(here).resolve() == Path(sys.argv[0]).resolve():
        return "engagement"
    if Path(sys.argv[0]).name == "engagement":
        return sys.argv[0]
    return f"{sys.executable} -m cli"


DESCRIPTION = """\
Tracks views, clicks, likes and impressions of projects and ranks what is trending.

On a laptop: `make run` (engagement dev) starts a local PostgreSQL, the service and the
scheduler; `make demo` fills them with sample traffic. In production: `engagement migrate`
once, then `engagement serve` and `engagement scheduler` (DATABASE_URL and the secrets in
the environment; see README 'Configuration'). `engagement COMMAND -h` describes each command.
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every default shown, except the empty ones (None: it comes from the environment, and
    off for a flag), which the help text itself explains."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from engagement.settings import Settings

    default = {f: Settings.__dataclass_fields__[f].default for f in ("host", "port", "workers")}
    parser = argparse.ArgumentParser(prog="engagement", description=DESCRIPTION,
                                     formatter_class=_HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, func: Callable[[argparse.Namespace], int]
                ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, formatter_class=_HelpFormatter,
                           description=textwrap.fill(summary[0].upper() + summary[1:] + "."))
        p.set_defaults(func=func)
        return p

    p = command("migrate", "apply the sql/ migrations to DATABASE_URL (idempotent; detects the "
                "profile)", cmd_migrate)
    p.add_argument("--profile", choices=["timescale", "timescale-apache", "postgres"],
                   help="force a profile on a fresh database instead of detecting it "
                        "(default: ENGAGEMENT_PROFILE, else detected)")
    p = command("serve", "run the HTTP service (needs DATABASE_URL and the three secrets)",
                cmd_serve)
    p.add_argument("--host", help=f"address to listen on (default: ENGAGEMENT_HOST, else "
                                  f"{default['host']})")
    p.add_argument("--port", type=int, help=f"port to listen on (default: ENGAGEMENT_PORT, "
                                            f"else {default['port']})")
    p.add_argument("--workers", type=int, help=f"worker processes (default: ENGAGEMENT_WORKERS, "
                                               f"else {default['workers']})")
    command("scheduler", "run the jobs on their intervals (any number may run; one is active)",
            cmd_scheduler)
    p = command("run-job", "run one job once against DATABASE_URL and exit; without a name, "
                "list the jobs", cmd_run_job)
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="compute-trending, refresh-rollups, prune-dedup or retention")
    command("info", "show the database's version, profile and key settings (needs only "
            "DATABASE_URL; read-only)", cmd_info)
    p = command("dev", "the embedded default (`make run`): a local PostgreSQL in ./.engagement, "
                "the migrations, the service and the scheduler", cmd_dev)
    p.epilog = textwrap.fill(
        f"Environment: ENGAGEMENT_DEV_PG_PORT, the local PostgreSQL's port (default {DEV_PG_PORT}); "
        "ENGAGEMENT_SCHEDULER_PORT, the scheduler's /metrics (default 9100, 0: none); "
        "DATABASE_URL, a server of yours to use instead of the local one.")
    p.add_argument("--port", type=int, default=8000, help="port of the service")
    p.add_argument("--workers", type=int, default=2, help="worker processes of the service")
    p.add_argument("--keep-db", action="store_true",
                   help="leave the local PostgreSQL running on exit (default: stop it, if this "
                        "command started it)")
    p = command("demo", "sample projects and live traffic against a running service (`make "
                "demo`)", cmd_demo)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the service")
    p.add_argument("--projects", type=int, default=12, help="sample projects to register")
    p.add_argument("--first-id", type=int, default=9001, help="id of the first sample project")
    p.add_argument("--days", type=float, default=7, help="days of history to import")
    p.add_argument("--live-seconds", type=float, default=60,
                   help="how long to send live browser traffic (0: none)")
    p.add_argument("--rate", type=float, default=20, help="live calls per second")
    p.add_argument("--seed", type=int, help="random seed, for a repeatable demo (default: none)")
    p.add_argument("--no-jobs", action="store_true",
                   help="leave rollups and trending to the scheduler even if the database is "
                        "known (default: run both jobs before showing trending)")
    return parser


def main(argv: list[str] | None = None) -> int:
    _setup_logging()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        _error(f"engagement: {exc}")
        return 2
    except DatabaseUnreachable as exc:
        _error(f"engagement: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
