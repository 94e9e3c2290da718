"""The Compare page through Streamlit's AppTest (real app, the demo's SQLite database): two
runs side by side with the first divergence named and opened, identical turns collapsed,
prefixes and different workflows handled; "Compare with…" on the run page and picking two
rows on the runs page lead to it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")  # the run page's timeline (two tests open it)

from streamlit.testing.v1 import AppTest
from support.apptest import APP, TIMEOUT, run_app, viewer_app
from support.viewer import demo_database

from turnscope.store.queries import RunFilter, Store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database."""
    return demo_database(tmp_path_factory)


@pytest.fixture
def app(db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """The viewer on the demo database, not yet run."""
    with viewer_app(db, monkeypatch) as at:
        yield at


def _open(app: AppTest, page: str, **params: str) -> AppTest:
    run_app(app)
    app.switch_page(page)
    for key, value in params.items():
        app.query_params[key] = value
    return run_app(app)


def _support_runs(db: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo's successful support run (handoff, lookup, answer) and the one whose output
    guardrail tripped."""
    store = Store(str(db))
    runs = store.list_runs(RunFilter(workflow="Customer support"), limit=50)
    success = next(r for r in runs if r["agent_path"] == "Triage → Billing" and r["turns"] == 3)
    tripped = next(r for r in runs if r["category"] == "output_guardrail_tripwire")
    return success, tripped


def _text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)


def test_compare_page_names_the_divergence_and_shows_both_runs(app: AppTest, db: Path) -> None:
    success, tripped = _support_runs(db)
    at = _open(app, "views/compare.py", a=success["trace_id"][:12], b=tripped["trace_id"])
    assert at.query_params["a"] == success["trace_id"]  # the prefix resolved in the URL
    text = _text(at)
    assert "Turn 1: A made 2 more turns (Triage handed off to Billing; " in text
    assert success["explanation"] in text and tripped["explanation"] in text
    labels = [e.label for e in at.expander]
    divergent = [label for label in labels if label.startswith("≠ Turn 1 (extra_turns)")]
    assert divergent, labels
    assert any(label.startswith("≠ Turn 3 (guardrail)") for label in labels), labels
    assert "first divergence" in text
    assert any("B output guardrail `no_card_numbers` tripped" in label for label in labels)
    # the timelines: one HTML fragment, drawn on the server
    body = next(e.proto.body for e in at.get("html") if 'class="tlh"' in e.proto.body)
    store = Store(str(db))
    trace_of = {
        s.span_id: r["trace_id"] for r in (success, tripped) for s in store.spans(r["trace_id"])
    }
    links = [parse_qs(urlparse(unescape(h)).query) for h in re.findall(r'href="([^"]+)"', body)]
    linked = {(q["trace_id"][0], q["span_id"][0]) for q in links}
    assert all(trace_of.get(span) == trace for trace, span in linked)  # a span of that run
    assert {trace for trace, _ in linked} == {success["trace_id"], tripped["trace_id"]}
    titles = re.findall(r'<div class="tlh-title">([^<]*)</div>', body)
    assert titles == ["A", "B"]
    # the first divergent turn shaded: A's turn 1 (B made no turn there)
    panel_a = body[: body.index('<div class="tlh-title">B</div>')]
    shaded = re.findall(r'<div class="tlh-label tlh-shade" title="[^"]*">([^<]*)</div>', body)
    assert [unescape(x) for x in shaded] == ["T1 · Triage"]
    assert "tlh-label tlh-shade" in panel_a


def test_identical_turns_are_collapsed(app: AppTest, db: Path) -> None:
    success, _ = _support_runs(db)
    at = _open(app, "views/compare.py", a=success["trace_id"], b=success["trace_id"])
    assert "No divergence" in _text(at)
    labels = [e.label for e in at.expander]
    assert labels == [
        "= Turns 1–3: alike in both runs — Triage handed off to Billing; "
        "Billing called `lookup_order`; Billing answered"
    ]
    assert not at.expander[0].proto.expanded


def test_different_workflows_are_refused_until_forced(app: AppTest, db: Path) -> None:
    store = Store(str(db))
    research = store.list_runs(RunFilter(workflow="Research"), limit=1)[0]
    success, _ = _support_runs(db)
    at = _open(app, "views/compare.py", a=success["trace_id"], b=research["trace_id"])
    assert "different workflows ('Customer support' vs 'Research')" in at.error[0].value
    next(b for b in at.button if b.label == "Compare anyway").click()
    run_app(at)
    assert at.query_params["force"] == "1"
    assert any(e.label.startswith("≠ Turn 1") for e in at.expander)


def test_unknown_run_and_no_runs_given(app: AppTest) -> None:
    at = _open(app, "views/compare.py", a="trace_not_there", b="trace_nor_this")
    assert "No run with trace id `trace_not_there`" in at.error[0].value
    at = run_app(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.switch_page("views/compare.py")
    assert "Pick two runs" in run_app(at).info[0].value


def test_run_page_compares_with_the_latest_successful_run(app: AppTest, db: Path) -> None:
    _, tripped = _support_runs(db)
    at = _open(app, "views/run.py", trace_id=tripped["trace_id"])
    pick = next(s for s in at.selectbox if s.key == "compare_with_pick")
    store = Store(str(db))
    latest = store.list_runs(RunFilter(workflow="Customer support", status="succeeded"), limit=1)
    assert pick.value == latest[0]["trace_id"]
    assert tripped["trace_id"] not in pick.options  # not the run itself
    links = [p for p in at.get("page_link") if "Compare" in p.proto.label]
    assert links and f"b={tripped['trace_id']}" in links[0].proto.query_string


def test_picking_two_rows_opens_the_compare_page(app: AppTest, db: Path) -> None:
    success, tripped = _support_runs(db)
    at = run_app(app)
    next(t for t in at.toggle if t.key == "compare_pick").set_value(True)
    run_app(at)
    shown = at.session_state["_runs_shown"]
    rows = [shown.index(tripped["trace_id"]), shown.index(success["trace_id"])]
    at.session_state["runs_table"] = {"selection": {"rows": rows, "columns": []}}
    run_app(at)
    # the older run is A
    assert at.query_params["a"] == success["trace_id"]
    assert at.query_params["b"] == tripped["trace_id"]
    assert at.title[0].value == "Compare runs"
