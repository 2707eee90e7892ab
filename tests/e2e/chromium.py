"""Playwright (sync API) driving Debian's Chromium: no browser download, ever.

`playwright install` is never run: the browser is the `chromium` Debian package
(scripts/system-packages.txt), launched by path.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from playwright.sync_api import Browser, Error, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = (
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--no-default-browser-check", "--mute-audio",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
)
# Headless Chromium's own default window, which the scenarios were written for.
VIEWPORT = {"width": 800, "height": 600}

_errors: WeakKeyDictionary[Page, list[str]] = WeakKeyDictionary()


def chromium_path() -> str | None:
    """Debian's chromium binary, or None when the package is not installed."""
    return CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")


def launch(playwright: Playwright, executable: str, user_agent: str | None = None,
           **kwargs: Any) -> Browser:
    """Headless Chromium; `user_agent` for every request, those sent at page unload included
    (a context's user_agent misses the beacons the browser process sends for a left page)."""
    args = [*ARGS, f"--user-agent={user_agent}"] if user_agent else list(ARGS)
    return playwright.chromium.launch(executable_path=executable, headless=True, args=args,
                                      **kwargs)


def new_page(browser: Browser, user_agent: str | None = None) -> Page:
    """A tab in a fresh browser context (its own cookies), recording uncaught exceptions."""
    context = browser.new_context(user_agent=user_agent, viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _errors[page] = errors
    return page


def exceptions(page: Page) -> list[str]:
    """Uncaught exceptions the page reported so far."""
    return list(_errors.get(page, []))


def wait_for(page: Page, expression: str, timeout: float = 10, what: str | None = None) -> Any:
    """Poll an expression until it is truthy; survives navigations in between."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = page.evaluate(expression)
            if value:
                return value
        except Error as exc:  # e.g. the context was destroyed by a navigation
            last_error = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or expression}"
                         + (f" (last error: {last_error})" if last_error else ""))


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a Python predicate until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
