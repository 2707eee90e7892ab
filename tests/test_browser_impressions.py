"""observeImpressions in Debian's headless Chromium: a real IntersectionObserver, a real service.

The demo feed page renders the cards; the test wires the client onto them as a site would.
"""

from __future__ import annotations

import pytest

from tests.e2e.chromium import exceptions, wait_until
from tests.test_browser_tracking import browser, open_demo, page, playwright, service  # noqa: F401

pytestmark = pytest.mark.slow

# Cards with at least half their area inside the viewport, as (project id, position).
HALF_VISIBLE = """
Array.from(document.querySelectorAll('#cards a.card')).filter((a) => {
  const r = a.getBoundingClientRect();
  const seen = Math.max(0, Math.min(r.bottom, innerHeight) - Math.max(r.top, 0))
             * Math.max(0, Math.min(r.right, innerWidth) - Math.max(r.left, 0));
  return r.width * r.height > 0 && seen / (r.width * r.height) >= 0.5;
}).map((a) => [Number(a.dataset.projectId), Number(a.dataset.position)])
"""


def impressions(db):  # type: ignore[no-untyped-def]
    return db.execute("SELECT project_id, source, position FROM project_impressions "
                      "ORDER BY position").fetchall()


def test_cards_seen_in_the_browser_are_reported_once_each(service, page, db):  # noqa: F811
    open_demo(page, f"{service.url}/demo/?tab=trending")
    # Short rows: the feed is taller than the window, so some cards start out of view.
    page.evaluate("document.querySelectorAll('#cards a.card').forEach("
                  "(a) => { a.style.display = 'block'; a.style.height = '160px'; }); true")
    assert page.evaluate(
        "import('/static/tracking.js').then((m) => { window.impressions = m.observeImpressions("
        "document.getElementById('cards'), { source: 'explore_trending', minVisibleMs: 300 });"
        " return true; })")
    first = {tuple(x) for x in page.evaluate(HALF_VISIBLE)}
    total = page.evaluate("document.querySelectorAll('#cards a.card').length")
    assert first and len(first) < total, "the window should show some cards, not all"
    wait_until(lambda: len(impressions(db)) >= len(first), 10, "the first screen's impressions")
    page.evaluate("new Promise((r) => setTimeout(r, 1500))")  # nothing else arrives
    assert {(p, pos) for p, _, pos in impressions(db)} == first
    assert {s for _, s, _ in impressions(db)} == {"explore_trending"}

    page.evaluate("window.scrollTo(0, document.body.scrollHeight); true")
    second = {tuple(x) for x in page.evaluate(HALF_VISIBLE)}
    assert second - first
    wait_until(lambda: len(impressions(db)) >= len(first | second), 10, "the impressions after scrolling")
    page.evaluate("window.scrollTo(0, 0); new Promise((r) => setTimeout(r, 1500))")  # back up
    rows = [(p, pos) for p, _, pos in impressions(db)]
    assert sorted(rows) == sorted(first | second)  # each card once, however often it is seen
    assert exceptions(page) == []
