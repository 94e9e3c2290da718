"""Every viewer page through Streamlit's AppTest (real app, real SQLite, no browser): the
runs list and its filters, opening a run, the run page and its deep links, the failures
page, and clear messages for missing or foreign databases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

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
    """The viewer on the demo database, not yet run (as ``turnscope view`` runs it)."""
    with viewer_app(db, monkeypatch) as at:
        yield at


def _table(at: AppTest, key: str = "runs_table") -> Any:
    frames = [d for d in at.dataframe if d.proto.id and key in d.proto.id]
    assert frames, f"no dataframe {key}"
    return frames[0].value


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _store(db: Path) -> Store:
    return Store(str(db))


# --- runs page ---------------------------------------------------------------------------------


def test_runs_page_lists_every_run_failures_first(app: AppTest, db: Path) -> None:
    at = run_app(app)
    assert at.title[0].value == "Runs"
    store = _store(db)
    frame = _table(at)
    assert len(frame) == store.count_runs()
    assert list(frame.columns[:7]) == [
        "Status",
        "Check",
        "Category",
        "Failing agent",
        "Turn",
        "First error",
        "Agent path",
    ]
    for column in ("Turns", "Tool calls", "Fatal", "Recovered", "Tokens", "Duration"):
        assert column in frame.columns
    for column in ("Started", "Workflow", "Group id", "Trace id"):
        assert column in frame.columns
    ranks = [0 if s.endswith(" failed") else 1 for s in frame["Status"]]
    assert ranks[0] == 0 and ranks == sorted(ranks)  # failures first
    metrics = _metrics(at)
    figures = store.summary()
    assert metrics["Runs"] == str(figures["runs"])
    assert metrics["Failure rate"] == f"{figures['failure_rate']:.1%}"
    # max turns shows "turn k of max"
    row = frame[frame["Category"] == "max_turns_exceeded"].iloc[0]
    assert row["Turn"] in ("3 of 3", "2 of 2")
    # the chart of runs over time: every run in one stacked bar, every outcome in the legend
    chart = _runs_chart(at)
    assert sum(bar["runs"] for bar in chart["bars"]) == figures["runs"]
    assert {bar["series"] for bar in chart["bars"]} == {name for name, _ in chart["legend"]}
    assert all(
        bar["end"] > bar["start"] and bar["series"] in chart["colors"] for bar in chart["bars"]
    )


def _runs_chart(at: AppTest) -> dict[str, Any]:
    """The data the runs page sends to its SVG chart component."""
    import json

    chart = next(e for e in at.get("bidi_component") if e.proto.id.endswith("-runs_chart"))
    return json.loads(chart.proto.json)


def test_status_and_category_filters_from_the_url(app: AppTest, db: Path) -> None:
    app.query_params["status"] = ["failed"]
    app.query_params["category"] = ["max_turns_exceeded"]
    at = run_app(app)
    frame = _table(at)
    expected = _store(db).count_runs(RunFilter(status="failed", category="max_turns_exceeded"))
    assert len(frame) == expected == 2
    assert set(frame["Category"]) == {"max_turns_exceeded"}
    assert _metrics(at)["Runs"] == "2"


def test_failures_only_button(app: AppTest, db: Path) -> None:
    at = run_app(app)
    next(b for b in at.button if b.label == "Failures only").click()
    run_app(at)
    assert at.multiselect(key="status").value == ["failed", "incomplete"]
    frame = _table(at)
    assert len(frame) == _store(db).count_runs(RunFilter(status=["failed", "incomplete"]))
    assert all("failed" in s or "incomplete" in s for s in frame["Status"])


def test_workflow_agent_tool_filters(app: AppTest, db: Path) -> None:
    app.query_params["tool"] = "search_docs"
    app.query_params["workflow"] = "Research"
    at = run_app(app)
    frame = _table(at)
    expected = _store(db).count_runs(RunFilter(tool="search_docs", workflow="Research"))
    assert len(frame) == expected > 0
    assert set(frame["Workflow"]) == {"Research"}
    at.selectbox(key="agent").set_value("Billing")
    run_app(at)
    assert "No runs match" in " ".join(i.value for i in at.info)


def test_text_search_covers_tool_output(app: AppTest) -> None:
    app.query_params["q"] = "No exact match"  # only in search_docs outputs
    at = run_app(app)
    frame = _table(at)
    assert len(frame) == 2 and set(frame["Workflow"]) == {"Research"}


def test_time_range_and_custom_range(app: AppTest, db: Path) -> None:
    app.query_params["range"] = "custom"
    app.query_params["since"] = "2000-01-01"
    app.query_params["until"] = "2000-01-02"
    at = run_app(app)
    assert "No runs match" in " ".join(i.value for i in at.info)
    at.text_input(key="until").set_value("")
    run_app(at)
    assert len(_table(at)) == _store(db).count_runs()
    at.text_input(key="since").set_value("not a time")
    run_app(at)
    assert any("cannot read time" in e.value for e in at.error)


def test_sort_newest(app: AppTest) -> None:
    app.query_params["sort"] = "newest"
    at = run_app(app)
    started = list(_table(at)["Started"])
    assert started == sorted(started, reverse=True)


def test_selecting_a_row_opens_that_run(app: AppTest, db: Path) -> None:
    at = run_app(app)
    frame = _table(at)
    index = int(frame.index[frame["Category"] == "tool_error"][0])
    trace_id = frame.loc[index, "Trace id"]
    at.session_state["runs_table"] = {"selection": {"rows": [index], "columns": []}}
    run_app(at)
    assert at.query_params["trace_id"] == trace_id
    assert "charge_card" in at.markdown[2].value or any(
        "charge_card" in m.value for m in at.markdown
    )


def test_paging(app: AppTest, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import turnscope.viewer.runs_page as runs_page

    monkeypatch.setattr(runs_page, "PAGE_SIZE", 6)
    at = run_app(app)
    first = list(_table(at)["Trace id"])
    assert len(first) == 6
    app2 = AppTest.from_file(APP, default_timeout=TIMEOUT)
    app2.query_params["page"] = "2"
    at2 = run_app(app2)
    second = list(_table(at2)["Trace id"])
    assert len(second) == 6 and not set(first) & set(second)


def test_new_runs_are_announced_not_shown(app: AppTest, db: Path) -> None:
    at = run_app(app)
    count = len(_table(at))
    # pretend the view was opened before the newest run started
    at.session_state["_runs_as_of"] = _store(db).list_runs(order="oldest", limit=1)[0]["started_at"]
    from datetime import datetime

    at.session_state["_runs_as_of"] = datetime.fromisoformat(at.session_state["_runs_as_of"])
    run_app(at)
    assert len(_table(at)) < count
    banner = " ".join(i.value for i in at.info)
    assert "new run" in banner
    next(b for b in at.button if b.label == "Show them").click()
    run_app(at)
    assert len(_table(at)) == count


def test_failure_group_chip_from_the_url(app: AppTest, db: Path) -> None:
    group = _store(db).failure_groups()["groups"][0]
    from turnscope.viewer.filters import group_params

    for name, value in group_params(group).items():
        app.query_params[name] = value
    at = run_app(app)
    assert len(_table(at)) == group["runs"]
    assert any("Failure group" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Clear group").click()
    run_app(at)
    assert not any("Failure group" in m.value for m in at.markdown)
    wider = RunFilter(status=["failed", "incomplete"], category=group["category"])
    assert len(_table(at)) == _store(db).count_runs(wider) >= group["runs"]


def test_root_deep_link_opens_the_run(app: AppTest, db: Path) -> None:
    run = _store(db).list_runs(RunFilter(category="model_error"), limit=1)[0]
    app.query_params["trace_id"] = run["trace_id"]
    at = run_app(app)
    opening = _store(db).get_run(run["trace_id"])["explanation"][:30]
    assert any(opening in m.value for m in at.markdown)  # the run's verdict card


# --- run page ----------------------------------------------------------------------------------


def _open_run(app: AppTest, trace_id: str, **params: str) -> AppTest:
    run_app(app)
    app.switch_page("views/run.py")
    app.query_params["trace_id"] = trace_id
    for key, value in params.items():
        app.query_params[key] = value
    return run_app(app)


def _trace(db: Path, **flt: Any) -> dict[str, Any]:
    return _store(db).list_runs(RunFilter(**flt), limit=1)[0]


def test_run_page_shows_verdict_timeline_and_turns(app: AppTest, db: Path) -> None:
    run = _trace(db, category="max_turns_exceeded", workflow="Research")
    at = _open_run(app, run["trace_id"])
    text = " ".join(m.value for m in at.markdown)
    assert run["explanation"] in text  # the verdict sentence
    assert "`max_turns_exceeded`" in text and "`MaxTurnsExceeded`" in text
    assert f"`{run['failing_turn']} of {run['max_turns']}`" in text
    figure = _timeline_figure(at)  # drawn in the browser by plotly.js (basic bundle)
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    span_ids = {s.span_id for s in _store(db).spans(run["trace_id"])}
    clickable = {i for t in figure["data"] for i in t.get("customdata") or []}
    assert bars and clickable and clickable <= span_ids  # a click names a span of this run
    labels = [e.label for e in at.expander]
    assert sum(1 for label in labels if label.startswith("Turn ")) == run["turns"]
    assert any("called" in w.value and "identical arguments" in w.value for w in at.warning)
    assert any("Turn budget" in str(p.proto) for p in at.get("progress"))
    assert any(b.label == "Jump to first error" for b in at.button)


def _timeline_figure(at: AppTest) -> dict[str, Any]:
    """The Plotly figure the run page sends to its timeline component."""
    import json

    timeline = next(e for e in at.get("bidi_component") if e.proto.id.endswith("-timeline"))
    payload = json.loads(timeline.proto.json)
    assert payload["src"] == "/app/static/plotly-basic.min.js"
    return json.loads(payload["figure"])


def test_timeline_without_static_serving_uses_st_plotly_chart(app: AppTest, db: Path) -> None:
    """A bare ``streamlit run`` of the app (no static serving) still draws the timeline."""
    from streamlit import config

    run = _trace(db, category="max_turns_exceeded", workflow="Research")
    config.set_option("server.enableStaticServing", False)
    at = _open_run(app, run["trace_id"])
    assert not at.get("bidi_component")
    charts = at.get("plotly_chart")
    assert len(charts) == 1 and "customdata" in charts[0].proto.spec


def test_timeline_figure_marks_errors_repeats_and_budget(db: Path) -> None:
    from turnscope.viewer.timeline import COLORS, figure

    store = _store(db)
    run = _trace(db, category="max_turns_exceeded", workflow="Research")
    analysis = store.analysis(run["trace_id"])
    fig = figure(analysis)
    names = {trace.name for trace in fig.data}
    assert {"model", "tool", "repeated identical call", "run-level error"} <= names
    rows = set(fig.layout.yaxis.categoryarray)
    assert len(rows) == run["turns"]
    assert any(f"max_turns = {run['max_turns']}" in a.text for a in fig.layout.annotations)
    recovered = _trace(db, status="succeeded_with_errors", workflow="Treasury")
    fig = figure(store.analysis(recovered["trace_id"]))
    amber = [t for t in fig.data if t.name == "recovered error"]
    assert amber and set(amber[0].marker.color) == {COLORS["recovered"]}
    failed = _trace(db, category="tool_error")
    fig = figure(store.analysis(failed["trace_id"]))
    red = [t for t in fig.data if t.name == "fatal error"]
    assert red and set(red[0].marker.color) == {COLORS["fatal"]}


def test_span_deep_link_focuses_the_span(app: AppTest, db: Path) -> None:
    run = _trace(db, category="tool_error")
    analysis = _store(db).analysis(run["trace_id"])
    span = next(s for s in analysis.structure.spans if s.kind == "function")
    at = _open_run(app, run["trace_id"], span_id=span.span_id)
    assert at.selectbox(key="span_pick").value == span.span_id
    text = " ".join(m.value for m in at.markdown)
    assert "**Arguments**" in text and "**Output**" in text
    assert any("card declined" in e.value for e in at.error)


def test_jump_to_first_error(app: AppTest, db: Path) -> None:
    run = _trace(db, category="tool_error")
    at = _open_run(app, run["trace_id"])
    next(b for b in at.button if b.label == "Jump to first error").click()
    run_app(at)
    assert at.query_params["span_id"] == run["failing_span_id"]
    assert at.selectbox(key="span_pick").value == run["failing_span_id"]


def test_evidence_links_focus_their_span(app: AppTest, db: Path) -> None:
    run = _trace(db, category="max_turns_exceeded", workflow="Research")
    at = _open_run(app, run["trace_id"])
    evidence = _store(db).get_run(run["trace_id"])["evidence"]
    at.button(key="evidence_1").click()
    run_app(at)
    assert at.query_params["span_id"] == evidence[1]["span_id"]


def test_downloads_and_jaeger_link(app: AppTest, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNSCOPE_JAEGER_URL", "http://jaeger.local:16686/")
    run = _trace(db, category="tool_error")
    at = _open_run(app, run["trace_id"])
    links = [str(e.proto) for e in at.get("link_button")]
    from turnscope.ids import otel_trace_id_hex

    assert any(
        f"http://jaeger.local:16686/trace/{otel_trace_id_hex(run['trace_id'])}" in p for p in links
    )
    labels = [str(e.proto) for e in at.get("download_button")]
    assert any("Download JSON" in p for p in labels)
    assert any("Incident report" in p for p in labels)


def test_incident_report_and_json_export(db: Path) -> None:
    import json

    from turnscope.viewer.format import incident_report, run_export

    store = _store(db)
    run = store.get_run(_trace(db, category="tool_error")["trace_id"])
    analysis = store.analysis(run["trace_id"])
    report = incident_report(run, analysis, link="http://x/run?trace_id=1")
    assert report.startswith("# Incident report: Checkout")
    assert analysis.verdict.explanation in report
    assert "## Evidence" in report and "charge_card" in report
    assert "## Turn 1 in detail" in report
    exported = json.loads(json.dumps(run_export(run, analysis), default=str))
    assert exported["verdict"]["category"] == "tool_error"
    assert len(exported["spans"]) == run["span_count"]


def test_badges_for_incomplete_and_truncated(app: AppTest, db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as conn:
        conn.execute(
            "update runs set truncated = 1, dropped_spans = 3 where category = 'tool_error'"
        )
        # the killed run's writer: gone for long
        conn.execute("update processes set heartbeat_at = '2000-01-01 00:00:00.000000'")
    app.query_params.clear()
    import os

    os.environ["TURNSCOPE_DB"] = str(copy)
    killed = Store(str(copy)).list_runs(RunFilter(category="incomplete"), limit=1)[0]
    at = _open_run(app, killed["trace_id"])
    badges = " ".join(m.value for m in at.markdown)
    assert "incomplete" in badges and "never finished" in badges
    truncated = Store(str(copy)).list_runs(RunFilter(category="tool_error"), limit=1)[0]
    at.query_params["trace_id"] = truncated["trace_id"]
    run_app(at)
    badges = " ".join(m.value for m in at.markdown)
    assert "truncated data" in badges and "3 spans dropped" in badges


def test_badge_for_a_run_paused_for_approval(app: AppTest, db: Path) -> None:
    runs = _store(db).list_runs(RunFilter(workflow="Customer support"), limit=100)
    paused = next(r for r in runs if "approval" in (r["explanation"] or ""))
    at = _open_run(app, paused["trace_id"])
    badges = " ".join(m.value for m in at.markdown)
    assert "paused: 1 tool call(s) await approval" in badges
    other = next(r for r in runs if r["status"] == "succeeded" and r is not paused)
    at.query_params["trace_id"] = other["trace_id"]
    assert "await approval" not in " ".join(m.value for m in run_app(at).markdown)


def test_running_run_refreshes_itself_with_a_pause(app: AppTest, db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "live.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as conn:  # the killed run's writer looks alive (other host)
        conn.execute(
            "update processes set heartbeat_at = '2999-01-01 00:00:00.000000', "
            "host = 'another-host'"
        )
        conn.execute("update runs set host = 'another-host' where status = 'running'")
    import os

    os.environ["TURNSCOPE_DB"] = str(copy)
    running = Store(str(copy)).list_runs(RunFilter(status="running"), limit=1)[0]
    at = _open_run(app, running["trace_id"])
    assert at.toggle(key="pause_live").value is False
    assert any("is in turn" in m.value for m in at.markdown)
    at.toggle(key="pause_live").set_value(True)
    run_app(at)
    assert any("is in turn" in m.value for m in at.markdown)


def test_unknown_and_short_trace_ids(app: AppTest, db: Path) -> None:
    at = _open_run(app, "trace_does_not_exist")
    assert any("No run with trace id" in e.value for e in at.error)
    run = _trace(db, category="tool_error")
    at.query_params["trace_id"] = run["trace_id"][:14]  # a unique prefix
    run_app(at)
    assert at.query_params["trace_id"] == run["trace_id"]


def test_run_page_without_a_trace_id(app: AppTest) -> None:
    run_app(app)
    app.switch_page("views/run.py")
    at = run_app(app)
    assert any("No run selected" in i.value for i in at.info)


# --- reason and warnings ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def diag_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs with reasons and warnings (``diagnosed.RUNS``), written by the real writer."""
    from diagnosed import write_diagnosed

    path = tmp_path_factory.mktemp("diag") / "diagnosed.db"
    write_diagnosed(f"sqlite:///{path}")
    return path


def _row(frame: Any, trace_id: str) -> Any:
    return frame[frame["Trace id"] == trace_id].iloc[0]


def test_runs_list_shows_reason_and_a_check_badge(
    app: AppTest, diag_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diagnosed import RUNS

    monkeypatch.setenv("TURNSCOPE_DB", str(diag_db))
    frame = _table(run_app(app))
    assert len(frame) == len(RUNS)
    assert _row(frame, RUNS[0].trace_id)["Category"] == "model_error (rate_limited)"
    assert _row(frame, RUNS[3].trace_id)["Category"] == "model_error"  # no reason known
    assert _row(frame, RUNS[5].trace_id)["Check"] == "check ×2"
    assert _row(frame, RUNS[6].trace_id)["Check"] == "check"
    assert _row(frame, RUNS[7].trace_id)["Check"] == ""


def test_reason_and_warnings_filters_from_the_url_and_the_sidebar(
    app: AppTest, diag_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diagnosed import RUNS

    monkeypatch.setenv("TURNSCOPE_DB", str(diag_db))
    app.query_params["reason"] = ["rate_limited", "connect"]
    at = run_app(app)
    assert at.multiselect(key="reason").value == ["rate_limited", "connect"]
    expected = {RUNS[0].trace_id, RUNS[1].trace_id, RUNS[4].trace_id}
    assert set(_table(at)["Trace id"]) == expected
    assert _metrics(at)["Runs"] == "3"
    at.multiselect(key="reason").set_value([])
    at.checkbox(key="warnings").check()
    run_app(at)
    assert set(_table(at)["Trace id"]) == {RUNS[5].trace_id, RUNS[6].trace_id}
    next(b for b in at.button if b.label == "Clear").click()
    run_app(at)
    assert at.checkbox(key="warnings").value is False
    assert len(_table(at)) == len(RUNS)


def test_failures_page_groups_by_category_and_reason(
    app: AppTest, diag_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNSCOPE_DB", str(diag_db))
    run_app(app)
    app.switch_page("views/failures.py")
    at = run_app(app)
    frame = _table(at, "failure_groups")
    groups = {
        (c, r): n for c, r, n in zip(frame["Category"], frame["Reason"], frame["Runs"], strict=True)
    }
    assert groups == {
        ("model_error", "rate_limited"): 2,
        ("model_error", "quota_exceeded"): 1,
        ("model_error", ""): 1,
        ("mcp_error", "connect"): 1,
        ("tool_error", ""): 1,
    }
    assert _metrics(at)["Biggest group"] == "model_error (rate_limited)"
    # a group without a reason lists only the runs without one
    index = int(frame.index[(frame["Category"] == "model_error") & (frame["Reason"] == "")][0])
    at.session_state["failure_groups"] = {"selection": {"rows": [index], "columns": []}}
    run_app(at)
    runs = _table(at)
    assert list(runs["Category"]) == ["model_error"]
    assert any("reason **(none)**" in m.value for m in at.markdown)


def test_run_page_shows_the_reason_and_the_warnings(
    app: AppTest, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run page recomputes the verdict from the spans; here the analysis is given a
    reason and warnings (one naming a real span) as the analysis will produce them."""
    from turnscope.records import RunWarning

    copy = tmp_path / "copy.db"  # its own cache keys: no earlier test's analysis is reused
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    monkeypatch.setenv("TURNSCOPE_DB", str(copy))
    run = _trace(db, category="tool_error")
    span = next(s for s in _store(db).spans(run["trace_id"]) if s.kind == "function")
    warnings = [
        RunWarning("tool_reported_error", "lookup said: not found", "Billing", 1, span.span_id),
        RunWarning("refusal", "The final message is a refusal", "Billing", 2),
    ]
    original = Store.analysis

    def analysis(self: Store, trace_id: str) -> Any:
        found = original(self, trace_id)
        found.verdict.reason = "timeout"
        found.verdict.warnings = list(warnings)
        return found

    monkeypatch.setattr(Store, "analysis", analysis)
    at = _open_run(app, run["trace_id"])
    text = " ".join(m.value for m in at.markdown)
    assert "**Reason:** `timeout`" in text
    assert "tool_error (timeout)" in text and "check: 2 warnings" in text  # header badges
    assert "**Warnings** (worth a look)" in text
    assert "refusal: The final message is a refusal (agent Billing · turn 2)" in text
    button = at.button(key="warning_0")
    assert button.label == "tool_reported_error: lookup said: not found (agent Billing · turn 1)"
    button.click()
    run_app(at)
    assert at.query_params["span_id"] == span.span_id


# --- failures page -----------------------------------------------------------------------------


def test_failures_page_groups_and_opens_the_runs_of_a_group(app: AppTest, db: Path) -> None:
    run_app(app)
    app.switch_page("views/failures.py")
    at = run_app(app)
    assert at.title[0].value == "Failures"
    frame = _table(at, "failure_groups")
    result = _store(db).failure_groups(limit=100)
    assert len(frame) == len(result["groups"])
    assert int(frame["Runs"].sum()) == result["total"]
    for column in ("Category", "Agent", "Tool", "Message", "Share", "First seen", "Last seen"):
        assert column in frame.columns
    assert "Trend" in frame.columns and "Example" in frame.columns
    index = int(frame.index[frame["Category"] == "tool_error"][0])
    at.session_state["failure_groups"] = {"selection": {"rows": [index], "columns": []}}
    run_app(at)
    assert at.title[0].value == "Runs"
    runs = _table(at)
    assert len(runs) == int(frame.loc[index, "Runs"])
    assert set(runs["Category"]) == {"tool_error"}


def test_failures_page_filters(app: AppTest) -> None:
    run_app(app)
    app.switch_page("views/failures.py")
    app.query_params["f_category"] = ["model_error"]
    at = run_app(app)
    frame = _table(at, "failure_groups")
    # the demo's 11 model errors differ in reason or message: one group each
    assert set(frame["Category"]) == {"model_error"} and len(frame) == 11


# --- databases that are not there ------------------------------------------------------------


def test_missing_database_is_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNSCOPE_DB", str(tmp_path / "nope.db"))
    for page in (None, "views/failures.py", "views/run.py"):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        if page:
            at.switch_page(page)
            at.query_params["trace_id"] = "trace_x"
            at.run()
        assert not at.exception
        assert any("no turnscope database" in e.value for e in at.error), page


def test_foreign_database_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("create table notes (x)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    for path, words in ((other, "not a turnscope database"), (garbage, "cannot read")):
        monkeypatch.setenv("TURNSCOPE_DB", str(path))
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        assert not at.exception
        assert any(words in e.value for e in at.error), [e.value for e in at.error]


# --- turnscope view ----------------------------------------------------------------------------


def test_view_command_is_local_and_private() -> None:
    from turnscope.cli import build_parser
    from turnscope.cli.view import view_command

    args = build_parser().parse_args(["view"])
    assert (args.host, args.port) == ("127.0.0.1", 8501)
    command = view_command(args.host, args.port)
    joined = " ".join(command)
    assert "--server.address 127.0.0.1" in joined
    assert "--browser.gatherUsageStats false" in joined
    assert "--server.headless true" in joined
    assert command[-len(command) :][4].endswith("turnscope/viewer/app.py")


def test_view_rejects_bad_ports(capsys: pytest.CaptureFixture[str]) -> None:
    from turnscope.cli import main

    with pytest.raises(SystemExit):
        main(["view", "--port", "70000"])
    assert "between 1 and 65535" in capsys.readouterr().err


def test_importing_the_app_does_nothing() -> None:
    import importlib

    import turnscope.viewer.app as viewer_app

    module = importlib.reload(viewer_app)
    assert callable(module.main)
