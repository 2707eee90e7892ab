"""GET /: where to go from here, for a person who opened the service's address."""

from __future__ import annotations

import msgspec
from litestar import Request, get


class Index(msgspec.Struct, frozen=True):
    service: str
    links: dict[str, str]


LINKS = {
    "api_docs": "/schema",
    "openapi": "/schema/openapi.json",
    "metrics": "/metrics",
    "ready": "/readyz",
    "health": "/healthz",
    "tracker": "/static/tracking.js",
}


@get("/", operation_id="index", include_in_schema=False, cache=False)
async def index(request: Request) -> Index:
    """The service's own pages: API docs, OpenAPI document, metrics, health, the demo."""
    links = dict(LINKS)
    if request.app.state.get("demo_page"):
        links["demo"] = "/demo/"
    return Index("engagement", links)
