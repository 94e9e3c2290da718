"""What a run cost: each model call priced from its stored token counts, summed per turn, agent
and run, and the money spent after the point where a failed run went wrong.

Cost is computed when read, never stored: a price file given later changes the figures of
runs already recorded. A call whose model has no known price is left out of the sums and
named, and the total is then partial (a lower bound), never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from turnscope.prices import Call, PriceBook, money
from turnscope.records import FAILED, MODEL_KINDS, SpanRecord

if TYPE_CHECKING:
    from turnscope.analysis.verdict import Analysis

NO_MODEL = "model not recorded"  # a response span without its Response (content not captured)


@dataclass(slots=True)
class Total:
    """A sum of priced calls: the money known, and what could not be priced."""

    usd: Decimal = Decimal(0)
    priced: int = 0  # calls with a price
    unpriced: dict[str, int] = field(default_factory=dict)  # model -> calls without one

    def add(self, call: Call, price: Decimal | None) -> None:
        """Count one call (its price, or its model among the unpriced)."""
        if price is None:
            name = call.model or NO_MODEL
            self.unpriced[name] = self.unpriced.get(name, 0) + 1
        else:
            self.usd += price
            self.priced += 1

    def merge(self, other: Total) -> None:
        """Add another total to this one."""
        self.usd += other.usd
        self.priced += other.priced
        for name, n in other.unpriced.items():
            self.unpriced[name] = self.unpriced.get(name, 0) + n

    @property
    def total_usd(self) -> float | None:
        """USD of the priced calls; None when no call has a price."""
        return float(self.usd) if self.priced else None

    @property
    def partial(self) -> bool:
        """True when some call's price is unknown: the total is a lower bound."""
        return bool(self.unpriced)

    def text(self) -> str:
        """``$0.042``, ``≥ $0.042``, ``price unknown (my-finetune)`` or ``—`` (no calls)."""
        if not self.priced:
            if self.unpriced:
                return f"price unknown ({', '.join(sorted(self.unpriced))})"
            return "—"
        return money(self.usd, self.partial)


@dataclass(slots=True)
class RunCost:
    """A run's cost: in total, per agent, per turn, and after its failure point."""

    total: Total
    by_agent: dict[str, Total]
    by_turn: list[tuple[int | None, Total]]
    after_failure: Total | None = None  # failed runs only
    after_what: str | None = None  # "after turn 3, in the loop"

    def to_dict(self) -> dict[str, Any]:
        """The ``why --json`` ``cost`` object."""
        return {
            "total_usd": self.total.total_usd,
            "partial": self.total.partial,
            "unpriced_models": sorted(self.total.unpriced),
            "by_agent": {a: t.total_usd for a, t in self.by_agent.items()},
            "by_turn": [{"turn": n, "usd": t.total_usd} for n, t in self.by_turn],
            "after_failure_usd": (
                float(self.after_failure.usd) if self.after_failure is not None else None
            ),
        }

    def markdown(self) -> list[str]:
        """The incident report's cost section (Markdown lines)."""
        lines = ["", "## Cost", "", f"- **Total:** {self.total.text()}"]
        after = self.after_failure_text()
        if after:
            lines.append(f"- **After the failure:** {after}")
        if self.by_agent:
            agents = ", ".join(f"{a} {t.text()}" for a, t in self.by_agent.items())
            lines.append(f"- **By agent:** {agents}")
        if self.by_turn:
            turns = ", ".join(
                f"turn {n if n is not None else '?'} {t.text()}" for n, t in self.by_turn
            )
            lines.append(f"- **By turn:** {turns}")
        return lines

    def after_failure_text(self) -> str | None:
        """``$0.31 of $0.40 spent after turn 3, in the loop`` (failed runs with a price)."""
        if self.after_failure is None or not self.total.priced:
            return None
        spent = money(self.after_failure.usd, self.after_failure.partial)
        return f"{spent} of {self.total.text()} spent {self.after_what}"


def usage_counts(usage: Any) -> tuple[int, int]:
    """(cached input tokens, reasoning tokens) in a span's usage, in the Responses shape
    (``input_tokens_details``) or the Chat Completions one (``prompt_tokens_details``)."""
    if not isinstance(usage, dict):
        return 0, 0
    cached = _detail(usage, ("input_tokens_details", "prompt_tokens_details"), "cached_tokens")
    reasoning = _detail(
        usage, ("output_tokens_details", "completion_tokens_details"), "reasoning_tokens"
    )
    return cached, reasoning


def _detail(usage: dict[str, Any], places: tuple[str, ...], key: str) -> int:
    for place in places:
        details = usage.get(place)
        if isinstance(details, dict):
            value = details.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return 0


def call_of(span: SpanRecord) -> Call | None:
    """The model call a generation or response span records, or None (another kind of
    span, or a call that reported no tokens: a failed request costs nothing known)."""
    if span.kind not in MODEL_KINDS:
        return None
    if not (span.input_tokens or span.output_tokens):
        return None
    cached, reasoning = usage_counts(span.data.get("usage"))
    return make_call(
        span.model, span.input_tokens, span.output_tokens, cached, reasoning, span.started_at
    )


def make_call(
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cached: int | None,
    reasoning: int | None,
    at: datetime | None,
) -> Call:
    """A Call from stored columns (None counts as 0)."""
    return Call(
        model=model or None,
        input_tokens=max(0, input_tokens or 0),
        cached_tokens=max(0, cached or 0),
        output_tokens=max(0, output_tokens or 0),
        reasoning_tokens=max(0, reasoning or 0),
        at=at,
    )


def total_of(calls: Iterable[Call], book: PriceBook) -> Total:
    """The cost of some calls."""
    total = Total()
    for call in calls:
        total.add(call, book.price(call))
    return total


def run_cost(analysis: Analysis, book: PriceBook) -> RunCost:
    """A run's cost from its analysed spans: per call, then per turn, agent and run."""
    total = Total()
    by_agent: dict[str, Total] = {}
    by_turn: dict[int | None, Total] = {}
    priced: list[tuple[SpanRecord, Call, Decimal | None]] = []
    for span in analysis.structure.spans:
        call = call_of(span)
        if call is None:
            continue
        price = book.price(call)
        priced.append((span, call, price))
        total.add(call, price)
        by_agent.setdefault(span.agent or "?", Total()).add(call, price)
        by_turn.setdefault(span.turn, Total()).add(call, price)
    turns = sorted(by_turn.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    cost = RunCost(total, by_agent, turns)
    if analysis.verdict.status == FAILED:
        _after_failure(cost, analysis, priced)
    return cost


def _after_failure(
    cost: RunCost, analysis: Analysis, priced: list[tuple[SpanRecord, Call, Decimal | None]]
) -> None:
    """The money spent after a failed run went wrong: after the turn its loop began (max
    turns with repeated identical tool calls), else after its first unrecovered error."""
    st = analysis.structure
    boundary: datetime | None = None
    if analysis.verdict.category == "max_turns_exceeded" and analysis.loops:
        first = st.by_id.get(analysis.loops[0]["span_id"])
        if first is not None and first.ended_at is not None:
            boundary = first.ended_at
            turn = f" {first.turn}" if first.turn is not None else ""
            cost.after_what = f"after turn{turn}, in the loop"
    if boundary is None:
        fatal = [
            f.span
            for f in analysis.failures
            if not f.recovered and not f.echo and f.span.ended_at is not None
        ]
        if fatal:
            first = min(fatal, key=lambda s: s.ended_at)  # type: ignore[arg-type,return-value]
            boundary = first.ended_at
            turn = f" in turn {first.turn}" if first.turn is not None else ""
            cost.after_what = f"after the first fatal error{turn}"
    if boundary is None:
        return
    after = Total()
    for span, call, price in priced:
        if span.started_at is not None and span.started_at >= boundary:
            after.add(call, price)
    cost.after_failure = after
