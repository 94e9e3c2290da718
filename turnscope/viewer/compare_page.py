"""Compare page: two runs side by side, aligned turn by turn, the first divergence named.

``/compare?a=TRACE&b=TRACE`` (unique prefixes of the ids are enough; ``&force=1`` compares
runs of different workflows). A is the baseline, B the run under study: the run page's
"Compare with…" puts the run itself in B. The alignment and its sentence come from
``turnscope.analysis.diff``, the same as ``turnscope diff``.
"""

from __future__ import annotations

import difflib
import json
from typing import TYPE_CHECKING, Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from turnscope.analysis.diff import (
    DifferentWorkflows,
    RunDiff,
    TurnFacts,
    check_workflows,
    diff_runs,
)
from turnscope.store.runfilter import RunFilter
from turnscope.viewer import data
from turnscope.viewer.app import COMPARE_PAGE, RUN_PAGE
from turnscope.viewer.format import STATUS_COLORS, category_text, clip, duration, pretty_json
from turnscope.viewer.timeline import rows, window
from turnscope.viewer.timeline_html import Panel, timeline_html

if TYPE_CHECKING:
    from turnscope.analysis.diff import Row
    from turnscope.analysis.verdict import Analysis
    from turnscope.viewer.timeline import Row as TimelineRow

LONG_TEXT = 120  # longer texts that differ are shown as a line diff
WINDOW = 20  # timeline rows drawn per run, around the first divergence
ENTRIES_PER_PAGE = 10  # lines of the turn list per page (a stretch of alike turns is one)
MARK = " :orange-badge[changed]"


def render() -> None:
    """Draw the compare page."""
    given = {side: (st.query_params.get(side) or "").strip() for side in ("a", "b")}
    st.title("Compare runs")
    if not given["a"] or not given["b"]:
        st.info(
            "Pick two runs: select two rows on the runs page (“Pick two runs to compare”), use "
            "“Compare with…” on a run, or open `/compare?a=TRACE_ID&b=TRACE_ID`."
        )
        return
    # the browser loads st.html's code only when a page first shows one, a skeleton meanwhile
    # (0.1-1 s on a busy machine); an empty one in the sidebar starts it before the timelines
    st.sidebar.html("<span hidden></span>")
    store = data.open_store()
    try:
        _render(store, data.db_url(), given["a"], given["b"])
    except SQLAlchemyError as exc:
        data.fail(exc)


def _resolve(store: Any, side: str, given: str) -> str | None:
    """The full trace id of a side (a unique prefix is written back to the URL)."""
    if store.run_version(given)[2] is not None:
        return given
    matches = store.find_trace_ids(given) if len(given) >= 4 else []
    if len(matches) == 1:
        st.query_params[side] = matches[0]
        return str(matches[0])
    st.error(f"No run with trace id `{given}` in this database ({side.upper()}).")
    if len(matches) > 1:
        st.caption("Did you mean: " + ", ".join(f"`{m}`" for m in matches))
    return None


def _render(store: Any, url: str, given_a: str, given_b: str) -> None:
    id_a, id_b = _resolve(store, "a", given_a), _resolve(store, "b", given_b)
    if id_a is None or id_b is None:
        return
    version_a, version_b = store.run_version(id_a), store.run_version(id_b)
    run_a, analysis_a = data.run_detail(url, id_a, version_a)
    run_b, analysis_b = data.run_detail(url, id_b, version_b)
    if run_a is None or run_b is None:
        st.error("One of the runs is no longer in this database.")
        return
    if st.query_params.get("force") != "1":
        try:
            check_workflows(run_a, run_b)
        except DifferentWorkflows as exc:
            message = str(exc).replace("--force", "“Compare anyway”")
            st.error(message[:1].upper() + message[1:])
            st.button("Compare anyway", on_click=_force, key="compare_anyway")
            return
    diff = diff_runs(run_a, analysis_a, run_b, analysis_b)
    _header(diff)
    _divergence(diff)
    _timelines(analysis_a, analysis_b, diff)
    _turns(diff)


def _force() -> None:
    st.query_params["force"] = "1"


def _header(diff: RunDiff) -> None:
    cols = st.columns(2)
    for col, side, facts in ((cols[0], "A", diff.a), (cols[1], "B", diff.b)):
        with col, st.container(border=True, key=f"run_{side.lower()}"):
            st.page_link(
                RUN_PAGE,
                label=f"{side}: {facts['workflow'] or 'Run'} · {facts['trace_id']}",
                icon=":material/open_in_new:",
                query_params={"trace_id": facts["trace_id"]},
            )
            status = facts["status"]
            badges = st.container(horizontal=True)
            with badges:
                st.badge(status.replace("_", " "), color=STATUS_COLORS.get(status, "gray"))
                if facts["category"]:
                    st.badge(category_text(facts["category"], facts["reason"]), color="red")
            st.markdown(facts["explanation"] or "No verdict yet.")
            st.caption(
                f"{facts['turns']} turn(s) · {duration(facts['duration_ms'])}"
                + (f" · input: {clip(facts['first_input'], 80)}" if facts["first_input"] else "")
            )


def _divergence(diff: RunDiff) -> None:
    with st.container(border=True, key="divergence"):
        icon = ":material/check_circle:" if diff.kind is None else ":material/call_split:"
        st.markdown(f"#### {icon} {diff.summary}")
        if diff.kind is not None:
            turn = diff.first_divergent_turn
            st.caption(f"Kind: `{diff.kind}`" + (f" · turn {turn}" if turn else ""))
        for note in diff.notes:
            st.caption(note)


# --- both timelines on one time axis ------------------------------------------------------------


def _timelines(analysis_a: Analysis, analysis_b: Analysis, diff: RunDiff) -> None:
    """A's and B's turn timelines stacked over one shared axis (ms since each run started),
    each a window of turns around the first divergence."""
    if not diff.rows:
        return
    st.subheader("Timelines")
    windows = [_window(analysis_a, diff, "a"), _window(analysis_b, diff, "b")]
    # server-drawn HTML, not a chart component: it arrives with the rest of the page
    with st.container(key="compare_timeline"):
        st.html(_timeline_html(windows, analysis_a, analysis_b, diff))
    shown = []
    for side, (start, end), analysis in (
        ("A", windows[0], analysis_a),
        ("B", windows[1], analysis_b),
    ):
        total = len(rows(analysis))
        if end - start < total:
            shown.append(f"{side}: turns {start + 1}–{end} of {total}")
    st.caption(
        "Both runs on one time axis (ms since each run started); the first divergent turn is "
        "shaded. Click a bar to open it in its run."
        + (f" Shown around the divergence: {'; '.join(shown)}." if shown else "")
    )


def _window(analysis: Analysis, diff: RunDiff, side: str) -> tuple[int, int]:
    """The timeline rows of one run to draw: at most WINDOW, around its divergent turn."""
    all_rows = rows(analysis)
    focus = None
    if diff.first is not None:
        for row in diff.rows[diff.first :]:  # its divergent turn, or the next it made
            turn = row.a if side == "a" else row.b
            if turn is not None:
                focus = _row_of(all_rows, turn)
                break
    return window(len(all_rows), focus, WINDOW)


def _divergent_row(analysis: Analysis, diff: RunDiff, side: str) -> int | None:
    """The row of this run's first divergent turn (None if it made no such turn)."""
    if diff.first is None:
        return None
    first = diff.rows[diff.first]
    turn = first.a if side == "a" else first.b
    return None if turn is None else _row_of(rows(analysis), turn)


def _row_of(all_rows: list[TimelineRow], turn: TurnFacts) -> int | None:
    return next((i for i, r in enumerate(all_rows) if r.turn.span_ids == turn.span_ids), None)


def _timeline_html(
    windows: list[tuple[int, int]], analysis_a: Analysis, analysis_b: Analysis, diff: RunDiff
) -> str:
    """Both timelines as one HTML fragment. Not cached: two 20-turn windows take about 2 ms."""
    panels = [
        Panel(side.upper(), analysis, start, end, _divergent_row(analysis, diff, side))
        for side, analysis, (start, end) in zip(
            "ab", (analysis_a, analysis_b), windows, strict=True
        )
    ]
    return timeline_html(panels)


# --- turns side by side ----------------------------------------------------------------------


def _turns(diff: RunDiff) -> None:
    st.subheader("Turns")
    if not diff.rows:
        st.info("Neither run made a turn.")
        return
    # entries: a stretch of identical turns is one collapsed line, a differing row one line
    entries: list[list[Row]] = []
    for row in diff.rows:
        if row.same and entries and entries[-1][0].same:
            entries[-1].append(row)
        else:
            entries.append([row])
    first_page = 1
    if diff.first is not None:
        at = next(i for i, e in enumerate(entries) if diff.rows[diff.first] in e)
        first_page = at // ENTRIES_PER_PAGE + 1
    pages = -(-len(entries) // ENTRIES_PER_PAGE)
    page = 1
    if pages > 1:
        pair = (diff.a["trace_id"], diff.b["trace_id"])
        if st.session_state.get("_compare_pair") != pair:  # a new pair opens at its divergence
            st.session_state["_compare_pair"] = pair
            st.session_state["compare_page"] = first_page
        page = st.pagination(pages, key="compare_page", max_visible_pages=9)
    for entry in entries[(page - 1) * ENTRIES_PER_PAGE : page * ENTRIES_PER_PAGE]:
        if entry[0].same:
            _alike(entry)
        else:
            _differs(entry[0], first=diff.first is not None and entry[0] is diff.rows[diff.first])


def _alike(rows: list[Row]) -> None:
    first, last = rows[0].index, rows[-1].index
    span = f"Turn {first}" if first == last else f"Turns {first}–{last}"
    steps = "; ".join(f"{r.a.agent or '?'} {r.a.action()}" for r in rows[:3] if r.a)
    label = f"= {span}: alike in both runs — {clip(steps, 120)}" + ("; …" if len(rows) > 3 else "")
    box = st.expander(label, key=f"alike_{first}", on_change="rerun", icon=":material/check:")
    if box.open:  # drawn only when opened: long runs stay quick
        with box:
            for row in rows:
                cols = st.columns(2)
                for col, turn in ((cols[0], row.a), (cols[1], row.b)):
                    with col:
                        _turn_body(turn, set())
                st.divider()


def _differs(row: Row, first: bool) -> None:
    kind = row.kind or ""
    if row.a is None or row.b is None:
        side, turn = ("B", row.b) if row.a is None else ("A", row.a)
        what = f"only in {side}: {turn.agent or '?'} {turn.action()}" if turn else ""
    else:
        what = f"A {row.a.action()} · B {row.b.action()}"
    label = f"≠ Turn {row.index} ({kind}): {clip(what, 140)}"
    icon = ":material/call_split:" if first else ":material/difference:"
    if first:
        with st.container(border=True, key="divergent_turn"):
            st.markdown(":orange-badge[:material/flag: first divergence]")
            box = st.expander(label, expanded=True, key=f"row_{row.index}", icon=icon)
            with box:
                _side_by_side(row)
        return
    box = st.expander(label, key=f"row_{row.index}", on_change="rerun", icon=icon)
    if box.open:
        with box:
            _side_by_side(row)


def _side_by_side(row: Row) -> None:
    changed = {c.kind for c in row.changes}  # none for a turn only one run made
    cols = st.columns(2)
    for col, side, turn in ((cols[0], "A", row.a), (cols[1], "B", row.b)):
        with col:
            st.markdown(f"**{side}**")
            _turn_body(turn, changed)
    _field_diffs(row)


def _turn_body(turn: TurnFacts | None, changed: set[str]) -> None:
    """One run's side of a turn, changed fields marked."""
    if turn is None:
        st.caption("— no such turn in this run")
        return

    def mark(*kinds: str) -> str:
        return MARK if changed.intersection(kinds) else ""

    st.markdown(f"Turn {turn.number} · **{turn.agent or '?'}**{mark('agent')}")
    if turn.models:
        st.markdown(
            f"Model calls: {len(turn.models)} ({', '.join(dict.fromkeys(turn.models))})"
            + mark("model")
        )
    for guard in turn.guardrails:
        result = "**tripped**" if guard.triggered else "passed"
        if guard.error:
            result = f"raised: {clip(guard.error, 120)}"
        st.markdown(
            f"{guard.side.capitalize()} guardrail `{guard.name}`: {result}{mark('guardrail')}"
        )
    for error in turn.errors:
        st.markdown(f":red[Error: {clip(error, 200)}]{mark('error')}")
    if turn.handoff is not None:
        st.markdown(f"Handoff → **{turn.handoff}**{mark('handoff')}")
    for tool in turn.tools:
        st.markdown(f"Tool `{tool.name}`{mark('tool')}")
        if tool.arguments is not None:
            st.caption("Arguments" + mark("arguments"))
            st.code(pretty_json(tool.arguments), language="json")
        if tool.error:
            st.markdown(f":red[Raised: {clip(tool.error, 200)}]{mark('tool_error')}")
        elif tool.output is not None:
            st.caption("Output" + mark("tool_output"))
            st.code(clip(pretty_json(tool.output), 1200), language=None)
    if turn.output is not None:
        st.caption("The model said" + mark("output"))
        st.text(clip(turn.output, 1200))
    if turn.ended_at and turn.started_at:
        st.caption(duration((turn.ended_at - turn.started_at).total_seconds() * 1000))


def _field_diffs(row: Row) -> None:
    """Each changed value as a diff: JSON for arguments and outputs, lines for long text."""
    for change in row.changes:
        if change.kind in ("arguments", "tool_output"):
            attr = "arguments" if change.kind == "arguments" else "output"
            lines = _diff_lines(_json_lines(change.a[attr]), _json_lines(change.b[attr]))
            st.caption(f"{change.kind.replace('_', ' ')}: A → B")
            st.code(lines, language="diff")
        elif change.kind == "output" and max(len(change.a or ""), len(change.b or "")) > LONG_TEXT:
            lines = _diff_lines((change.a or "").splitlines(), (change.b or "").splitlines())
            st.caption("the model's answer: A → B")
            st.code(lines, language="diff")


def _json_lines(value: Any) -> list[str]:
    if value is None:
        return ["(none)"]
    try:
        return json.dumps(json.loads(value), indent=2, sort_keys=True).splitlines()
    except (TypeError, ValueError):
        return str(value).splitlines()


def _diff_lines(a: list[str], b: list[str]) -> str:
    out = difflib.unified_diff(a, b, "A", "B", lineterm="", n=2)
    return "\n".join(out) or "(no difference in the text)"


# --- links from other pages ----------------------------------------------------------------------


def compare_with(run: dict[str, Any]) -> None:
    """The run page's "Compare with…": a run of the same workflow (by default the latest that
    succeeded) as A, this run as B."""
    store = data.open_store()
    url = data.db_url()
    key = data.keyed(RunFilter(workflow=run.get("workflow") or ""))
    others = [
        r
        for r in data.list_runs(url, data.version(store), key, 50, 0, "newest")
        if r["trace_id"] != run["trace_id"] and r["workflow"] == run.get("workflow")
    ]
    with st.popover("Compare with…", icon=":material/compare_arrows:"):
        if not others:
            st.caption("No other run of this workflow to compare with.")
            return
        default = next((i for i, r in enumerate(others) if r["status"] == "succeeded"), 0)
        labels = {r["trace_id"]: _run_label(r) for r in others}
        choice = st.selectbox(
            "Run of the same workflow (A)",
            list(labels),
            index=default,
            format_func=labels.__getitem__,
            key="compare_with_pick",
            help="the latest successful run of this workflow is picked first",
        )
        st.page_link(
            COMPARE_PAGE,
            label="Compare",
            icon=":material/compare_arrows:",
            query_params={"a": choice, "b": run["trace_id"]},
        )


def _run_label(run: dict[str, Any]) -> str:
    category = f" · {run['category']}" if run.get("category") else ""
    started = (run.get("started_at") or "")[:19].replace("T", " ")
    return f"{run['status']}{category} · {started} · {run['trace_id']}"
