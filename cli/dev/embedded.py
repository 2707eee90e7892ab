"""A local PostgreSQL cluster from the machine's binaries, for `engagement dev` and tests.

PostgreSQL refuses to run as root; when we are root the cluster is owned by and run as
the `postgres` system user (or `nobody`). It listens on 127.0.0.1 only, with trust auth.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

import psycopg

log = logging.getLogger("engagement.embedded")

SUPERUSER = "engagement"


class EmbeddedPostgresError(RuntimeError):
    pass


def find_bindir() -> Path:
    """Directory holding initdb/pg_ctl: ENGAGEMENT_PG_BINDIR, pg_config, or the newest found."""
    configured = os.environ.get("ENGAGEMENT_PG_BINDIR")
    candidates: list[str] = [configured] if configured else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                         reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise EmbeddedPostgresError(
        "no PostgreSQL server binaries found (initdb, pg_ctl). Install PostgreSQL >= 15 "
        "(Debian: apt-get install postgresql) or set ENGAGEMENT_PG_BINDIR, "
        "or point DATABASE_URL at an existing server."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _service_user() -> str | None:
    """The account to run PostgreSQL as: None for ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise EmbeddedPostgresError("running as root, but no 'postgres' or 'nobody' user to run PostgreSQL as")


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _reachable_by(user: str, directory: Path) -> bool:
    return subprocess.run(["test", "-x", str(directory)], user=user).returncode == 0


class EmbeddedPostgres:
    """One cluster in `data_dir`; start() is idempotent, stop() leaves the data."""

    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True,
                 settings: dict[str, str] | None = None) -> None:
        self.bindir = find_bindir()
        self.user = _service_user()
        self.requested_dir = Path(data_dir).absolute()
        self.data_dir = self._placement(self.requested_dir)
        self.port = port or free_port()
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "max_connections": "200",
            "timezone": "UTC",
        }
        if not durable:  # throwaway test clusters only: nothing here survives a crash
            self.settings.update({"fsync": "off", "full_page_writes": "off",
                                  "synchronous_commit": "off"})
        self.settings.update(settings or {})
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"

    def _placement(self, wanted: Path) -> Path:
        # As root the cluster belongs to another user, who must be able to reach it. A
        # checkout under a private home (mode 700) cannot be; keep the cluster in /var/tmp.
        if self.user is None:
            return wanted
        wanted.parent.mkdir(parents=True, exist_ok=True)
        if _reachable_by(self.user, wanted.parent):
            return wanted
        digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
        elsewhere = Path("/var/tmp") / f"engagement-pg-{digest}" / wanted.name
        log.info("%s is not reachable by user %s; keeping the cluster in %s",
                 wanted.parent, self.user, elsewhere)
        return elsewhere

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            user=self.user, capture_output=True, text=True, cwd="/",
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                + (f"\n--- {self.log_file} ---\n{self._log_tail()}" if self.log_file.exists() else "")
            )
        return result

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        if self.initialized:
            return
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self.user:
            _chown_tree(self.data_dir.parent, self.user)
        args = ["initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
                "-E", "UTF8", "--locale=C"]
        if not self._durable():
            args.append("--no-sync")
        self._run(*args)
        if self.requested_dir != self.data_dir and not self.requested_dir.exists():
            self.requested_dir.parent.mkdir(parents=True, exist_ok=True)
            self.requested_dir.symlink_to(self.data_dir)

    def _durable(self) -> bool:
        return self.settings.get("fsync", "on") != "off"

    @property
    def running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> bool:
        """Start the server, or adopt the one already running here; True if this started it."""
        self.init()
        if self.running:
            self.port = self._running_port()
            return False
        options = " ".join(f"-c {k}={v!s}" if v != "" else f"-c {k}=''"
                           for k, v in self.settings.items())
        options += f" -p {self.port}"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
                  "-l", str(self.log_file), "-o", options)
        return True

    def _running_port(self) -> int:
        pid_file = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return int(pid_file[3])

    def stop(self, mode: str = "fast") -> None:
        if self.initialized and self.running:
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data_dir))

    def kill(self) -> None:
        """Stop as a crash would (immediate shutdown: no checkpoint)."""
        self.stop(mode="immediate")

    def ensure_database(self, dbname: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{dbname}"')  # name is ours, not user input
        return self.url(dbname)

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir.parent if self.data_dir != self.requested_dir
                      else self.data_dir, ignore_errors=True)
