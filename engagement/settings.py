"""Settings read from the environment: DATABASE_URL, ENGAGEMENT_* (see README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

REQUIRED = ("DATABASE_URL", "ENGAGEMENT_JWT_SECRET", "ENGAGEMENT_SERVICE_TOKEN",
            "ENGAGEMENT_SESSION_SECRET")


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    jwt_secret: str
    service_token: str
    session_secret: str

    # HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_max_body_bytes: int = 64 * 1024
    cookie_secure: bool = False
    cookie_samesite: str = "lax"
    cors_origins: tuple[str, ...] = ()
    demo_page: bool = False

    # Abuse and overload (SECURITY.md)
    rate_limit: str = "50/second;1000/minute"  # per client address, service-wide; "" = off
    trusted_proxies: tuple[str, ...] = ()  # peers (IPs, CIDRs) whose X-Forwarded-For is believed
    # Anonymous views of one project one network fingerprint (address + User-Agent) records
    # per dedup window, whatever session keys it sends; 0 = no cap.
    views_per_fingerprint: int = 3
    bot_filter: str = "crawlers"  # crawlers | all | off
    security_headers: bool = True
    # `engagement serve`'s own HTTP reading (service/fastpath/protocol.py): the request line and
    # headers together, and how long a request may take to arrive from its first byte.
    max_header_bytes: int = 16 * 1024
    request_read_timeout_seconds: float = 10.0

    # Database
    pool_min_size: int = 2
    pool_max_size: int = 8
    pool_timeout_seconds: float = 2.0
    write_batch_max: int = 1000
    # Flushes in flight per writer and worker. One: requests arriving during a flush go out
    # together in the next, so batches grow with load (bench: less CPU a request and a lower
    # p99 than 2 or 4 on 2 cores; README 'Performance').
    write_concurrency: int = 1
    write_queue_max: int = 2000  # track requests waiting per worker; beyond it: 503 at once
    write_timeout_seconds: float = 1.5  # longest a track request waits for the database
    idempotency_ttl_seconds: int = 86_400

    # Ingest rules
    view_dedup_seconds: float = 300.0
    import_max_items: int = 10_000

    # Storage
    chunk_interval_days: int = 1
    raw_retention_days: int = 90
    compress_after_days: int = 7

    # Trending
    trending_recent_hours: int = 24
    trending_previous_hours: int = 48
    trending_like_weight: float = 0.7
    trending_view_weight: float = 0.3
    trending_recency_per_day: float = 0.1
    trending_interval_seconds: int = 300

    # Scheduler
    scheduler_port: int = 9100
    rollup_interval_seconds: int = 60
    prune_interval_seconds: int = 60
    retention_interval_seconds: int = 3600
    leader_poll_seconds: float = 5.0
    # On SIGTERM, running jobs get this long to finish; then they are abandoned (their
    # transactions roll back when the process exits).
    scheduler_shutdown_grace_seconds: float = 20.0


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {type(default).__name__}") from exc
    return raw


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment; stop with a message naming any missing one."""
    env = os.environ if env is None else env
    missing = [name for name in REQUIRED if not env.get(name) and _field_of(name) not in overrides]
    if missing:
        raise SettingsError(
            "missing required setting(s): " + ", ".join(missing)
            + " (set them in the environment; see README 'Configuration')"
        )
    values: dict[str, Any] = {
        "database_url": env.get("DATABASE_URL", ""),
        "jwt_secret": env.get("ENGAGEMENT_JWT_SECRET", ""),
        "service_token": env.get("ENGAGEMENT_SERVICE_TOKEN", ""),
        "session_secret": env.get("ENGAGEMENT_SESSION_SECRET", ""),
    }
    for f in fields(Settings):
        if f.name in values:
            continue
        env_name = "ENGAGEMENT_" + f.name.upper()
        if env_name in env:
            values[f.name] = _convert(env_name, env[env_name], f.default)
    values.update(overrides)
    settings = Settings(**values)
    _validate(settings)
    return settings


def load_database_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings for commands that only use the database (migrate, info, run-job): only
    DATABASE_URL is required; the HTTP secrets are read if set, else left empty."""
    env = os.environ if env is None else env
    unused = {_field_of(name): env.get(name, "") for name in REQUIRED if name != "DATABASE_URL"}
    return load_settings(env, **{**unused, **overrides})


def _field_of(env_name: str) -> str:
    return {"DATABASE_URL": "database_url"}.get(
        env_name, env_name.removeprefix("ENGAGEMENT_").lower()
    )


def _validate(s: Settings) -> None:
    if s.trending_previous_hours <= s.trending_recent_hours:
        raise SettingsError(
            "ENGAGEMENT_TRENDING_PREVIOUS_HOURS must be larger than ENGAGEMENT_TRENDING_RECENT_HOURS"
        )
    if s.cookie_samesite not in {"lax", "strict", "none"}:
        raise SettingsError("ENGAGEMENT_COOKIE_SAMESITE must be lax, strict or none")
    if s.bot_filter not in {"crawlers", "all", "off"}:
        raise SettingsError("ENGAGEMENT_BOT_FILTER must be crawlers, all or off")
    _validate_abuse_limits(s)


def _validate_abuse_limits(s: Settings) -> None:
    import ipaddress

    from limits import parse_many

    if s.rate_limit.strip().lower() not in {"", "off"}:
        try:
            parse_many(s.rate_limit)
        except ValueError:
            raise SettingsError(
                f"ENGAGEMENT_RATE_LIMIT={s.rate_limit!r} is not a rate such as "
                "'50/second;1000/minute' (or empty to turn it off)"
            ) from None
    for entry in s.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                f"ENGAGEMENT_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
            ) from None
    if s.views_per_fingerprint < 0:
        raise SettingsError("ENGAGEMENT_VIEWS_PER_FINGERPRINT must be 0 (no cap) or more")
    if s.max_header_bytes < 1024 or s.request_read_timeout_seconds <= 0:
        raise SettingsError("ENGAGEMENT_MAX_HEADER_BYTES must be at least 1024 and "
                            "ENGAGEMENT_REQUEST_READ_TIMEOUT_SECONDS positive")
    if s.write_timeout_seconds <= 0 or s.write_queue_max < 1:
        raise SettingsError("ENGAGEMENT_WRITE_TIMEOUT_SECONDS and ENGAGEMENT_WRITE_QUEUE_MAX "
                            "must be positive")
