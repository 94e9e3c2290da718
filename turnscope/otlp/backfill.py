"""Backfill: replay stored runs into an OTLP backend (``turnscope export-otlp``).

Each stored run is re-analysed (``Store.analysis``: the same turns and verdict as
``turnscope why``) and fed through the same ``OtlpSink`` and mapping as live export, as
if its spans had just ended. Ids are derived from the SDK ids, and nothing in a span depends
on when it is replayed, so a second replay sends the very same spans: no new trace appears,
and backends that de-duplicate identical spans (Jaeger) keep one copy. Runs still in progress
are skipped: they are exported live, or by a later backfill.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from turnscope.config import OtlpSettings
from turnscope.ids import otel_trace_id_hex
from turnscope.otlp.sink import OtlpSink
from turnscope.records import RUNNING, RunRecord, SpanRecord
from turnscope.sinks import Batch

PAGE = 500
_LATEST = datetime.max.replace(tzinfo=timezone.utc)

Progress = Callable[[int, int, int], None]  # (runs done, runs in total, spans sent so far)


@dataclass(slots=True)
class BackfillResult:
    """What a backfill sent and what the backend accepted."""

    endpoint: str
    protocol: str
    runs: int = 0
    spans: int = 0
    skipped_running: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Spans that did not reach the backend (export errors, drops, unsent at the end)."""
        return int(self.stats.get("failed", 0))

    @property
    def ok(self) -> bool:
        """Every span was accepted by the backend."""
        return self.failed == 0 and not self.missing


def replay_batch(run: RunRecord, spans: list[SpanRecord]) -> Batch:
    """A stored run as the pipeline would have handed it to a sink, spans ending in order."""
    ended = sorted(
        (s for s in spans if s.ended_at is not None),
        key=lambda s: (s.ended_at or _LATEST, s.seq),
    )
    return Batch(
        spans=list(spans),
        runs=[run],
        ended_traces=[run.trace_id] if run.trace_ended else [],
        ended_spans=ended,
    )


def select_trace_ids(
    store: Any, *, since: datetime | None = None, trace_ids: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """The trace ids to replay (oldest first) and the requested ones not found."""
    from turnscope.store.queries import RunFilter

    if trace_ids:
        found: list[str] = []
        missing: list[str] = []
        for given in trace_ids:
            if store.get_run(given) is not None:
                found.append(given)
                continue
            matches = store.find_trace_ids(given, limit=2) if len(given) >= 4 else []
            if len(matches) == 1:
                found.append(matches[0])
            else:
                missing.append(given)
        return list(dict.fromkeys(found)), missing
    flt = RunFilter(since=since)
    out: list[str] = []
    offset = 0
    while True:
        page = store.list_runs(flt, limit=PAGE, offset=offset)
        out.extend(r["trace_id"] for r in page)
        if len(page) < PAGE:
            break
        offset += PAGE
    out.reverse()  # oldest first, as they happened
    return out, []


def backfill(
    db: Any,
    settings: OtlpSettings,
    *,
    since: datetime | None = None,
    trace_ids: list[str] | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
    exporter: Any = None,
) -> BackfillResult:
    """Replay stored runs to ``settings.endpoint``; waits up to ``timeout`` s at the end."""
    from turnscope.store.queries import Store

    store = Store(db)
    result = BackfillResult(endpoint=settings.label, protocol=settings.protocol)
    sink = OtlpSink(settings, exporter)
    try:
        selected, result.missing = select_trace_ids(store, since=since, trace_ids=trace_ids)
        sink.open()
        total = len(selected)
        for index, trace_id in enumerate(selected, 1):
            analysis = store.analysis(trace_id)
            if analysis is None:
                result.missing.append(trace_id)
            elif analysis.run.status == RUNNING:
                result.skipped_running.append(trace_id)
            else:
                spans = analysis.structure.spans
                # backpressure instead of drops: a replay can outrun any backend
                sink.wait_for_room(len(spans) + 1, timeout)
                sink.write(replay_batch(analysis.run, spans))
                result.runs += 1
                result.trace_ids.append(trace_id)
            result.spans = sink.counters.emitted
            if progress is not None:
                progress(index, total, result.spans)
    finally:
        store.close()
        sink.close(timeout)
    result.spans = sink.counters.emitted
    result.stats = sink.stats()
    return result


class ProgressBar:
    """A one-line progress bar on a terminal; occasional plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_step = -1
        self._last_draw = 0.0

    def __call__(self, done: int, total: int, spans: int) -> None:
        """Show progress after ``done`` of ``total`` runs."""
        fraction = done / total if total else 1.0
        if self.tty:
            now = time.monotonic()
            if done < total and now - self._last_draw < 0.05:
                return
            self._last_draw = now
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r  [{bar}] {done}/{total} runs · {spans} spans{end}")
        else:
            step = int(fraction * 10)
            if step == self._last_step and done < total:
                return
            self._last_step = step
            self.stream.write(f"  {done}/{total} runs · {spans} spans\n")
        self.stream.flush()


def render_summary(result: BackfillResult, jaeger_url: str | None = None) -> str:
    """What the export did, in a few lines."""
    lines = [
        f"Exported {result.runs} run(s) ({result.spans} spans) to {result.endpoint} "
        f"({result.protocol})."
    ]
    stats = result.stats
    if result.failed:
        lines.append(
            f"  {result.failed} span(s) did not reach the backend "
            f"(export errors {stats.get('export_failed', 0)}, dropped {stats.get('dropped', 0)}, "
            f"unsent {stats.get('unsent', 0)}; last error: {stats.get('last_error') or '-'}). "
            "Run the command again when the backend is up: the same spans are sent again."
        )
    else:
        lines.append(f"  the backend accepted all {stats.get('exported', 0)} span(s).")
    if result.skipped_running:
        lines.append(
            f"  {len(result.skipped_running)} run(s) still running were skipped "
            "(export them when they end)."
        )
    if result.missing:
        lines.append(f"  not found: {', '.join(result.missing)}")
    if result.trace_ids:
        base = jaeger_url.rstrip("/") if jaeger_url else "http://localhost:16686"
        last = result.trace_ids[-1]
        lines.append(f"  e.g. {last}: {base}/trace/{otel_trace_id_hex(last)}")
    return "\n".join(lines)
