"""Run page: the verdict first, then the turn timeline, the focused span and every turn.

Deep links: ``/run?trace_id=...`` opens a run (a unique prefix of the id is enough) and
``&span_id=...`` focuses a span. While the run is still running the page refreshes itself
every few seconds, with a pause switch.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from turnscope.analysis.summary import awaiting_approval
from turnscope.viewer import cost_view, data
from turnscope.viewer.app import RUN_PAGE, RUNS_PAGE
from turnscope.viewer.compare_page import compare_with
from turnscope.viewer.conversation_page import run_position
from turnscope.viewer.format import (
    STATUS_COLORS,
    STATUS_ICONS,
    category_text,
    clip,
    duration,
    first_error_span,
    incident_report,
    is_model,
    jaeger_link,
    local_time,
    model_io,
    pretty_json,
    repeated_spans,
    run_export,
    span_dict,
    span_label,
    tokens,
    turn_text,
    warning_where,
)
from turnscope.viewer.plotly_view import plotly_view, preload_plotly
from turnscope.viewer.timeline import MAX_ROWS, failure_states, figure, rows, window

if TYPE_CHECKING:
    from turnscope.analysis.turns import Turn
    from turnscope.analysis.verdict import Analysis
    from turnscope.records import SpanRecord

SPAN_KEY = "span_id"  # URL parameter: the focused span
PICK_KEY = "span_pick"  # the span menu (follows the URL)
TURNS_PER_PAGE = 20
LIVE_SECONDS = 2
RAW_JSON_CHARS = 200_000  # above this the raw view shows the start; the download has it all
SAW_ITEMS = 4  # input items shown per model call (the full input is in the raw JSON)


def render() -> None:
    """Draw the run page."""
    back = st.session_state.get("_runs_return") or {}
    st.page_link(RUNS_PAGE, label="Runs", icon=":material/arrow_back:", query_params=back)
    trace_id = (st.query_params.get("trace_id") or "").strip()
    if not trace_id:
        st.info("No run selected. Open one from the runs list, or add `?trace_id=...` to the URL.")
        return
    store = data.open_store()
    url = data.db_url()
    try:
        _render(store, url, trace_id)
    except SQLAlchemyError as exc:
        data.fail(exc)


def _render(store: Any, url: str, trace_id: str) -> None:
    version = store.run_version(trace_id)
    if version[2] is None:
        matches = store.find_trace_ids(trace_id) if len(trace_id) >= 4 else []
        if len(matches) == 1:  # a short id from a chat message or the CLI
            params = {"trace_id": matches[0]}
            if st.query_params.get(SPAN_KEY):
                params[SPAN_KEY] = st.query_params[SPAN_KEY]
            st.switch_page(RUN_PAGE, query_params=params)
        st.error(f"No run with trace id `{trace_id}` in this database.")
        if len(matches) > 1:
            st.caption("Did you mean: " + ", ".join(f"`{m}`" for m in matches))
        return
    preload_plotly()  # the timeline's plotly.js, ready before the chart mounts
    run, analysis = data.run_detail(url, trace_id, version)
    if run is None:
        st.error(f"No run with trace id `{trace_id}` in this database.")
        return
    if run["status"] != "running":
        _body(run, analysis)
        return
    paused = st.toggle(
        "Pause live updates",
        key="pause_live",
        help=f"The run is still running; the page refreshes every {LIVE_SECONDS} s.",
    )

    @st.fragment(run_every=None if paused else LIVE_SECONDS)
    def live() -> None:
        fresh = store.run_version(trace_id)
        current, current_analysis = data.run_detail(url, trace_id, fresh)
        if current is None or current["status"] != "running":
            st.rerun()  # it ended: redraw the whole page once, without refreshing
        _body(current, current_analysis)

    live()


# --- the page body -----------------------------------------------------------------------------


def _body(run: dict[str, Any], analysis: Analysis) -> None:
    verdict = analysis.verdict
    by_id = analysis.structure.by_id
    _focus_index(analysis)
    _header(run, analysis)
    cost = cost_view.of_run(analysis)
    _verdict_card(run, analysis, cost)
    _actions(run, analysis, cost)
    cost_view.section(cost)
    focus = st.query_params.get(SPAN_KEY)
    if focus not in by_id:
        focus = None
    _timeline(analysis, focus)
    _span_picker(analysis, focus)
    if focus is not None:
        _span_detail(analysis, by_id[focus])
    _turns(analysis, focus, verdict.turn)
    _all_spans(analysis)


def _header(run: dict[str, Any], analysis: Analysis) -> None:
    status = analysis.verdict.status
    st.title(run["workflow"] or "Run")
    badges = st.container(horizontal=True)
    with badges:
        st.badge(status.replace("_", " "), color=STATUS_COLORS.get(status, "gray"))
        verdict = analysis.verdict
        if verdict.category:
            st.badge(
                category_text(verdict.category, verdict.reason),
                color="red" if status == "failed" else "violet",
            )
        count = len(verdict.warnings)
        if count:  # something to look at, whatever the status says
            st.badge(
                f"check: {count} warning{'s' if count != 1 else ''}",
                icon=":material/flag:",
                color="orange",
            )
        if status == "running":
            st.badge("running: live", icon=":material/sync:", color="blue")
        if status == "incomplete":
            st.badge("incomplete: the process stopped", icon=":material/warning:", color="violet")
        waiting = awaiting_approval(analysis.structure) if status.startswith("succeeded") else []
        if waiting:  # human-in-the-loop: the run returned and resumes once approved
            st.badge(
                f"paused: {len(waiting)} tool call(s) await approval",
                icon=":material/pending_actions:",
                color="blue",
            )
        if run.get("truncated"):
            st.badge("truncated data", icon=":material/content_cut:", color="orange")
        if run.get("dropped_spans"):
            st.badge(
                f"{run['dropped_spans']} spans dropped", icon=":material/warning:", color="orange"
            )
        open_spans = [s for s in analysis.structure.spans if s.ended_at is None]
        if open_spans and status != "running":
            st.badge(f"{len(open_spans)} spans never ended", color="gray")
        if run.get("streamed"):
            st.badge("streamed", color="gray")
    st.caption(
        f"`{run['trace_id']}` · started {local_time(run['started_at'], st.context.timezone_offset)}"
        + (f" · group `{run['group_id']}`" if run.get("group_id") else "")
        + (f" · SDK {run['sdk_version']}" if run.get("sdk_version") else "")
    )
    run_position(run)  # "exchange 4 of 7" of its conversation, with previous and next
    cols = st.columns(7)
    cols[0].metric("Duration", duration(run["duration_ms"]))
    cols[1].metric("Turns", run["turns"])
    cols[2].metric("Model calls", run["model_calls"])
    cols[3].metric("Tool calls", run["tool_calls"])
    cols[4].metric("Tokens", tokens((run["input_tokens"] or 0) + (run["output_tokens"] or 0)))
    cols[5].metric("Fatal errors", run["fatal_error_count"])
    cols[6].metric("Recovered errors", run["recovered_error_count"])


def _focus_index(analysis: Analysis) -> None:
    """Remember, for every span, its turn's expander key and turns page (callbacks run
    before the page and read it from the session)."""
    structure = analysis.structure
    index: dict[str, tuple[str | None, int]] = {}
    position = {id(t): i for i, t in enumerate(structure.turns)}
    for span in structure.spans:
        turn = structure.turn_of(span)
        if turn is None:
            index[span.span_id] = (None, 1)
        else:
            index[span.span_id] = (_turn_key(turn), position[id(turn)] // TURNS_PER_PAGE + 1)
    st.session_state["_focus_index"] = index


def _focus(span_id: str | None) -> None:
    """Focus a span: put it in the URL, select it, show its turn's page and open its turn."""
    index = st.session_state.get("_focus_index") or {}
    if not span_id or span_id not in index:
        return
    st.query_params[SPAN_KEY] = span_id
    st.session_state[PICK_KEY] = span_id
    st.session_state["errors_only"] = False
    turn_key, page = index[span_id]
    if turn_key is not None:
        st.session_state["turn_page"] = page
        st.session_state[turn_key] = True


def _picked() -> None:
    chosen = st.session_state.get(PICK_KEY)
    if chosen:
        _focus(chosen)
    else:
        st.query_params.pop(SPAN_KEY, None)


def _verdict_card(run: dict[str, Any], analysis: Analysis, cost: Any = None) -> None:
    verdict = analysis.verdict
    failed = verdict.status in ("failed", "incomplete")
    with st.container(border=True, key="verdict_card"):
        icon = STATUS_ICONS.get(verdict.status, "")
        st.markdown(f"#### {icon} {verdict.explanation or 'No verdict yet.'}")
        facts = [
            ("Category", verdict.category),
            ("Reason", verdict.reason),
            ("Exception", verdict.exception),
            ("Message", clip(verdict.message, 160) if verdict.message else None),
            ("Agent", verdict.agent if failed or verdict.status == "running" else None),
            ("Turn", turn_text(verdict.turn, verdict.max_turns) if failed else None),
            ("Tool", verdict.tool),
        ]
        shown = [(k, v) for k, v in facts if v not in (None, "")]
        if shown:
            st.markdown(" · ".join(f"**{k}:** `{v}`" for k, v in shown))
        if cost is not None:
            cost_view.verdict_lines(cost)
        if verdict.evidence:
            st.markdown("**Evidence**")
            for i, item in enumerate(verdict.evidence):
                label = f"{item.kind}: {clip(item.message, 150)}"
                _span_line(analysis, label, item.span_id, f"evidence_{i}", ":material/arrow_right:")
        if verdict.warnings:
            _warnings(analysis)
        if verdict.recovered_errors:
            st.markdown("**Recovered errors** (the run went on)")
            for group in verdict.recovered_errors:
                tool = f" `{group.get('tool')}`" if group.get("tool") else ""
                st.warning(
                    f"{group.get('category')}{tool} ×{group.get('count')}: "
                    f"{clip(group.get('message'), 160)}",
                    icon=":material/warning:",
                )


def _warnings(analysis: Analysis) -> None:
    """The verdict's warnings: kind, message, where; a warning naming a span focuses it."""
    st.markdown("**Warnings** (worth a look)")
    for i, warning in enumerate(analysis.verdict.warnings):
        where = warning_where(warning.agent, warning.turn)
        label = f"{warning.kind}: {clip(warning.message, 150)}" + (f" ({where})" if where else "")
        _span_line(
            analysis,
            label,
            warning.span_id,
            f"warning_{i}",
            ":material/flag:",
            ":orange[:material/flag:] ",
        )


def _span_line(
    analysis: Analysis, label: str, span_id: str | None, key: str, icon: str, mark: str = ""
) -> None:
    """One line of the verdict card: a button focusing its span when the run has that span,
    else plain text (``mark`` in front)."""
    if span_id and span_id in analysis.structure.by_id:
        st.button(
            label,
            key=key,
            type="tertiary",
            icon=icon,
            on_click=_focus,
            args=(span_id,),
            help=f"Focus span {span_id}",
        )
    else:
        st.markdown(f"- {mark}{label}")


def _run_link(trace_id: str) -> str:
    base = st.context.url or ""
    return f"{base}?trace_id={quote(trace_id)}" if base else f"?trace_id={quote(trace_id)}"


def _actions(run: dict[str, Any], analysis: Analysis, cost: Any = None) -> None:
    trace_id = run["trace_id"]
    jump = first_error_span(analysis)
    jaeger = jaeger_link(data.jaeger_url(), trace_id, st.query_params.get(SPAN_KEY))
    link = _run_link(trace_id)
    bar = st.container(horizontal=True)
    with bar:
        st.button(
            "Jump to first error",
            icon=":material/error:",
            disabled=jump is None,
            on_click=_focus,
            args=(jump,),
            key="jump_first_error",
        )
        if jaeger:
            st.link_button("Open in Jaeger", jaeger, icon=":material/open_in_new:")
        st.download_button(
            "Download JSON",
            data=lambda: json.dumps(
                run_export(run, analysis), indent=2, ensure_ascii=False, default=str
            ),
            file_name=f"{trace_id}.json",
            mime="application/json",
            icon=":material/download:",
            on_click="ignore",
        )
        st.download_button(
            "Incident report (Markdown)",
            data=lambda: incident_report(run, analysis, link=link, jaeger=jaeger, cost=cost),
            file_name=f"{trace_id}.md",
            mime="text/markdown",
            icon=":material/description:",
            on_click="ignore",
        )
        with st.popover("Link", icon=":material/link:"):
            st.code(link, language=None)
        compare_with(run)  # another run of the workflow beside this one (the Compare page)


# --- timeline ----------------------------------------------------------------------------------


def _timeline(analysis: Analysis, focus: str | None) -> None:
    verdict = analysis.verdict
    all_rows = rows(analysis)
    st.subheader("Turn timeline")
    if not all_rows:
        st.info("No turns recorded (the run stopped before its first model call).")
        return
    if verdict.max_turns:
        used = min(
            len([r for r in all_rows if analysis.structure.scopes[r.key[0]].top_level]), 10**6
        )
        st.progress(
            min(1.0, used / verdict.max_turns),
            text=f"Turn budget: {used} of {verdict.max_turns} turns used (max_turns)",
        )
    focus_row = None
    if focus:
        turn = analysis.structure.turn_of(analysis.structure.by_id[focus])
        focus_row = next((i for i, r in enumerate(all_rows) if r.turn is turn), None)
    elif verdict.turn is not None:
        focus_row = next((i for i, r in enumerate(all_rows) if r.turn.number == verdict.turn), None)
    start, end = window(len(all_rows), focus_row)
    if len(all_rows) > MAX_ROWS:
        start, end = st.slider(
            "Turns shown",
            1,
            len(all_rows),
            (start + 1, end),
            key="timeline_window",
            help=f"Runs with more than {MAX_ROWS} turns are drawn a window at a time.",
        )
        start -= 1
    fig = figure(analysis, start_row=start, end_row=end, focus_span=focus)
    plotly_view(
        fig.to_json(),
        key="timeline",
        on_click=_focus,  # each bar's customdata is its span id
        config={"displayModeBar": False, "responsive": True},
    )
    caption = "Bars: model calls, tools, handoffs, guardrails; red = fatal error, amber = error "
    caption += "the run survived; ○ = identical tool call repeated. Click a bar to inspect it."
    st.caption(caption)
    for loop in analysis.loops[:5]:
        st.warning(
            f"`{loop['tool']}({clip(loop['arguments'], 100)})` called {loop['count']} times "
            "with identical arguments.",
            icon=":material/repeat:",
        )


# --- spans -------------------------------------------------------------------------------------


def _span_picker(analysis: Analysis, focus: str | None) -> None:
    spans = analysis.structure.spans
    by_id = analysis.structure.by_id
    # the URL's span_id is the truth (deep links, evidence, chart clicks); the menu follows it
    if st.session_state.get(PICK_KEY) != focus:
        st.session_state[PICK_KEY] = focus
    st.selectbox(
        "Span",
        [s.span_id for s in spans],
        key=PICK_KEY,
        index=None,
        on_change=_picked,
        format_func=lambda sid: f"{span_label(by_id[sid])}  ({sid})",
        placeholder="Pick a span to inspect, or click a bar or a piece of evidence",
    )


def _span_detail(analysis: Analysis, span: SpanRecord) -> None:
    states = failure_states(analysis)
    repeats = repeated_spans(analysis)
    with st.container(border=True, key="span_detail"):
        st.markdown(f"**{span_label(span)}** · `{span.span_id}`")
        facts = [
            ("agent", span.agent),
            ("turn", span.turn),
            ("duration", duration(span.duration_ms) if span.ended_at else "never ended"),
            ("model", span.model),
            ("tokens", f"{span.input_tokens or 0} in / {span.output_tokens or 0} out")
            if is_model(span)
            else ("tokens", None),
        ]
        st.caption(" · ".join(f"{k}: {v}" for k, v in facts if v not in (None, "")))
        _error_line(span, states.get(span.span_id))
        if span.span_id in repeats:
            st.warning(f"Identical call made {repeats[span.span_id]} times in this run.")
        _span_content(span)
        raw = st.expander("Raw JSON", key="raw_json", on_change="rerun")
        if raw.open:
            text = json.dumps(span_dict(span), indent=2, ensure_ascii=False, default=str)
            if len(text) > RAW_JSON_CHARS:
                st.caption(
                    f"{len(text):,} characters; showing the start. The download has everything."
                )
                st.code(text[:RAW_JSON_CHARS], language="json")
            else:
                st.json(span_dict(span))
            st.download_button(
                "Download span JSON",
                data=text,
                file_name=f"{span.span_id}.json",
                mime="application/json",
                on_click="ignore",
            )


def _error_line(span: Any, state: str | None) -> None:
    if span.error_message is None:
        return
    detail = ""
    if span.error_data:
        detail = " — " + clip(json.dumps(span.error_data, ensure_ascii=False, default=str), 300)
    text = f"{span.error_message}{detail}"
    if state == "recovered":
        st.warning(f"Recovered error: {text}", icon=":material/warning:")
    else:
        st.error(f"Error: {text}", icon=":material/error:")


def _span_content(span: SpanRecord) -> None:
    """What the span did, in the user's terms."""
    data_ = span.data or {}
    if is_model(span):
        seen, said = model_io(span)
        if seen:
            more = len(seen) - SAW_ITEMS
            st.markdown(
                "**The model saw**" + (f" (last {SAW_ITEMS} of {len(seen)})" if more > 0 else "")
            )
            for line in seen[-SAW_ITEMS:]:
                st.text(clip(line, 600))
        if said:
            st.markdown("**The model said**")
            for line in said:
                st.text(clip(line, 1200))
        if not seen and not said:
            st.caption("No model input or output was captured for this call.")
    elif span.kind == "function":
        st.markdown("**Arguments**")
        st.code(pretty_json(data_.get("input")) or "", language="json")
        st.markdown("**Output**")
        output = data_.get("output")
        st.code(pretty_json(output) if output is not None else "(no output)", language=None)
    elif span.kind == "handoff":
        st.markdown(f"Handoff **{data_.get('from_agent')}** → **{data_.get('to_agent')}**")
    elif span.kind == "guardrail":
        triggered = data_.get("triggered")
        st.markdown(
            f"Guardrail **{span.name}**: {':red[**triggered**]' if triggered else 'passed'}"
        )
    elif span.kind == "agent":
        tools = ", ".join(data_.get("tools") or []) or "none"
        handoffs = ", ".join(data_.get("handoffs") or []) or "none"
        st.markdown(
            f"Tools: {tools} · Handoffs: {handoffs} · Output type: {data_.get('output_type')}"
        )


# --- turns -------------------------------------------------------------------------------------


def _turn_key(turn: Turn) -> str:
    return f"turn_{turn.scope}_{turn.number}"


def _turns(analysis: Analysis, focus: str | None, failing_turn: int | None) -> None:
    structure = analysis.structure
    turns = structure.turns
    st.subheader("Turns")
    if not turns:
        return
    states = failure_states(analysis)
    errors_only = st.toggle("Only turns with errors", key="errors_only")
    indexed = list(enumerate(turns))
    if errors_only:
        indexed = [(i, t) for i, t in indexed if t.errors or any(s in states for s in t.span_ids)]
        if not indexed:
            st.caption("No turn has an error.")
            return
    pages = max(1, -(-len(indexed) // TURNS_PER_PAGE))
    page = 1
    if pages > 1:
        if int(st.session_state.get("turn_page") or 1) > pages:
            st.session_state["turn_page"] = 1
        page = st.pagination(pages, key="turn_page", max_visible_pages=9)
    focus_turn = structure.turn_of(structure.by_id[focus]) if focus else None
    for _, turn in indexed[(page - 1) * TURNS_PER_PAGE : page * TURNS_PER_PAGE]:
        scope = structure.scopes[turn.scope]
        bad = [states[s] for s in turn.span_ids if s in states]
        icon = ":material/cancel:" if "fatal" in bad else ":material/warning:" if bad else None
        elapsed = "—"
        if turn.started_at and turn.ended_at:
            elapsed = duration((turn.ended_at - turn.started_at).total_seconds() * 1000)
        nested = "" if scope.top_level else " (agent as tool)"
        label = (
            f"Turn {turn.number} · "
            f"{turn.agent or '?'}{nested} — "
            f"{turn.model_calls} model call(s), {turn.tool_calls} tool call(s)"
            f"{f', {turn.handoffs} handoff(s)' if turn.handoffs else ''}"
            f"{f', {turn.guardrails} guardrail(s)' if turn.guardrails else ''}"
            f" · {tokens(turn.input_tokens + turn.output_tokens)} tokens · {elapsed}"
        )
        opened = turn is focus_turn or (
            failing_turn is not None and turn.number == failing_turn and bool(bad)
        )
        box = st.expander(label, expanded=opened, key=_turn_key(turn), on_change="rerun", icon=icon)
        if box.open:
            with box:
                _turn_detail(analysis, turn, states)


def _turn_detail(analysis: Analysis, turn: Turn, states: dict[str, str]) -> None:
    by_id = analysis.structure.by_id
    repeats = repeated_spans(analysis)
    members = [by_id[s] for s in turn.span_ids if by_id[s].kind != "turn"]
    members.sort(key=lambda s: (s.started_at is None, s.started_at, s.seq))
    for span in members:
        took = duration(span.duration_ms) if span.ended_at else "never ended"
        head = f"**{span_label(span)}** · {took}"
        if is_model(span) and (span.input_tokens or span.output_tokens):
            head += f" · {span.input_tokens or 0} in / {span.output_tokens or 0} out tokens"
        if span.span_id in repeats:
            head += f" · ↻ identical call ×{repeats[span.span_id]}"
        st.markdown(head)
        _error_line(span, states.get(span.span_id))
        _span_content(span)
        st.button(
            "Inspect span",
            key=f"inspect_{span.span_id}",
            type="tertiary",
            icon=":material/search:",
            on_click=_focus,
            args=(span.span_id,),
        )
        st.divider()


def _all_spans(analysis: Analysis) -> None:
    import pandas as pd

    spans = analysis.structure.spans
    box = st.expander(f"All spans ({len(spans)})", key="all_spans", on_change="rerun")
    if not box.open:
        return
    states = failure_states(analysis)
    with box:
        frame = pd.DataFrame(
            {
                "Turn": [s.turn for s in spans],
                "Kind": [s.kind for s in spans],
                "Name": [s.name for s in spans],
                "Agent": [s.agent or "" for s in spans],
                "Status": [states.get(s.span_id, s.status) for s in spans],
                "Duration": [duration(s.duration_ms) for s in spans],
                "Error": [clip(s.error_message, 120) for s in spans],
                "Span id": [s.span_id for s in spans],
            }
        )
        st.session_state["_span_table_ids"] = [s.span_id for s in spans]
        st.dataframe(
            frame,
            key="span_table",
            on_select=_span_table_selected,
            selection_mode="single-row",
            hide_index=True,
            width="stretch",
        )


def _span_table_selected() -> None:
    state = st.session_state.get("span_table") or {}
    rows_ = (state.get("selection") or {}).get("rows") or []
    ids = st.session_state.get("_span_table_ids") or []
    if rows_ and rows_[0] < len(ids):
        _focus(ids[rows_[0]])
