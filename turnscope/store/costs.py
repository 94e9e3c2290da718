"""Cost read model: the model calls of stored runs, priced when read (turnscope/analysis/cost.py).

Only the few columns pricing needs are read (model, token counts, the cached and reasoning
counts inside the span's usage JSON, start time), for the runs asked about: a page of the
runs list, a conversation, or the newest ``COST_SAMPLE`` runs of a filter for the runs page's
figures and chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from turnscope.analysis.cost import Total, make_call, total_of
from turnscope.prices import Call, PriceBook
from turnscope.records import MODEL_KINDS
from turnscope.store.convert import from_db_time
from turnscope.store.models import Run, SpanRow
from turnscope.store.runfilter import RunFilter

if TYPE_CHECKING:
    from turnscope.store.queries import Store

COST_SAMPLE = 1000  # runs priced for the runs page's figures and chart (the newest first)
_CHUNK = 500  # trace ids per IN (...) list


def _usage_int(*path: str) -> Any:
    """An integer inside ``spans.data`` (JSON) by path, in SQL (SQLite and PostgreSQL)."""
    return SpanRow.data[path].as_integer()


def calls_by_run(store: Store, trace_ids: Sequence[str]) -> dict[str, list[Call]]:
    """The model calls of each run, in start order (runs without one are absent)."""
    out: dict[str, list[Call]] = {}
    if not trace_ids:
        return out
    columns = (
        SpanRow.trace_id,
        SpanRow.model,
        SpanRow.input_tokens,
        SpanRow.output_tokens,
        func.coalesce(
            _usage_int("usage", "input_tokens_details", "cached_tokens"),
            _usage_int("usage", "prompt_tokens_details", "cached_tokens"),
        ),
        func.coalesce(
            _usage_int("usage", "output_tokens_details", "reasoning_tokens"),
            _usage_int("usage", "completion_tokens_details", "reasoning_tokens"),
        ),
        SpanRow.started_at,
    )
    ids = list(dict.fromkeys(trace_ids))
    with store.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            query = (
                select(*columns)
                .where(SpanRow.trace_id.in_(ids[start : start + _CHUNK]))
                .where(SpanRow.kind.in_(sorted(MODEL_KINDS)))
                .where((SpanRow.input_tokens.is_not(None)) | (SpanRow.output_tokens.is_not(None)))
                .order_by(SpanRow.trace_id, SpanRow.started_at, SpanRow.seq)
            )
            for trace_id, model, inp, out_, cached, reasoning, started in conn.execute(query):
                if not (inp or out_):
                    continue  # a call that failed before the provider answered
                call = make_call(
                    model, inp, out_, _int(cached), _int(reasoning), from_db_time(started)
                )
                out.setdefault(trace_id, []).append(call)
    return out


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def run_totals(store: Store, trace_ids: Sequence[str], book: PriceBook) -> dict[str, Total]:
    """Each run's cost (a run without model calls gets an empty Total)."""
    calls = calls_by_run(store, trace_ids)
    return {t: total_of(calls.get(t, ()), book) for t in trace_ids}


def group_totals(
    store: Store, groups: Mapping[str, Sequence[str]], book: PriceBook
) -> dict[str, Total]:
    """What each group of runs (a conversation's exchanges) cost together, read in one pass:
    ``.total_usd``, ``.partial``, ``.unpriced`` and ``.text()`` as for one run."""
    totals = run_totals(store, [t for ids in groups.values() for t in ids], book)
    out: dict[str, Total] = {}
    for key, ids in groups.items():
        out[key] = Total()
        for trace_id in ids:
            out[key].merge(totals[trace_id])
    return out


def conversation_cost(store: Store, trace_ids: Sequence[str], book: PriceBook) -> Total:
    """What one group of runs cost together."""
    return group_totals(store, {"": trace_ids}, book)[""]


def add_costs(store: Store, runs: list[dict[str, Any]], book: PriceBook) -> list[dict[str, Any]]:
    """Give each run dict (``Store.list_runs`` rows) ``cost_usd`` (the priced calls' sum,
    None when none is priced), ``cost_partial`` and ``unpriced_models``."""
    totals = run_totals(store, [r["trace_id"] for r in runs], book)
    for run in runs:
        total = totals[run["trace_id"]]
        run["cost_usd"] = total.total_usd
        run["cost_partial"] = total.partial
        run["unpriced_models"] = sorted(total.unpriced)
    return runs


@dataclass(slots=True)
class CostFigures:
    """Cost of the runs a filter selects (the newest ``COST_SAMPLE`` of them)."""

    runs: int  # runs priced (at most COST_SAMPLE)
    sampled: bool  # True when the filter selects more runs than were priced
    total: Total
    p50: float | None
    p95: float | None
    points: list[dict[str, Any]]  # {"start": iso, "usd": float} per time bucket

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return {
            "runs": self.runs,
            "sampled": self.sampled,
            "total_usd": self.total.total_usd,
            "partial": self.total.partial,
            "unpriced_models": sorted(self.total.unpriced),
            "p50_usd": self.p50,
            "p95_usd": self.p95,
            "points": self.points,
        }


def cost_figures(
    store: Store,
    flt: RunFilter | None,
    book: PriceBook,
    *,
    bucket_seconds: int = 3600,
    limit: int = COST_SAMPLE,
) -> CostFigures:
    """Total, p50 and p95 cost per run (nearest rank, among runs with a priced call) and
    cost per time bucket, over the newest ``limit`` runs ``flt`` selects."""
    now = datetime.now(timezone.utc)
    status = store._effective_status(now)
    query = store._where(store._from_runs(Run.trace_id, Run.started_at), status, flt or RunFilter())
    query = query.order_by(Run.started_at.desc(), Run.trace_id).limit(limit + 1)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    sampled = len(rows) > limit
    rows = rows[:limit]
    totals = run_totals(store, [r[0] for r in rows], book)
    overall = Total()
    values: list[float] = []
    buckets: dict[int, float] = {}
    for trace_id, started in rows:
        total = totals[trace_id]
        overall.merge(total)
        if total.priced:
            values.append(float(total.usd))
            when = from_db_time(started)
            if when is not None:
                key = int(when.timestamp()) // bucket_seconds
                buckets[key] = buckets.get(key, 0.0) + float(total.usd)
    values.sort()
    p50 = values[int(0.5 * (len(values) - 1))] if values else None
    p95 = values[int(0.95 * (len(values) - 1))] if values else None
    points = [
        {
            "start": datetime.fromtimestamp(k * bucket_seconds, timezone.utc).isoformat(),
            "usd": usd,
        }
        for k, usd in sorted(buckets.items())
    ]
    return CostFigures(len(rows), sampled, overall, p50, p95, points)
