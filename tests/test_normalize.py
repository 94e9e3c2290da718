"""The normaliser reads the SDK's own span class directly (its properties cost a call each):
what it reads that way must be exactly what the general, property-based path reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import agents
import pytest
from agents import (
    SpanError,
    agent_span,
    custom_span,
    function_span,
    generation_span,
    guardrail_span,
    handoff_span,
    set_trace_processors,
    trace,
)

from turnscope.exporter import normalize
from turnscope.exporter.normalize import Normalizer


class Capture:
    """Keeps every ended span."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def on_trace_start(self, trace: Any) -> None: ...
    def on_trace_end(self, trace: Any) -> None: ...
    def on_span_start(self, span: Any) -> None: ...
    def on_span_end(self, span: Any) -> None:
        self.spans.append(span)

    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


@pytest.fixture
def spans() -> Iterator[list[Any]]:
    """Real SDK spans of every kind both SDK versions have (turn/task where they exist)."""
    capture = Capture()  # the SDK's span objects themselves, not a TurnscopeProcessor
    set_trace_processors([capture])  # type: ignore[list-item]
    try:
        with trace("wf"), agent_span(name="Agent", tools=["lookup"], handoffs=["B"]):
            with generation_span(
                model="gpt-4o",
                input=[{"role": "user", "content": "hé"}],
                output=[{"role": "assistant", "content": "ok"}],
                usage={"input_tokens": 3, "output_tokens": 1},
            ):
                pass
            with function_span(name="lookup", input='{"q": 1}') as failing:
                failing.set_error(SpanError(message="boom", data={"tool_name": "lookup"}))
            with guardrail_span(name="no_secrets", triggered=True):
                pass
            with handoff_span(from_agent="Agent", to_agent="B"):
                pass
            with custom_span(name="step", data={"n": 1, "nested": {"x": [1, 2]}}):
                pass
            if hasattr(agents, "turn_span"):
                with agents.turn_span(turn=1, agent_name="Agent"):
                    pass
            if hasattr(agents, "task_span"):
                with agents.task_span(name="task"):
                    pass
            if hasattr(agents, "response_span"):
                with agents.response_span() as response:  # its id in a private slot
                    response.span_data._response_id = "resp_1"
    finally:
        set_trace_processors([])
    yield capture.spans


def _general(span: Any, normalizer: Normalizer) -> Any:
    cls = type(span)
    normalize._DIRECT[cls] = False  # as for any class that is not the SDK's
    try:
        return normalizer.span(span, 0.0)
    finally:
        del normalize._DIRECT[cls]


@pytest.mark.parametrize("capture_content", [True, False])
def test_the_direct_read_equals_the_general_path(spans: list[Any], capture_content: bool) -> None:
    normalizer = Normalizer(capture_content=capture_content)
    assert normalize._sdk_span_parts(spans[0]) is not None  # the direct read is taken
    kinds = set()
    for span in spans:
        direct, general = normalizer.span(span, 0.0), _general(span, normalizer)
        assert direct == general
        assert direct.data_json == general.data_json and direct.data == general.data
        assert not any(key.startswith("_") for key in direct.data)
        kinds.add(direct.kind)
    assert {"agent", "generation", "function", "guardrail", "handoff", "custom"} <= kinds
    failed = next(s for s in spans if s.span_data.type == "function")
    responses = [normalizer.span(s, 0.0) for s in spans if s.span_data.type == "response"]
    assert len(responses) == (1 if hasattr(agents, "response_span") else 0)
    assert all(r.data["response_id"] == "resp_1" for r in responses)
    assert normalizer.span(failed, 0.0).error_message == "boom"


@pytest.mark.parametrize(
    "trace_id",
    ["é" * 10, "t" * 600, "", 12345],
    ids=["non-ascii", "too long", "empty", "not text"],
)
def test_odd_ids_take_the_general_path(spans: list[Any], trace_id: Any) -> None:
    span = spans[0]
    span._trace_id = trace_id
    assert normalize._sdk_span_parts(span) is None
    record = Normalizer().span(span, 0.0)
    assert record == _general(span, Normalizer())
    assert isinstance(record.trace_id, str) and 0 < len(record.trace_id.encode()) < 600


def test_another_sdk_layout_falls_back_to_the_properties(spans: list[Any]) -> None:
    """An SDK version whose span class keeps its state elsewhere: read through properties."""
    span = spans[1]
    cls = type(span)
    saved = dict(normalize._DIRECT)
    try:
        renamed = type(cls.__name__, (cls,), {"__module__": cls.__module__, "__slots__": ()})
        moved = object.__new__(renamed)
        # the class has the attributes (slots) but this object never set them
        assert normalize._sdk_span_parts(moved) is None
        assert normalize._DIRECT[renamed] is False
    finally:
        normalize._DIRECT.clear()
        normalize._DIRECT.update(saved)


def test_sdk_time_text_is_stored_as_formatting_would_store_it(spans: list[Any]) -> None:
    """SQLite rows slice the SDK's ISO text instead of formatting the datetime: same text,
    and never a stale one once the record's times change."""
    from datetime import timedelta

    from turnscope.store.writer import _sqlite_times, sqlite_time

    records = [Normalizer().span(span, 0.0) for span in spans]
    # the SDK's shape is taken (it omits the fraction when the microsecond is 0: 1 in 10^6)
    assert sum(r.iso_times is not None for r in records) >= len(records) - 1
    for record in records:
        expected = (sqlite_time(record.started_at), sqlite_time(record.ended_at))
        assert _sqlite_times(record) == expected
        later = record.copy(ended_at=record.ended_at + timedelta(seconds=1))
        assert _sqlite_times(later) == (expected[0], sqlite_time(later.ended_at))
        assert _sqlite_times(later)[1] != expected[1]


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-01T17:04:11.123456+01:00",
        "2026-12-01T17:04:11,123456+00:00",
        "2026-12-01T17:04:11Z",
        "2026-13-45T99:99:99.999999+00:00",
    ],
)
def test_other_time_shapes_are_parsed_and_formatted(spans: list[Any], text: str) -> None:
    from turnscope.store.writer import _sqlite_times, sqlite_time

    span = spans[0]
    span._started_at = text
    record = Normalizer().span(span, 1_700_000_000.0)
    assert record.iso_times is None
    assert _sqlite_times(record)[0] == sqlite_time(record.started_at)


def test_private_attributes_of_any_span_data_stay_out_of_the_data() -> None:
    class Data:  # a span-data class with a __dict__ (no slots), as user code may write
        type = "custom"

        def __init__(self) -> None:
            self.name = "step"
            self.data = {"n": 1}
            self._cache = "not for storage"

    class Span:
        trace_id, span_id, parent_id = "trace_1", "span_1", None
        started_at = ended_at = "2026-12-01T17:04:11.123456+00:00"
        error = None
        span_data = Data()

    record = Normalizer().span(Span(), 0.0)
    assert record.data == {"name": "step", "data": {"n": 1}}
    assert record.name == "step" and record.iso_times is not None


def test_span_data_that_cannot_be_read_falls_back_to_its_export() -> None:
    class Data:
        __slots__ = ("name",)
        type = "custom"

        def __getattribute__(self, name: str) -> Any:
            if name == "name":
                raise RuntimeError("broken property")
            return object.__getattribute__(self, name)

        def export(self) -> dict[str, Any]:
            return {"type": "custom", "name": "exported", "_hidden": 1}

    class Span:
        trace_id, span_id, parent_id = "trace_1", "span_1", None
        started_at = ended_at = None
        error = None
        span_data = Data()

    record = Normalizer().span(Span(), 1_700_000_000.0)
    assert record.data == {"name": "exported"} and record.name == "exported"
