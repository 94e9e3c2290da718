"""The analysis as pure functions over records: turns, scopes and verdicts on shapes the SDK
produces rarely (or that bad data produces), plus a property test over span data shapes."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnscope.analysis.turns import build
from turnscope.analysis.verdict import analyze
from turnscope.exporter.safe import jsonable
from turnscope.records import ExceptionInfo, SpanRecord, TraceInfo

T0 = datetime(2026, 11, 24, 12, 0, 0, tzinfo=timezone.utc)


def span(
    kind: str,
    span_id: str,
    parent: str | None,
    start: float,
    end: float | None = None,
    **kwargs: Any,
) -> SpanRecord:
    """A span record starting ``start`` seconds after T0."""
    data = kwargs.pop("data", {})
    record = SpanRecord(
        trace_id="trace_x",
        span_id=span_id,
        parent_id=parent,
        kind=kind,
        name=kwargs.pop("name", kind),
        started_at=T0 + timedelta(seconds=start),
        ended_at=T0 + timedelta(seconds=end) if end is not None else None,
        data=data,
        seq=int(start * 1000),
        **kwargs,
    )
    return record


def ended_trace(exc: ExceptionInfo | None = None) -> TraceInfo:
    """Trace info for a trace that ended at T0 + 100 s."""
    return TraceInfo(
        trace_id="trace_x",
        workflow="wf",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=100),
        exception=exc,
    )


def test_derived_turns_keep_retries_in_one_turn_and_count_across_handoffs() -> None:
    spans = [
        span("agent", "a1", None, 0, 10, name="Triage"),
        span("generation", "g1", "a1", 1, 2, error_message="Error getting response"),
        span("generation", "g2", "a1", 2.5, 3),  # retry of g1: same turn
        span("handoff", "h1", "a1", 3.5, 4, data={"from_agent": "Triage", "to_agent": "Billing"}),
        span("agent", "a2", None, 11, 20, name="Billing"),
        span("guardrail", "gr", "a2", 11.1, 11.2, name="pii"),  # before the first model call
        span("generation", "g3", "a2", 12, 13),
        span("function", "f1", "a2", 13.5, 14, tool_name="lookup"),
        span("generation", "g4", "a2", 15, 16),
    ]
    structure = build(spans)
    assert len(structure.scopes) == 1, "a handoff continues the run"
    assert [(t.agent, t.number, t.model_calls) for t in structure.turns] == [
        ("Triage", 1, 2),
        ("Billing", 2, 1),
        ("Billing", 3, 1),
    ]
    by_id = structure.by_id
    assert (by_id["gr"].turn, by_id["f1"].turn, by_id["h1"].turn) == (2, 2, 1)
    verdict = analyze(ended_trace(), spans).verdict
    assert verdict.status == "succeeded_with_errors"
    assert verdict.recovered_errors == [
        {"category": "model_error", "tool": None, "message": "Error getting response", "count": 1}
    ]


def test_a_new_top_level_agent_without_handoff_is_a_new_run() -> None:
    spans = [
        span("agent", "a1", None, 0, 2, name="First"),
        span("generation", "g1", "a1", 0.5, 1),
        span("agent", "a2", None, 3, 5, name="Second"),
        span("generation", "g2", "a2", 3.5, 4),
    ]
    structure = build(spans)
    assert [[t.number for t in s.turns] for s in structure.scopes] == [[1], [1]]


def test_cycles_and_orphans_do_not_hang_or_crash() -> None:
    spans = [
        span("agent", "a", "b", 0, 5, name="A"),
        span("function", "b", "a", 1, 2, tool_name="t"),  # a <-> b cycle
        span("generation", "orphan", "missing-parent", 3, 4),
        span("custom", "self", "self", 4, 4.5),  # its own parent
    ]
    result = analyze(ended_trace(), spans)
    assert result.verdict.status in ("succeeded", "failed", "succeeded_with_errors")
    assert len(result.structure.spans) == 4


def test_exception_without_any_span_error_points_at_the_span_it_escaped_from() -> None:
    boom = ExceptionInfo("ConnectionResetError", "builtins", "reset")
    spans = [
        span("agent", "a", None, 0, 3, name="Summarizer", exception=boom),
        span("generation", "g", "a", 1, 2, exception=boom),
    ]
    verdict = analyze(ended_trace(boom), spans).verdict
    assert (verdict.status, verdict.category, verdict.span_id) == ("failed", "model_error", "g")
    assert verdict.agent == "Summarizer" and verdict.turn == 1


def test_nothing_to_go_on_is_unknown_only_when_there_is_really_nothing() -> None:
    never_ended = [span("agent", "a", None, 0, 3, name="A"), span("function", "f", "a", 1, None)]
    verdict = analyze(ended_trace(), never_ended).verdict
    assert (verdict.status, verdict.category) == ("failed", "cancelled")
    assert verdict.span_id == "f"


def test_a_run_whose_spans_ended_cancelled_is_cancelled_though_its_trace_never_closed() -> None:
    """A streamed run cancelled during its cleanup: the SDK never closes the trace, but the
    run's own spans ended with the cancellation in flight; never "incomplete"."""
    cancel = ExceptionInfo("CancelledError", "asyncio.exceptions", "")
    info = TraceInfo(trace_id="trace_x", started_at=T0, pid=4242, host="worker-3")
    spans = [
        span("agent", "a", None, 0, 3, name="Streamer", exception=cancel),
        span("generation", "g", "a", 1, 2),
    ]
    for alive in (True, False):
        verdict = analyze(info, spans, process_alive=alive).verdict
        assert (verdict.status, verdict.category, verdict.exception) == (
            "failed",
            "cancelled",
            "CancelledError",
        )
        assert verdict.agent == "Streamer"


def test_a_dead_process_makes_an_unended_run_incomplete() -> None:
    info = TraceInfo(trace_id="trace_x", started_at=T0, pid=4242, host="worker-3")
    spans = [span("agent", "a", None, 0, None, name="A"), span("function", "f", "a", 1, None)]
    live = analyze(info, spans).verdict
    assert live.status == "running"
    dead = analyze(info, spans, process_alive=False).verdict
    assert (dead.status, dead.category, dead.turn) == ("incomplete", "incomplete", 1)
    assert "pid 4242 on worker-3" in dead.explanation


def test_streamed_flag_decides_an_unhandled_max_turns_without_exception() -> None:
    spans = [
        span(
            "agent",
            "a",
            None,
            0,
            3,
            name="L",
            error_message="Max turns exceeded",
            error_data={"max_turns": 1},
        ),
        span("generation", "g", "a", 1, 2),
    ]
    streamed = ended_trace()
    streamed.streamed = True
    assert analyze(streamed, spans).verdict.category == "max_turns_exceeded"
    handled = ended_trace()
    handled.streamed = False
    assert analyze(handled, spans).verdict.status == "succeeded_with_errors"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary(max_size=64),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=5)
        | st.tuples(children, children)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(json_values, st.integers(min_value=16, max_value=4096))
def test_any_span_data_becomes_valid_bounded_json(value: Any, limit: int) -> None:
    converted, budget = jsonable(value, limit)
    text = json.dumps(converted, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # no lone surrogates survive
    assert budget.left >= -(limit * 8)  # the whole value stays near its budget
    if not budget.truncated:
        assert _same(value, converted)


def _same(original: Any, converted: Any) -> bool:
    """Untruncated data round-trips (tuples become lists, keys become strings)."""
    if isinstance(original, float):
        return math.isfinite(original) and converted == original
    if isinstance(original, (list, tuple)):
        return isinstance(converted, list) and all(
            _same(a, b) for a, b in zip(original, converted, strict=True)
        )
    if isinstance(original, dict):
        return all(_same(v, converted[str(k)]) for k, v in original.items())
    if isinstance(original, frozenset):
        return len(converted) == len(original) and all(
            any(_same(o, c) for c in converted) for o in original
        )
    if isinstance(original, int) and not isinstance(original, bool):
        return converted == original or converted == str(original)
    return converted == original


def test_repeated_calls_of_a_successful_run_are_found_on_first_use_only() -> None:
    """The worker analyses every run it writes; only a failed run's verdict needs the
    repeated calls, so a successful run's are found when a reader asks for them."""
    spans = [span("agent", "a1", None, 0, 10, name="Helper")]
    for i in range(3):
        spans.append(span("generation", f"g{i}", "a1", 1 + 2 * i, 1.5 + 2 * i))
        args = '{"q": "same", "n": 1}' if i < 2 else '{"n": 1,  "q": "same"}'
        spans.append(
            span(
                "function",
                f"f{i}",
                "a1",
                2 + 2 * i,
                2.5 + 2 * i,
                tool_name="lookup",
                data={"name": "lookup", "input": args, "output": "x"},
            )
        )
    analysis = analyze(ended_trace(), spans)
    assert analysis.run.status == "succeeded"
    assert analysis.found_loops is None  # not computed while writing
    assert analysis.loops == [
        {
            "tool": "lookup",
            "arguments": '{"n": 1, "q": "same"}',
            "count": 3,
            "span_id": "f0",
            "span_ids": ["f0", "f1", "f2"],
        }
    ]


def test_an_agent_as_tool_warns_only_when_its_own_run_failed() -> None:
    """nested_run_failed is for an inner run that failed while the outer went on; an inner
    model call the inner run retried successfully is a recovered error, not a warning."""

    def trace(inner_recovers: bool) -> list[SpanRecord]:
        spans = [
            span("agent", "a1", None, 0, 20, name="Billing"),
            span("generation", "g1", "a1", 1, 2),
            span("function", "f1", "a1", 3, 10, tool_name="ask", data={"input": "{}"}),
            span("agent", "a2", "f1", 3.1, 9.9, name="Specialist"),
            span("generation", "g2", "a2", 4, 5, error_message="Error getting response"),
            span("generation", "g4", "a1", 11, 12),
        ]
        if inner_recovers:
            spans.insert(5, span("generation", "g3", "a2", 5.5, 6))
        return spans

    recovered = analyze(ended_trace(), trace(inner_recovers=True)).verdict
    assert recovered.status == "succeeded_with_errors"
    assert recovered.warnings == []
    failed_inside = analyze(ended_trace(), trace(inner_recovers=False)).verdict
    assert failed_inside.status == "succeeded_with_errors"
    assert [(w.kind, w.agent, w.span_id) for w in failed_inside.warnings] == [
        ("nested_run_failed", "Specialist", "g2")
    ]
