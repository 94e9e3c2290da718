"""The Compare page in a real browser: ``turnscope view`` on the demo database, Debian's
headless Chromium through Playwright. Both runs shown with links back to each, the first
divergent turn highlighted and open, identical turns collapsed, both timelines drawn and a
bar opening its span in its run; no exception box, no console error. Browser set-up:
tests/support/browser.py."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

pytest.importorskip("streamlit")

from support.browser import WAIT_MS, Page, skip_browser
from support.viewer import ViewerServer, demo_database

from turnscope.store.queries import RunFilter, Store

pytestmark = pytest.mark.browser
TIMELINE = ".st-key-compare_timeline"  # both timelines, server-drawn HTML (st.html)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ViewerServer]:
    """The viewer on the demo database."""
    if skip_browser():
        pytest.skip("TURNSCOPE_SKIP_BROWSER is set")
    viewer = ViewerServer(demo_database(tmp_path_factory))
    try:
        viewer.wait()
        yield viewer
    finally:
        viewer.stop()


def _pair(server: ViewerServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two Customer support runs that part after their first turn: the handoff run that
    looked the order up (A) and the one whose model asked for two handoffs at once (B)."""
    store = Store(os.fspath(server.db))
    runs = store.list_runs(RunFilter(workflow="Customer support"), limit=50)
    success = next(r for r in runs if r["agent_path"] == "Triage → Billing" and r["turns"] == 3)
    double = next(r for r in runs if r["agent_path"] == "Triage → Billing" and r["turns"] == 2)
    return success, double


def test_compare_page_shows_both_runs_and_where_they_part(server: ViewerServer, page: Page) -> None:
    a, b = _pair(server)
    page.goto(f"{server.url}/compare?a={a['trace_id'][:14]}&b={b['trace_id'][:14]}")
    card = page.tab.locator(".st-key-divergence")
    card.get_by_text("Identical for turn 1.").first.wait_for(timeout=WAIT_MS)
    assert "Turn 2: A made 1 more turn (Billing called lookup_order)" in card.inner_text()
    bars = page.tab.locator(f"{TIMELINE} a.tlh-bar")
    bars.first.wait_for(timeout=WAIT_MS)
    assert bars.count() > 0
    # both runs, each with a link back to its run page
    for side, run in (("a", a), ("b", b)):
        link = page.tab.locator(f".st-key-run_{side} a").first
        link.wait_for(timeout=WAIT_MS)
        assert run["trace_id"] in (link.get_attribute("href") or "")
        assert run["explanation"][:40] in page.tab.locator(f".st-key-run_{side}").inner_text()
    # the first divergent turn: highlighted and open
    divergent = page.tab.locator(".st-key-divergent_turn")
    assert "first divergence" in divergent.inner_text()
    details = divergent.locator("details")
    assert details.get_attribute("open") is not None
    assert "lookup_order" in divergent.inner_text()  # the turn's content is shown
    # the identical first turn: one collapsed line
    alike = page.tab.locator('[data-testid="stExpander"] details', has_text="alike in both runs")
    assert alike.count() == 1 and alike.first.get_attribute("open") is None
    page.check("compare")

    page.tab.locator(".st-key-run_b a").first.click()
    page.tab.wait_for_url(re.compile(rf"/run\?trace_id={b['trace_id']}"), timeout=WAIT_MS)
    page.text(b["explanation"][:40])
    page.check("compare-back-to-b")


def test_a_bar_of_the_timeline_opens_its_span_in_its_run(server: ViewerServer, page: Page) -> None:
    a, b = _pair(server)
    page.goto(f"{server.url}/compare?a={a['trace_id']}&b={b['trace_id']}")
    bar = page.tab.locator(f"{TIMELINE} a.tlh-bar").last  # B is drawn below A
    bar.wait_for(timeout=WAIT_MS)
    assert "ms)" in (bar.get_attribute("title") or "")  # its tooltip: "kind name (duration)"
    span_id = parse_qs(urlparse(bar.get_attribute("href")).query)["span_id"][0]
    bar.click()
    # a plain link: a relative URL, so it would keep a server.baseUrlPath
    page.tab.wait_for_url(
        re.compile(rf"/run\?trace_id={b['trace_id']}&span_id={span_id}$"), timeout=WAIT_MS
    )
    detail = page.tab.locator(".st-key-span_detail")  # the run page's focused span
    detail.wait_for(timeout=WAIT_MS)
    assert span_id in detail.inner_text()
    page.check("compare-bar-to-run")


def test_run_page_opens_the_compare_page(server: ViewerServer, page: Page) -> None:
    _, b = _pair(server)
    page.goto(f"{server.url}/run?trace_id={b['trace_id']}")
    page.text(b["explanation"][:40])
    page.tab.get_by_role("button", name="Compare with…").click()
    link = page.tab.get_by_role("link", name="Compare").last
    link.wait_for(timeout=WAIT_MS)
    link.click()
    page.tab.wait_for_url(re.compile(rf"/compare\?a=trace_\w+&b={b['trace_id']}"), timeout=WAIT_MS)
    page.tab.locator(".st-key-divergence").wait_for(timeout=WAIT_MS)
    page.check("compare-from-run")
