"""Security headers on every response (the app's outermost layer calls this for each one)."""

from __future__ import annotations

from litestar.types import HTTPResponseStartEvent

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# API answers are data, never documents: nothing in them may load, run or be framed.
JSON_ONLY = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# HTML pages (the OpenAPI viewer, the demo page) run their own scripts and styles, but load
# pictures only from this service: ReDoc's bundle builds in an <img> from its CDN (its
# "API docs by Redocly" badge), which this keeps the browser from requesting at all.
HTML_ONLY = {
    "Content-Security-Policy": "img-src 'self' data:; frame-ancestors 'none'",
}


_ALWAYS_RAW = [(name.lower().encode(), value.encode()) for name, value in ALWAYS.items()]
_JSON_ONLY_RAW = [(name.lower().encode(), value.encode()) for name, value in JSON_ONLY.items()]
_HTML_ONLY_RAW = [(name.lower().encode(), value.encode()) for name, value in HTML_ONLY.items()]
_DATA_TYPES = (b"application/json", b"application/problem")


def add_security_headers(message: HTTPResponseStartEvent) -> None:
    """Set the headers a response's start message does not already carry.

    On the raw header list, in one pass: this runs on every tracking call, and litestar's
    MutableScopeHeaders searched the whole list once per header checked.
    """
    headers = message.get("headers")
    if not isinstance(headers, list):
        headers = message["headers"] = list(headers or ())
    present = set()
    content_type = b""
    for name, value in headers:
        name = name.lower()
        present.add(name)
        if name == b"content-type":
            content_type = value
    headers.extend(h for h in _ALWAYS_RAW if h[0] not in present)
    if content_type.startswith(_DATA_TYPES):
        headers.extend(h for h in _JSON_ONLY_RAW if h[0] not in present)
    elif content_type.startswith(b"text/html"):
        headers.extend(h for h in _HTML_ONLY_RAW if h[0] not in present)
