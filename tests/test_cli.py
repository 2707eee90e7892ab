"""The `engagement` command line as a person meets it: help, read-only commands that need only
DATABASE_URL, clean one-line errors, and `make job`. Real subprocesses."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.dev.embedded import free_port
from cli.main import build_parser
from scheduler.jobs import JOBS
from tests.processes import ROOT


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without any engagement setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ENGAGEMENT_") and k != "DATABASE_URL"}
    env.update(extra)
    return env


def engagement(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=120)


def _dead_database() -> str:
    return f"postgresql://engagement:s3cret@127.0.0.1:{free_port()}/engagement"


def test_help_describes_the_tool_and_lists_every_command():
    result = engagement("-h")
    assert result.returncode == 0
    assert "console script" not in result.stdout
    assert "Tracks views, clicks, likes and impressions" in result.stdout
    for name in ("migrate", "serve", "scheduler", "run-job", "info", "dev", "demo"):
        assert f"\n    {name}" in result.stdout


def test_every_flag_has_help_and_shows_its_default():
    subparsers = next(a for a in build_parser()._actions
                      if isinstance(a, argparse._SubParsersAction))
    for name, parser in subparsers.choices.items():
        assert parser.description, name
        shown = engagement(name, "-h").stdout
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
            if action.option_strings:  # a flag: its default, or where it comes from
                shows = f"(default: {action.default})" in " ".join(shown.split())
                assert shows or "default" in action.help, (name, action.dest)
    assert "(default: 8000)" in engagement("dev", "-h").stdout
    assert "ENGAGEMENT_PORT, else 8000" in " ".join(engagement("serve", "-h").stdout.split())


def test_info_needs_only_the_database_url(database):
    result = engagement("info", DATABASE_URL=database)
    assert result.returncode == 0, result.stderr
    assert "postgresql:" in result.stdout and "profile:" in result.stdout


def test_info_says_in_one_line_that_the_database_is_unreachable():
    url = _dead_database()
    result = engagement("info", DATABASE_URL=url)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "not reachable" in result.stderr and "make run" in result.stderr
    assert url.replace("s3cret", "***") in result.stderr and "s3cret" not in result.stderr


def test_migrate_prints_a_summary_instead_of_every_migration(fresh_server_db):
    result = engagement("migrate", DATABASE_URL=fresh_server_db)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "yoyo" not in output and "applying step" not in output
    summary = [line for line in output.splitlines() if "migrations:" in line]
    assert len(summary) == 1 and "applied now" in summary[0] and "profile" in summary[0]
    assert len(output.strip().splitlines()) <= 3
    again = engagement("migrate", DATABASE_URL=fresh_server_db)
    assert "migrations: 0 applied now" in again.stderr


def test_run_job_needs_only_the_database_url(database):
    result = engagement("run-job", "prune-dedup", DATABASE_URL=database)
    assert result.returncode == 0, result.stderr
    assert "pruned" in result.stdout


def test_run_job_without_a_name_lists_the_jobs_with_what_they_do():
    result = engagement("run-job")
    assert result.returncode == 0, result.stderr
    for name, job in JOBS.items():
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(name))
        assert (job.__doc__ or "").split(".")[0] in line


def _make_job(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # STAMP= : the virtualenv is there already; the Makefile is run from another directory.
    return subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "STAMP=",
                           f"BIN={Path(sys.executable).parent}", "job", *args],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120)


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    (tmp_path / ".engagement").mkdir()
    return tmp_path


def test_make_job_without_job_lists_the_jobs(dev_dir):
    result = _make_job(dev_dir)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in JOBS)


def test_make_job_with_the_database_down_says_to_start_make_run(dev_dir):
    url = _dead_database()
    (dev_dir / ".engagement" / "dev.env").write_text(f"DATABASE_URL={url}\n")
    result = _make_job(dev_dir, "JOB=compute-trending")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "psycopg" not in result.stderr
    assert "not reachable" in result.stderr and "make run" in result.stderr
