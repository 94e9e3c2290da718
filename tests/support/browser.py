"""Debian's headless Chromium, driven by Playwright (never a downloaded browser), and a tab
that records what went wrong on a page. The ``chromium`` and ``page`` fixtures in conftest.py
are built from these.

Chromium must be installed (``apt-get install chromium``; .ci/run does it). Set
TURNSCOPE_SKIP_BROWSER=1 to skip the browser tests on a machine without it; anywhere else a
missing browser fails loudly.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TURNSCOPE_CHROMIUM", "/usr/bin/chromium")
# without the background-networking flags Chromium keeps dialling Google's hosts, which this
# closed network refuses
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
WAIT_MS = 60_000
# Streamlit's own frontend, loaded on a page path (/run, /failures), first probes
# <page>/_stcore/health and <page>/_stcore/host-config, gets 404 by design (see
# streamlit/web/server/starlette/starlette_static_routes.py) and falls back to the root.
STREAMLIT_PROBE = re.compile(
    r"/(run|failures|runs|compare|conversation)/_stcore/(health|host-config)$"
)


def skip_browser() -> bool:
    """True when TURNSCOPE_SKIP_BROWSER asks to skip the browser tests."""
    return os.environ.get("TURNSCOPE_SKIP_BROWSER", "").lower() in ("1", "true", "yes")


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium (Debian's): skipped if asked to, a loud failure if it is missing."""
    if skip_browser():
        pytest.skip("TURNSCOPE_SKIP_BROWSER is set")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"chromium not found at {CHROMIUM}: apt-get install chromium "
            "(or set TURNSCOPE_SKIP_BROWSER=1 on a machine without it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Page:
    """A browser tab that records console errors, failed requests and page errors."""

    def __init__(self, browser: Any, shots: Path) -> None:
        self.tab = browser.new_page(viewport={"width": 1440, "height": 1200})
        self.shots = shots
        self.problems: list[str] = []
        self.tab.on("console", self._console)
        self.tab.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.tab.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        # failed loads are judged by URL here (the console line does not say which)
        if response.status >= 400 and not STREAMLIT_PROBE.search(response.url.split("?")[0]):
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def goto(self, url: str) -> None:
        self.tab.goto(url)
        self.tab.locator('[data-testid="stMain"]').wait_for(timeout=WAIT_MS)

    def text(self, text: str) -> Any:
        locator = self.tab.get_by_text(text, exact=False).first
        locator.wait_for(timeout=WAIT_MS)
        return locator

    def settled(self) -> None:
        """Streamlit finished running the script (its status widget is gone)."""
        self.tab.wait_for_timeout(300)
        self.tab.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT_MS)

    def check(self, name: str) -> None:
        """No exception box on the page and no console errors so far; take a screenshot."""
        self.settled()
        self.tab.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        assert self.tab.locator('[data-testid="stException"]').count() == 0, name
        assert self.problems == [], (name, self.problems)
