"""Where records go: the sink interface shared by the database and the OTLP exporter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from turnscope.records import RunRecord, SpanRecord, TraceInfo


@dataclass(slots=True)
class Batch:
    """What one worker cycle produced: spans started or ended, and the runs they changed."""

    spans: list[SpanRecord] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    ended_traces: list[str] = field(default_factory=list)  # on_trace_end seen in this batch
    ended_spans: list[SpanRecord] = field(default_factory=list)  # each span once, at its end

    def __bool__(self) -> bool:
        return bool(self.spans or self.runs or self.ended_traces or self.ended_spans)

    def extend(self, later: Batch) -> None:
        """Append a later batch (a later record of a span wins when written)."""
        self.spans.extend(later.spans)
        self.runs.extend(later.runs)
        self.ended_traces.extend(later.ended_traces)
        self.ended_spans.extend(later.ended_spans)


class Sink(Protocol):
    """A destination for records. Called only from the pipeline's worker thread.

    ``Batch.spans`` may repeat a span (its agent/turn assignment changed);
    ``Batch.ended_spans`` holds each span exactly once, when it ends."""

    name: str

    def open(self) -> None:
        """Connect or create resources; may raise (the pipeline retries later)."""

    def write(self, batch: Batch) -> None:
        """Persist or send one batch; may raise (the pipeline retries, then counts failures)."""

    def heartbeat(self) -> None:
        """Tell readers this process is alive (no-op for sinks that do not care)."""

    def close(self, timeout: float | None = None) -> None:
        """Flush and release resources within ``timeout`` seconds."""


class Loader(Protocol):
    """A sink that can give back what it stored (the database), for traces the worker evicted
    from memory or that another process started."""

    def load_many(self, trace_ids: list[str]) -> dict[str, tuple[TraceInfo, list[SpanRecord]]]:
        """Stored trace info and spans for those of ``trace_ids`` that exist."""
