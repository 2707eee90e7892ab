"""Security headers on every response, as a `before_send` hook (it sees 404s and 405s too)."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# API answers are data, never documents: nothing in them may load, run or be framed. HTML
# pages (the OpenAPI viewer, the demo page) keep their own policy.
JSON_ONLY = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Set the headers a response does not already carry."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in ALWAYS.items():
        if name not in headers:
            headers[name] = value
    content_type = headers.get("content-type") or ""
    if content_type.startswith(("application/json", "application/problem")):
        for name, value in JSON_ONLY.items():
            if name not in headers:
                headers[name] = value
