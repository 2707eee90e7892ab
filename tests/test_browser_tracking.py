"""End to end in Debian's headless Chromium: the demo page, tracking.js, a real service process.

The service runs as `engagement serve` against the test's database; the browser is driven
by Playwright with Debian's Chromium (tests/e2e/chromium.py). Rows are read straight from
PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.conftest import TEST_SECRETS
from tests.e2e.chromium import chromium_path, exceptions, launch, new_page, wait_for, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# The bot filter ignores HeadlessChrome, as it should; these tests play a person's browser.
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Safari/537.36")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`engagement serve` in a subprocess, stoppable and restartable on the same port."""

    def __init__(self, database_url: str, port: int | None = None, **env: str) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **TEST_SECRETS, "DATABASE_URL": database_url,
                    "ENGAGEMENT_DEMO_PAGE": "true", "ENGAGEMENT_LOG_LEVEL": "warning", **env}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log = Path(tempfile.mkstemp(prefix="e2e-service-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the service did not get ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _chromium() -> str:
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is missing: install the Debian package `chromium` "
                    "(listed in scripts/system-packages.txt; `make test` installs it)")
    return executable


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    _chromium()  # skip before starting Playwright's driver
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = launch(playwright, _chromium(), user_agent=USER_AGENT)
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    p = new_page(browser, user_agent=USER_AGENT)
    yield p
    p.context.close()


def _serve(database: str, port: int | None = None, **env: str) -> Iterator[Service]:
    svc = Service(database, port, **env)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
        svc.log.unlink(missing_ok=True)


@pytest.fixture
def service(database: str) -> Iterator[Service]:
    yield from _serve(database)


def clicks(db):  # type: ignore[no-untyped-def]
    return db.execute("SELECT project_id, source, position FROM project_clicks "
                      "ORDER BY created_at, position").fetchall()


def views(db):  # type: ignore[no-untyped-def]
    return db.execute("SELECT project_id, source FROM project_views ORDER BY created_at").fetchall()


def open_demo(page: Page, url: str) -> None:
    """Load a demo page and wait until its script has rendered it and wired the handlers."""
    page.goto(url)
    wait_for(page, "document.body.dataset.ready === 'true'", what=f"{url} to be ready")


def card_id(page: Page, list_id: str, position: int) -> int:
    selector = f"#{list_id} li:nth-child({position + 1}) a.card"
    return int(wait_for(page, f"document.querySelector('{selector}')?.dataset.projectId"))


def click_card(page: Page, list_id: str, position: int) -> int:
    project_id = card_id(page, list_id, position)
    page.click(f"#{list_id} li:nth-child({position + 1}) a.card")
    return project_id


def open_project_by(page: Page, list_id: str, position: int) -> int:
    """Click a card and wait for the project page it leads to, with its view answered."""
    project_id = click_card(page, list_id, position)
    wait_for(page, f"location.pathname === '/demo/projects/{project_id}/' "
             "&& document.body.dataset.viewStatus", what=f"project {project_id}'s page")
    return project_id


def stay_on_page(page: Page) -> None:
    """Card clicks still run the page's handlers but do not navigate."""
    page.evaluate("document.addEventListener('click', (e) => {"
                  " if (e.target.closest('a.card')) e.preventDefault(); })")


def test_project_page_records_a_view_and_deduplicates_the_reload(service, page, db):
    open_demo(page, f"{service.url}/demo/projects/9005/")
    assert wait_for(page, "document.body.dataset.viewStatus") == "recorded"
    assert page.evaluate("document.getElementById('view-source').textContent") == "direct"
    page.reload()  # same browser, same et_sid cookie: within the 5-minute window
    assert wait_for(page, "document.body.dataset.viewStatus") == "deduplicated"
    assert views(db) == [(9005, "direct")]
    assert exceptions(page) == []


def test_card_clicks_record_source_and_position_and_the_view_its_source(service, page, db):
    open_demo(page, f"{service.url}/demo/")
    page.click("#tabs button[data-tab=trending]")
    wait_for(page, "new URL(location.href).searchParams.get('tab') === 'trending'")
    first = open_project_by(page, "cards", 2)
    # the page was left milliseconds after the click, long before the 1 s flush delay:
    # the click went out with the page (pagehide)
    wait_until(lambda: clicks(db), 10, "the click on the trending card")
    assert clicks(db) == [(first, "explore_trending", 2)]
    assert page.evaluate("document.body.dataset.viewStatus") == "recorded"
    assert views(db) == [(first, "explore")]

    second = open_project_by(page, "related", 1)
    wait_until(lambda: len(clicks(db)) == 2, 10, "the click on the related card")
    assert clicks(db)[1] == (second, "related", 1)
    assert views(db)[1] == (second, "direct")  # reached from another project page

    open_demo(page, f"{service.url}/demo/")
    page.click("#search")
    page.keyboard.insert_text("maze")
    wait_for(page, "document.querySelectorAll('#cards a.card').length === 1")
    third = open_project_by(page, "cards", 0)
    wait_until(lambda: len(clicks(db)) == 3, 10, "the click on the search result")
    assert clicks(db)[2] == (third, "search", 0)
    assert views(db)[2] == (third, "search")
    assert page.evaluate("document.getElementById('view-source').textContent") == "search"
    assert len(clicks(db)) == 3 and len(views(db)) == 3
    assert exceptions(page) == []


def test_queued_clicks_are_sent_when_the_page_is_left(service, page, db):
    open_demo(page, f"{service.url}/demo/?tab=news")
    stay_on_page(page)
    clicked = [(click_card(page, "cards", pos), "explore_news", pos) for pos in (0, 3, 5)]
    page.goto("about:blank")  # leave right away, inside the flush delay
    wait_until(lambda: len(clicks(db)) >= 3, 10, "the three clicks")
    time.sleep(0.5)
    assert sorted(clicks(db), key=lambda r: r[2]) == clicked


def test_a_click_during_an_outage_arrives_once_after_the_service_returns(service, page, db):
    open_demo(page, f"{service.url}/demo/?tab=new")
    stay_on_page(page)
    service.stop()
    project_id = click_card(page, "cards", 1)
    time.sleep(2.0)  # the flush (1 s) and a retry or two fail: connection refused
    assert clicks(db) == []
    service.start()  # same port
    wait_until(lambda: clicks(db), 30, "the retried click")
    time.sleep(3.0)  # later retries, if any were still scheduled, would land here
    assert clicks(db) == [(project_id, "explore_new", 1)]
    assert exceptions(page) == []


# Chromium has no Global Privacy Control of its own; Brave and Firefox expose it like this.
GPC_ON = ("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', "
          "{ get: () => true, configurable: true });")
# On the demo feed: the option on, a view, impressions of the cards in view (the page's own
# handlers queue the card clicks); resolves to the view's result.
TRACK_RESPECTING_DNT = """async ([projectId, source]) => {
  const m = await import('/static/tracking.js');
  m.configure({ respectDoNotTrack: true });
  m.observeImpressions(document.getElementById('cards'), { source, minVisibleMs: 0 });
  return m.trackProjectView(projectId, 'direct');
}"""


def impressions(db):  # type: ignore[no-untyped-def]
    return db.execute("SELECT project_id, source FROM project_impressions").fetchall()


def test_with_respect_do_not_track_a_gpc_browser_sends_nothing(service, browser, db):
    pages: list[Page] = []

    def visit(tab: str, project_id: int, gpc: bool) -> tuple[Page, str]:
        page = new_page(browser, user_agent=USER_AGENT)
        pages.append(page)
        if gpc:
            page.add_init_script(GPC_ON)
        open_demo(page, f"{service.url}/demo/?tab={tab}")
        stay_on_page(page)
        view = page.evaluate(TRACK_RESPECTING_DNT, [project_id, f"explore_{tab}"])
        click_card(page, "cards", 0)
        page.evaluate("new Promise((r) => setTimeout(r, 300))")  # impressions: next flush
        page.goto("about:blank")  # pagehide hands the queued click and impressions over
        return page, view

    try:
        private, private_view = visit("news", 9005, gpc=True)
        public, public_view = visit("trending", 9006, gpc=False)
        assert (private_view, public_view) == ("opted_out", "recorded")
        # the second visitor's events arrive; the first one's, sent earlier, would have by then
        wait_until(lambda: clicks(db) and impressions(db), 10, "the events of the page without GPC")
        time.sleep(0.5)
        assert views(db) == [(9006, "direct")]
        assert [source for _, source, _ in clicks(db)] == ["explore_trending"]
        assert {source for _, source in impressions(db)} == {"explore_trending"}
        assert [c["name"] for c in private.context.cookies()] == []  # no et_sid either
        assert "et_sid" in [c["name"] for c in public.context.cookies()]
        assert exceptions(private) == exceptions(public) == []
    finally:
        for page in pages:
            page.context.close()


@pytest.fixture
def cross_origin_service(database: str) -> Iterator[Service]:
    # The page comes from http://localhost:PORT, the API is called at http://127.0.0.1:PORT:
    # different origins (and sites), so every call is a CORS request.
    port = _free_port()
    yield from _serve(database, port, ENGAGEMENT_CORS_ORIGINS=f"http://localhost:{port}")


def test_cross_origin_page_records_views_and_beaconed_clicks(cross_origin_service, page, db):
    svc = cross_origin_service
    open_demo(page, f"http://localhost:{svc.port}/demo/?api={svc.url}")
    project_id = open_project_by(page, "cards", 0)
    assert page.evaluate("document.body.dataset.viewStatus") == "recorded"
    wait_until(lambda: clicks(db), 10, "the cross-origin click")
    assert clicks(db) == [(project_id, "explore_for_you", 0)]
    assert views(db) == [(project_id, "explore")]
    assert exceptions(page) == []


def test_chromium_leaves_nothing_in_the_temp_dir(playwright, tmp_path):
    """Chromium keeps a singleton socket directory in TMPDIR; it must go with the browser."""
    b = launch(playwright, _chromium(), env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        product = b.new_browser_cdp_session().send("Browser.getVersion")["product"]
        assert product.startswith(("HeadlessChrome", "Chrome"))
    finally:
        b.close()
    assert list(tmp_path.iterdir()) == []
