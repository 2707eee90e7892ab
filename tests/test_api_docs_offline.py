"""/schema in Debian's headless Chromium with every address but the service's refused: the
API docs must render from the service's own files (service/vendor/redoc)."""

from __future__ import annotations

import pytest

from tests.e2e.chromium import wait_for
from tests.test_browser_tracking import browser, page, playwright, service  # noqa: F401

pytestmark = pytest.mark.slow


def test_the_api_docs_render_with_no_network_but_the_service(service, page):  # noqa: F811
    elsewhere: list[str] = []

    def only_the_service(route):  # type: ignore[no-untyped-def]
        if route.request.url.startswith(service.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_service)
    page.goto(f"{service.url}/schema")
    wait_for(page, "document.body.innerText.includes('/api/v1/projects/track-click')", 20,
             "ReDoc to render the operations")
    text = page.evaluate("document.body.innerText")
    for operation in ("TrackView", "TrackClick", "RecordLike", "/api/v1/trending"):
        assert operation in text
    # Not even ReDoc's sidebar badge, an <img> from its CDN built into the bundle: the page's
    # Content-Security-Policy keeps the browser from asking for it.
    assert elsewhere == [], elsewhere
