"""Failures page: failed and incomplete runs grouped by category and reason, failing agent,
failing tool and normalised message (ids and numbers masked), with counts, share, first and
last seen, a trend and example runs. Choosing a group opens the runs list filtered to exactly
that group."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from turnscope.records import CATEGORIES
from turnscope.viewer import data
from turnscope.viewer.app import RUNS_PAGE
from turnscope.viewer.filters import RANGES, Filters, group_params
from turnscope.viewer.format import category_text, clip, duration, local_time

TABLE_KEY = "failure_groups"
# the widget keys (URL parameters) differ from the runs page's: a page switch may not set a
# parameter bound to a widget of the page it leaves
GROUPS_KEY = "_failure_groups_shown"
GROUP_LIMIT = 100


def render() -> None:
    """Draw the failures page."""
    _open_selected_group()
    store = data.open_store()
    try:
        _render(store, data.db_url())
    except SQLAlchemyError as exc:
        data.fail(exc)


def _render(store: Any, url: str) -> None:
    version = data.version(store)
    st.title("Failures")
    st.caption(
        "Failed and incomplete runs, grouped by what went wrong. Select a group to list its runs."
    )
    menus = data.menus(url)
    c1, c2, c3 = st.columns(3)
    c1.selectbox(
        "Time",
        list(RANGES)[:-1],
        format_func=lambda r: RANGES[r][0],
        key="range",
        bind="query-params",
    )
    workflow_options = list(menus["workflow"])
    current = st.query_params.get("f_workflow") or st.session_state.get("f_workflow")
    if current and current not in workflow_options:
        workflow_options.insert(0, current)
    c2.selectbox(
        "Workflow",
        workflow_options,
        index=None,
        key="f_workflow",
        bind="query-params",
        placeholder="Any",
    )
    c3.multiselect("Category", CATEGORIES, key="f_category", bind="query-params")
    filters = Filters(
        range=st.session_state.get("f_range") or "all",
        workflow=st.session_state.get("f_workflow") or None,
        category=list(st.session_state.get("f_category") or []),
    )
    result = data.failure_groups(url, version, data.keyed(filters.to_run_filter()), GROUP_LIMIT)
    groups = result["groups"]
    total = result["total"]
    cols = st.columns(3)
    cols[0].metric("Failed runs", f"{total:,}")
    cols[1].metric("Groups", f"{len(groups):,}" + ("+" if len(groups) >= GROUP_LIMIT else ""))
    top = groups[0] if groups else None
    cols[2].metric("Biggest group", category_text(top["category"], top["reason"]) if top else "—")
    if not groups:
        st.success("No failed runs match.", icon=":material/check_circle:")
        return
    st.session_state[GROUPS_KEY] = [(g, filters) for g in groups]
    _table(groups, result["bucket_seconds"])


def _table(groups: list[dict[str, Any]], bucket_seconds: int) -> None:
    import pandas as pd

    offset = st.context.timezone_offset
    base = st.context.url or ""
    root = base.rsplit("/", 1)[0] if base else ""
    frame = pd.DataFrame(
        {
            "Category": [g["category"] for g in groups],
            "Reason": [g["reason"] or "" for g in groups],
            "Agent": [g["agent"] or "" for g in groups],
            "Tool": [g["tool"] or "" for g in groups],
            "Message": [clip(g["message"], 200) for g in groups],
            "Runs": [g["runs"] for g in groups],
            "Share": [g["share"] for g in groups],
            "First seen": [local_time(g["first_seen"], offset) for g in groups],
            "Last seen": [local_time(g["last_seen"], offset) for g in groups],
            "Trend": [g["trend"] for g in groups],
            "Example": [
                f"{root}/run?trace_id={quote(g['examples'][0])}" if g["examples"] else None
                for g in groups
            ],
        }
    )
    cc = st.column_config
    st.dataframe(
        frame,
        key=TABLE_KEY,
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        column_config={
            "Category": cc.TextColumn(pinned=True),
            "Reason": cc.TextColumn(help="the finer cause inside the category, when known"),
            "Message": cc.TextColumn(width="large", help="ids and numbers masked"),
            "Share": cc.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0, help="of the failed runs shown"
            ),
            "Trend": cc.BarChartColumn(
                help=f"failed runs per {duration(bucket_seconds * 1000)}", y_min=0
            ),
            "Example": cc.LinkColumn(display_text="newest run", help="opens in a new tab"),
        },
    )
    st.caption("Select a row to open the runs list filtered to that group.")


def _open_selected_group() -> None:
    """A group was selected: open the runs list filtered to exactly that group."""
    state = st.session_state.get(TABLE_KEY)
    shown = st.session_state.get(GROUPS_KEY) or []
    if not state:
        return
    rows = (state.get("selection") or {}).get("rows") or []
    if rows and 0 <= rows[0] < len(shown):
        group, filters = shown[rows[0]]
        st.session_state[TABLE_KEY] = {"selection": {"rows": [], "columns": []}}
        st.switch_page(RUNS_PAGE, query_params=group_params(group, filters))
