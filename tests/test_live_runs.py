"""Runs as they happen: live status, late spans, concurrency, content capture, process death."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool, trace
from support.tools import lookup_tool

import turnscope
from turnscope.demo.model import DemoModel, call, delay, text
from turnscope.exporter.processor import TurnscopeProcessor
from turnscope.store.queries import Store


def test_a_running_run_is_visible_while_it_runs(recorder: Any, db_url: str) -> None:
    seen: dict[str, Any] = {}

    @function_tool
    def slow_report(month: str) -> str:
        """A tool that looks at the database while it runs."""
        assert recorder.flush(10)
        store = Store(db_url)
        seen["run"] = store.list_runs()[0]
        seen["spans"] = store.spans(seen["run"]["trace_id"])
        return "report ready"

    agent = Agent(
        name="Reporter",
        tools=[slow_report],
        model=DemoModel([[call("slow_report", {"month": "2026-10"})], [text("Done.")]]),
    )
    Runner.run_sync(agent, "Make the report")
    run = seen["run"]
    assert run["status"] == "running"
    assert (run["failing_agent"], run["failing_turn"], run["failing_tool"]) == (
        "Reporter",
        1,
        "slow_report",
    )
    assert "is in turn 1 (calling tool 'slow_report')" in run["explanation"]
    tool = next(s for s in seen["spans"] if s.kind == "function")
    assert tool.status == "running" and tool.ended_at is None
    assert recorder.flush(10)
    after = Store(db_url).get_run(run["trace_id"])
    assert after is not None and after["status"] == "succeeded"


def test_spans_after_the_trace_ended_are_kept(recorder: Any, db_url: str) -> None:
    agent = Agent(
        name="Streamer",
        tools=[],
        model=DemoModel([[text("streamed answer")]]),
    )

    async def main() -> Any:
        # the trace block ends before the stream is consumed (docs/design/sdk-tracing.md §5.6)
        with trace("Early exit", trace_id="trace_" + "ab" * 16):
            result = Runner.run_streamed(agent, "hi")
        async for _ in result.stream_events():
            pass
        return result.final_output

    assert asyncio.run(main()) == "streamed answer"
    assert recorder.flush(10)
    store = Store(db_url)
    run = store.get_run("trace_" + "ab" * 16)
    assert run is not None
    assert run["workflow"] == "Early exit"
    assert run["status"] == "succeeded"
    assert run["turns"] == 1 and run["model_calls"] == 1
    kinds = {s.kind for s in store.spans(run["trace_id"])}
    assert {"agent", "generation"} <= kinds


def test_fifty_concurrent_runs_each_get_their_own_verdict(recorder: Any, db_url: str) -> None:
    lookup = lookup_tool("found", pause=0.001)  # yields to the other runs

    def agent(kind: int) -> Agent[Any]:
        if kind == 0:
            steps: list[Any] = [[call("lookup", {"q": "a"})], [text("answer")]]
        elif kind == 1:
            steps = [[call("lookup", {"q": "again"})] for _ in range(5)]
        else:
            steps = [[call("missing_tool", {})]]
        return Agent(name=f"Agent{kind}", tools=[lookup], model=DemoModel(steps))

    async def one(i: int) -> str:
        config = RunConfig(workflow_name=f"concurrent-{i}", trace_id=f"trace_{i:032x}")
        try:
            await Runner.run(agent(i % 3), f"task {i}", max_turns=3, run_config=config)
            return "ok"
        except Exception as exc:
            return type(exc).__name__

    async def main() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(50)))

    outcomes = asyncio.run(main())
    assert outcomes.count("ok") == 17
    assert recorder.flush(30)
    store = Store(db_url)
    assert store.count_runs() == 50
    expected = {0: (None, 2), 1: ("max_turns_exceeded", 3), 2: ("tool_not_found", 1)}
    for i in range(50):
        run = store.get_run(f"trace_{i:032x}")
        assert run is not None, i
        category, turns = expected[i % 3]
        assert run["category"] == category, (i, run)
        assert run["turns"] == turns, (i, run)
        assert run["workflow"] == f"concurrent-{i}"
        assert run["agents"] == [f"Agent{i % 3}"]


SECRETS = ("PROMPT-SECRET-7f3a", "ARG-SECRET-91bd", "TOOLOUT-SECRET-c0de", "ANSWER-SECRET-5e5e")


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_capture_content_false_stores_no_content(
    tmp_path: Path, api: str, make_recorder: Any
) -> None:
    db = tmp_path / "private.db"

    @function_tool
    def vault(key: str) -> str:
        """Return a stored value."""
        return f"value {SECRETS[2]}"

    @function_tool(failure_error_function=None)
    def leaky(key: str) -> str:
        """Fail with content in the error."""
        raise ValueError(f"cannot open {key}")

    agent = Agent(
        name="Keeper",
        tools=[vault, leaky],
        model=DemoModel(
            [
                [call("vault", {"key": SECRETS[1]})],
                [text(f"The answer is {SECRETS[3]}")],
            ],
            api=api,
        ),
    )
    with make_recorder(str(db), capture_content=False) as processor:
        Runner.run_sync(agent, f"Tell me {SECRETS[0]}")
        failing = Agent(
            name="Leaker",
            tools=[leaky],
            model=DemoModel([[call("leaky", {"key": SECRETS[1]})]], api=api),
        )
        with pytest.raises(Exception, match="cannot open"):
            Runner.run_sync(failing, f"Open {SECRETS[0]}")
        assert processor.flush(10)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("private.db"))
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
    store = Store(str(db))
    runs = store.list_runs()
    assert {r["status"] for r in runs} == {"succeeded", "failed"}
    failed = next(r for r in runs if r["status"] == "failed")
    assert failed["category"] == "tool_error" and failed["failing_tool"] == "leaky"


def test_trace_metadata_group_and_identity_are_stored(recorder: Any, db_url: str) -> None:
    config = RunConfig(
        workflow_name="Identity",
        group_id="conv_123",
        trace_metadata={"customer": "acme", "tier": "gold"},
    )
    Runner.run_sync(Agent(name="A", model=DemoModel([[text("hi")]])), "hi", run_config=config)
    assert recorder.flush(10)
    store = Store(db_url)
    run = store.get_run(store.list_runs()[0]["trace_id"])
    assert run is not None
    assert run["group_id"] == "conv_123"
    assert run["metadata"] == {"customer": "acme", "tier": "gold"}
    from importlib.metadata import version

    assert run["sdk_version"] == version("openai-agents")
    assert run["pid"] == os.getpid()
    assert run["host"]
    assert run["first_input"] == "hi" and run["final_output"] == "hi"


def test_response_spans_keep_input_and_output_items(recorder: Any, db_url: str) -> None:
    agent = Agent(name="R", model=DemoModel([[text("from the Responses API")]], api="responses"))
    Runner.run_sync(agent, "question for responses")
    assert recorder.flush(10)
    store = Store(db_url)
    run = store.list_runs()[0]
    response = next(s for s in store.spans(run["trace_id"]) if s.kind == "response")
    assert response.model == "demo-gpt-4o"
    assert response.data["response_id"].startswith("resp_")
    assert response.data["output"][0]["content"][0]["text"] == "from the Responses API"
    assert "question for responses" in json.dumps(response.data["input"])
    assert (response.input_tokens, response.output_tokens) == (120, 40)
    assert run["final_output"] == "from the Responses API"


def test_shutdown_marks_unfinished_runs_incomplete(db_url: str) -> None:
    from agents import set_trace_processors

    # set up by hand: the shutdown, mid-run, is what the test is about
    processor = TurnscopeProcessor(db_url, flush_interval=0.05)
    set_trace_processors([processor])
    entered, release = threading.Event(), threading.Event()

    @function_tool
    def wait_forever(reason: str) -> str:
        """Block until released."""
        entered.set()
        release.wait(30)
        return "released"

    agent = Agent(
        name="Waiter",
        tools=[wait_forever],
        model=DemoModel([[call("wait_forever", {"reason": "x"})], [text("done")]]),
    )
    worker = threading.Thread(
        target=lambda: asyncio.run(
            Runner.run(agent, "wait", run_config=RunConfig(workflow_name="W"))
        )
    )
    worker.start()
    try:
        assert entered.wait(30)
        processor.shutdown(10)
    finally:
        release.set()
        worker.join(30)
        set_trace_processors([])
    run = Store(db_url).list_runs()[0]
    assert run["status"] == "incomplete" and run["category"] == "incomplete"
    assert run["failing_tool"] == "wait_forever"


# a child process (killed below): no fixtures there, it registers its processor itself
KILLED = textwrap.dedent(
    """
    import sys, time
    from agents import Agent, Runner, RunConfig, function_tool, set_trace_processors
    from turnscope.exporter.processor import TurnscopeProcessor
    from turnscope.demo.model import DemoModel, call, delay, text

    processor = TurnscopeProcessor(sys.argv[1], flush_interval=0.05)
    set_trace_processors([processor])

    @function_tool
    def crunch(n: int) -> str:
        "Runs for a long time."
        print("in tool", flush=True)
        time.sleep(600)
        return "never"

    agent = Agent(name="Cruncher", tools=[crunch], model=DemoModel([[call("crunch", {"n": 7})]]))
    config = RunConfig(workflow_name="Batch", trace_id=sys.argv[2])
    Runner.run_sync(agent, "crunch", run_config=config)
    """
)


def test_sigkill_mid_run_leaves_an_incomplete_run(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    trace_id = "trace_" + "cd" * 16
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), trace_id], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "in tool"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the flush interval to pass
            if db.exists():
                try:
                    spans = Store(str(db)).spans(trace_id)
                except Exception:
                    spans = []
                if any(s.kind == "function" and s.ended_at is None for s in spans):
                    break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = subprocess.run(
        [sys.executable, "-m", "turnscope.cli", "why", trace_id, "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["status"] == "incomplete" and report["category"] == "incomplete"
    assert (report["agent"], report["turn"], report["tool"]) == ("Cruncher", 1, "crunch")
    assert f"pid {proc.pid}" in report["explanation"]
    listed = Store(str(db)).list_runs()[0]
    assert listed["status"] == "incomplete"


def test_instrument_registers_and_replaces(tmp_path: Path) -> None:
    from agents import set_trace_processors

    # set up by hand: instrument() registers its processors itself, which is what is tested
    set_trace_processors([])
    first = turnscope.instrument(str(tmp_path / "a.db"))
    second = turnscope.instrument(str(tmp_path / "b.db"))
    try:
        registered = turnscope._registered_processors()
        assert registered is not None
        assert second in registered and first not in registered
        Runner.run_sync(Agent(name="A", model=DemoModel([[text("hi")]])), "hi")
        assert second.flush(10)
        assert Store(str(tmp_path / "b.db")).count_runs() == 1
        only = turnscope.instrument(str(tmp_path / "c.db"), replace_default=True)
        assert turnscope._registered_processors() == [only]
    finally:
        set_trace_processors([])
        for p in (first, second):
            p.shutdown(5)
        turnscope._instrumented.shutdown(5)


def test_instrument_rejects_a_bad_url_in_one_line() -> None:
    from turnscope.config import ConfigError

    with pytest.raises(ConfigError, match="unsupported database URL") as info:
        turnscope.instrument("nosuch://x")
    assert "\n" not in str(info.value)


def test_two_runs_in_one_trace_are_one_run_with_two_scopes(recorder: Any, db_url: str) -> None:
    first = Agent(name="First", model=DemoModel([[text("one")]]))
    second = Agent(name="Second", model=DemoModel([[text("two")]]))

    async def main() -> None:
        with trace("Batch of two", trace_id="trace_" + "ef" * 16):
            await Runner.run(first, "a")
            await Runner.run(second, "b")

    asyncio.run(main())
    assert recorder.flush(10)
    store = Store(db_url)
    run = store.get_run("trace_" + "ef" * 16)
    assert run is not None and run["status"] == "succeeded"
    assert run["agents"] == ["First", "Second"] and run["turns"] == 2
    analysis = store.analysis(run["trace_id"])
    assert [(t.agent, t.number) for t in analysis.structure.turns] == [("First", 1), ("Second", 1)]


def test_streamed_cancel_is_a_cancelled_run(recorder: Any, db_url: str) -> None:
    agent = Agent(name="Streamer", model=DemoModel([delay(10, [text("too late")])]))

    async def main() -> None:
        result = Runner.run_streamed(
            agent, "go", run_config=RunConfig(trace_id="trace_" + "12" * 16)
        )
        async for _event in result.stream_events():
            await asyncio.sleep(0.05)  # the model call is in flight
            result.cancel()

    asyncio.run(main())
    assert recorder.flush(10)
    run = Store(db_url).get_run("trace_" + "12" * 16)
    assert run is not None
    assert (run["status"], run["category"]) == ("failed", "cancelled")
    assert run["failing_agent"] == "Streamer" and run["failing_turn"] == 1


def test_streamed_failure_caught_inside_a_user_trace_is_still_a_failure(
    recorder: Any, db_url: str
) -> None:
    from agents.exceptions import MaxTurnsExceeded

    @function_tool
    def poll(job: str) -> str:
        """Poll a job."""
        return "pending"

    agent = Agent(
        name="Poller",
        tools=[poll],
        model=DemoModel([[call("poll", {"job": "j1"})] for _ in range(5)]),
    )

    async def main() -> None:
        with trace("Polling", trace_id="trace_" + "34" * 16):
            result = Runner.run_streamed(agent, "wait for j1", max_turns=2)
            try:
                async for _ in result.stream_events():
                    pass
            except MaxTurnsExceeded:
                pass  # the user handles it; the trace sees no exception at all

    asyncio.run(main())
    assert recorder.flush(10)
    run = Store(db_url).get_run("trace_" + "34" * 16)
    assert run is not None
    assert (run["status"], run["category"]) == ("failed", "max_turns_exceeded")
    assert run["exception"] == "MaxTurnsExceeded"


def test_a_long_running_run_is_analysed_less_often_but_never_left_behind(
    db_url: str, make_recorder: Any
) -> None:
    """Large running traces are re-analysed at most every few batches (the cost grows with
    the trace); their spans are still written every batch, and a flush or the end of the
    run brings the summary and every span's turn up to date."""
    from agents import agent_span, function_span, generation_span

    with make_recorder(db_url, flush_interval=0.02) as processor:
        pipeline = processor._pipeline
        pipeline.analyze_always_below = 20  # "large" from 20 spans on
        pipeline.analysis_interval_floor = 1.0  # so a busy machine's slow batches change nothing
        decisions: list[bool] = []
        due = pipeline._analysis_due

        def recording(state: Any, now: float) -> bool:
            answer = due(state, now)
            if state.info.trace_id == trace_id and state.info.ended_at is None:
                decisions.append(answer)
            return answer

        pipeline._analysis_due = recording  # type: ignore[method-assign]
        trace_id = "trace_" + "ab" * 16
        assert processor.flush(30)  # the database exists from here on
        store = Store(db_url)
        with trace("Long", trace_id=trace_id), agent_span(name="Worker"):
            for turn in range(300):
                with generation_span(model="m", usage={"input_tokens": 1, "output_tokens": 1}):
                    pass
                with function_span(name="lookup", input=json.dumps({"n": turn})) as span:
                    span.span_data.output = "ok"
                if turn % 10 == 9:
                    time.sleep(0.03)  # the worker writes in the background meanwhile
            time.sleep(0.2)
            written = len(store.spans(trace_id))
            assert written >= 500  # spans keep being written while analysis waits
            assert processor.flush(30)
            live = store.get_run(trace_id)
            assert live is not None and live["status"] == "running"
            assert live["tool_calls"] == 300  # a flush brings the summary up to date
        assert processor.flush(30)
    run = store.get_run(trace_id)
    assert run is not None and run["status"] == "succeeded" and run["turns"] == 300
    spans = store.spans(trace_id)
    assert len(spans) == 601 and all(s.turn is not None for s in spans if s.kind != "agent")
    # most batches that touched the running trace put its analysis off (each ran it before)
    assert decisions.count(False) > decisions.count(True) > 0, decisions
