"""The server-drawn turn timeline (``turnscope.viewer.timeline_html``) on runs recorded through
the real Runner into real SQLite: error colours, escaping of names from user data, windows of
rows, an empty run, the axis."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from agents import Agent, RunConfig, Runner, function_tool, trace
from support.viewer import demo_database

from turnscope.demo.model import DemoModel, call, text
from turnscope.store.queries import RunFilter, Store
from turnscope.viewer.timeline import COLORS, rows
from turnscope.viewer.timeline_html import Panel, axis, marks, timeline_html

EVIL = '<script>alert("x")</script> &\''


class _Tags(HTMLParser):
    """Every start tag of a fragment, with its attributes, as a browser's parser sees them."""

    def __init__(self, body: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(body)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def links(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == "a"]


def _span_of(href: str | None) -> str:
    query = parse_qs(urlparse(href or "").query)
    return query["span_id"][0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The demo database."""
    return Store(str(demo_database(tmp_path_factory)))


def test_a_failing_runs_fatal_bar_is_red_and_links_to_its_span(demo: Store) -> None:
    run = demo.list_runs(RunFilter(category="tool_error"), limit=1)[0]
    analysis = demo.analysis(run["trace_id"])
    body = timeline_html([Panel("A", analysis)])
    links = _Tags(body).links()
    by_span = {_span_of(a["href"]): a for a in links}
    failing = by_span[run["failing_span_id"]]
    assert f"background:{COLORS['fatal']}" in (failing["style"] or "")
    assert "fatal error" in (failing["title"] or "")
    assert failing["href"] == f"run?trace_id={run['trace_id']}&span_id={run['failing_span_id']}"
    # every bar links to a span of this run, and the legend names the red series
    spans = {s.span_id for s in demo.spans(run["trace_id"])}
    assert set(by_span) <= spans
    assert "fatal error</span>" in body


def test_run_level_errors_and_repeats_are_marked(demo: Store) -> None:
    run = demo.list_runs(RunFilter(category="max_turns_exceeded", workflow="Research"))[0]
    analysis = demo.analysis(run["trace_id"])
    found = marks(Panel("A", analysis))[1]
    shapes = {m.shape for m in found}
    assert shapes == {"bar", "repeat", "error"}
    last = len(rows(analysis)) - 1
    assert {m.row for m in found if m.shape == "error"} == {last}  # on the last row shown
    body = timeline_html([Panel("A", analysis)])
    assert body.count('class="tlh-rep"') == sum(m.shape == "repeat" for m in found)
    assert "same call ×" in body and 'class="tlh-x"' in body


def test_names_from_user_data_are_escaped(db_url: str, make_recorder: Any) -> None:
    @function_tool(name_override=EVIL.replace(" ", "_"))
    def lookup(q: str) -> str:
        """Look something up."""
        return EVIL

    steps = [[call(lookup.name, {"q": EVIL})], [text("done")]]
    agent = Agent(name=EVIL, tools=[lookup], model=DemoModel(steps))
    with make_recorder(db_url):
        Runner.run_sync(agent, EVIL, run_config=RunConfig(workflow_name="Evil"))
    store = Store(db_url)
    trace_id = store.list_runs(RunFilter(workflow="Evil"))[0]["trace_id"]
    body = timeline_html([Panel(EVIL, store.analysis(trace_id))])
    assert "<script" not in body.lower()
    tags = _Tags(body).tags
    assert {tag for tag, _ in tags} == {"style", "div", "span", "a"}  # nothing injected
    texts = [unescape(t) for t in re.findall(r">([^<>]+)<", body)]
    assert EVIL in texts  # the panel title, shown as written
    assert f"T1 · {EVIL}" in texts  # a row label
    tips = [a["title"] or "" for a in _Tags(body).links()]
    assert any(tip.startswith(f"function {EVIL.replace(' ', '_')} (") for tip in tips), tips
    assert all('"' not in (a["href"] or "") for a in _Tags(body).links())


def test_a_window_draws_its_rows_only(db_url: str, make_recorder: Any) -> None:
    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return f"result for {q}"

    steps: list[Any] = [[call("lookup", {"q": f"item {n}"})] for n in range(1, 12)]
    steps.append([text("done")])
    agent = Agent(name="Researcher", tools=[lookup], model=DemoModel(steps))
    with make_recorder(db_url):
        Runner.run_sync(agent, "go", max_turns=20, run_config=RunConfig(workflow_name="Long"))
    store = Store(db_url)
    analysis = store.analysis(store.list_runs(RunFilter(workflow="Long"))[0]["trace_id"])
    all_rows = rows(analysis)
    assert len(all_rows) == 12
    body = timeline_html([Panel("A", analysis, start=4, end=9, shaded=6)])
    labels = re.findall(r'<div class="tlh-label[^"]*" title="[^"]*">([^<]*)</div>', body)
    assert [unescape(x) for x in labels] == [r.label for r in all_rows[4:9]]
    shaded = re.findall(r'<div class="tlh-label tlh-shade" title="[^"]*">([^<]*)</div>', body)
    assert [unescape(x) for x in shaded] == [all_rows[6].label]
    drawn = {_span_of(a["href"]) for a in _Tags(body).links()}
    assert drawn == {s.span_id for r in all_rows[4:9] for s in r.spans}
    # a shaded row outside the window shades nothing
    assert " tlh-shade" not in timeline_html([Panel("A", analysis, start=0, end=3, shaded=6)])


def test_an_empty_run_draws_an_empty_panel(db_url: str, make_recorder: Any) -> None:
    with make_recorder(db_url), trace("Nothing happened"):
        pass
    store = Store(db_url)
    trace_id = store.list_runs(RunFilter(workflow="Nothing happened"))[0]["trace_id"]
    analysis = store.analysis(trace_id)
    assert rows(analysis) == []
    body = timeline_html([Panel("A", analysis), Panel("B", analysis)])
    assert body.count("no turns recorded") == 2
    assert "<a " not in body and "tlh-legend" in body
    assert "ms since the run started" in body


def test_the_axis_has_round_ticks_covering_the_values() -> None:
    assert axis([130.0, 655.0]) == (0.0, 800.0, 200.0)
    assert axis([0.0, 19.2]) == (0.0, 20.0, 5.0)
    assert axis([]) == (0.0, 1.0, 1.0)
    lo, hi, step = axis([5.0, 5.0])  # one instant still has a width
    assert lo <= 5.0 < hi and step > 0


def test_the_fragment_is_what_st_html_keeps(demo: Store) -> None:
    """What ``st.html`` keeps: a <style> and HTML only (its sanitiser drops SVG)."""
    run = demo.list_runs(RunFilter(workflow="Customer support"), limit=1)[0]
    body = timeline_html([Panel("A", demo.analysis(run["trace_id"]))])
    assert body.startswith("<style>") and "<svg" not in body and "<script" not in body
