"""Cost on the agent's thread: time spent inside tracing-processor callbacks, per span.

Same real-Runner workload (a fake model, tool calls, handoffs) for every variant:

- ``noop``        a processor whose callbacks do nothing (the floor)
- ``sdk_batch``   the SDK's own BatchTraceProcessor with a discarding exporter
- ``openinference`` OpenInference's processor -> OTel BatchSpanProcessor -> discarding exporter
                  (skipped unless openinference-instrumentation-openai-agents is installed)
- ``turnscope``   TurnscopeProcessor writing to SQLite
- ``turnscope_otlp`` the same, plus OTLP/gRPC export to a local receiver (the test suite's,
                  which decodes every request like a backend)

Variants are interleaved round by round and medians reported, because this machine is noisy.
Each callback is timed with ``perf_counter_ns`` by a thin wrapper, the same for all variants.
Run: ``.venv/bin/python benchmarks/hot_path.py [--rounds 15] [--runs 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agents import Agent, Runner, function_tool, set_trace_processors
from agents.tracing import TracingProcessor

from turnscope.demo.model import DemoModel, call, text


class Timed(TracingProcessor):
    """Wraps a processor and adds up the time its callbacks take on the caller's thread."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.ns = 0
        self.spans = 0

    def on_trace_start(self, trace: Any) -> None:
        t = time.perf_counter_ns()
        self.inner.on_trace_start(trace)
        self.ns += time.perf_counter_ns() - t

    def on_trace_end(self, trace: Any) -> None:
        t = time.perf_counter_ns()
        self.inner.on_trace_end(trace)
        self.ns += time.perf_counter_ns() - t

    def on_span_start(self, span: Any) -> None:
        t = time.perf_counter_ns()
        self.inner.on_span_start(span)
        self.ns += time.perf_counter_ns() - t

    def on_span_end(self, span: Any) -> None:
        t = time.perf_counter_ns()
        self.inner.on_span_end(span)
        self.ns += time.perf_counter_ns() - t
        self.spans += 1

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self) -> None:
        self.inner.force_flush()


class Noop(TracingProcessor):
    """Does nothing."""

    def on_trace_start(self, trace: Any) -> None: ...
    def on_trace_end(self, trace: Any) -> None: ...
    def on_span_start(self, span: Any) -> None: ...
    def on_span_end(self, span: Any) -> None: ...
    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


def sdk_batch() -> Any:
    """The SDK's default processor, exporting nowhere."""
    from agents.tracing.processors import BatchTraceProcessor, TracingExporter

    class Discard(TracingExporter):
        def export(self, items: list[Any]) -> None:
            for item in items:
                item.export()  # what the real exporter does with each item

    return BatchTraceProcessor(Discard())


def openinference() -> Any | None:
    """OpenInference's processor with an OTel BatchSpanProcessor and a discarding exporter."""
    try:
        from openinference.instrumentation import OITracer, TraceConfig
        from openinference.instrumentation.openai_agents._processor import (
            OpenInferenceTracingProcessor,
        )
    except ImportError:
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracer = OITracer(provider.get_tracer("bench"), config=TraceConfig())
    return OpenInferenceTracingProcessor(tracer)


def turnscope(db: Path, otlp: str | None = None) -> Any:
    """TurnscopeProcessor on SQLite (optionally also exporting over OTLP to ``otlp``)."""
    from turnscope.exporter.processor import TurnscopeProcessor

    options: dict[str, Any] = {}
    if otlp:
        options["otlp_endpoint"] = otlp
    return TurnscopeProcessor(str(db), **options)


def otlp_receiver() -> Any | None:
    """The test suite's OTLP/gRPC receiver on 127.0.0.1 (decodes what it gets, like a real
    backend), or None when opentelemetry-proto/grpcio are missing."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    try:
        from support.otlp_receiver import GrpcReceiver
    except ImportError:
        return None
    return GrpcReceiver().start()


@function_tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"result for {q}"


def workload(runs: int) -> None:
    """``runs`` agent runs: triage -> handoff -> 3 turns with 2 parallel tool calls each."""

    async def main() -> None:
        for i in range(runs):
            worker = Agent(
                name="Worker",
                tools=[lookup],
                model=DemoModel(
                    [
                        [call("lookup", {"q": f"a{i}"}), call("lookup", {"q": f"b{i}"})],
                        [call("lookup", {"q": f"c{i}"}), call("lookup", {"q": f"d{i}"})],
                        [text("done")],
                    ]
                ),
            )
            triage = Agent(
                name="Triage", handoffs=[worker], model=DemoModel([[call("transfer_to_worker")]])
            )
            await Runner.run(triage, f"task {i}")

    asyncio.run(main())


def main() -> None:
    """Interleave the variants, print per-span callback cost and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=40, help="agent runs per measurement")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="turnscope-bench-"))
    factories: dict[str, Any] = {
        "noop": Noop,
        "sdk_batch": sdk_batch,
        "turnscope": lambda: turnscope(tmp / f"hot-{time.monotonic_ns()}.db"),
    }
    if openinference() is not None:
        factories["openinference"] = openinference
    receiver = otlp_receiver()
    if receiver is not None:
        factories["turnscope_otlp"] = lambda: turnscope(
            tmp / f"hot-{time.monotonic_ns()}.db", otlp=receiver.endpoint
        )

    per_span: dict[str, list[float]] = {name: [] for name in factories}
    wall: dict[str, list[float]] = {name: [] for name in factories}
    workload(3)  # warm up imports and caches
    for _ in range(args.rounds):
        for name, factory in factories.items():
            timed = Timed(factory())
            set_trace_processors([timed])
            started = time.perf_counter()
            workload(args.runs)
            wall[name].append((time.perf_counter() - started) / args.runs * 1e3)
            set_trace_processors([])
            per_span[name].append(timed.ns / max(timed.spans, 1))
            try:
                timed.inner.shutdown()
            except Exception:
                pass

    if receiver is not None:
        receiver.stop()
    base = statistics.median(per_span["sdk_batch"])
    floor = statistics.median(per_span["noop"])
    base_wall = statistics.median(wall["noop"])
    print(
        f"machine: {platform.processor() or platform.machine()}, {_cpus()} CPUs, "
        f"Python {platform.python_version()}, openai-agents {_sdk()}"
    )
    print(f"{args.rounds} rounds x {args.runs} runs per variant, interleaved; medians\n")
    print(
        f"{'variant':<16}{'ns/span (callbacks)':>22}{'vs sdk_batch':>14}{'ms/run':>10}"
        f"{'vs noop':>10}"
    )
    for name in factories:
        ns = statistics.median(per_span[name])
        ms = statistics.median(wall[name])
        print(f"{name:<16}{ns:>22,.0f}{ns / base:>13.2f}x{ms:>10.2f}{ms / base_wall:>9.2f}x")
    print(f"\ncallback floor (timing wrapper + SDK dispatch): {floor:,.0f} ns/span")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def _sdk() -> str:
    from importlib.metadata import version

    return version("openai-agents")


if __name__ == "__main__":
    main()
