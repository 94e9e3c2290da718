"""The tracing processor the SDK calls. Hot path only: stamp, capture, enqueue.

Each callback runs on the agent's thread (usually its event loop). It stamps the wall clock,
grabs the exception in flight (``sys.exc_info()``: the only way to learn what the runner
raised), and appends to a bounded buffer. It never raises (on openai-agents < 0.2.5 a
processor exception fails the user's run), never blocks and never does I/O.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import sys
import time
import uuid
from typing import Any

from agents.tracing import TracingProcessor

from turnscope import __version__
from turnscope.config import Settings
from turnscope.exporter.normalize import Normalizer
from turnscope.exporter.pipeline import SPAN_END, SPAN_START, TRACE_END, TRACE_START, Pipeline
from turnscope.exporter.redact import combine
from turnscope.sinks import Sink

log = logging.getLogger("turnscope")
_time = time.time
_exc_info = sys.exc_info


def sdk_version() -> str | None:
    """Installed openai-agents version."""
    try:
        from importlib.metadata import version

        return version("openai-agents")
    except Exception:
        return None


def _task_name() -> str | None:
    """``module:qualname`` of the running asyncio task's coroutine (once per run, cheap enough):
    streamed runs start in the SDK's own background task."""
    try:
        task = asyncio.current_task()
        if task is None:
            return None
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        module = frame.f_globals.get("__name__", "") if frame is not None else ""
        return f"{module}:{coro.__qualname__}"  # type: ignore[union-attr]
    except Exception:
        return None


def _stream_ending() -> tuple[dict[str, Any], dict[str, str] | None] | None:
    """For a streamed run closing its trace, what only its result object knows: whether it
    produced a final output and whether it was cancelled (``cancel(mode="after_turn")``);
    and, read from the same frame, its conversation keys (see ``_run_keys``). The SDK closes
    a streamed run's trace in the frame right above its tracing code, one that holds
    ``streamed_result``; other traces (plain runs, the user's own ``trace()``) give None.
    Once per trace: a few frames looked at, never a whole stack."""
    try:
        frame = sys._getframe(2)
        for _ in range(8):  # the SDK's tracing frames between us and the code that ended it
            if frame is None or not frame.f_globals.get("__name__", "").startswith(
                "agents.tracing"
            ):
                break
            frame = frame.f_back
        if frame is None or not frame.f_globals.get("__name__", "").startswith("agents."):
            return None
        code = frame.f_code
        if "streamed_result" not in code.co_varnames and "streamed_result" not in code.co_cellvars:
            return None
        local = frame.f_locals
        result = local.get("streamed_result")
        if result is None:
            return None
        ending = {
            "final_output": getattr(result, "final_output", None) is not None,
            "cancel_mode": str(getattr(result, "_cancel_mode", None) or "none"),
        }
        return ending, _keys_in(local)
    except Exception:
        return None


# the runner's locals that say which conversation a run belongs to (0.0.x: only the chain)
_KEY_LOCALS = ("conversation_id", "session", "previous_response_id")
SMALL_FRAME = 40  # locals a frame may have for its f_locals to be cheap enough to read
# the runner code that starts a trace, and how far above _run_keys it is: this callback, the
# SDK's processor list, Trace.start, then the runner (streamed) or TraceCtxManager.__enter__
RUNNER_CODES = frozenset({"run", "_run_impl", "_run_streamed_impl", "start_streaming"})
RUNNER_DEPTHS = (5, 4)  # plain runs first: the common case creates one frame object


def _run_keys() -> dict[str, str] | None:
    """For a trace the runner starts, what it was given that ties the run to a conversation:
    the Responses ``conversation_id``, its session's ``session_id`` and the
    ``previous_response_id`` it continues. The SDK puts none of them on the trace or its
    spans; they are locals of the runner frame that starts the trace, five or four frames
    above this callback (``Runner.run`` and ``_run_streamed_impl`` on 0.0.x), or its
    caller's ``kwargs`` (``AgentRunner.run`` above ``_run_impl`` on new SDKs). Looked up by
    depth, not by walking the stack: each frame walked, and each local of a frame whose
    locals are read, costs the agent's thread (``_run_impl`` has over a hundred). A new
    SDK's streamed run starts its trace in a task with no such caller: ``_stream_ending``
    reads its keys at the end. A trace the user started (``with trace(...)``) gives None."""
    try:
        for depth in RUNNER_DEPTHS:
            frame = sys._getframe(depth)
            code = frame.f_code
            if code.co_name in RUNNER_CODES and frame.f_globals.get("__name__", "").startswith(
                "agents."
            ):
                break
        else:
            return None
        if code.co_nlocals <= SMALL_FRAME:
            return _keys_in(frame.f_locals)
        outer = frame.f_back
        if outer is not None and outer.f_code.co_nlocals <= SMALL_FRAME:
            kwargs = outer.f_locals.get("kwargs")
            return _keys_in(kwargs) if isinstance(kwargs, dict) else None
        return None
    except Exception:
        return None


def _keys_in(values: Any) -> dict[str, str] | None:
    """The conversation keys among a runner's locals or options."""
    found: dict[str, str] = {}
    for name in _KEY_LOCALS:
        value = values.get(name)
        if name == "session" and value is not None:
            value = getattr(value, "session_id", None)
            name = "session_id"
        if isinstance(value, str) and value.strip():
            found[name] = value.strip()[:512]
    return found or None


def _sinks_for(settings: Settings, identity: dict[str, Any]) -> list[Sink]:
    """The sinks the settings ask for (database and/or OTLP)."""
    sinks: list[Sink] = []
    if settings.db_url:
        from turnscope.store.writer import DbSink, ProcessInfo

        sinks.append(
            DbSink(
                settings.db_url,
                ProcessInfo(
                    id=identity["process_id"],
                    pid=identity["pid"],
                    host=identity["host"],
                    sdk_version=identity.get("sdk_version"),
                    turnscope_version=__version__,
                ),
            )
        )
    if settings.otlp is not None:
        from turnscope.otlp.sink import OtlpSink

        sinks.append(OtlpSink(settings.otlp))
    return sinks


class TurnscopeProcessor(TracingProcessor):
    """Records Agents SDK traces into a local database (and, optionally, OTLP).

    ``db`` is a file path or SQLAlchemy URL (default ``$TURNSCOPE_DB``, else
    ``./turnscope.db``); ``db=False`` disables the database sink. Other settings, and their
    environment variables, are documented in ``turnscope.config.Settings``.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | bool | None = None,
        *,
        capture_content: bool | None = None,
        max_field_bytes: int | None = None,
        max_queue_size: int | None = None,
        flush_interval: float | None = None,
        redact_secrets: bool | None = None,
        redactor: Any = None,
        sinks: list[Sink] | None = None,
        **otlp: Any,
    ) -> None:
        self.settings = Settings.resolve(
            db=db,
            capture_content=capture_content,
            max_field_bytes=max_field_bytes,
            max_queue_size=max_queue_size,
            flush_interval=flush_interval,
            redact_secrets=redact_secrets,
            redactor=redactor,
            **otlp,
        )
        self.identity = {
            "process_id": uuid.uuid4().hex[:16],
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "sdk_version": sdk_version(),
        }
        all_sinks = _sinks_for(self.settings, self.identity) + list(sinks or [])
        self._pipeline = Pipeline(
            all_sinks,
            Normalizer(
                self.settings.capture_content,
                self.settings.max_field_bytes,
                combine(self.settings.redact_secrets, self.settings.redactor),
            ),
            self.identity,
            max_queue_size=self.settings.max_queue_size,
            flush_interval=self.settings.flush_interval,
        )
        self._buffer = self._pipeline.buffer
        self._max_queue = self.settings.max_queue_size
        self._wake_at = self._pipeline.wake_at
        self._wake = self._pipeline.wake
        self._shut = False
        self._pipeline.start()
        atexit.register(self._atexit)

    # -- SDK callbacks (agent's thread) ------------------------------------------------------

    def _put(self, code: int, obj: Any, extra: Any = None) -> None:
        try:
            buffer = self._buffer
            if len(buffer) < self._max_queue:
                buffer.append((code, obj, _time(), _exc_info()[1], extra))
                if len(buffer) >= self._wake_at:
                    self._wake.set()
            else:
                self._pipeline.record_drop(getattr(obj, "trace_id", None))
        except Exception:
            pass  # never let tracing break the agent

    def on_trace_start(self, trace: Any) -> None:
        """Queue the trace start, with the name of the asyncio task starting it and the
        conversation keys the runner starting it was given."""
        self._put(TRACE_START, trace, (_task_name(), _run_keys()))

    def on_trace_end(self, trace: Any) -> None:
        """Queue the trace end with the exception in flight, if any, and for a streamed run
        how it ended."""
        self._put(TRACE_END, trace, _stream_ending())

    def on_span_start(self, span: Any) -> None:
        """Queue the span start, so a running run is visible; for a run's root span (task or
        first agent), also the asyncio task starting it: streamed runs start in the SDK's own
        background task."""
        try:
            hint = _task_name() if span.parent_id is None else None
        except Exception:
            hint = None
        self._put(SPAN_START, span, hint)

    def on_span_end(self, span: Any) -> None:
        """Queue the span end with the exception in flight, if any."""
        self._put(SPAN_END, span)

    # -- control (user's thread) -------------------------------------------------------------

    def force_flush(self) -> None:
        """Write everything recorded so far (waits up to 30 s)."""
        try:
            self._pipeline.flush(30.0)
        except Exception:
            log.debug("turnscope: flush failed", exc_info=True)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write everything recorded so far; True if done within ``timeout`` seconds."""
        return self._pipeline.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush, mark unfinished runs incomplete and stop, within ``timeout`` (default 10 s)."""
        if self._shut:
            return
        self._shut = True
        self._max_queue = 0  # later callbacks are counted as dropped, not queued forever
        # the exit hook held this processor, and through it every run it had in memory:
        # a program that replaces its processor would keep each old one's runs forever
        atexit.unregister(self._atexit)
        try:
            if not self._pipeline.stop(10.0 if timeout is None else timeout):
                log.warning("turnscope: shutdown timed out; some spans may not be written")
        except Exception:
            log.debug("turnscope: shutdown failed", exc_info=True)

    def _atexit(self) -> None:
        self.shutdown(5.0)

    def stats(self) -> dict[str, Any]:
        """Counters: received, written, dropped, failed (and per-sink details)."""
        return self._pipeline.stats()

    def __repr__(self) -> str:
        return f"TurnscopeProcessor(db={self.settings.db_label!r}, version={__version__})"
