"""Runs page: every run, failures first, filtered by anything in the URL.

The list is pinned to a snapshot (the newest start time when the view was opened or its
filters changed): runs arriving later are announced above the table, never slipped in under
the user's cursor. Selecting a row converts the selection to a trace id at once, from the ids
the user was shown, and opens the run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from turnscope.records import ALL_REASONS, CATEGORIES, STATUSES
from turnscope.viewer import cost_view, data
from turnscope.viewer.app import COMPARE_PAGE, RUN_PAGE
from turnscope.viewer.bars_view import bars_view
from turnscope.viewer.conversation_page import by_conversation_toggle, conversations_table
from turnscope.viewer.filters import (
    FAILURE_STATUSES,
    GROUP_PARAMS,
    RANGES,
    SORTS,
    Filters,
)
from turnscope.viewer.format import (
    CHECK_HEX,
    STATUS_BADGES,
    STATUS_HEX,
    badge,
    category_text,
    check_text,
    clip,
    duration,
    local_time,
    tokens,
    turn_text,
)

PAGE_SIZE = 50
TABLE_KEY = "runs_table"
SHOWN_KEY = "_runs_shown"  # trace ids in the order the table showed them
AS_OF_KEY = "_runs_as_of"
CHART_KEY = "runs_chart"
CHART_POINTS_KEY = "_runs_chart_bucket"
SEEN_KEY = "_runs_seen"  # this session has shown the runs page
RETURN_KEY = "_runs_return"  # the runs page's URL, for the run page's way back
PICK_TWO_KEY = "compare_pick"  # the table picks two runs to compare instead of opening one
STARTS_KEY = "_runs_shown_starts"  # their start times (the older of two picked is A)
FILTER_KEYS = ("q", "status", "category", "reason", "warnings", "workflow", "agent", "tool")
FILTER_KEYS += ("range", "since", "until", "group_id", "sort")
LIVE_SECONDS = 5
SERIES_COLORS = {
    "succeeded": "#8FBC8F",
    "succeeded_with_errors": "#F2A900",
    "running": "#72B7E6",
    "incomplete": "#9467BD",
}
FAILURE_PALETTE = (
    "#D62728",
    "#FF7F0E",
    "#8C564B",
    "#E377C2",
    "#BCBD22",
    "#17BECF",
    "#7F7F7F",
    "#1F77B4",
    "#9467BD",
    "#2CA02C",
    "#AEC7E8",
    "#FF9896",
    "#C49C94",
    "#F7B6D2",
    "#DBDB8D",
)


def render() -> None:
    """Draw the runs page."""
    _open_selected_run()
    if st.query_params.get("trace_id"):
        params = {k: st.query_params[k] for k in ("trace_id", "span_id") if k in st.query_params}
        if not st.session_state.get(SEEN_KEY):  # a deep link to the root URL: /?trace_id=...
            st.switch_page(RUN_PAGE, query_params=params)
        # the browser's back button from a run: Streamlit left the id on this page's URL
        for name in params:
            st.query_params.pop(name, None)
    st.session_state[SEEN_KEY] = True
    store = data.open_store()
    try:
        _render(store, data.db_url())
    except SQLAlchemyError as exc:  # a database error mid-page: one line, no traceback
        data.fail(exc)


def _render(store: Any, url: str) -> None:
    version = data.version(store)
    st.title("Runs")
    filters = _filter_widgets(url)
    filters = _group_filter(filters)
    as_of = _snapshot(store)
    try:
        filters.time_window()  # an unreadable custom time is one line, not a traceback
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    trace_ids: list[str] | None = None
    if filters.q:
        ids, complete = data.search_ids(url, version, filters.q)
        if complete:
            trace_ids = ids
        else:
            st.caption(
                f"More than {data.SEARCH_LIMIT:,} runs contain “{filters.q}”; the search runs "
                "inside each query (slower). Add filters to narrow it."
            )
    flt = filters.to_run_filter(trace_ids=trace_ids, as_of=as_of)
    _new_runs_banner(store, flt, as_of)
    if as_of is not None and not store.count_newer(flt, as_of):
        # nothing arrived since the snapshot: the same runs without the extra condition (it
        # steers SQLite's planner to the start-time index and makes the figures slower)
        flt = replace(flt, as_of=None)
    key = data.keyed(flt)

    figures = data.summary(url, version, key)
    _headline(figures)
    buckets = data.time_buckets(url, version, key)
    money = cost_view.figures(url, version, key, buckets["bucket_seconds"])
    cost_view.headline(money)
    runs_chart, cost_chart = st.columns([3, 2])
    with runs_chart:
        _chart(buckets)
    with cost_chart:
        cost_view.chart(money, buckets["bucket_seconds"])

    if by_conversation_toggle():  # one row per conversation instead of per run
        conversations_table(url, version)
        return
    total = figures["runs"]
    pages = max(1, -(-total // PAGE_SIZE))
    page_box = st.container()
    if int(st.session_state.get("page") or 1) > pages:  # the list shrank under a shared URL
        st.session_state["page"] = 1
    page = st.pagination(pages, key="page", bind="query-params", max_visible_pages=9)
    rows = data.list_runs(url, version, key, PAGE_SIZE, (page - 1) * PAGE_SIZE, filters.sort)
    rows = cost_view.with_costs(url, version, rows)
    with page_box:
        _table(rows, total, page)


def current_params() -> dict[str, list[str]]:
    """The page's query parameters, repeated ones kept as lists."""
    return {name: st.query_params.get_all(name) for name in st.query_params}


# --- filters -----------------------------------------------------------------------------------


def _changed() -> None:
    """A filter changed: back to page 1 and a fresh snapshot."""
    st.session_state["page"] = 1
    st.session_state.pop(AS_OF_KEY, None)


def _options(values: list[str], current: Any) -> list[str]:
    # a value from a shared URL stays selectable even if the menu no longer lists it
    out = list(values)
    if isinstance(current, str) and current and current not in out:
        out.insert(0, current)
    return out


def _filter_widgets(url: str) -> Filters:
    menus = data.menus(url)
    st.text_input(
        "Search",
        key="q",
        bind="query-params",
        on_change=_changed,
        placeholder="Search error messages, tool arguments and outputs, model text…",
        icon=":material/search:",
    )
    with st.sidebar:
        st.markdown("#### Filters")
        c1, c2 = st.columns(2)
        c1.button("Failures only", on_click=_failures_only, width="stretch")
        c2.button("Clear", on_click=_clear_filters, width="stretch")
        st.multiselect(
            "Status",
            STATUSES,
            key="status",
            bind="query-params",
            on_change=_changed,
        )
        st.multiselect(
            "Failure category", CATEGORIES, key="category", bind="query-params", on_change=_changed
        )
        st.multiselect(
            "Reason",
            ALL_REASONS,
            key="reason",
            bind="query-params",
            on_change=_changed,
            help="the finer cause inside a category, e.g. model_error's rate_limited",
        )
        st.checkbox(
            "Only runs with warnings",
            key="warnings",
            bind="query-params",
            on_change=_changed,
            help="runs marked “check”: something to look at even where the status looks fine",
        )
        for name, label in (("workflow", "Workflow"), ("agent", "Agent"), ("tool", "Tool")):
            st.selectbox(
                label,
                _options(menus[name], st.query_params.get(name) or st.session_state.get(name)),
                index=None,
                key=name,
                bind="query-params",
                placeholder="Any",
                on_change=_changed,
            )
        st.selectbox(
            "Time",
            list(RANGES),
            key="range",
            help="all, the last 15m … 30d, or custom (since/until)",
            bind="query-params",
            on_change=_changed,
        )
        if st.session_state.get("range") == "custom":
            st.text_input(
                "Since",
                key="since",
                bind="query-params",
                placeholder="2h, 7d or 2026-11-24T10:00",
                on_change=_changed,
            )
            st.text_input(
                "Until",
                key="until",
                bind="query-params",
                placeholder="empty = now",
                on_change=_changed,
            )
        st.text_input("Group id", key="group_id", bind="query-params", on_change=_changed)
        st.selectbox(
            "Sort",
            list(SORTS),
            key="sort",
            help=" · ".join(f"{k}: {v}" for k, v in SORTS.items()),
            bind="query-params",
            on_change=_changed,
        )
    state = st.session_state
    return Filters(
        status=list(state.get("status") or []),
        category=list(state.get("category") or []),
        reason=list(state.get("reason") or []),
        warnings=bool(state.get("warnings")),
        workflow=state.get("workflow") or None,
        agent=state.get("agent") or None,
        tool=state.get("tool") or None,
        q=(state.get("q") or "").strip(),
        range=state.get("range") or "all",
        since=(state.get("since") or "").strip(),
        until=(state.get("until") or "").strip(),
        group_id=(state.get("group_id") or "").strip() or None,
        sort=state.get("sort") or "failures",
    )


def _failures_only() -> None:
    st.session_state["status"] = list(FAILURE_STATUSES)
    _changed()


def _clear_filters() -> None:
    defaults: dict[str, Any] = {"status": [], "category": [], "reason": [], "warnings": False}
    defaults.update({"range": "all", "sort": "failures"})
    for name in FILTER_KEYS:
        st.session_state[name] = defaults.get(name, None if name in _SELECTS else "")
    for name in GROUP_PARAMS:
        st.query_params.pop(name, None)
    _changed()


_SELECTS = ("workflow", "agent", "tool")


def _group_filter(filters: Filters) -> Filters:
    """A failure group chosen on the failures page (plain query parameters, shown as a chip
    the user can clear)."""
    group = Filters.from_params(st.query_params.to_dict())
    filters.failing_agent, filters.failing_tool, filters.failing_reason, filters.msg = (
        group.failing_agent,
        group.failing_tool,
        group.failing_reason,
        group.msg,
    )
    if filters.group:
        parts = [
            f"reason **{filters.failing_reason or '(none)'}**",
            f"agent **{filters.failing_agent or '(none)'}**",
            f"tool **{filters.failing_tool or '(none)'}**",
            f"message “{clip(filters.msg, 120) or '(none)'}”",
        ]
        with st.container(border=True):
            c1, c2 = st.columns([6, 1])
            c1.markdown("Failure group: " + " · ".join(parts))
            c2.button("Clear group", on_click=_clear_group, key="clear_group")
    return filters


def _clear_group() -> None:
    for name in GROUP_PARAMS:
        st.query_params.pop(name, None)
    _changed()


def _snapshot(store: Any) -> datetime | None:
    """The newest start time when this view was opened (runs after it are announced)."""
    if AS_OF_KEY not in st.session_state:
        st.session_state[AS_OF_KEY] = store.latest_start()
    value: datetime | None = st.session_state[AS_OF_KEY]
    return value


def _show_new_runs() -> None:
    st.session_state.pop(AS_OF_KEY, None)
    st.session_state["page"] = 1


def _new_runs_banner(store: Any, flt: Any, as_of: datetime | None) -> None:
    """Announce runs that started after the snapshot (polled, without touching the table)."""
    live = st.sidebar.toggle("Watch for new runs", value=True, key="live")

    @st.fragment(run_every=timedelta(seconds=LIVE_SECONDS) if live else None)
    def banner() -> None:
        since_snapshot = replace(flt, as_of=None)
        newer = store.count_runs(since_snapshot) if as_of is None else store.count_newer(flt, as_of)
        if newer:
            c1, c2 = st.columns([5, 1])
            c1.info(
                f"{newer} new run{'s' if newer != 1 else ''} since this view was loaded.",
                icon=":material/notifications:",
            )
            if c2.button("Show them", key="show_new_runs", on_click=_show_new_runs):
                st.rerun()

    banner()


# --- figures -----------------------------------------------------------------------------------


def _headline(figures: dict[str, Any]) -> None:
    cols = st.columns(6)
    cols[0].metric("Runs", f"{figures['runs']:,}")
    rate = figures["failure_rate"]
    cols[1].metric(
        "Failure rate",
        "—" if rate is None else f"{rate:.1%}",
        help="failed + incomplete, among runs that ended",
    )
    cols[2].metric("Failed", f"{figures['failed'] + figures['incomplete']:,}")
    cols[3].metric("p50 duration", duration(figures["p50_ms"]))
    cols[4].metric("p95 duration", duration(figures["p95_ms"]))
    cols[5].metric("Tokens", tokens(figures["tokens"]), help=f"{figures['tokens']:,} tokens")
    if figures.get("running"):
        st.caption(f"{figures['running']} run(s) still running.")


def _chart(buckets: dict[str, Any]) -> None:
    """Runs per time bucket, stacked by outcome (failures by category), as plain SVG: the
    landing page loads no chart library. Clicking a bar filters the list to it."""
    points = buckets["points"]
    if not points:
        return
    size = buckets["bucket_seconds"]
    offset = st.context.timezone_offset
    names = sorted({p["series"] for p in points}, key=_series_rank)
    palette = iter(FAILURE_PALETTE)
    colors = {n: SERIES_COLORS.get(n) or next(palette, "#7F7F7F") for n in names}
    rank = {n: i for i, n in enumerate(names)}
    bars = []
    for p in sorted(points, key=lambda p: (p["start"], rank[p["series"]])):
        start = datetime.fromisoformat(p["start"])  # aware: Store.time_buckets gives UTC
        label = _series_label(p["series"])
        bars.append(
            {
                "start": start.timestamp() * 1000,
                "end": (start.timestamp() + size) * 1000,
                "bucket": p["start"],
                "series": p["series"],
                "runs": p["runs"],
                "tip": f"{local_time(p['start'], offset)} · {label}: {p['runs']:,} run(s)",
            }
        )
    every = duration(size * 1000)
    st.session_state[CHART_POINTS_KEY] = size
    bars_view(
        bars,
        colors=colors,
        legend=[(n, _series_label(n)) for n in names],
        title=f"Runs per {every} by outcome",
        key=CHART_KEY,
        on_click=_chart_selected,
    )
    st.caption(
        f"Runs per {every} by outcome (failures by category). Click a bar to filter the list to it."
    )


def _series_label(name: str) -> str:
    return STATUS_BADGES[name].split(" ", 1)[-1] if name in STATUS_BADGES else name


def _series_rank(name: str) -> tuple[int, str]:
    order = {"succeeded": 0, "succeeded_with_errors": 1, "running": 2}
    return (order.get(name, 3), name)


def _chart_selected(bucket: str, series: str) -> None:
    """A bar was clicked: filter to its time bucket and outcome."""
    size = st.session_state.get(CHART_POINTS_KEY)
    if not size:
        return
    start = datetime.fromisoformat(bucket)
    st.session_state["range"] = "custom"
    window = {
        "since": start.isoformat(timespec="seconds"),
        "until": (start + timedelta(seconds=size)).isoformat(timespec="seconds"),
    }
    for name, value in window.items():
        st.session_state[name] = value
        # these inputs appear only with range=custom: a widget created with a preset value
        # does not write it to the URL itself, and the shared link must hold the window
        st.query_params[name] = value
    if series in CATEGORIES:
        st.session_state["category"] = [series]
        st.session_state["status"] = []
    elif series in STATUSES:
        st.session_state["status"] = [series]
        st.session_state["category"] = []
    _changed()


# --- the table ---------------------------------------------------------------------------------


def _open_selected_run() -> None:
    """The user selected a row: open that run, from the ids they were shown."""
    state = st.session_state.get(TABLE_KEY)
    shown: list[str] = st.session_state.get(SHOWN_KEY) or []
    if not state:
        return
    rows = (state.get("selection") or {}).get("rows") or []
    if st.session_state.get(PICK_TWO_KEY):
        _compare_selected(rows, shown)
        return
    if rows and 0 <= rows[0] < len(shown):
        trace_id = shown[rows[0]]
        st.session_state[TABLE_KEY] = {"selection": {"rows": [], "columns": []}}
        st.session_state[RETURN_KEY] = current_params()
        st.switch_page(RUN_PAGE, query_params={"trace_id": trace_id})


def _compare_selected(rows: list[int], shown: list[str]) -> None:
    """Two rows picked: open the Compare page, the older run as A."""
    picked = [i for i in rows if 0 <= i < len(shown)]
    if len(picked) != 2:
        return
    starts = st.session_state.get(STARTS_KEY) or [""] * len(shown)
    a, b = sorted(picked, key=lambda i: (starts[i] or "", i))
    st.session_state[TABLE_KEY] = {"selection": {"rows": [], "columns": []}}
    st.session_state[RETURN_KEY] = current_params()
    st.switch_page(COMPARE_PAGE, query_params={"a": shown[a], "b": shown[b]})


def _table(rows: list[dict[str, Any]], total: int, page: int) -> None:
    import pandas as pd

    offset = st.context.timezone_offset
    base = st.context.url or ""
    root = base.rsplit("/", 1)[0] if base else ""
    st.session_state[SHOWN_KEY] = [r["trace_id"] for r in rows]
    st.session_state[STARTS_KEY] = [r["started_at"] for r in rows]
    st.session_state[RETURN_KEY] = current_params()
    if not rows:
        st.info("No runs match these filters.")
        return
    first = (page - 1) * PAGE_SIZE + 1
    pick_two = st.toggle(
        "Pick two runs to compare",
        key=PICK_TWO_KEY,
        help="select two rows: the Compare page lines their turns up (the older run is A)",
    )
    action = "Select two rows to compare them." if pick_two else "Select a row to open the run."
    st.caption(f"Runs {first:,}–{first + len(rows) - 1:,} of {total:,}. {action}")
    failed = ("failed", "incomplete")
    frame = pd.DataFrame(
        {
            "Status": [badge(r["status"]) for r in rows],
            "Check": [check_text(r["warning_count"]) for r in rows],
            "Category": [category_text(r["category"], r["reason"]) for r in rows],
            "Failing agent": [r["failing_agent"] if r["status"] in failed else "" for r in rows],
            "Turn": [
                turn_text(r["failing_turn"], r["max_turns"]) if r["status"] in failed else ""
                for r in rows
            ],
            "First error": [clip(r["first_error"], 160) for r in rows],
            "Agent path": [r["agent_path"] or "" for r in rows],
            "Turns": [r["turns"] for r in rows],
            "Tool calls": [r["tool_calls"] for r in rows],
            "Fatal": [r["fatal_error_count"] for r in rows],
            "Recovered": [r["recovered_error_count"] for r in rows],
            "Tokens": [(r["input_tokens"] or 0) + (r["output_tokens"] or 0) for r in rows],
            "Cost": [cost_view.cell(r) for r in rows],
            "Duration": [duration(r["duration_ms"]) for r in rows],
            "Started": [local_time(r["started_at"], offset) for r in rows],
            "Workflow": [r["workflow"] or "" for r in rows],
            "Group id": [r["group_id"] or "" for r in rows],
            "Trace id": [r["trace_id"] for r in rows],
            "Link": [f"{root}/run?trace_id={quote(r['trace_id'])}" for r in rows],
        }
    )
    colors = {badge(status): color for status, color in STATUS_HEX.items()}
    styled = frame.style.map(
        lambda v: f"color: {colors[v]}; font-weight: 600" if v in colors else "",
        subset=["Status"],
    ).map(lambda v: f"color: {CHECK_HEX}; font-weight: 600" if v else "", subset=["Check"])
    cc = st.column_config
    st.dataframe(
        styled,
        key=TABLE_KEY,
        on_select="rerun",
        selection_mode="multi-row" if pick_two else "single-row",
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(rows), 38 + 35 * 20),
        column_config={
            "Status": cc.TextColumn(pinned=True, width="small"),
            "Check": cc.TextColumn(
                width="small", help="warnings: something to look at (open the run for them)"
            ),
            "Category": cc.TextColumn(help="failure category (and its reason, when known)"),
            "First error": cc.TextColumn(width="large"),
            "Turn": cc.TextColumn(help="failing turn, of max_turns when the run hit it"),
            "Fatal": cc.NumberColumn(help="errors that ended the run"),
            "Recovered": cc.NumberColumn(help="errors the run survived"),
            "Tokens": cc.NumberColumn(format="localized"),
            "Cost": cc.TextColumn(help="priced model calls; ≥ when a model's price is unknown"),
            "Link": cc.LinkColumn(display_text="open ↗", help="the run page, in a new tab"),
        },
    )
