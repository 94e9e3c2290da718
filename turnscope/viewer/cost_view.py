"""Money in the viewer: the runs list's cost column, figures and chart, and the run page's cost
by agent and turn with the spend after a failure. Priced when read (turnscope/analysis/cost.py)
with the price file in ``$TURNSCOPE_PRICES``, if any."""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

import streamlit as st

from turnscope.analysis.cost import RunCost, run_cost
from turnscope.prices import ENV_PRICES, PriceBook, load_book, money
from turnscope.store import costs
from turnscope.viewer import data
from turnscope.viewer.bars_view import bars_view
from turnscope.viewer.filters import run_filter_from_key
from turnscope.viewer.format import cost_cell, duration, local_time

if TYPE_CHECKING:
    from turnscope.analysis.verdict import Analysis

COST_CHART_KEY = "cost_chart"
COST_COLOR = "#2E86AB"


def prices_key() -> tuple[str, float]:
    """The price file and its modification time: a changed file is read again."""
    path = os.environ.get(ENV_PRICES) or ""
    try:
        return path, os.path.getmtime(path) if path else 0.0
    except OSError:
        return path, 0.0


@st.cache_resource(show_spinner=False, max_entries=4)
def load_prices(key: tuple[str, float]) -> tuple[PriceBook, str | None]:
    """The price book for ``prices_key()``, and what was wrong with the price file."""
    try:
        return load_book(key[0] or None), None
    except ValueError as exc:
        return PriceBook(), str(exc)


def book() -> PriceBook:
    """The price book (a bad price file: one line on the page, bundled prices only)."""
    loaded, problem = load_prices(prices_key())
    if problem:
        st.error(f"{problem} — showing the bundled prices only.", icon=":material/error:")
    return loaded


@st.cache_data(show_spinner=False, max_entries=64)
def _page_costs(
    url: str, ver: Any, trace_ids: tuple[str, ...], prices: tuple[str, float]
) -> dict[str, tuple[float | None, bool, list[str]]]:
    totals = costs.run_totals(data._store(url), list(trace_ids), load_prices(prices)[0])
    return {t: (v.total_usd, v.partial, sorted(v.unpriced)) for t, v in totals.items()}


def with_costs(url: str, ver: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (a page of runs) with ``cost_usd``, ``cost_partial`` and ``unpriced_models``."""
    found = _page_costs(url, ver, tuple(r["trace_id"] for r in rows), prices_key())
    for row in rows:
        row["cost_usd"], row["cost_partial"], row["unpriced_models"] = found[row["trace_id"]]
    return rows


cell = cost_cell  # a runs-table cost cell


@st.cache_data(show_spinner=False, max_entries=32)
def _figures(
    url: str, ver: Any, key: tuple[Any, ...], bucket: int, prices: tuple[str, float]
) -> dict[str, Any]:
    store = data._store(url)
    figures = costs.cost_figures(
        store, run_filter_from_key(key), load_prices(prices)[0], bucket_seconds=bucket
    )
    return figures.to_dict()


def figures(url: str, ver: Any, key: tuple[Any, ...], bucket: int) -> dict[str, Any]:
    """Total, p50 and p95 cost and cost per time bucket of the filtered runs."""
    return _figures(url, ver, key, bucket, prices_key())


def headline(fig: dict[str, Any]) -> None:
    """Total, p50 and p95 cost of the filtered runs."""
    cols = st.columns(3)
    partial = bool(fig["partial"])
    cols[0].metric(
        "Total cost",
        money(fig["total_usd"], partial),
        help="the priced model calls of these runs; ≥ when some model's price is unknown",
    )
    cols[1].metric("p50 cost per run", money(fig["p50_usd"]))
    cols[2].metric("p95 cost per run", money(fig["p95_usd"]))
    notes = []
    if fig["unpriced_models"]:
        notes.append("price unknown (" + ", ".join(fig["unpriced_models"]) + ")")
    if fig["sampled"]:
        notes.append(f"over the newest {fig['runs']:,} runs of this filter")
    if notes:
        st.caption("Cost: " + "; ".join(notes) + ".")


def chart(fig: dict[str, Any], bucket: int) -> None:
    """Cost per time bucket of the filtered runs, beside the runs chart."""
    points = fig["points"]
    if not points:
        st.caption("No priced model calls in these runs.")
        return
    offset = st.context.timezone_offset
    bars = []
    for p in points:
        start = datetime.fromisoformat(p["start"])
        bars.append(
            {
                "start": start.timestamp() * 1000,
                "end": (start.timestamp() + bucket) * 1000,
                "bucket": p["start"],
                "series": "cost",
                "runs": p["usd"],
                "tip": f"{local_time(p['start'], offset)} · {money(p['usd'])}",
            }
        )
    every = duration(bucket * 1000)
    bars_view(
        bars,
        colors={"cost": COST_COLOR},
        legend=[("cost", "cost (USD)")],
        title=f"Cost per {every}",
        key=COST_CHART_KEY,
        on_click=lambda _bucket, _series: None,
        min_step=1e-6,
        prefix="$",
    )
    st.caption(f"Cost per {every} (priced model calls).")


def of_run(analysis: Analysis) -> RunCost:
    """A run's cost by agent and turn."""
    return run_cost(analysis, book())


def verdict_lines(cost: RunCost) -> None:
    """The verdict card's cost line, and for a failed run what was spent after it failed."""
    parts = [f"**Cost:** {cost.total.text()}"]
    if len(cost.by_agent) > 1:
        parts.append(" · ".join(f"{a} {t.text()}" for a, t in cost.by_agent.items()))
    st.markdown(" · ".join(parts))
    after = cost.after_failure_text()
    if after:
        st.markdown(f":red[:material/payments:] **{after}**")


def section(cost: RunCost) -> None:
    """Cost per agent and per turn (collapsed)."""
    if not cost.by_turn:
        return
    with st.expander(f"Cost: {cost.total.text()} — by agent and turn", key="cost_detail"):
        c1, c2 = st.columns(2)
        c1.markdown("**By agent**")
        c1.table({"Agent": list(cost.by_agent), "Cost": [t.text() for t in cost.by_agent.values()]})
        c2.markdown("**By turn**")
        c2.table(
            {
                "Turn": ["—" if n is None else str(n) for n, _ in cost.by_turn],
                "Cost": [t.text() for _, t in cost.by_turn],
            }
        )
