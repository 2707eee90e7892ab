"""ENGAGEMENT_LOG_FORMAT: every log line of every process one JSON object, or text by default."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.dev.embedded import free_port
from engagement.logs import REQUEST_SCOPE, JsonFormatter
from engagement.settings import Settings
from tests.processes import ROOT, process_env, stop, wait_until_healthy

JSON_LOGS = {"ENGAGEMENT_LOG_FORMAT": "json", "ENGAGEMENT_LOG_LEVEL": "info"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# Validation lets position 13 through; the database, after this rule, does not: the
# service answers 400 and logs an ERROR line for the request (service/errors.py).
REFUSE_POSITION_13 = """
    ALTER TABLE project_clicks DROP CONSTRAINT project_clicks_position_check;
    ALTER TABLE project_clicks ADD CONSTRAINT project_clicks_position_check
        CHECK (position >= 0 AND position <> 13);
"""


def json_lines(*outputs: Path | str) -> list[dict[str, Any]]:
    """Every non-empty line of the outputs, each of which must be one JSON log object."""
    lines = []
    for output in outputs:
        text = output.read_text() if isinstance(output, Path) else output
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                raise AssertionError(f"not a JSON line: {line!r}") from None
            assert isinstance(entry, dict), line
            assert {"time", "level", "logger", "message"} <= entry.keys(), line
            assert TIME.match(entry["time"]), line
            lines.append(entry)
    return lines


@contextmanager
def engagement(args: list[str], settings: Settings, tmp_path: Path,
               **env: str) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """`engagement ARGS` with stdout and stderr in files; stopped (SIGTERM) after."""
    out, err = tmp_path / f"{args[0]}.out", tmp_path / f"{args[0]}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT,
                                env=process_env(settings, **env), stdout=stdout, stderr=stderr)
        try:
            yield proc, out, err
        finally:
            stop(proc)


def run_cli(args: list[str], settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = process_env(settings, **env)
    for name in [name for name, value in env.items() if value == ""]:
        full_env.pop(name)  # "" here: not set at all
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_service_workers_and_their_uvicorn_log_json_with_the_request(settings, db, api,
                                                                     tmp_path):
    api.put_project(1)
    db.execute(REFUSE_POSITION_13)
    port = free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with engagement(args, settings, tmp_path, **JSON_LOGS) as (proc, out, err):
        base = f"http://127.0.0.1:{port}"
        wait_until_healthy(base + "/healthz", proc)
        refused = httpx.post(f"{base}/api/v1/projects/track-click/",
                             json={"project_id": 1, "source": "search", "position": 13},
                             headers={"X-Session-Key": "s", "X-Request-Id": "req-42"})
        assert refused.status_code == 400
        # both workers have started (each logs it) by the time we stop them
        deadline = time.monotonic() + 20
        while (err.read_text().count("Application startup complete") < 2
               and time.monotonic() < deadline):
            time.sleep(0.1)
    assert proc.returncode == 0
    lines = json_lines(out, err)
    messages = [(e["logger"], e["message"]) for e in lines]
    started = [m for m in messages if m[1].startswith("Started server process")]
    assert len(started) == 2, messages  # one per worker, from uvicorn in each
    assert ("uvicorn.error", "Application startup complete.") in messages
    assert any(logger == "uvicorn.error" and "Uvicorn running on" in message
               for logger, message in messages), messages  # the supervising process
    errors = [e for e in lines if e["logger"] == "engagement.errors"]
    assert len(errors) == 1, lines
    assert errors[0]["level"] == "ERROR"
    assert errors[0]["method"] == "POST"
    assert errors[0]["path"] == "/api/v1/projects/track-click/"
    assert errors[0]["request_id"] == "req-42"
    # lines logged outside a request carry no request fields
    assert all("path" not in e for e in lines if e["logger"].startswith("uvicorn"))


def test_scheduler_and_apscheduler_log_json(settings, tmp_path):
    # at debug: the scheduler keeps APScheduler's INFO lines out otherwise
    with engagement(["scheduler"], settings, tmp_path, **{**JSON_LOGS, "ENGAGEMENT_LOG_LEVEL": "debug"},
                    ENGAGEMENT_SCHEDULER_PORT="0", ENGAGEMENT_TRENDING_INTERVAL_SECONDS="1",
                    ENGAGEMENT_LEADER_POLL_SECONDS="0.5") as (proc, out, err):
        deadline = time.monotonic() + 20
        while "job compute-trending ok" not in err.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert proc.returncode == 0
    lines = json_lines(out, err)
    loggers = {e["logger"] for e in lines}
    assert {"engagement.scheduler", "engagement.jobs"} <= loggers, lines
    assert any(name.startswith("apscheduler") for name in loggers), loggers
    assert any(e["message"].startswith("job compute-trending ok") for e in lines)
    assert lines[-1]["message"] == "scheduler stopped"


def test_cli_command_logs_json_on_stderr(settings):
    done = run_cli(["migrate"], settings, **JSON_LOGS)
    assert done.returncode == 0, done.stderr
    [line] = json_lines(done.stderr)  # the one-line summary
    assert line["logger"] == "engagement.migrate"
    assert line["message"].startswith("migrations: 0 applied now")
    assert done.stdout.startswith("migrated; profile=")  # the command's answer, not a log line
    # at debug, yoyo's own lines too
    done = run_cli(["migrate"], settings, **{**JSON_LOGS, "ENGAGEMENT_LOG_LEVEL": "debug"})
    assert done.returncode == 0, done.stderr
    assert {"yoyo.migrations", "engagement.migrate"} <= {e["logger"] for e in json_lines(done.stderr)}


def test_a_failing_command_says_why_in_one_json_line(settings):
    nowhere = replace(settings, database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    done = run_cli(["migrate"], nowhere, **JSON_LOGS)
    assert done.returncode == 1
    [line] = json_lines(done.stderr)
    assert line["level"] == "ERROR" and line["logger"] == "engagement.cli"
    assert "is not reachable" in line["message"]
    done = run_cli(["run-job", "no-such-job"], settings, **JSON_LOGS)
    assert done.returncode == 2
    [line] = json_lines(done.stderr)
    assert line["message"].startswith("unknown job 'no-such-job'; the jobs:")


def test_an_uncaught_exception_is_one_json_line_with_its_traceback(settings):
    crash = "from engagement import logs; logs.configure(); raise OSError('disk on fire')"
    done = subprocess.run([sys.executable, "-c", crash], cwd=ROOT, capture_output=True, text=True,
                          env=process_env(settings, **JSON_LOGS), timeout=60)
    assert done.returncode == 1
    [line] = json_lines(done.stderr)
    assert line["level"] == "CRITICAL"
    assert line["message"].startswith("uncaught OSError")
    assert "Traceback (most recent call last)" in line["exc_info"]
    assert "disk on fire" in line["exc_info"]


def test_text_stays_the_default(settings):
    done = run_cli(["migrate"], settings, ENGAGEMENT_LOG_FORMAT="", ENGAGEMENT_LOG_LEVEL="info")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO engagement\.migrate: "
                     r"migrations: 0 applied now", done.stderr, re.MULTILINE), done.stderr
    assert "{" not in done.stderr


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "1"], ["scheduler"]])
def test_an_invalid_log_format_is_a_clean_error(settings, command):
    done = run_cli(command, settings, ENGAGEMENT_LOG_FORMAT="yaml")
    assert done.returncode == 2
    assert done.stderr == ("engagement: ENGAGEMENT_LOG_FORMAT='yaml' is not a log format; "
                           "use one of text, json\n")


def test_an_invalid_log_level_is_a_clean_error(settings):
    done = run_cli(["migrate"], settings, ENGAGEMENT_LOG_LEVEL="loud")
    assert done.returncode == 2
    assert "ENGAGEMENT_LOG_LEVEL='loud' is not a log level" in done.stderr
    assert "Traceback" not in done.stderr


def test_json_line_of_an_exception_in_a_request_holds_traceback_and_request():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    token = REQUEST_SCOPE.set({"type": "http", "method": "GET", "path": "/api/v1/trending/",
                               "query_string": b"limit=5", "headers": []})
    try:
        try:
            raise ValueError("boom\non two lines")
        except ValueError:
            logger.exception("unhandled error on %s", "GET /api/v1/trending/")
    finally:
        REQUEST_SCOPE.reset(token)
        logger.removeHandler(handler)
    [line] = json_lines(stream.getvalue())
    assert line["level"] == "ERROR" and line["logger"] == "tests.logs"
    assert line["message"] == "unhandled error on GET /api/v1/trending/"
    assert line["exc_info"].endswith("ValueError: boom\non two lines")
    assert (line["method"], line["path"]) == ("GET", "/api/v1/trending/")
    assert "request_id" not in line


def test_a_flush_logs_without_the_request_that_started_it(settings, db):
    """A writer's flush serves a batch of many requests: its lines name none of them."""
    from engagement.db.pool import make_pool
    from service.tracking.store import ClickEvent, flush_clicks
    from service.tracking.writer import BatchWriter

    db.execute("INSERT INTO projects VALUES (1, 1, false, now(), NULL)")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs.flush")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def flush(conn, events):  # type: ignore[no-untyped-def]
        logger.info("flushing %d", len(events))
        return await flush_clicks(conn, events)

    async def request() -> list[bool]:
        pool = make_pool(settings, min_size=1, max_size=1, autocommit=True)
        await pool.open(wait=True)
        try:
            writer = BatchWriter(pool, flush, max_batch=10, concurrency=1, name="clicks")
            REQUEST_SCOPE.set({"type": "http", "method": "POST", "headers": [],
                               "path": "/api/v1/projects/track-click/"})
            logger.info("handling")
            written = await writer.write([ClickEvent(1, None, "s1", "search", 1)])
            return written.results
        finally:
            await pool.close()

    try:
        assert asyncio.run(request()) == [True]
    finally:
        logger.removeHandler(handler)
    handling, flushing = json_lines(stream.getvalue())
    assert handling["message"] == "handling" and handling["path"] == "/api/v1/projects/track-click/"
    assert flushing["message"] == "flushing 1" and "path" not in flushing, flushing
