"""Conversations read from ``runs.conversation_id``: the list, one conversation's exchanges in
order, and where one exchange stands in its conversation.

A conversation is the group of runs sharing a key (analysis/conversation.py); each run is an
exchange. A run keyed by its own trace id alone (a Responses API run nobody continued) is a
run, not a conversation, and is left out of the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from turnscope.analysis.conversation import WORST_FIRST
from turnscope.prices import PriceBook
from turnscope.store.convert import iso_time
from turnscope.store.costs import group_totals
from turnscope.store.models import Run
from turnscope.store.queries import Store, _escape_like
from turnscope.store.runfilter import RunFilter

# one page of a conversation is all of it: the page reads only ``runs`` columns, so even
# thousands of exchanges are one indexed range read
MAX_EXCHANGES = 5000


@dataclass(slots=True)
class Position:
    """Where an exchange stands: ``index`` of ``count`` (1-based), its neighbours' ids."""

    conversation_id: str
    index: int
    count: int
    previous: str | None
    next: str | None


def _is_conversation() -> Any:
    """SQL: a group of runs that is a conversation (more than one exchange, or a stated key)."""
    return or_(func.count() > 1, func.min(Run.trace_id) != Run.conversation_id)


def list_conversations(
    store: Store, limit: int = 50, offset: int = 0, book: PriceBook | None = None
) -> list[dict[str, Any]]:
    """Conversations, the most recently active first: key, exchanges, the worst exchange's
    status, first start and last activity, trace ids in order, and with ``book`` their cost
    (``cost_usd``: None when no call is priced; ``cost_partial``, ``unpriced_models``)."""
    now = datetime.now(timezone.utc)
    status = store._effective_status(now)
    rank = case(*[(status == s, i) for i, s in enumerate(WORST_FIRST)], else_=len(WORST_FIRST))
    last = func.max(func.coalesce(Run.ended_at, Run.started_at))
    query = (
        store._from_runs(
            Run.conversation_id,
            func.count().label("exchanges"),
            func.min(rank).label("worst"),
            func.min(Run.started_at).label("started_at"),
            last.label("last_at"),
            func.sum(Run.input_tokens).label("input_tokens"),
            func.sum(Run.output_tokens).label("output_tokens"),
        )
        .where(Run.conversation_id.is_not(None))
        .group_by(Run.conversation_id)
        .having(_is_conversation())
        .order_by(func.max(Run.started_at).desc(), Run.conversation_id)
        .limit(limit)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
        keys = [r.conversation_id for r in rows]
        ids: dict[str, list[str]] = {k: [] for k in keys}
        if keys:
            members = conn.execute(
                select(Run.conversation_id, Run.trace_id)
                .where(Run.conversation_id.in_(keys))
                .order_by(Run.conversation_id, Run.started_at, Run.trace_id)
            ).all()
            for key, trace_id in members:
                ids[key].append(trace_id)
    out = []
    for r in rows:
        worst = WORST_FIRST[r.worst] if r.worst is not None and r.worst < len(WORST_FIRST) else None
        out.append(
            {
                "conversation_id": r.conversation_id,
                "exchanges": int(r.exchanges),
                "status": worst,
                "started_at": iso_time(r.started_at),
                "last_at": iso_time(r.last_at),
                "input_tokens": int(r.input_tokens or 0),
                "output_tokens": int(r.output_tokens or 0),
                "cost_usd": None,
                "cost_partial": False,
                "unpriced_models": [],
                "trace_ids": ids[r.conversation_id],
            }
        )
    if book is not None and out:
        totals = group_totals(store, {c["conversation_id"]: c["trace_ids"] for c in out}, book)
        for conversation in out:
            total = totals[conversation["conversation_id"]]
            conversation["cost_usd"] = total.total_usd
            conversation["cost_partial"] = total.partial
            conversation["unpriced_models"] = sorted(total.unpriced)
    return out


def count_conversations(store: Store) -> int:
    """How many conversations there are."""
    inner = (
        select(Run.conversation_id)
        .where(Run.conversation_id.is_not(None))
        .group_by(Run.conversation_id)
        .having(_is_conversation())
        .subquery()
    )
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


def exchanges(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    """A conversation's exchanges (runs rows, effective status), oldest first."""
    return store.list_runs(
        RunFilter(conversation_id=conversation_id), limit=MAX_EXCHANGES, order="oldest"
    )


def position(store: Store, trace_id: str, conversation_id: str | None) -> Position | None:
    """Where a run stands in its conversation; None when it is in none (or alone in a
    conversation keyed by its own trace id)."""
    if not conversation_id:
        return None
    with store.engine.connect() as conn:
        ids = [
            row[0]
            for row in conn.execute(
                select(Run.trace_id)
                .where(Run.conversation_id == conversation_id)
                .order_by(Run.started_at, Run.trace_id)
                .limit(MAX_EXCHANGES)
            )
        ]
    if trace_id not in ids or (ids == [trace_id] and conversation_id == trace_id):
        return None
    at = ids.index(trace_id)
    return Position(
        conversation_id=conversation_id,
        index=at + 1,
        count=len(ids),
        previous=ids[at - 1] if at > 0 else None,
        next=ids[at + 1] if at + 1 < len(ids) else None,
    )


def find_conversation_ids(store: Store, prefix: str, limit: int = 5) -> list[str]:
    """Conversation keys equal to ``prefix``, else starting with it (a short id on the
    command line)."""
    with store.engine.connect() as conn:
        exact = conn.execute(
            select(Run.conversation_id).where(Run.conversation_id == prefix).limit(1)
        ).first()
        if exact is not None:
            return [prefix]
        pattern = _escape_like(prefix) + "%"
        rows = conn.execute(
            select(Run.conversation_id)
            .where(
                and_(
                    Run.conversation_id.is_not(None),
                    Run.conversation_id.like(pattern, escape="\\"),
                )
            )
            .group_by(Run.conversation_id)
            .limit(limit)
        ).all()
    return [r[0] for r in rows]
