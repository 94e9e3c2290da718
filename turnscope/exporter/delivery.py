"""Delivery: getting the worker's batches into each sink, whatever the sink is going through.

One ``Delivery`` per sink. It opens the sink (again, with backoff, after a failure), keeps
what could not be written (bounded: the oldest spans are given up and counted) and writes it
first next time, logs a failing sink once (not as a flood) and counts it for ``stats()``.
On SQLite the worker builds each batch's rows and a second thread (``Committer``) commits
them while the worker goes on with the next batch (a ``StagedSink``).

Everything here runs on the pipeline's worker thread, except ``Delivery.flush`` (the
flushing thread) and ``Delivery.stats`` (any thread), which read and never change state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from turnscope.records import SpanRecord, TraceInfo
from turnscope.sinks import Batch, Sink, StagedSink

log = logging.getLogger("turnscope")


class Commit:
    """One write handed to the committer thread; ``wait`` returns its exception, if any."""

    __slots__ = ("arg", "done", "error", "fn")

    def __init__(self, fn: Any, arg: Any) -> None:
        self.fn, self.arg = fn, arg
        self.done = threading.Event()
        self.error: BaseException | None = None

    def wait(self) -> BaseException | None:
        """Block until the write ended; its exception, or None."""
        self.done.wait()
        return self.error


class Committer:
    """A daemon thread that runs database commits while the worker prepares the next batch.

    On SQLite a commit spends most of its time inside SQLite with the GIL released (one
    multi-row statement per up to 1,024 rows), so on a second core it costs the worker's
    Python little. One commit per sink runs at a time; batches that come meanwhile gather
    for the next one, and the worker waits for all of it before a flush's answer, a
    heartbeat, an eviction and shutdown."""

    def __init__(self) -> None:
        self._jobs: deque[Commit | None] = deque()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Any, arg: Any) -> Commit:
        """Run ``fn(arg)`` on the committer thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="turnscope-committer", daemon=True
            )
            self._thread.start()
        job = Commit(fn, arg)
        self._jobs.append(job)
        self._ready.set()
        return job

    def close(self) -> None:
        """Let the thread end once its queue is done."""
        if self._thread is not None:
            self._jobs.append(None)
            self._ready.set()

    def _run(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            while self._jobs:
                job = self._jobs.popleft()
                if job is None:
                    return
                try:
                    job.fn(job.arg)
                except BaseException as exc:  # handed to the worker, which retries and logs
                    job.error = exc
                job.done.set()


class Delivery:
    """One sink as the worker sees it: open or not, its retry bookkeeping, what it still owes."""

    __slots__ = (
        "backoff",
        "committer",
        "error",
        "failed",
        "failures",
        "inflight",
        "last_warning",
        "max_gathered_spans",
        "max_pending_spans",
        "next_try",
        "opened",
        "pending_ended",
        "pending_ended_traces",
        "pending_runs",
        "pending_spans",
        "ready",
        "sink",
        "staged",
        "written",
    )

    def __init__(
        self,
        sink: Sink,
        committer: Committer,
        *,
        max_pending_spans: int = 100_000,
        max_gathered_spans: int = 16384,
    ) -> None:
        self.sink = sink
        self.staged = sink if isinstance(sink, StagedSink) else None  # may commit elsewhere
        self.committer = committer
        self.max_pending_spans = max_pending_spans
        self.max_gathered_spans = max_gathered_spans  # rows waiting while a commit runs
        self.opened = False
        self.next_try = 0.0
        self.backoff = 0.5
        self.failures = 0
        self.last_warning = -1e9
        self.error: str | None = None
        self.written = 0
        self.failed = 0
        self.pending_spans: dict[tuple[str, str], SpanRecord] = {}
        self.pending_ended: dict[tuple[str, str], SpanRecord] = {}
        self.pending_runs: dict[str, Any] = {}
        self.pending_ended_traces: list[str] = []
        self.ready: tuple[Any, Batch] | None = None  # rows gathered for the next commit
        self.inflight: tuple[Commit, Batch] | None = None  # a commit on the committer thread

    # -- worker thread -----------------------------------------------------------------------

    def open(self) -> None:
        """Open the sink now; on failure it is opened again, with backoff, when data comes."""
        try:
            self.sink.open()
            self.opened = True
        except Exception as exc:
            self._failed(exc)

    @property
    def pending(self) -> bool:
        """Whether spans or runs wait for a retry."""
        return bool(self.pending_spans or self.pending_runs)

    def retry_now(self) -> None:
        """Let the next write try at once, whatever the backoff (a last chance at shutdown)."""
        self.next_try = 0.0

    def deliver(self, batch: Batch, now: float) -> None:
        """Write the batch, after what is pending; keep it all for later if that fails."""
        if self.inflight is not None and self.inflight[0].done.is_set():
            self._reap()  # a failed commit's batch goes back to pending, in order
        merged = self._merge_pending(batch)
        if not merged:
            return
        if not self.opened:
            if now < self.next_try:
                self._keep_pending(merged)
                return
            try:
                self.sink.open()
                self.opened = True
            except Exception as exc:
                self._failed(exc)
                self._keep_pending(merged)
                return
        if now < self.next_try and self.failures:
            self._keep_pending(merged)
            return
        staged = self.staged
        try:
            if staged is not None and staged.overlap_writes:
                self._write_behind(staged, merged)
                return
            self.sink.write(merged)
        except Exception as exc:
            self._failed(exc)
            self._keep_pending(merged)
            return
        self._wrote(merged)

    def settle(self) -> None:
        """Finish every write of the sink: the running commit and the rows gathered since."""
        self._reap()
        self._launch()
        self._reap()

    def heartbeat(self) -> None:
        """Pass the heartbeat on to an open sink."""
        if self.opened:
            try:
                self.sink.heartbeat()
            except Exception as exc:
                self._failed(exc)

    def load(self, trace_ids: list[str]) -> dict[str, tuple[TraceInfo, list[SpanRecord]]]:
        """What an open sink stored for these traces (``{}`` if it cannot say)."""
        if self.opened:
            try:
                return self.sink.load_many(trace_ids)
            except Exception as exc:
                self._failed(exc)
        return {}

    def close(self, timeout: float | None) -> None:
        """Close an open sink (after ``settle``); a failure is logged, not raised."""
        if self.opened:
            try:
                self.sink.close(timeout)
            except Exception as exc:
                log.warning("turnscope: closing %s failed: %s", self.sink.label, exc)

    # -- any thread --------------------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        """Have an open sink send what it holds back; True if it did within ``timeout``."""
        if not self.opened:
            return True
        try:
            return bool(self.sink.force_flush(timeout))
        except Exception:
            log.debug("turnscope: flushing %s failed", self.sink.label, exc_info=True)
            return False

    def stats(self) -> dict[str, Any]:
        """Written, failed, pending, the last error, and the sink's own counters."""
        out: dict[str, Any] = {
            "written": self.written,
            "failed": self.failed,
            "pending": len(self.pending_spans),
            "failures": self.failures,
            "error": self.error,
            "open": self.opened,
        }
        try:
            more = dict(self.sink.stats())  # a sink's own counters (OTLP: export results)
        except Exception:
            more = {}
        out["failed"] += int(more.pop("failed", 0) or 0)
        for key, value in more.items():
            out.setdefault(key, value)
        return out

    # -- write-behind ------------------------------------------------------------------------

    def _write_behind(self, sink: StagedSink, batch: Batch) -> None:
        """Build the rows here (a snapshot) and commit them on the committer thread while the
        worker goes on. Batches that come while a commit runs gather into the next one: the
        committer pays a GIL hand-back per statement, so when it falls behind, fewer and
        larger transactions let it catch up."""
        prepared = sink.prepare(batch)
        if self.ready is None:
            gathered = Batch()  # our own: the caller's batch goes on to the other sinks
            gathered.extend(batch)
            self.ready = (prepared, gathered)
        else:
            self.ready[0].extend(prepared)
            self.ready[1].extend(batch)
        running = self.inflight is not None and not self.inflight[0].done.is_set()
        if running and len(self.ready[1].spans) < self.max_gathered_spans:
            return
        self._reap()
        self._launch()

    def _launch(self) -> None:
        """Hand the gathered rows to the committer thread."""
        if self.ready is not None and self.inflight is None:
            prepared, batch = self.ready
            self.ready = None
            assert self.staged is not None  # only staged sinks gather rows
            self.inflight = (self.committer.submit(self.staged.commit, prepared), batch)

    def _reap(self) -> None:
        """Wait for the sink's running commit; count it, or keep its batch (and the ones
        gathered after it, which must not overtake it) for a retry."""
        if self.inflight is None:
            return
        job, batch = self.inflight
        self.inflight = None
        error = job.wait()
        if error is None:
            self._wrote(batch)
            return
        self._failed(error)
        self._keep_pending(batch)
        if self.ready is not None:
            self._keep_pending(self.ready[1])
            self.ready = None

    # -- bookkeeping -------------------------------------------------------------------------

    def _wrote(self, batch: Batch) -> None:
        self.written += len(batch.ended_spans)
        if self.failures:
            log.warning(
                "turnscope: writing to %s works again after %d failed attempts",
                self.sink.label,
                self.failures,
            )
        self.failures = 0
        self.backoff = 0.5
        self.error = None

    def _merge_pending(self, batch: Batch) -> Batch:
        if not (self.pending_spans or self.pending_runs or self.pending_ended_traces):
            return batch
        spans = dict(self.pending_spans)
        for span in batch.spans:
            spans[(span.trace_id, span.span_id)] = span
        ended = dict(self.pending_ended)
        for span in batch.ended_spans:
            ended[(span.trace_id, span.span_id)] = span
        runs = dict(self.pending_runs)
        for run in batch.runs:
            runs[run.trace_id] = run
        self.pending_spans, self.pending_ended, self.pending_runs = {}, {}, {}
        traces, self.pending_ended_traces = self.pending_ended_traces, []
        return Batch(
            list(spans.values()),
            list(runs.values()),
            traces + batch.ended_traces,
            list(ended.values()),
        )

    def _keep_pending(self, batch: Batch) -> None:
        for span in batch.spans:
            self.pending_spans[(span.trace_id, span.span_id)] = span
        for span in batch.ended_spans:
            self.pending_ended[(span.trace_id, span.span_id)] = span
        for run in batch.runs:
            self.pending_runs[run.trace_id] = run
        self.pending_ended_traces.extend(batch.ended_traces)
        overflow = len(self.pending_spans) - self.max_pending_spans
        if overflow > 0:  # bounded memory: give up on the oldest, and count them
            for key in list(self.pending_spans)[:overflow]:
                del self.pending_spans[key]
                self.pending_ended.pop(key, None)
            self.failed += overflow
        if len(self.pending_runs) > self.max_pending_spans:
            for key in list(self.pending_runs)[: len(self.pending_runs) - self.max_pending_spans]:
                del self.pending_runs[key]
        del self.pending_ended_traces[: -self.max_pending_spans]

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.error = _one_line(exc)
        now = time.monotonic()
        self.next_try = now + self.backoff
        self.backoff = min(self.backoff * 2, 30.0)
        if self.failures == 1 or now - self.last_warning > 60:
            self.last_warning = now
            log.warning(
                "turnscope: cannot write to %s (%s); keeping up to %d spans and retrying — "
                "agent runs are not affected",
                self.sink.label,
                self.error,
                self.max_pending_spans,
            )
        else:
            log.debug("turnscope: %s still failing: %s", self.sink.label, self.error)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]
