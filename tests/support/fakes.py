"""Hand-made SDK-like spans, for event sequences the real SDK does not produce on demand
(spans of a trace never started, duplicate ends, span types a later SDK may add)."""

from __future__ import annotations


class FutureSpanData:
    """A span-data type a later SDK may add."""

    type = "sandbox_exec"

    def __init__(self) -> None:
        self.command = "ls -la"
        self.exit_code = 0


class FakeSpan:
    """Just enough of an SDK span for the processor."""

    def __init__(self, trace_id: str, span_id: str, parent: str | None = None) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent
        self.span_data = FutureSpanData()
        self.started_at = "2026-11-24T10:00:00+00:00"  # no microseconds: the SDK omits them
        self.ended_at: str | None = None
        self.error = None
