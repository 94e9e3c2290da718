"""Where records go: the contract between the pipeline and a destination (database, OTLP).

A sink receives ``Batch``es from the pipeline's worker thread. Subclass ``Sink`` and
implement ``write``; the other methods have default bodies that suit a sink which needs no
connection, holds nothing back and stores nothing it could give back. Subclass
``StagedSink`` instead when a write can be split into a snapshot taken on the worker and a
commit that may run on a thread of its own (the database on SQLite).

Threading and blocking: unless a method says otherwise, the pipeline calls it from its one
worker thread, never from the agent's thread, so a sink may block there (a slow write only
delays the other sinks and the next batch, never an agent run). A method may raise: the
pipeline catches the exception, keeps the batch for a retry with backoff, logs once and
counts the failure in ``stats()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

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


class Sink(ABC):
    """A destination for records.

    ``Batch.spans`` may repeat a span (its agent/turn assignment changed);
    ``Batch.ended_spans`` holds each span exactly once, when it ends."""

    name: str  # the key of this sink in ``stats()["sinks"]``
    _label: str | None = None

    @property
    def label(self) -> str:
        """How log messages name this sink (default: ``name``); may be assigned."""
        return self._label or self.name

    @label.setter
    def label(self, value: str) -> None:
        self._label = value

    def open(self) -> None:
        """Connect or create resources; may raise (the pipeline opens it again later, with
        backoff). Called once when the worker starts, and before a write while not open."""
        return None  # nothing to do by default

    @abstractmethod
    def write(self, batch: Batch) -> None:
        """Persist or send one batch; may raise (the pipeline keeps the batch, retries with
        backoff, then counts what it had to give up)."""

    def heartbeat(self) -> None:
        """Tell readers this process is alive; called every few seconds while open."""
        return None  # nothing to do by default

    def close(self, timeout: float | None = None) -> None:
        """Flush and release resources within ``timeout`` seconds (None: the sink's own
        default); called once, at shutdown, after the last write."""
        return None  # nothing to do by default

    def force_flush(self, timeout: float | None = None) -> bool:
        """Send what the sink holds back on its own (OTLP's batch processor), within
        ``timeout`` seconds; True if all of it went. Called on the thread that asked the
        processor to flush, not the worker: it may run while a ``write`` does."""
        return True

    def load_many(self, trace_ids: list[str]) -> dict[str, tuple[TraceInfo, list[SpanRecord]]]:
        """Stored trace info and spans for those of ``trace_ids`` that exist: for traces the
        worker evicted from memory or that another process started. A sink that keeps
        nothing it can read back returns ``{}``."""
        return {}

    def stats(self) -> dict[str, Any]:
        """The sink's own counters, merged into ``stats()["sinks"][name]`` (a ``failed``
        count is added to the pipeline's). Called from any thread: must not block."""
        return {}


class Prepared(Protocol):
    """Rows a ``StagedSink`` prepared: later ones can be appended before the commit."""

    def extend(self, later: Any) -> None:
        """Append a later prepared batch (committed after this one's rows, so it wins)."""


class StagedSink(Sink):
    """A sink whose write is ``prepare`` on the worker, then ``commit`` on a committer thread.

    While ``overlap_writes`` is true, the pipeline commits on its committer thread (one
    commit per sink at a time) and goes on with the next batch; batches that come meanwhile
    are prepared and ``extend`` the rows waiting for the next commit. Otherwise ``write``
    runs both steps on the worker. Every commit has ended before a heartbeat, an eviction,
    a flush's answer and ``close``; ``load_many`` may run while one does."""

    @property
    def overlap_writes(self) -> bool:
        """Whether ``commit`` may run now on a thread of its own, beside the worker."""
        return True

    @abstractmethod
    def prepare(self, batch: Batch) -> Prepared:
        """The batch as rows, on the worker thread: a snapshot, since records may change (a
        later analysis) while ``commit`` runs."""

    @abstractmethod
    def commit(self, prepared: Any) -> None:
        """Write what ``prepare`` returned, in one transaction. Runs on the committer thread,
        never at the same time as another ``commit`` of this sink; may block and may raise
        (the rows, and those gathered after them, go back to the worker for a retry)."""

    def write(self, batch: Batch) -> None:
        """Prepare and commit on the calling thread."""
        self.commit(self.prepare(batch))
