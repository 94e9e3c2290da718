"""The agent must never suffer: callbacks never raise, never block on I/O, never lose count.

These run on openai-agents 0.0.17 too, where an exception raised by a processor callback
propagates into the user's run and fails it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, custom_span, function_tool
from support.tools import lookup_tool

from turnscope.demo.model import DemoModel, call, text
from turnscope.exporter.processor import TurnscopeProcessor
from turnscope.store.queries import Store


def simple_agent(name: str = "A") -> Agent[Any]:
    """An agent that calls one tool, then answers."""
    return Agent(
        name=name,
        tools=[lookup_tool("found")],
        model=DemoModel([[call("lookup", {"q": "x"})], [text("answer")]]),
    )


@pytest.fixture
def make_processor(make_recorder: Any) -> Any:
    """Build processors registered as the only SDK processor; shut them down afterwards."""
    with ExitStack() as stack:
        yield lambda db, **kwargs: stack.enter_context(
            make_recorder(db, shutdown_timeout=5, **kwargs)
        )


def test_unwritable_database_never_breaks_the_run(
    tmp_path: Path, make_processor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    processor = make_processor(str(blocker / "sub" / "turnscope.db"))
    with caplog.at_level(logging.WARNING, logger="turnscope"):
        for _ in range(5):
            result = Runner.run_sync(simple_agent(), "hi")
            assert result.final_output == "answer"
            processor.flush(10)
    stats = processor.stats()
    assert stats["written"] == 0
    assert stats["sinks"]["db"]["error"]
    assert stats["sinks"]["db"]["pending"] > 0  # kept for a retry, bounded
    warnings = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(warnings) == 1, "the failure is logged once, not as a flood"


def test_locked_database_does_not_block_the_agent_and_catches_up(
    db_path: Path, make_processor: Any
) -> None:
    processor = make_processor(str(db_path))
    Runner.run_sync(simple_agent(), "warm up")  # creates the schema
    assert processor.flush(10)
    holder = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        done = threading.Event()

        def run() -> None:
            asyncio.run(Runner.run(simple_agent(), "while locked"))
            done.set()

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(60)  # deadlock guard only; the run does not wait for the database
        assert done.is_set()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert processor.flush(60)
    assert Store(str(db_path)).count_runs() == 2


class Unprintable:
    """An object whose repr and str raise."""

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")

    __str__ = __repr__


def hostile_payload() -> dict[str, Any]:
    """Every kind of bad data a span can carry."""
    cyclic: dict[str, Any] = {"name": "cycle"}
    cyclic["self"] = cyclic
    deep: list[Any] = []
    node = deep
    for _ in range(500):
        child: list[Any] = []
        node.append(child)
        node = child
    return {
        "huge": "x" * 10_000_000,
        "bytes": b"\x00\xff" * 1000,
        "nan": math.nan,
        "inf": -math.inf,
        "surrogate": "bad \ud800 text",
        "cycle": cyclic,
        "deep": deep,
        "unprintable": Unprintable(),
        Unprintable(): "key that cannot print",
        "big_int": 2**200,
    }


def test_hostile_span_data_is_stored_described_and_the_run_succeeds(
    db_url: str, make_processor: Any
) -> None:
    processor = make_processor(db_url, max_field_bytes=4096)

    @function_tool
    def risky(q: str) -> str:
        """A tool that records a hostile custom span."""
        with custom_span("hostile", data=hostile_payload()):
            pass
        return "ok"

    agent = Agent(
        name="H", tools=[risky], model=DemoModel([[call("risky", {"q": "x"})], [text("done")]])
    )
    config = RunConfig(trace_metadata={"bad": "\udfff", "obj": "fine"})
    assert Runner.run_sync(agent, "go", run_config=config).final_output == "done"
    assert processor.flush(30)
    store = Store(db_url)
    run = store.list_runs()[0]
    assert run["status"] == "succeeded"
    assert run["truncated"] is True
    hostile = next(s for s in store.spans(run["trace_id"]) if s.name == "hostile")
    data = hostile.data["data"]
    assert data["huge"].endswith("bytes]") and "10000000" in data["huge"]
    assert len(data["huge"]) < 10_000
    assert data["bytes"]["_turnscope"] == "bytes" and data["bytes"]["size"] == 2000
    assert data["nan"] == {"_turnscope": "non_finite_float", "value": "nan"}
    assert "\\ud800" in data["surrogate"]
    assert data["cycle"]["self"]["_turnscope"] == "cycle"
    assert data["unprintable"]["_turnscope"] == "unrepresentable"
    assert hostile.truncated
    assert hostile.data["_turnscope"]["truncated"]["data"] >= 10_000_000  # original size kept
    assert processor.stats()["worker_errors"] == 0


def test_callbacks_never_raise_whatever_they_are_given(db_url: str) -> None:
    processor = TurnscopeProcessor(db_url, flush_interval=0.05)
    try:

        class Exploding:
            def __getattr__(self, name: str) -> Any:
                raise RuntimeError(f"no {name} for you")

        for thing in (None, object(), Exploding(), 42, "span", Unprintable()):
            processor.on_trace_start(thing)
            processor.on_span_start(thing)
            processor.on_span_end(thing)
            processor.on_trace_end(thing)
        assert processor.flush(10)
        assert processor.stats()["received"] == 24
    finally:
        processor.shutdown(5)


def test_a_broken_buffer_does_not_fail_the_run_on_any_sdk(db_url: str, make_processor: Any) -> None:
    processor = make_processor(db_url)

    class BrokenBuffer:
        def __len__(self) -> int:
            raise MemoryError("simulated")

    processor._buffer = BrokenBuffer()
    # on openai-agents 0.0.17 an exception here would propagate into Runner.run
    assert Runner.run_sync(simple_agent(), "hi").final_output == "answer"


def test_a_full_buffer_drops_and_counts_and_marks_the_run(
    db_url: str, make_processor: Any, caplog: pytest.LogCaptureFixture
) -> None:
    processor = make_processor(db_url, max_queue_size=3)
    processor._pipeline.flush_interval = 3600  # the worker sleeps: the buffer fills up
    processor._wake_at = 10**9
    with caplog.at_level(logging.WARNING, logger="turnscope"):
        assert Runner.run_sync(simple_agent(), "hi").final_output == "answer"
        stats = processor.stats()
        assert stats["dropped"] > 0
        assert stats["received"] == stats["dropped"] + stats["queued"] + stats["processed"]
        assert processor.flush(10)
    run = Store(db_url).list_runs()[0]
    assert run["dropped_spans"] > 0  # the run says its record is incomplete
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_shutdown_is_bounded_and_idempotent(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    processor = TurnscopeProcessor(str(blocker / "x.db"), flush_interval=0.05)
    processor.shutdown(timeout=2)
    processor.shutdown(timeout=2)
    processor.on_span_end(object())  # after shutdown: counted, not queued
    assert processor.stats()["dropped"] == 1
