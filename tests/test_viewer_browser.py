"""End to end in a real browser: ``turnscope view`` as a subprocess on the demo database,
driven by Playwright in Debian's headless Chromium. Open the runs page, filter to failed
runs, open one, see its verdict and timeline, follow deep links, and check that no page
shows a Streamlit exception box or logs a console error.

Chromium must be installed (``apt-get install chromium``; .ci/run does it). Set
TURNSCOPE_SKIP_BROWSER=1 to skip these tests on a machine without it; anywhere else a missing
browser fails loudly. Screenshots go to pytest's temporary folder.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

pytest.importorskip("streamlit")

from support.browser import WAIT_MS, Page, skip_browser
from support.viewer import ViewerServer, demo_database

from turnscope.store.queries import RunFilter, Store

pytestmark = pytest.mark.browser

TIMELINE = ".st-key-timeline .main-svg"  # the turn timeline, drawn by plotly.js


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    """The viewer on the demo database, with a Jaeger URL configured."""
    if skip_browser():
        pytest.skip("TURNSCOPE_SKIP_BROWSER is set")
    db = demo_database(tmp_path_factory)
    viewer = ViewerServer(db, jaeger="http://127.0.0.1:16686")
    try:
        viewer.wait()
        yield viewer
    finally:
        viewer.stop()


def _db(server: ViewerServer) -> Store:
    return Store(os.fspath(server.db))


def test_filter_to_failed_runs_and_open_one(server: ViewerServer, page: Page) -> None:
    page.goto(server.url + "/")
    page.text("Failure rate")
    table = page.tab.locator('[data-testid="stDataFrame"]').first
    table.wait_for(timeout=WAIT_MS)
    page.check("runs")

    page.tab.get_by_role("button", name="Failures only").click()
    page.tab.wait_for_url(re.compile(r"status=failed"), timeout=WAIT_MS)
    assert "status=incomplete" in page.tab.url
    failed = _db(server).count_runs(RunFilter(status=["failed", "incomplete"]))
    page.text(f"of {failed}.")  # "Runs 1–N of M."
    page.check("runs-failed")

    # the grid is a canvas: click the first row's selection cell (left edge, below the header)
    page.settled()
    box = table.bounding_box()
    assert box is not None
    page.tab.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    page.tab.wait_for_url(re.compile(r"/run\?trace_id=trace_"), timeout=WAIT_MS)
    trace_id = re.search(r"trace_id=(trace_[A-Za-z0-9]+)", page.tab.url).group(1)  # type: ignore[union-attr]
    run = _db(server).get_run(trace_id)
    assert run is not None and run["status"] in ("failed", "incomplete")
    card = page.tab.locator(".st-key-verdict_card")
    # the card's content streams in after the card itself: wait for the sentence
    card.get_by_text((run["explanation"] or "")[:40]).first.wait_for(timeout=WAIT_MS)
    page.tab.locator(TIMELINE).first.wait_for(timeout=WAIT_MS)
    page.text("Turn timeline")
    page.check("run")

    page.tab.get_by_role("link", name="Runs").first.click()
    page.tab.wait_for_url(re.compile(r"status=failed"), timeout=WAIT_MS)  # filters kept
    page.check("back-to-runs")


@pytest.mark.parametrize("how", ["mouse", "keyboard"])
def test_a_click_on_the_chart_filters_to_that_bar(
    server: ViewerServer, page: Page, how: str
) -> None:
    """The runs-over-time chart (plain SVG): clicking a failure category's bar (or Enter on a
    bar reached by keyboard) filters the list to that category and time bucket, and the
    shared URL holds the whole filter."""
    page.goto(server.url + "/")
    bars = page.tab.locator(".turnscope-bars rect[data-series]")
    bars.first.wait_for(timeout=WAIT_MS)
    page.check("chart")
    series = [bars.nth(i).get_attribute("data-series") for i in range(bars.count())]
    index = series.index("max_turns_exceeded")
    bar = bars.nth(index)
    if how == "mouse":
        bar.click()
    else:
        assert (bar.get_attribute("role"), bar.get_attribute("tabindex")) == ("button", "0")
        assert "max" in (bar.get_attribute("aria-label") or "").lower()
        bar.focus()  # only a focusable element takes it, and the key goes where focus is
        assert bar.evaluate("node => node.getRootNode().activeElement === node")  # shadow DOM
        page.tab.keyboard.press("Enter")
    # the URL is rewritten as the rerun's widgets report their values: wait for all of them
    wanted = ("category=max_turns_exceeded", "range=custom", "since=", "until=")
    page.tab.wait_for_url(lambda url: all(part in url for part in wanted), timeout=WAIT_MS)
    page.settled()
    query = parse_qs(urlparse(page.tab.url).query)
    assert query["range"] == ["custom"] and "status" not in query, query
    since, until = (datetime.fromisoformat(query[k][0]) for k in ("since", "until"))
    expected = _db(server).count_runs(
        RunFilter(category="max_turns_exceeded", since=since, until=until)
    )
    assert expected >= 1
    page.text(f"Runs 1–{expected} of {expected}.")
    page.check(f"chart-{how}")


def test_deep_links_to_a_run_and_a_span(server: ViewerServer, page: Page) -> None:
    store = _db(server)
    run = store.list_runs(RunFilter(category="max_turns_exceeded", workflow="Research"))[0]
    analysis = store.analysis(run["trace_id"])
    tool_call = next(s for s in analysis.structure.spans if s.kind == "function")

    page.goto(f"{server.url}/run?trace_id={run['trace_id']}")
    page.text(run["explanation"][:50])
    page.tab.locator(TIMELINE).first.wait_for(timeout=WAIT_MS)
    page.text("Turn budget")
    assert page.tab.get_by_role("link", name="Open in Jaeger").count() == 1
    page.check("deep-link-run")

    # a click on a bar of the timeline focuses that span (plotly.js -> Python -> URL)
    bars = page.tab.locator(".st-key-timeline g.trace.bars g.point path")
    boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
    widest = max((b for b in boxes if b), key=lambda b: b["width"])
    # plotly.js finds the point under the mouse itself (its drag layer takes the events)
    page.tab.mouse.click(widest["x"] + widest["width"] / 2, widest["y"] + widest["height"] / 2)
    page.tab.wait_for_url(re.compile(r"span_id=span_"), timeout=WAIT_MS)
    page.tab.locator(".st-key-span_detail").wait_for(timeout=WAIT_MS)
    page.check("timeline-click")

    page.goto(f"{server.url}/run?trace_id={run['trace_id']}&span_id={tool_call.span_id}")
    detail = page.tab.locator(".st-key-span_detail")
    detail.get_by_text("Arguments").first.wait_for(timeout=WAIT_MS)  # its content streams in
    assert tool_call.span_id in detail.inner_text()
    page.check("deep-link-span")

    page.tab.get_by_role("button", name="Jump to first error").click()
    page.tab.wait_for_url(re.compile(f"span_id={run['failing_span_id']}"), timeout=WAIT_MS)
    page.check("jump-to-first-error")

    page.goto(f"{server.url}/?trace_id={run['trace_id']}")  # the root URL works too
    page.tab.wait_for_url(re.compile(r"/run\?trace_id="), timeout=WAIT_MS)
    page.text(run["explanation"][:50])
    page.check("root-deep-link")


def test_failures_page_and_a_shared_filtered_view(server: ViewerServer, page: Page) -> None:
    page.goto(f"{server.url}/failures")
    page.text("Failed runs")
    page.tab.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=WAIT_MS)
    page.check("failures")

    page.goto(f"{server.url}/?status=failed&category=tool_error")
    failed = _db(server).count_runs(RunFilter(status="failed", category="tool_error"))
    page.text(f"Runs 1–{failed} of {failed}.")
    page.check("shared-filter")

    page.goto(f"{server.url}/run?trace_id=trace_not_there")
    page.text("No run with trace id")
    page.check("unknown-run")


def test_the_server_warms_itself_up(server: ViewerServer) -> None:
    """`turnscope view` visits its runs page and newest run once through its own websocket,
    so the first user does not pay for imports and cold queries, and says when it is ready."""
    from turnscope.viewer.serve import READY_PREFIX, visit

    deadline = time.monotonic() + 60
    while READY_PREFIX not in server.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = server.log.read_text()
    ready = [line for line in log.splitlines() if line.startswith(READY_PREFIX)]
    assert len(ready) == 1 and ready[0].startswith(f"{READY_PREFIX}{server.url} (warmed in "), log
    assert "error box" not in ready[0] and "warm-up skipped" not in log, log
    assert "WARNING" not in log and "Traceback" not in log, log  # a clean start, not noise
    # the same visit, as a client of the running server: every page runs without an error box
    stream = f"ws://127.0.0.1:{server.port}/_stcore/stream"
    newest = _db(server).list_runs(limit=1)[0]["trace_id"]
    for name, query in (("", ""), ("failures", ""), ("run", f"trace_id={newest}")):
        assert visit(stream, name, query, timeout=60) == 0, name


@pytest.fixture(scope="module")
def diag_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    """The viewer on runs with reasons and warnings (``diagnosed.RUNS``)."""
    if skip_browser():
        pytest.skip("TURNSCOPE_SKIP_BROWSER is set")
    from diagnosed import write_diagnosed

    db = tmp_path_factory.mktemp("diag-browser") / "diagnosed.db"
    write_diagnosed(f"sqlite:///{db}")
    viewer = ViewerServer(db)
    try:
        viewer.wait()
        yield viewer
    finally:
        viewer.stop()


def test_reason_and_warnings_filters_live_in_the_url(
    diag_server: ViewerServer, chromium: Any, tmp_path: Path
) -> None:
    """A shared link with ``reason`` or ``warnings=true`` opens the same narrowed list; ticking
    "Only runs with warnings" writes it to the URL; the failures page names the reason."""
    page = Page(chromium, tmp_path)
    try:
        page.goto(diag_server.url + "/?reason=rate_limited")
        page.text("Runs 1–2 of 2.")
        page.check("reason-filter")

        page.goto(diag_server.url + "/")
        page.text("Runs 1–8 of 8.")
        page.tab.get_by_text("Only runs with warnings").first.click()
        page.tab.wait_for_url(re.compile(r"warnings=true"), timeout=WAIT_MS)
        page.text("Runs 1–2 of 2.")
        page.check("warnings-filter")

        page.goto(f"{diag_server.url}/failures")
        page.text("model_error (rate_limited)")  # the biggest group, category and reason
        page.tab.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=WAIT_MS)
        page.check("failures-by-reason")
    finally:
        page.tab.close()
