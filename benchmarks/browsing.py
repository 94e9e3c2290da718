"""What the page benchmarks share: ``turnscope view`` on a database, on a free 127.0.0.1
port, and Debian's headless Chromium through Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from turnscope.viewer.serve import wait_healthy

CHROMIUM = os.environ.get("TURNSCOPE_CHROMIUM", "/usr/bin/chromium")
# without the background-networking flags Chromium keeps dialling Google's hosts, which a
# closed network refuses (and each refusal costs time)
CHROMIUM_ARGS = [
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


@contextmanager
def viewer(db: Path | str) -> Iterator[str]:
    """``turnscope view --db DB`` until the block ends; yields its URL once it is healthy."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "TURNSCOPE_JAEGER_URL"}
    server = subprocess.Popen(
        [sys.executable, "-m", "turnscope.cli", "view", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_healthy(url, time.monotonic() + 60):
            raise RuntimeError("turnscope view did not start")
        yield url
    finally:
        server.terminate()
        server.wait(15)


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium, already started (a blank page opened): timings leave out its start."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warmup = browser.new_page()
            warmup.goto("about:blank")
            warmup.close()
            yield browser
        finally:
            browser.close()
