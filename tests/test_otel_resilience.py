"""The agent never suffers from the OTLP backend: down at first and coming back, hung, or
slower than the agent; memory stays bounded, losses are counted in ``stats()``, the database
is still written, and spans are flushed at interpreter exit whatever the ``atexit`` order.

No timed assertions: a hang is caught by pytest-timeout, speed belongs to the benchmarks.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from support.net import free_port
from support.otlp_receiver import PROTOCOLS, Blackhole, check_traces, receiver_for, root_of
from support.tools import lookup_tool

from turnscope.demo.model import DemoModel, call, text
from turnscope.exporter.processor import TurnscopeProcessor
from turnscope.ids import otel_trace_id_hex
from turnscope.store.queries import Store

lookup = lookup_tool("result for {q}")


def busy_agent(name: str, calls: int = 4) -> Agent:
    """An agent that makes ``calls`` tool calls, then answers (a dozen spans or more)."""
    steps: list[Any] = [[call("lookup", {"q": f"{name} {i}"})] for i in range(calls)]
    return Agent(name=name, tools=[lookup], model=DemoModel([*steps, [text("done")]]))


def tid(n: int) -> str:
    """A well-formed SDK trace id."""
    return f"trace_{0xD0000 + n:032x}"


@pytest.fixture
def start(make_recorder: Any) -> Iterator[Callable[..., TurnscopeProcessor]]:
    """``start(db, **options)``: a processor that is the only one the SDK calls, unregistered
    and shut down when the test ends."""
    with ExitStack() as stack:
        yield lambda db, **options: stack.enter_context(make_recorder(db, **options))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_backend_down_at_first_then_back(protocol: str, db_url: str, start: Any) -> None:
    port = free_port()
    processor = start(
        db_url,
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_protocol=protocol,
        otlp_timeout=3,
    )
    before = Runner.run_sync(busy_agent("Early"), "go", run_config=RunConfig(trace_id=tid(1)))
    assert before.final_output == "done"  # the run does not notice
    assert processor.flush(30)
    down = processor.stats()["sinks"]["otlp"]
    assert down["exported"] == 0 and down["export_failed"] == down["emitted"] > 0
    assert down["failed"] == down["export_failed"]
    with receiver_for(protocol, port) as receiver:
        after = Runner.run_sync(busy_agent("Late"), "go", run_config=RunConfig(trace_id=tid(2)))
        assert after.final_output == "done"
        assert processor.flush(30)
        spans = [s for s in receiver.snapshot() if s.trace_id == otel_trace_id_hex(tid(2))]
        check_traces(receiver.snapshot())
        assert root_of(spans).attrs["turnscope.status"] == "succeeded"
        up = processor.stats()["sinks"]["otlp"]
        assert up["exported"] == len(spans) and up["last_error"] is None
    store = Store(db_url)
    assert {r["trace_id"] for r in store.list_runs()} == {tid(1), tid(2)}  # both written


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_flapping_backend_is_logged_once_and_every_run_is_written(
    protocol: str,
    db_url: str,
    start: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    processor = start(
        db_url,
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_protocol=protocol,
        otlp_timeout=3,
    )
    exported: set[str] = set()
    with caplog.at_level(logging.WARNING, logger="turnscope"):
        for n in range(4):  # down, up, down, up
            if n % 2 == 0:
                result = Runner.run_sync(
                    busy_agent("Flap"), "go", run_config=RunConfig(trace_id=tid(10 + n))
                )
                assert result.final_output == "done"
                assert processor.flush(30)
                continue
            with receiver_for(protocol, port) as receiver:
                result = Runner.run_sync(
                    busy_agent("Flap"), "go", run_config=RunConfig(trace_id=tid(10 + n))
                )
                assert result.final_output == "done"
                assert processor.flush(30)
                exported |= {s.trace_id for s in receiver.snapshot()}
    assert exported == {otel_trace_id_hex(tid(11)), otel_trace_id_hex(tid(13))}
    messages = [r.getMessage() for r in caplog.records]
    # two outages within a minute: announced once, and its end once; never a flood
    assert sum("cannot export" in m for m in messages) == 1, messages
    assert sum("works again" in m for m in messages) == 1, messages
    otlp = processor.stats()["sinks"]["otlp"]
    assert otlp["export_failed"] > 0 and otlp["exported"] > 0
    assert {r["trace_id"] for r in Store(db_url).list_runs()} == {tid(10 + n) for n in range(4)}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hung_backend_never_holds_the_run_or_shutdown(
    protocol: str, db_url: str, start: Any
) -> None:
    hole = Blackhole()
    try:
        processor = start(
            db_url,
            otlp_endpoint=hole.endpoint,
            otlp_protocol=protocol,
            otlp_timeout=60,  # the exporter would wait a minute per batch
        )
        result = Runner.run_sync(busy_agent("Patient"), "go", run_config=RunConfig(trace_id=tid(3)))
        assert result.final_output == "done"
        assert not processor.flush(1)  # the backend never answers: the flush says so
        processor.shutdown(2)  # bounded: gives up on the hung backend
        stats = processor.stats()
        otlp = stats["sinks"]["otlp"]
        assert otlp["exported"] == 0 and otlp["failed"] == otlp["emitted"] > 0
        assert stats["failed"] >= otlp["failed"]
        run = Store(db_url).get_run(tid(3))
        assert run is not None and run["status"] == "succeeded"
    finally:
        hole.close()


def test_memory_is_bounded_and_drops_are_counted(
    monkeypatch: pytest.MonkeyPatch, db_url: str, start: Any
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
    hole = Blackhole()  # the first batch never comes back, so the queue stays full
    try:
        processor = start(db_url, otlp_endpoint=hole.endpoint, otlp_timeout=60)
        result = Runner.run_sync(
            busy_agent("Chatty", 6), "go", run_config=RunConfig(trace_id=tid(4))
        )
        assert result.final_output == "done"
        processor.flush(1)  # the database part; the backend never answers
        otlp = processor.stats()["sinks"]["otlp"]
        assert otlp["emitted"] == 8 and otlp["queued"] == 8  # never more than the bound
        assert otlp["dropped"] > 0 and otlp["failed"] == otlp["dropped"]
        run = Store(db_url).get_run(tid(4))
        assert run is not None and run["status"] == "succeeded" and run["tool_calls"] == 6
        processor.shutdown(2)
        stats = processor.stats()
        otlp = stats["sinks"]["otlp"]
        assert otlp["exported"] == 0 and otlp["failed"] == otlp["emitted"] + otlp["dropped"]
        assert stats["failed"] >= otlp["failed"]
    finally:
        hole.close()


EXITING = textwrap.dedent(
    """
    import sys

    from agents import Agent, RunConfig, Runner
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    import turnscope
    from turnscope.demo.model import DemoModel, text

    db, endpoint, protocol, trace_id = sys.argv[1:5]
    turnscope.instrument(
        db, replace_default=True, otlp_endpoint=endpoint, otlp_protocol=protocol
    )
    # the application's own global provider, created later: its atexit hook runs first
    trace.set_tracer_provider(TracerProvider())
    agent = Agent(name="Exiting", model=DemoModel([[text("bye")]]))
    Runner.run_sync(agent, "hi", run_config=RunConfig(trace_id=trace_id))
    # no flush, no shutdown: the interpreter exits
    """
)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_are_flushed_at_interpreter_exit(protocol: str, tmp_path: Path) -> None:
    with receiver_for(protocol) as receiver:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                EXITING,
                str(tmp_path / "exit.db"),
                receiver.endpoint,
                protocol,
                tid(5),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        spans = receiver.snapshot()
    check_traces(spans)
    names = sorted(s.name for s in spans)
    assert "invoke_workflow Agent workflow" in names and "invoke_agent Exiting" in names
    assert {s.trace_id for s in spans} == {otel_trace_id_hex(tid(5))}
