"""What browsers need from the service: the tracking module's files and CORS."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath

from litestar import Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import CacheControlHeader
from litestar.response.file import ASGIFileResponse
from litestar.static_files import create_static_files_router

from engagement.settings import Settings

log = logging.getLogger("engagement.browser")

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static"
# Headers the tracking module sends (a preflight must allow them) or reads.
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Session-Key"]
CORS_EXPOSED_HEADERS = ["Retry-After"]
# Our own files' types, not whatever the machine's /etc/mime.types says (`.ts` is video there).
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".ts": "application/typescript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
}


def _media_type(response: ASGIFileResponse) -> ASGIFileResponse:
    """Set the content type from the served file's extension."""
    disposition = response.headers.get("content-disposition") or ""
    _, _, filename = disposition.partition("filename=")
    media_type = MEDIA_TYPES.get(PurePosixPath(filename.strip('"')).suffix)
    if media_type:
        response.headers["content-type"] = media_type
    return response


def static_files_router() -> Router:
    """/static/: tracking.js and its TypeScript declarations."""
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        name="static",
        # short: a new release of the module reaches pages within minutes
        cache_control=CacheControlHeader(public=True, max_age=300),
        after_request=_media_type,  # type: ignore[arg-type]
        include_in_schema=False,
    )


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS for the allow-listed origins (ENGAGEMENT_CORS_ORIGINS), with credentials."""
    origins = list(settings.cors_origins)
    if not origins:
        return None
    # Browsers refuse credentials with `Access-Control-Allow-Origin: *`; an explicit list (or
    # patterns like https://*.example.com) keeps cookies and bearer tokens working.
    credentials = "*" not in origins
    if not credentials:
        log.warning("ENGAGEMENT_CORS_ORIGINS contains '*': CORS requests go without credentials")
    if settings.cookie_samesite != "none" or not settings.cookie_secure:
        log.info("cross-site pages only keep the anonymous et_sid cookie with "
                 "ENGAGEMENT_COOKIE_SAMESITE=none and ENGAGEMENT_COOKIE_SECURE=true")
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
        allow_headers=CORS_REQUEST_HEADERS,
        allow_credentials=credentials,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=600,
    )
