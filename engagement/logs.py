"""How every process logs: ENGAGEMENT_LOG_FORMAT (text | json) and ENGAGEMENT_LOG_LEVEL.

Read from the environment, not from Settings: a command that cannot load its settings
still logs (and says why) in the format asked for. `engagement serve` hands uvicorn
`uvicorn_log_config()`, which each worker process applies for itself.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.config
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from engagement.settings import SettingsError

FORMATS = ("text", "json")
# uvicorn's names (it also takes `trace`, below debug).
LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING,
          "info": logging.INFO, "debug": logging.DEBUG, "trace": 5}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The ASGI scope of the request being handled, set by the service's outermost layer
# (service/fastpath/asgi.py): setting it costs a request next to nothing, and it is only
# read when a line is logged.
REQUEST_SCOPE: ContextVar[Mapping[str, Any] | None] = ContextVar("engagement_request_scope",
                                                                 default=None)
REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_MAX_CHARS = 128


def _choice(env: Mapping[str, str] | None, name: str, default: str,
            allowed: Sequence[str], what: str) -> str:
    """The variable `name`, lower-cased, `default` unless set; a SettingsError naming it if
    it is not one of `allowed`."""
    raw = (os.environ if env is None else env).get(name, "") or default
    if raw.strip().lower() not in allowed:
        raise SettingsError(f"{name}={raw!r} is not {what}; use one of {', '.join(allowed)}")
    return raw.strip().lower()


def log_format(env: Mapping[str, str] | None = None) -> str:
    """ENGAGEMENT_LOG_FORMAT, `text` unless set."""
    return _choice(env, "ENGAGEMENT_LOG_FORMAT", "text", FORMATS, "a log format")


def log_level(env: Mapping[str, str] | None = None) -> str:
    """ENGAGEMENT_LOG_LEVEL, `info` unless set."""
    return _choice(env, "ENGAGEMENT_LOG_LEVEL", "info", list(LEVELS), "a log level")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message; the request's method, path and
    X-Request-Id when logged while one is handled; the traceback as `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        scope = REQUEST_SCOPE.get()
        if scope is not None:
            line.update(request_fields(scope))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


def request_fields(scope: Mapping[str, Any]) -> dict[str, str]:
    """method, path (as sent, without the query) and request_id (X-Request-Id, if sent)."""
    raw_path = scope.get("raw_path")  # the router may have normalised `path` meanwhile
    path = raw_path.decode("latin-1") if raw_path else str(scope.get("path", ""))
    fields = {"method": str(scope.get("method", "")), "path": path}
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            fields["request_id"] = value.decode("latin-1")[:REQUEST_ID_MAX_CHARS]
            break
    return fields


def json_formatter() -> JsonFormatter:
    """The formatter of `json`; also sends Python's warnings through logging, so that
    they are JSON lines too (dictConfig builds it in every uvicorn worker)."""
    logging.captureWarnings(True)
    return JsonFormatter()


def _formatters(fmt: str) -> dict[str, dict[str, Any]]:
    if fmt == "json":
        return {"engagement": {"()": "engagement.logs.json_formatter"}}
    return {"engagement": {"format": TEXT_FORMAT}}


def logging_config(fmt: str, level: str) -> dict[str, Any]:
    """dictConfig of a process: every logger through one stderr handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": _formatters(fmt),
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "engagement",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": LEVELS[level], "handlers": ["stderr"]},
    }


def uvicorn_log_config(fmt: str, level: str) -> dict[str, Any]:
    """uvicorn's `log_config`: the process's config, plus uvicorn's loggers as uvicorn sets
    them up (its access log on stdout); as text, in uvicorn's own format."""
    config = logging_config(fmt, level)
    if fmt == "json":
        config["handlers"]["access"] = {"class": "logging.StreamHandler",
                                        "formatter": "engagement", "stream": "ext://sys.stdout"}
        uvicorn_handler = "stderr"
    else:
        from uvicorn.config import LOGGING_CONFIG

        config["formatters"].update(copy.deepcopy(LOGGING_CONFIG["formatters"]))
        config["handlers"].update(copy.deepcopy(LOGGING_CONFIG["handlers"]))
        uvicorn_handler = "default"
    config["loggers"] = {
        "uvicorn": {"handlers": [uvicorn_handler], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    }
    return config


def configure(env: Mapping[str, str] | None = None) -> None:
    """Set up this process's logging from the environment; a SettingsError if it is invalid.
    As JSON, uncaught exceptions are logged (as one line) rather than printed."""
    fmt, level = log_format(env), log_level(env)
    logging.addLevelName(LEVELS["trace"], "TRACE")
    logging.config.dictConfig(logging_config(fmt, level))
    if fmt == "json":
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("engagement").critical("uncaught %s: %s", kind.__name__, exc,
                                             exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    thread = args.thread.name if args.thread else "?"
    logging.getLogger("engagement").critical("uncaught %s in thread %s: %s",
                                             args.exc_type.__name__, thread, args.exc_value,
                                             exc_info=(args.exc_type, args.exc_value,
                                                       args.exc_traceback))
