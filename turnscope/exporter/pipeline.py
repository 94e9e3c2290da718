"""The worker: one thread that drains the processor's buffer, normalises, analyses and writes.

Everything slow or fallible happens here, never on the agent's thread: normalising live SDK
objects, the verdict, database writes (one transaction per batch) and OTLP export. Sink
failures are retried with backoff, logged once (not as a flood) and counted in ``stats()``.
On SQLite the worker builds each batch's rows and a second thread (``Committer``) commits
them while the worker goes on with the next batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from turnscope.analysis.verdict import analyze
from turnscope.exporter.normalize import Normalizer, next_seq
from turnscope.records import SpanRecord, TraceInfo
from turnscope.sinks import Batch, Sink, StagedSink

log = logging.getLogger("turnscope")

# Event codes put on the buffer by the processor's callbacks.
TRACE_START, TRACE_END, SPAN_START, SPAN_END, FLUSH = range(5)


@dataclass(slots=True)
class TraceState:
    """What the worker holds in memory for one trace."""

    info: TraceInfo
    spans: dict[str, SpanRecord] = field(default_factory=dict)
    assigned: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)
    ambient_exc: int | None = None  # id() of an exception already in flight at trace start
    touched: float = 0.0
    fresh: list[SpanRecord] = field(default_factory=list)  # spans not written since analysis
    dirty: bool = False  # spans arrived since the last analysis (a large running trace)
    analyzed_at: float = -1e9
    analysis_interval: float = 0.0


@dataclass(slots=True)
class SinkState:
    """Retry bookkeeping for one sink."""

    sink: Sink
    staged: StagedSink | None = None  # the sink again, if it may commit on the committer
    opened: bool = False
    next_try: float = 0.0
    backoff: float = 0.5
    failures: int = 0
    last_warning: float = -1e9
    error: str | None = None
    written: int = 0
    failed: int = 0
    pending_spans: dict[tuple[str, str], SpanRecord] = field(default_factory=dict)
    pending_ended: dict[tuple[str, str], SpanRecord] = field(default_factory=dict)
    pending_runs: dict[str, Any] = field(default_factory=dict)
    pending_ended_traces: list[str] = field(default_factory=list)
    ready: tuple[Any, Batch] | None = None  # rows gathered for the next commit
    inflight: tuple[Commit, Batch] | None = None  # a commit running on the committer thread


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


class Pipeline:
    """Owns the buffer, the worker thread, per-trace state and the sinks."""

    def __init__(
        self,
        sinks: list[Sink],
        normalizer: Normalizer,
        identity: dict[str, Any],
        *,
        max_queue_size: int = 65536,
        flush_interval: float = 0.5,
        max_batch_size: int = 4096,
        heartbeat_interval: float = 5.0,
        max_cached_spans: int = 50_000,
        max_pending_spans: int = 100_000,
        linger: float = 5.0,
        analyze_always_below: int = 1000,
        max_gathered_spans: int = 16384,
    ) -> None:
        self.buffer: deque[tuple[Any, ...]] = deque()
        self.max_queue_size = max_queue_size
        self.wake_at = max(1, min(max_batch_size, max_queue_size // 2))
        self.wake = threading.Event()
        self.normalizer = normalizer
        self.identity = identity
        self.flush_interval = flush_interval
        self.max_batch_size = max_batch_size
        self.heartbeat_interval = heartbeat_interval
        self.max_cached_spans = max_cached_spans
        self.max_pending_spans = max_pending_spans
        self.linger = linger
        self.analyze_always_below = analyze_always_below
        self.max_gathered_spans = max_gathered_spans  # rows waiting while a commit runs
        self.analysis_interval_floor = flush_interval  # large running traces: see _analysis_due
        self.sinks = [SinkState(s, s if isinstance(s, StagedSink) else None) for s in sinks]
        self.traces: dict[str, TraceState] = {}
        self.start_exc: dict[str, int] = {}
        self._early_seq: dict[int, int] = {}  # id(span) -> seq of a start folded into its end
        self.dropped = 0
        self.dropped_by_trace: dict[str, int] = {}
        self._drop_lock = threading.Lock()
        self.processed = 0
        self.worker_errors = 0
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._last_heartbeat = 0.0
        self._last_drop_warning = -1e9
        self.sink_flush_timeout = 30.0  # flush(timeout=None): how long OTLP may take
        self._stop_deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name="turnscope-worker", daemon=True)
        self._committer = Committer()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def record_drop(self, trace_id: str | None) -> None:
        """Count an event the processor could not queue (agent's thread, overflow path only)."""
        with self._drop_lock:
            self.dropped += 1
            if trace_id and len(self.dropped_by_trace) < 10_000:
                self.dropped_by_trace[trace_id] = self.dropped_by_trace.get(trace_id, 0) + 1

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued so far; True if done within ``timeout``."""
        if not self._thread.is_alive():
            return not self.buffer
        deadline = None if timeout is None else time.monotonic() + timeout
        done = threading.Event()
        self.buffer.append((FLUSH, done, 0.0, None, None))
        self.wake.set()
        if not done.wait(timeout):
            return False
        left = self.sink_flush_timeout if deadline is None else deadline - time.monotonic()
        return self._flush_sinks(max(left, 0.0))

    def stop(self, timeout: float | None = None) -> bool:
        """Drain, mark unfinished runs incomplete, close sinks; True if done in time."""
        if timeout is not None:
            self._stop_deadline = time.monotonic() + timeout
        self._stop.set()
        self.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        self._open_sinks()
        while True:
            self.wake.wait(self.flush_interval)
            self.wake.clear()
            stopping = self._stop.is_set()
            try:
                self._cycle()
            except Exception:  # never let the worker die: the agent would silently lose data
                self.worker_errors += 1
                log.exception("turnscope: worker cycle failed")
            if stopping and not self.buffer:
                break
        try:
            self._finish()
        except Exception:
            log.exception("turnscope: shutdown failed")
        self._stopped.set()

    def _cycle(self) -> None:
        housekept = time.monotonic()
        while True:
            events, flushes = self._drain()
            if events:
                self._process(events)
            else:
                self._retry_only()
            if flushes:  # a flush means every summary is current too, and written
                self._analyze_dirty(time.monotonic(), all_of_them=True)
                self._settle_all()
            for done in flushes:
                done.set()
            if not self.buffer:
                break
            now = time.monotonic()
            if now - housekept >= self.flush_interval:
                # under sustained load the buffer never empties: heartbeats and eviction must
                # still happen, or memory grows with every run and live runs look dead
                self._housekeep(now)
                housekept = now
        self._housekeep(time.monotonic())

    def _housekeep(self, now: float) -> None:
        """Heartbeat the sinks, analyse put-off traces and evict ended ones from memory."""
        self._analyze_dirty(now)
        if now - self._last_heartbeat >= self.heartbeat_interval:
            self._last_heartbeat = now
            self._settle_all()  # the heartbeat would wait for the write lock anyway
            for state in self.sinks:
                if state.opened:
                    try:
                        state.sink.heartbeat()
                    except Exception as exc:
                        self._sink_failed(state, exc)
        self._evict(now)
        # an evicted trace is read back from the database if it comes back: it must be there
        self._settle_all()

    def _flush_sinks(self, timeout: float) -> bool:
        """Sinks that buffer on their own (OTLP's batch processor) send what they hold, so a
        flush means "at the destination". Runs on the flushing thread, not the worker: a slow
        backend must not hold up the database writes."""
        ok = True
        for state in self.sinks:
            if state.opened:
                try:
                    ok = bool(state.sink.force_flush(timeout)) and ok
                except Exception:
                    ok = False
                    log.debug("turnscope: flushing %s failed", state.sink.label, exc_info=True)
        return ok

    def _drain(self) -> tuple[list[tuple[Any, ...]], list[threading.Event]]:
        events: list[tuple[Any, ...]] = []
        flushes: list[threading.Event] = []
        buffer = self.buffer
        while buffer and len(events) < self.max_batch_size:
            item = buffer.popleft()
            if item[0] == FLUSH:
                flushes.append(item[1])
                break  # write what came before before telling the flusher
            events.append(item)
        return events, flushes

    def _process(self, events: list[tuple[Any, ...]]) -> None:
        batch = Batch()
        touched: dict[str, TraceState] = {}
        need_load = self._need_load(events)
        # a span that starts and ends within one batch is normalised once, at its end
        ending = {id(obj) for code, obj, _w, _e, _x in events if code == SPAN_END}
        self.processed += len(events)
        for code, obj, wall, exc, extra in events:
            try:
                if code == SPAN_START and id(obj) in ending and extra is None:
                    self._early_seq[id(obj)] = next_seq()
                    if exc is not None:
                        self._remember_start_exc(obj, exc)
                elif code in (SPAN_END, SPAN_START):
                    self._span(code, obj, wall, exc, extra, batch, touched, need_load)
                elif code == TRACE_START:
                    self._trace_start(obj, wall, exc, extra, touched, need_load)
                elif code == TRACE_END:
                    self._trace_end(obj, wall, exc, extra, batch, touched, need_load)
            except Exception:
                self.worker_errors += 1
                log.debug("turnscope: could not normalise an event", exc_info=True)
        self._fold_drops(touched, need_load)
        now = time.monotonic()
        for trace_id, state in touched.items():
            state.touched = now
            if self._analysis_due(state, now):
                self._analyze(trace_id, state, batch, now)
            else:
                # a large run still going: its new spans are written now, its summary row
                # and their turn numbers when the analysis is due (see _analysis_due)
                batch.spans.extend(state.fresh)
                state.fresh.clear()
                state.dirty = True
        self._write(batch)

    def _analysis_due(self, state: TraceState, now: float) -> bool:
        """Re-analysing a trace costs time in proportion to its size, once per batch that
        touches it: quadratic for a long run (a 20,000-span run took 280 ms per batch). Ended
        and small traces are analysed every batch; a large running one at most every 20x its
        last analysis time (the worker spends under 5% on it), between flush_interval and 5 s."""
        return (
            state.info.ended_at is not None
            or len(state.spans) < self.analyze_always_below
            or now - state.analyzed_at >= state.analysis_interval
        )

    def _analyze(self, trace_id: str, state: TraceState, batch: Batch, now: float) -> None:
        """Recompute the run's summary and the spans' agent and turn; queue what changed."""
        started = time.perf_counter()
        try:
            analysis = analyze(state.info, list(state.spans.values()))
        except Exception:
            self.worker_errors += 1
            log.exception("turnscope: analysis failed for %s", trace_id)
            batch.spans.extend(state.fresh)  # the spans are still worth keeping
            state.fresh.clear()
            return
        cost = time.perf_counter() - started
        state.analyzed_at = now
        state.analysis_interval = min(max(20 * cost, self.analysis_interval_floor), 5.0)
        state.dirty = False
        state.fresh.clear()
        batch.runs.append(analysis.run)
        for span in state.spans.values():
            key = (span.agent, span.turn)
            if state.assigned.get(span.span_id) != key:
                state.assigned[span.span_id] = key
                batch.spans.append(span)

    def _analyze_dirty(self, now: float, *, all_of_them: bool = False) -> None:
        """Bring large running traces whose analysis was put off up to date."""
        batch = Batch()
        for trace_id, state in self.traces.items():
            if state.dirty and (all_of_them or self._analysis_due(state, now)):
                self._analyze(trace_id, state, batch, now)
        if batch.runs or batch.spans:
            self._write(batch)

    def _need_load(self, events: list[tuple[Any, ...]]) -> dict[str, tuple[Any, list[Any]]]:
        """Load stored state for traces this worker does not hold (evicted, resumed, or
        started by another process) — one query per batch, not one per trace."""
        unknown: set[str] = set()
        for _code, obj, _wall, _exc, _extra in events:
            trace_id = _trace_id(obj)
            if trace_id and trace_id not in self.traces:
                unknown.add(trace_id)
        if not unknown:
            return {}
        trace_ids = sorted(unknown)
        for state in self.sinks:  # the first sink that has them (the database) answers
            if state.opened:
                try:
                    found = state.sink.load_many(trace_ids)
                except Exception as exc:
                    self._sink_failed(state, exc)
                    continue
                if found:
                    return found
        return {}

    def _state(
        self, trace_id: str, touched: dict[str, TraceState], loaded: dict[str, Any]
    ) -> TraceState:
        state = self.traces.get(trace_id)
        if state is None:
            info, spans = loaded.get(trace_id, (None, []))
            state = TraceState(info or TraceInfo(trace_id=trace_id))
            for span in spans:
                state.spans[span.span_id] = span
                state.assigned[span.span_id] = (span.agent, span.turn)
            self.traces[trace_id] = state
            self._stamp(state.info)
        touched[trace_id] = state  # its ``touched`` time is set at the end of the batch
        return state

    def _stamp(self, info: TraceInfo) -> None:
        info.sdk_version = info.sdk_version or self.identity.get("sdk_version")
        info.process_id = self.identity.get("process_id")
        info.pid = self.identity.get("pid")
        info.host = self.identity.get("host")

    def _trace_start(
        self,
        trace: Any,
        wall: float,
        exc: Any,
        task_name: str | None,
        touched: dict[str, TraceState],
        loaded: Any,
    ) -> None:
        fresh = self.normalizer.trace(trace)
        state = self._state(fresh.trace_id, touched, loaded)
        info = state.info
        if streamed_hint(task_name):
            info.streamed = True
        info.workflow = fresh.workflow or info.workflow
        info.group_id = fresh.group_id or info.group_id
        info.metadata = fresh.metadata or info.metadata
        started = datetime.fromtimestamp(wall, tz=timezone.utc)
        if info.started_at is None or started < info.started_at:
            info.started_at = started
        info.ended_at = None  # a resumed trace is open again
        info.exception = None
        info.ending = None
        state.ambient_exc = id(exc) if exc is not None else None

    def _trace_end(
        self,
        trace: Any,
        wall: float,
        exc: Any,
        ending: dict[str, Any] | None,
        batch: Batch,
        touched: dict[str, TraceState],
        loaded: Any,
    ) -> None:
        fresh = self.normalizer.trace(trace)
        state = self._state(fresh.trace_id, touched, loaded)
        info = state.info
        info.workflow = info.workflow or fresh.workflow
        info.metadata = fresh.metadata or info.metadata  # metadata may be set during the run
        info.ended_at = datetime.fromtimestamp(wall, tz=timezone.utc)
        if info.started_at is None:
            info.started_at = info.ended_at
        if exc is not None and id(exc) != state.ambient_exc:
            info.exception = self.normalizer.exception(exc)
        else:
            info.exception = None
        info.ending = ending if isinstance(ending, dict) else None
        if info.ending is not None:
            info.streamed = True  # only the SDK's streaming loop closes a trace holding a result
        batch.ended_traces.append(info.trace_id)

    def _span(
        self,
        code: int,
        span: Any,
        wall: float,
        exc: Any,
        task_name: str | None,
        batch: Batch,
        touched: dict[str, TraceState],
        loaded: Any,
    ) -> None:
        span_id = _span_id(span)
        if code == SPAN_START:
            if exc is not None:
                self._remember_start_exc(span, exc)
            record = self.normalizer.started(span, wall)
        else:
            ambient = self.start_exc.pop(span_id, None) if span_id else None
            in_flight = exc if exc is not None and id(exc) != ambient else None
            record = self.normalizer.span(span, wall, in_flight)
            if record.ended_at is None:
                record.ended_at = datetime.fromtimestamp(wall, tz=timezone.utc)
        state = self._state(record.trace_id, touched, loaded)
        if task_name is not None:  # a run's root span: was the run streamed?
            hint = streamed_hint(task_name)
            if hint or state.info.streamed is None:
                state.info.streamed = hint
        previous = state.spans.get(record.span_id)
        early = self._early_seq.pop(id(span), None) if code == SPAN_END else None
        if previous is not None:
            record.seq = previous.seq
            if code == SPAN_START and previous.ended_at is not None:
                return  # duplicate start after the end: keep the ended record
        else:
            record.seq = early or next_seq()
        state.spans[record.span_id] = record
        state.assigned.pop(record.span_id, None)  # force a (re)write with its turn
        state.fresh.append(record)
        if code == SPAN_END:
            batch.ended_spans.append(record)

    def _remember_start_exc(self, span: Any, exc: BaseException) -> None:
        span_id = _span_id(span)
        if span_id:
            if len(self.start_exc) > 10_000:
                self.start_exc.clear()
            self.start_exc[span_id] = id(exc)

    def _fold_drops(self, touched: dict[str, TraceState], loaded: Any) -> None:
        if not self.dropped_by_trace:
            return
        with self._drop_lock:
            drops, self.dropped_by_trace = self.dropped_by_trace, {}
        for trace_id, count in drops.items():
            state = self._state(trace_id, touched, loaded)
            state.info.dropped_spans += count
        now = time.monotonic()
        if now - self._last_drop_warning > 60:
            self._last_drop_warning = now
            log.warning(
                "turnscope: buffer full (max_queue_size=%d), %d events dropped so far; "
                "the affected runs are marked",
                self.max_queue_size,
                self.dropped,
            )

    # -- sinks -------------------------------------------------------------------------------

    def _open_sinks(self) -> None:
        """Open the sinks as soon as the worker starts: creating a database and running its
        migrations takes a second or more when the agent keeps the GIL busy, and that must
        not happen while the first runs' spans wait (nor widen the loss bound of a crash)."""
        for state in self.sinks:
            try:
                state.sink.open()
                state.opened = True
            except Exception as exc:
                self._sink_failed(state, exc)  # retried with backoff when there is data

    def _retry_only(self) -> None:
        if any(s.pending_spans or s.pending_runs for s in self.sinks):
            self._write(Batch())

    def _write(self, batch: Batch) -> None:
        now = time.monotonic()
        for state in self.sinks:
            if state.inflight is not None and state.inflight[0].done.is_set():
                self._reap(state)  # a failed commit's batch goes back to pending, in order
            merged = self._merge_pending(state, batch)
            if not merged:
                continue
            if not state.opened:
                if now < state.next_try:
                    self._keep_pending(state, merged)
                    continue
                try:
                    state.sink.open()
                    state.opened = True
                except Exception as exc:
                    self._sink_failed(state, exc)
                    self._keep_pending(state, merged)
                    continue
            if now < state.next_try and state.failures:
                self._keep_pending(state, merged)
                continue
            staged = state.staged
            try:
                if staged is not None and staged.overlap_writes:
                    self._write_behind(state, staged, merged)
                    continue
                state.sink.write(merged)
            except Exception as exc:
                self._sink_failed(state, exc)
                self._keep_pending(state, merged)
                continue
            self._wrote(state, merged)

    def _write_behind(self, state: SinkState, sink: StagedSink, batch: Batch) -> None:
        """Build the rows here (a snapshot) and commit them on the committer thread while the
        worker goes on. Batches that come while a commit runs gather into the next one: the
        committer pays a GIL hand-back per statement, so when it falls behind, fewer and
        larger transactions let it catch up."""
        prepared = sink.prepare(batch)
        if state.ready is None:
            gathered = Batch()  # our own: the caller's batch goes on to the other sinks
            gathered.extend(batch)
            state.ready = (prepared, gathered)
        else:
            state.ready[0].extend(prepared)
            state.ready[1].extend(batch)
        running = state.inflight is not None and not state.inflight[0].done.is_set()
        if running and len(state.ready[1].spans) < self.max_gathered_spans:
            return
        self._reap(state)
        self._launch(state)

    def _launch(self, state: SinkState) -> None:
        """Hand the gathered rows to the committer thread."""
        if state.ready is not None and state.inflight is None:
            prepared, batch = state.ready
            state.ready = None
            assert state.staged is not None  # only staged sinks gather rows
            state.inflight = (self._committer.submit(state.staged.commit, prepared), batch)

    def _reap(self, state: SinkState) -> None:
        """Wait for the sink's running commit; count it, or keep its batch (and the ones
        gathered after it, which must not overtake it) for a retry."""
        if state.inflight is None:
            return
        job, batch = state.inflight
        state.inflight = None
        error = job.wait()
        if error is None:
            self._wrote(state, batch)
            return
        self._sink_failed(state, error)
        self._keep_pending(state, batch)
        if state.ready is not None:
            self._keep_pending(state, state.ready[1])
            state.ready = None

    def _settle(self, state: SinkState) -> None:
        """Finish every write of the sink: the running commit and the rows gathered since."""
        self._reap(state)
        self._launch(state)
        self._reap(state)

    def _settle_all(self) -> None:
        for state in self.sinks:
            self._settle(state)

    def _wrote(self, state: SinkState, batch: Batch) -> None:
        state.written += len(batch.ended_spans)
        if state.failures:
            log.warning(
                "turnscope: writing to %s works again after %d failed attempts",
                state.sink.label,
                state.failures,
            )
        state.failures = 0
        state.backoff = 0.5
        state.error = None

    def _merge_pending(self, state: SinkState, batch: Batch) -> Batch:
        if not (state.pending_spans or state.pending_runs or state.pending_ended_traces):
            return batch
        spans = dict(state.pending_spans)
        for span in batch.spans:
            spans[(span.trace_id, span.span_id)] = span
        ended = dict(state.pending_ended)
        for span in batch.ended_spans:
            ended[(span.trace_id, span.span_id)] = span
        runs = dict(state.pending_runs)
        for run in batch.runs:
            runs[run.trace_id] = run
        state.pending_spans, state.pending_ended, state.pending_runs = {}, {}, {}
        traces, state.pending_ended_traces = state.pending_ended_traces, []
        return Batch(
            list(spans.values()),
            list(runs.values()),
            traces + batch.ended_traces,
            list(ended.values()),
        )

    def _keep_pending(self, state: SinkState, batch: Batch) -> None:
        for span in batch.spans:
            state.pending_spans[(span.trace_id, span.span_id)] = span
        for span in batch.ended_spans:
            state.pending_ended[(span.trace_id, span.span_id)] = span
        for run in batch.runs:
            state.pending_runs[run.trace_id] = run
        state.pending_ended_traces.extend(batch.ended_traces)
        overflow = len(state.pending_spans) - self.max_pending_spans
        if overflow > 0:  # bounded memory: give up on the oldest, and count them
            for key in list(state.pending_spans)[:overflow]:
                del state.pending_spans[key]
                state.pending_ended.pop(key, None)
            state.failed += overflow
        if len(state.pending_runs) > self.max_pending_spans:
            for key in list(state.pending_runs)[: len(state.pending_runs) - self.max_pending_spans]:
                del state.pending_runs[key]
        del state.pending_ended_traces[: -self.max_pending_spans]

    def _sink_failed(self, state: SinkState, exc: BaseException) -> None:
        state.failures += 1
        state.error = _one_line(exc)
        now = time.monotonic()
        state.next_try = now + state.backoff
        state.backoff = min(state.backoff * 2, 30.0)
        if state.failures == 1 or now - state.last_warning > 60:
            state.last_warning = now
            log.warning(
                "turnscope: cannot write to %s (%s); keeping up to %d spans and retrying — "
                "agent runs are not affected",
                state.sink.label,
                state.error,
                self.max_pending_spans,
            )
        else:
            log.debug("turnscope: %s still failing: %s", state.sink.label, state.error)

    # -- memory ------------------------------------------------------------------------------

    def _evict(self, now: float) -> None:
        for trace_id in [
            t
            for t, s in self.traces.items()
            if s.info.ended_at is not None and now - s.touched > self.linger
        ]:
            del self.traces[trace_id]
        total = sum(len(s.spans) for s in self.traces.values())
        if total <= self.max_cached_spans:
            return
        # oldest first, ended traces before running ones; the database keeps them all
        order = sorted(
            self.traces.items(), key=lambda kv: (kv[1].info.ended_at is None, kv[1].touched)
        )
        for trace_id, state in order:
            if total <= self.max_cached_spans // 2:
                break
            if state.dirty:  # its stored summary must not stay behind its spans
                batch = Batch()
                self._analyze(trace_id, state, batch, now)
                self._write(batch)
            total -= len(state.spans)
            del self.traces[trace_id]

    def _finish(self) -> None:
        """At shutdown, runs that never ended are incomplete: the process is going away."""
        self._analyze_dirty(time.monotonic(), all_of_them=True)
        batch = Batch()
        for state in self.traces.values():
            if state.info.ended_at is not None and not any(
                s.ended_at is None for s in state.spans.values()
            ):
                continue
            try:
                batch.runs.append(
                    analyze(state.info, list(state.spans.values()), process_alive=False).run
                )
            except Exception:
                log.exception("turnscope: could not close run %s", state.info.trace_id)
        for state in self.sinks:
            state.next_try = 0.0
        self._write(batch)
        self._settle_all()
        self._committer.close()
        for state in self.sinks:
            if state.opened:
                try:
                    left = None
                    if self._stop_deadline is not None:  # what is left of shutdown(timeout)
                        left = max(self._stop_deadline - time.monotonic(), 0.0)
                    state.sink.close(left)
                except Exception as exc:
                    log.warning("turnscope: closing %s failed: %s", state.sink.label, exc)
        self.traces.clear()  # written and closed: a stopped pipeline holds no runs

    # -- introspection -----------------------------------------------------------------------

    def _sink_stats(self, s: SinkState) -> dict[str, Any]:
        out: dict[str, Any] = {
            "written": s.written,
            "failed": s.failed,
            "pending": len(s.pending_spans),
            "failures": s.failures,
            "error": s.error,
            "open": s.opened,
        }
        try:
            more = dict(s.sink.stats())  # a sink's own counters (OTLP: export results)
        except Exception:
            more = {}
        out["failed"] += int(more.pop("failed", 0) or 0)
        for key, value in more.items():
            out.setdefault(key, value)
        return out

    def stats(self) -> dict[str, Any]:
        """Counters: received, written, dropped, failed, and per sink."""
        sinks = {s.sink.name: self._sink_stats(s) for s in self.sinks}
        db = next((v for k, v in sinks.items() if k == "db"), None)
        written = db["written"] if db else max((v["written"] for v in sinks.values()), default=0)
        failed = sum(v["failed"] for v in sinks.values())
        queued = len(self.buffer)
        return {
            "received": self.processed + queued + self.dropped,
            "processed": self.processed,
            "queued": queued,
            "written": written,
            "dropped": self.dropped,
            "failed": failed,
            "worker_errors": self.worker_errors,
            "traces_in_memory": len(self.traces),
            "sinks": sinks,
        }


# The SDK's coroutines that start a trace for Runner.run_streamed: 0.0.x and 0.24.
STREAMING_TASKS = ("_run_streamed_impl", "_start_streaming", "_await_data_redacted_error_boundary")


def streamed_hint(task_name: str | None) -> bool | None:
    """Whether a trace was started by a streamed run, from the task that started it
    (``module:qualname``): only the SDK's own streaming coroutines count, never the name of
    the user's coroutine."""
    if not task_name:
        return None
    module, _, name = task_name.rpartition(":")
    return (module == "agents" or module.startswith("agents.")) and name.endswith(STREAMING_TASKS)


def _trace_id(obj: Any) -> str | None:
    try:
        value = obj.trace_id
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _span_id(obj: Any) -> str | None:
    try:
        value = obj.span_id
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]
