"""One `engagement dev` per directory: a lock file held while it runs, naming it to others.

The lock is an flock on .engagement/dev.lock, so the kernel releases it when the process
ends however it ends (no stale PID to clean up); the file's JSON says who holds it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class AlreadyRunning(RuntimeError):
    """Another `engagement dev` holds the lock; the message names it."""


class PortInUse(RuntimeError):
    """A port `engagement dev` needs is taken by another program."""


class InstanceLock:
    """The lock of `engagement dev` in one directory; record() adds what the instance serves."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.info: dict[str, Any] = {}

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder; changes nothing else."""
        self.path.parent.mkdir(exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise AlreadyRunning(describe_holder(self.path)) from None
        self.fd = fd
        self.record(pid=os.getpid(), started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))

    def record(self, **info: Any) -> None:
        assert self.fd is not None
        self.info.update(info)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(self.info, indent=1).encode() + b"\n", 0)

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # the file stays: removing it would race a new holder
            os.close(self.fd)
            self.fd = None


def describe_holder(path: Path) -> str:
    """What the running instance wrote in its lock file, and its PostgreSQL's postmaster.pid."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    lines = [f"engagement dev is already running in this directory "
             f"(PID {info.get('pid', '?')}, since {info.get('started', '?')})"]
    if info.get("service_url"):
        lines.append(f"  service       {info['service_url']}")
    lines.append(f"  DATABASE_URL  {info.get('database_url', '(still starting)')}")
    if info.get("data_dir"):
        postgres = postmaster_pid(Path(info["data_dir"]))
        lines.append(f"  data dir      {info['data_dir']}" + (
            f"   (PostgreSQL PID {postgres}, from its postmaster.pid)" if postgres else ""))
    lines.append(f"Nothing was started or changed. Use that one, or stop it first "
                 f"(Ctrl-C in its terminal, or kill {info.get('pid', '<PID>')}).")
    return "\n".join(lines)


def postmaster_pid(data_dir: Path) -> int | None:
    """The PID PostgreSQL wrote in data_dir/postmaster.pid (None when it is not there)."""
    try:
        first = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first)
    except (OSError, ValueError):
        return None


def check_port_free(host: str, port: int, what: str, how_to_change: str) -> None:
    """Raise PortInUse if something listens on host:port (as uvicorn binds: SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"port {port} on {host}, for {what}, is in use by another program "
                            f"({exc.strerror}); {how_to_change}") from None
