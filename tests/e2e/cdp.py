"""A small Chrome DevTools Protocol driver for Debian's headless Chromium (no browser download).

Enough for end-to-end tests: isolated browser contexts, navigation, real mouse clicks and
keyboard input, evaluating JavaScript, and the page's uncaught exceptions.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.processes import stop

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless", "--no-sandbox",  # no sandbox: the tests may run as root
    "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--no-default-browser-check", "--mute-audio",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
)


class CDPError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


def chromium_path() -> str | None:
    """Debian's chromium binary, or None when the package is not installed."""
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    return found


def _stop_group(pgid: int, timeout: float = 5) -> None:
    """SIGKILL what is left of a process group and wait until none of it runs.

    Killed helpers are reparented to PID 1, which may take a second or more to reap them;
    zombies write nothing, so only live members are waited for (read from /proc).
    """
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_is_running(pgid):
        time.sleep(0.02)


def _group_is_running(pgid: int) -> bool:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            return True
    return False


class Browser:
    """One headless Chromium process and its DevTools websocket."""

    def __init__(self, executable: str, user_agent: str | None = None) -> None:
        self._profile = Path(tempfile.mkdtemp(prefix="e2e-chromium-"))
        args = [executable, *FLAGS, "--remote-debugging-port=0",
                f"--user-data-dir={self._profile}", "about:blank"]
        if user_agent:
            args.insert(-1, f"--user-agent={user_agent}")
        # TMPDIR inside the profile: Chromium's singleton socket directory goes there, and is
        # removed with the profile (in /tmp it outlived every run).
        # Its own process group, so close() can stop the helpers (the network service writes
        # into the profile as it exits) before removing the profile.
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True,
                                         env={**os.environ, "TMPDIR": str(self._profile)})
        self._closing = ExitStack()
        self._ws: ClientConnection = self._closing.enter_context(
            connect(self._endpoint(), max_size=None, open_timeout=10))
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def _endpoint(self) -> str:
        active = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise CDPError(f"chromium exited with {self._process.returncode}")
            try:
                port, path = active.read_text().split()[:2]
                return f"ws://127.0.0.1:{port}{path}"
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        raise CDPError("chromium did not open its DevTools port in 20 s")

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float = 15) -> dict[str, Any]:
        """Send one command and wait for its answer, keeping events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CDPError(f"{method}: no answer in {timeout} s")
            try:
                incoming = json.loads(self._ws.recv(timeout=remaining))
            except TimeoutError:
                continue
            if incoming.get("id") == self._next_id:
                if "error" in incoming:
                    raise CDPError(f"{method}: {incoming['error'].get('message')}")
                result: dict[str, Any] = incoming.get("result", {})
                return result
            if "method" in incoming:
                self._events.append(incoming)

    def drain_events(self, timeout: float = 0.0) -> None:
        """Read events that are waiting (for up to `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                incoming = json.loads(self._ws.recv(timeout=max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                return
            if "method" in incoming:
                self._events.append(incoming)

    def events(self, method: str, session: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self._events
                if e["method"] == method and (session is None or e.get("sessionId") == session)]

    def new_page(self) -> Page:
        """A tab in a fresh browser context: its own cookies, nothing shared with other tests."""
        context = self.call("Target.createBrowserContext")["browserContextId"]
        target = self.call("Target.createTarget",
                           {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session, context)
        page.call("Page.enable")
        page.call("Runtime.enable")
        return page

    def close(self) -> None:
        try:
            self._closing.close()
        finally:
            stop(self._process, timeout=10)
            _stop_group(self._process.pid)
            shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    """One tab, driven through its DevTools session."""

    def __init__(self, browser: Browser, session: str, context: str) -> None:
        self.browser = browser
        self.session = session
        self.context = context

    def call(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = 15) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session, timeout=timeout)

    def evaluate(self, expression: str, *, await_promise: bool = True) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": await_promise,
        })
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"evaluating {expression!r}: {text}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10, what: str | None = None) -> Any:
        """Poll an expression until it is truthy; survives navigations in between."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
                if value:
                    return value
            except CDPError as exc:  # e.g. the context was destroyed by a navigation
                last_error = exc
            time.sleep(0.05)
        raise CDPError(f"timed out waiting for {what or expression}"
                       + (f" (last error: {last_error})" if last_error else ""))

    def goto(self, url: str) -> None:
        """Navigate and wait for the new document to finish loading."""
        self._leave_then(lambda: self.call("Page.navigate", {"url": url}), f"{url} to load")

    def reload(self) -> None:
        self._leave_then(lambda: self.call("Page.reload"), "the reload")

    def _leave_then(self, action: Callable[[], dict[str, Any]], what: str) -> None:
        # a marker in the old document tells it apart from the new one
        self.evaluate("window.__e2eOldDocument = true")
        result = action()
        if result.get("errorText"):
            raise CDPError(f"{what}: {result['errorText']}")
        self.wait_for("!window.__e2eOldDocument && document.readyState === 'complete'", what=what)

    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def click(self, selector: str) -> None:
        """A real left click (mouse events from the browser's input pipeline) on an element."""
        box = self.wait_for(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                if (!el) return null;
                el.scrollIntoView({{block: 'center'}});
                const r = el.getBoundingClientRect();
                return r.width && r.height ? {{x: r.x + r.width / 2, y: r.y + r.height / 2}} : null;
            }})()""", what=f"{selector} to be clickable")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {
                "type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1,
            })

    def type_text(self, selector: str, text: str) -> None:
        self.click(selector)
        self.call("Input.insertText", {"text": text})

    def exceptions(self) -> list[str]:
        """Uncaught exceptions the page reported so far."""
        self.browser.drain_events()
        return [e["params"]["exceptionDetails"].get("exception", {}).get("description", "")
                or e["params"]["exceptionDetails"].get("text", "")
                for e in self.browser.events("Runtime.exceptionThrown", self.session)]

    def close(self) -> None:
        self.browser.call("Target.disposeBrowserContext", {"browserContextId": self.context})


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a Python predicate until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
