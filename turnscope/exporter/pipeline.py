"""The worker: one thread that drains the processor's buffer, normalises, analyses and writes.

Everything slow or fallible happens here, never on the agent's thread: normalising live SDK
objects, the verdict, database writes (one transaction per batch) and OTLP export. This
module assembles traces from the buffered events (per-trace state, analysis pacing,
eviction, shutdown); ``delivery.py`` gets each batch into each sink (retries with backoff,
what is pending, the committer thread).
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
from turnscope.exporter.delivery import Committer, Delivery
from turnscope.exporter.normalize import Normalizer, next_seq
from turnscope.records import SpanRecord, TraceInfo
from turnscope.sinks import Batch, Sink

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


class Pipeline:
    """Owns the buffer, the worker thread, per-trace state and a ``Delivery`` per sink."""

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
        self.linger = linger
        self.analyze_always_below = analyze_always_below
        self.analysis_interval_floor = flush_interval  # large running traces: see _analysis_due
        self._committer = Committer()  # one thread for every staged sink's commits
        self.deliveries = [
            Delivery(
                s,
                self._committer,
                max_pending_spans=max_pending_spans,
                max_gathered_spans=max_gathered_spans,  # rows waiting while a commit runs
            )
            for s in sinks
        ]
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
        # open the sinks as soon as the worker starts: creating a database and running its
        # migrations takes a second or more when the agent keeps the GIL busy, and that must
        # not happen while the first runs' spans wait (nor widen the loss bound of a crash)
        for delivery in self.deliveries:
            delivery.open()  # on failure, retried with backoff when there is data
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
            elif any(d.pending for d in self.deliveries):
                self._deliver(Batch())  # retry what is pending
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
            for delivery in self.deliveries:
                delivery.heartbeat()
        self._evict(now)
        # an evicted trace is read back from the database if it comes back: it must be there
        self._settle_all()

    def _flush_sinks(self, timeout: float) -> bool:
        """Sinks that buffer on their own (OTLP's batch processor) send what they hold, so a
        flush means "at the destination". Runs on the flushing thread, not the worker: a slow
        backend must not hold up the database writes."""
        ok = True
        for delivery in self.deliveries:
            ok = delivery.flush(timeout) and ok
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
        self._deliver(batch)

    def _analysis_due(self, state: TraceState, now: float) -> bool:
        """Re-analysing a trace costs time in proportion to its size, once per batch that
        touches it: quadratic for a long run. Ended and small traces are analysed every
        batch; a large running one at most every 20x its last analysis time (the worker
        spends under 5% on it), between flush_interval and 5 s."""
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
            self._deliver(batch)

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
        for delivery in self.deliveries:  # the first sink that has them (the database) answers
            found = delivery.load(trace_ids)
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
        hints: tuple[str | None, dict[str, str] | None],
        touched: dict[str, TraceState],
        loaded: Any,
    ) -> None:
        fresh = self.normalizer.trace(trace)
        state = self._state(fresh.trace_id, touched, loaded)
        info = state.info
        task_name, keys = hints  # the starting task's name, the runner's conversation keys
        if streamed_hint(task_name):
            info.streamed = True
        if keys:
            self.normalizer.run_keys(info, keys)
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
        hints: tuple[dict[str, Any], dict[str, str] | None] | None,
        batch: Batch,
        touched: dict[str, TraceState],
        loaded: Any,
    ) -> None:
        fresh = self.normalizer.trace(trace)
        state = self._state(fresh.trace_id, touched, loaded)
        info = state.info
        ending, keys = hints or (None, None)  # a streamed run's result, and its keys
        if keys:  # a streamed run's conversation keys, read at its end
            self.normalizer.run_keys(info, keys)
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

    # -- delivery ----------------------------------------------------------------------------

    def _deliver(self, batch: Batch) -> None:
        now = time.monotonic()
        for delivery in self.deliveries:
            delivery.deliver(batch, now)

    def _settle_all(self) -> None:
        for delivery in self.deliveries:
            delivery.settle()

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
                self._deliver(batch)
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
        for delivery in self.deliveries:
            delivery.retry_now()
        self._deliver(batch)
        self._settle_all()
        self._committer.close()
        for delivery in self.deliveries:
            left = None
            if self._stop_deadline is not None:  # what is left of shutdown(timeout)
                left = max(self._stop_deadline - time.monotonic(), 0.0)
            delivery.close(left)
        self.traces.clear()  # written and closed: a stopped pipeline holds no runs

    # -- introspection -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters: received, written, dropped, failed, and per sink."""
        sinks = {d.sink.name: d.stats() for d in self.deliveries}
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
