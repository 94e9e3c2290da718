"""The OTLP sink: turnscope's batches as OTel spans, queued for export on their own thread.

``OtlpSink`` runs on the pipeline's worker thread. It turns each ``Batch`` into OTel
``ReadableSpan``s (``SpanMapper``) and hands them to a ``BatchSpanProcessor`` of a private
``TracerProvider`` (never the global one): the network is only ever touched by the
processor's export thread. No OpenTelemetry context is attached or detached anywhere, so
nothing can leak into the application's own traces.

* **Bounded**: at most ``max_queue_size`` spans (``OTEL_BSP_MAX_QUEUE_SIZE``, default 2048)
  and 32 MiB wait for the backend; beyond that new spans are dropped and counted. Export
  batches are sized so a request stays under the 4 MiB a gRPC receiver accepts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from turnscope.config import OtlpSettings
from turnscope.otlp.mapper import SpanMapper
from turnscope.sinks import Batch, Sink

log = logging.getLogger("turnscope")

DEFAULT_SERVICE_NAME = "openai-agents"
MAX_REQUEST_BYTES = 3 * 1024 * 1024 + 512 * 1024  # under the 4 MiB gRPC receivers accept
DEFAULT_QUEUE_SIZE = 2048
DEFAULT_QUEUE_BYTES = 32 * 1024 * 1024
DEFAULT_SCHEDULE_DELAY_MS = 1000
DEFAULT_CLOSE_TIMEOUT = 10.0


def make_resource(service_name: str | None) -> Any:
    """The OTel resource: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, then ``service_name``
    (the argument wins), else ``openai-agents`` instead of ``unknown_service``."""
    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, Any] = {}
    if service_name:
        attributes["service.name"] = service_name
    resource = Resource.create(attributes)
    current = str(resource.attributes.get("service.name", ""))
    if current.startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    return resource


def make_exporter(settings: OtlpSettings) -> Any:
    """The OTLP span exporter for ``settings.protocol`` (gRPC or HTTP/protobuf)."""
    if settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=settings.endpoint,
            headers=dict(settings.headers) or None,
            timeout=settings.timeout,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(
        endpoint=settings.endpoint,
        headers=dict(settings.headers) or None,
        timeout=settings.timeout,
    )


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


class _Counters:
    """Export counters shared by the worker (emit) and the export thread (results)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.emitted = 0
        self.exported = 0
        self.export_failed = 0
        self.dropped = 0
        self.in_flight = 0
        self.in_flight_bytes = 0
        self.error: str | None = None
        self.failing_since_warning = 0
        self.last_warning = -1e9
        self.warned = False  # this outage was announced: announce its end too


class CountingExporter:
    """Wraps the real exporter to count what reached the backend and what did not, and to
    warn (at most once a minute) while the backend is unreachable."""

    def __init__(self, inner: Any, counters: _Counters, label: str) -> None:
        self.inner = inner
        self.counters = counters
        self.label = label
        self._shut = False

    def export(self, spans: Sequence[Any]) -> Any:
        """Send one batch through the real exporter and count the outcome."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            result = self.inner.export(spans)
            error = None if result == SpanExportResult.SUCCESS else "export failed"
        except Exception as exc:  # an exporter bug must not kill the export thread
            result, error = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        size = sum(getattr(s, "_turnscope_size", 0) for s in spans)
        c = self.counters
        warn = recovered = False
        with c.lock:
            c.in_flight -= len(spans)
            c.in_flight_bytes -= size
            if error is None:
                c.exported += len(spans)
                # only an outage that was announced gets a "works again" line: a flapping
                # backend costs at most two lines a minute, not two per flap
                recovered = c.error is not None and c.warned
                c.error = None
                c.warned = c.warned and not recovered
            else:
                c.export_failed += len(spans)
                c.error = error
                now = time.monotonic()
                if now - c.last_warning > 60:
                    c.last_warning, warn, c.warned = now, True, True
        if warn:
            log.warning(
                "turnscope: cannot export spans to %s (%d failed so far); retrying with the "
                "next batches — agent runs are not affected",
                self.label,
                c.export_failed,
            )
        elif recovered:
            log.warning("turnscope: exporting spans to %s works again", self.label)
        return result

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Shut the real exporter down once (aborts its retries)."""
        if self._shut:
            return
        self._shut = True
        try:
            self.inner.shutdown()
        except Exception:
            log.debug("turnscope: OTLP exporter shutdown failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here."""
        return True


def _run_bounded(target: Any, timeout: float, name: str) -> bool:
    """Run ``target`` on a daemon thread and wait at most ``timeout`` seconds for it."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    return not thread.is_alive()


class OtlpSink(Sink):
    """Pipeline sink that exports runs as OpenTelemetry spans over OTLP (see module doc)."""

    name = "otlp"

    def __init__(
        self,
        settings: OtlpSettings,
        exporter: Any = None,
        *,
        max_queue_size: int | None = None,
        max_queue_bytes: int = DEFAULT_QUEUE_BYTES,
        schedule_delay_millis: int | None = None,
    ) -> None:
        self.settings = settings
        self.label = f"OTLP {settings.protocol} {settings.label}"
        self._exporter_override = exporter
        self.max_queue_size = max_queue_size or _env_int(
            "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_QUEUE_SIZE
        )
        self.max_queue_bytes = max_queue_bytes
        self.schedule_delay = schedule_delay_millis or _env_int(
            "OTEL_BSP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS
        )
        # a request holds at most this many spans, so that it stays under 4 MiB
        by_size = max(1, MAX_REQUEST_BYTES // settings.max_span_bytes)
        self.batch_size = min(_env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), by_size)
        self.batch_size = min(self.batch_size, self.max_queue_size)
        self.counters = _Counters()
        self.mapper: SpanMapper | None = None
        self._provider: Any = None
        self._processor: Any = None
        self._exporter: CountingExporter | None = None
        self._closed = False
        try:
            # now, on the caller's thread: a first write may come during interpreter exit,
            # when no thread or executor can be started any more (resource detection uses one)
            self.open()
        except Exception as exc:  # the pipeline opens it again later, with backoff
            log.warning("turnscope: OTLP export to %s not ready yet: %s", self.label, exc)

    def open(self) -> None:
        """Create the private provider, its batch processor and the exporter."""
        if self._processor is not None:
            return
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = make_resource(self.settings.service_name)
        inner = self._exporter_override or make_exporter(self.settings)
        exporter = CountingExporter(inner, self.counters, self.label)
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=self.max_queue_size,
            schedule_delay_millis=self.schedule_delay,
            max_export_batch_size=self.batch_size,
        )
        # private provider: never registered globally, never shut down by OTel's own atexit
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(processor)
        self.mapper = SpanMapper(self.settings, resource)
        self._exporter, self._processor, self._provider = exporter, processor, provider

    def write(self, batch: Batch) -> None:
        """Convert the batch and queue its spans for export (never blocks on the network)."""
        if self.mapper is None:
            self.open()
        assert self.mapper is not None
        self.emit(self.mapper.consume(batch))

    def emit(self, spans: Iterable[Any]) -> None:
        """Queue OTel spans; beyond the queue bounds they are dropped and counted."""
        processor = self._processor
        c = self.counters
        for span in spans:
            size = getattr(span, "_turnscope_size", 0)
            with c.lock:
                full = (
                    c.in_flight >= self.max_queue_size
                    or c.in_flight_bytes + size > self.max_queue_bytes
                    or processor is None
                    or self._closed
                )
                if full:
                    c.dropped += 1
                    continue
                c.in_flight += 1
                c.in_flight_bytes += size
                c.emitted += 1
            processor.on_end(span)

    def wait_for_room(self, count: int, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until ``count`` more spans fit in the export queue:
        backpressure for replays, which produce spans faster than any backend takes them."""
        need = min(max(count, 1), self.max_queue_size)
        deadline = time.monotonic() + timeout
        while True:
            c = self.counters
            with c.lock:
                room = (
                    c.in_flight + need <= self.max_queue_size
                    and c.in_flight_bytes <= self.max_queue_bytes // 2
                )
            if room or time.monotonic() >= deadline:
                return room
            time.sleep(0.02)

    def heartbeat(self) -> None:
        """Nothing to do: the batch processor exports on its own schedule."""

    def force_flush(self, timeout: float | None = None) -> bool:
        """Export what is queued, waiting at most ``timeout`` seconds (default 10)."""
        processor = self._processor
        if processor is None or self._closed:
            return True
        return _run_bounded(
            processor.force_flush,
            DEFAULT_CLOSE_TIMEOUT if timeout is None else timeout,
            "turnscope-otlp-flush",
        )

    def close(self, timeout: float | None = None) -> None:
        """Send the roots of unfinished runs and open spans, flush, shut down (bounded)."""
        if self._closed:
            return
        if self.mapper is not None:
            try:
                self.emit(self.mapper.finish())
            except Exception:
                log.debug("turnscope: could not finish open spans", exc_info=True)
        self._closed = True
        provider = self._provider
        if provider is None:
            return
        budget = DEFAULT_CLOSE_TIMEOUT if timeout is None else max(timeout, 0.0)
        done = _run_bounded(provider.shutdown, budget, "turnscope-otlp-shutdown")
        if not done:
            # abort the exporter's retries so the export thread gives up
            if self._exporter is not None:
                self._exporter.shutdown()
            log.warning(
                "turnscope: could not finish exporting to %s within %.1f s; unsent spans are "
                "counted as failed in stats()",
                self.label,
                budget,
            )

    def stats(self) -> dict[str, Any]:
        """Export counters: emitted, exported, failed (export_failed + dropped + unsent)."""
        c = self.counters
        with c.lock:
            unsent = c.in_flight if self._closed else 0
            return {
                "endpoint": self.settings.label,
                "protocol": self.settings.protocol,
                "emitted": c.emitted,
                "exported": c.exported,
                "export_failed": c.export_failed,
                "dropped": c.dropped,
                "queued": 0 if self._closed else c.in_flight,
                "unsent": unsent,
                "failed": c.export_failed + c.dropped + unsent,
                "conversion_errors": self.mapper.errors if self.mapper else 0,
                "last_error": c.error,
            }
