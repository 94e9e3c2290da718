"""Conversation page: every exchange of one chat in order, the failing one marked.

Deep link: ``/conversation?id=KEY`` (a unique prefix of the key is enough). Each exchange
shows what the user said, the answer (or the failure), its verdict, turns, tokens, duration
and cost, and links to its run page. The page reads only ``runs`` rows (no spans) and draws
the exchanges as one HTML block, so a conversation of hundreds of exchanges opens at once.

Also here: the run page's "exchange k of n" line and the runs page's one-row-per-
conversation table, so those pages only call in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from turnscope.analysis.conversation import worst_status
from turnscope.store import conversations
from turnscope.viewer import cost_view, data
from turnscope.viewer.app import CONVERSATION_PAGE, RUNS_PAGE
from turnscope.viewer.conversation_view import BAD, exchanges_html, position_html
from turnscope.viewer.format import (
    STATUS_COLORS,
    STATUS_HEX,
    badge,
    cost_cell,
    duration,
    local_time,
    tokens,
)

KEY = "id"  # URL parameter: the conversation key


# --- cached reads --------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=16)
def _exchanges(url: str, ver: Any, conversation_id: str) -> list[dict[str, Any]]:
    return conversations.exchanges(data._store(url), conversation_id)


@st.cache_data(show_spinner=False, max_entries=64)
def _position(url: str, ver: Any, trace_id: str, conversation_id: str) -> Any:
    return conversations.position(data._store(url), trace_id, conversation_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _list(url: str, ver: Any, limit: int, prices: Any) -> tuple[list[dict[str, Any]], int]:
    store = data._store(url)
    found = conversations.list_conversations(
        store, limit=limit, book=cost_view.load_prices(prices)[0]
    )
    return found, conversations.count_conversations(store)


# --- the page ------------------------------------------------------------------------------


def render() -> None:
    """Draw the conversation page."""
    back = st.session_state.get("_runs_return") or {}
    st.page_link(RUNS_PAGE, label="Runs", icon=":material/arrow_back:", query_params=back)
    given = (st.query_params.get(KEY) or "").strip()
    if not given:
        st.info("No conversation selected. Open one from a run page, or add `?id=...`.")
        return
    store = data.open_store()
    url = data.db_url()
    try:
        _render(store, url, given)
    except SQLAlchemyError as exc:
        data.fail(exc)


def _render(store: Any, url: str, given: str) -> None:
    version = data.version(store)
    rows = cost_view.with_costs(url, version, _exchanges(url, version, given))
    if not rows:
        matches = conversations.find_conversation_ids(store, given) if len(given) >= 3 else []
        if len(matches) == 1 and matches[0] != given:
            st.switch_page(CONVERSATION_PAGE, query_params={KEY: matches[0]})
        st.error(f"No conversation `{given}` in this database.")
        if len(matches) > 1:
            st.caption("Did you mean: " + ", ".join(f"`{m}`" for m in matches))
        return
    _header(given, rows)
    st.html(exchanges_html(rows, st.context.timezone_offset))


def _header(conversation_id: str, rows: list[dict[str, Any]]) -> None:
    worst = worst_status(r["status"] for r in rows) or "unknown"
    st.title("Conversation")
    with st.container(horizontal=True):
        st.badge(worst.replace("_", " "), color=STATUS_COLORS.get(worst, "gray"))
        bad = [i + 1 for i, r in enumerate(rows) if r["status"] in BAD]
        if bad:
            names = ", ".join(str(i) for i in bad[:5]) + ("…" if len(bad) > 5 else "")
            st.badge(f"failed: exchange {names}", icon=":material/error:", color="red")
    offset = st.context.timezone_offset
    st.caption(
        f"`{conversation_id}` · {len(rows)} exchange{'s' if len(rows) != 1 else ''} · "
        f"started {local_time(rows[0]['started_at'], offset)} · "
        f"last {local_time(rows[-1]['started_at'], offset)}"
    )
    cols = st.columns(6)
    cols[0].metric("Exchanges", len(rows))
    cols[1].metric("Failed", sum(1 for r in rows if r["status"] in BAD))
    cols[2].metric("Turns", sum(r["turns"] or 0 for r in rows))
    cols[3].metric(
        "Tokens", tokens(sum((r["input_tokens"] or 0) + (r["output_tokens"] or 0) for r in rows))
    )
    cols[4].metric("Duration", duration(sum(r["duration_ms"] or 0 for r in rows)))
    costs = [r["cost_usd"] for r in rows if r.get("cost_usd") is not None]
    unpriced = sorted({m for r in rows for m in r.get("unpriced_models") or []})
    total = {"cost_usd": sum(costs) if costs else None, "unpriced_models": unpriced}
    cols[5].metric("Cost", cost_cell({**total, "cost_partial": bool(unpriced)}))


# --- on other pages ------------------------------------------------------------------------


def run_position(run: dict[str, Any]) -> None:
    """On a run page: "Exchange k of n in conversation X", with previous and next."""
    conversation_id = run.get("conversation_id")
    if not conversation_id:
        return
    store = data.open_store()
    url = data.db_url()
    where = _position(url, data.version(store), run["trace_id"], conversation_id)
    if where is None:
        return
    st.html(position_html(where))


def by_conversation_toggle() -> bool:
    """The runs page's switch between one row per run and one row per conversation."""
    return st.toggle(
        "One row per conversation",
        key="by_conversation",
        help="Group runs that are exchanges of one chat (same group_id, session or "
        "conversation); the row shows the worst exchange's status. Filters apply to runs only.",
    )


def conversations_table(url: str, version: Any, limit: int = 200) -> None:
    """The runs page in one-row-per-conversation mode."""
    import pandas as pd

    rows, total = _list(url, version, limit, cost_view.prices_key())
    if not rows:
        st.info("No conversations: runs share one when they have a group_id, session or chain.")
        return
    shown = f"{len(rows)} of {total:,}" if total > len(rows) else f"{total:,}"
    plural = "s" if total != 1 else ""
    st.caption(f"{shown} conversation{plural}, the most recently active first.")
    offset = st.context.timezone_offset
    base = st.context.url or ""
    root = base.rsplit("/", 1)[0] if base else ""
    frame = pd.DataFrame(
        {
            "Status": [badge(r["status"]) for r in rows],
            "Exchanges": [r["exchanges"] for r in rows],
            "Tokens": [r["input_tokens"] + r["output_tokens"] for r in rows],
            "Cost": [cost_cell(r) for r in rows],
            "Last active": [local_time(r["last_at"], offset) for r in rows],
            "Started": [local_time(r["started_at"], offset) for r in rows],
            "Conversation": [r["conversation_id"] for r in rows],
            "Link": [f"{root}/conversation?{KEY}={quote(r['conversation_id'])}" for r in rows],
        }
    )
    colors = {badge(status): color for status, color in STATUS_HEX.items()}
    styled = frame.style.map(
        lambda v: f"color: {colors[v]}; font-weight: 600" if v in colors else "",
        subset=["Status"],
    )
    cc = st.column_config
    st.dataframe(
        styled,
        key="conversations_table",
        hide_index=True,
        width="stretch",
        column_config={
            "Status": cc.TextColumn(pinned=True, width="small", help="the worst exchange's"),
            "Tokens": cc.NumberColumn(format="localized"),
            "Link": cc.LinkColumn(display_text="open ↗", help="the conversation page"),
        },
    )
