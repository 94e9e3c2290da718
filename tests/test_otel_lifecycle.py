"""OTLP export when spans do not arrive in the textbook order: parents ending before their
children, traces ending before their spans, resumed and repeated traces, concurrent runs;
plus span types beyond the runner's (custom, MCP, unknown future ones), content capture and
the byte budget, custom trace ids, no database, and no OpenTelemetry context leaking into
the application. Real receivers, real Runner, both SDK versions unless marked.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.tracing import (
    SpanError,
    agent_span,
    custom_span,
    function_span,
    mcp_tools_span,
    trace,
)
from support.fakes import FakeSpan
from support.otlp_receiver import Receiver, check_traces, root_of
from support.tools import lookup_tool

from turnscope.demo.model import DemoModel, call, text
from turnscope.exporter.processor import TurnscopeProcessor
from turnscope.ids import otel_root_span_id, otel_span_id, otel_trace_id_hex


@pytest.fixture
def exporter(receiver: Receiver, db_url: str, make_recorder: Any) -> Iterator[TurnscopeProcessor]:
    """A processor writing ``db_url`` and exporting to ``receiver``, the only one registered."""
    options = {"otlp_endpoint": receiver.endpoint, "otlp_protocol": receiver.protocol}
    with make_recorder(db_url, **options) as processor:
        yield processor


def tid(n: int) -> str:
    """A well-formed SDK trace id."""
    return f"trace_{0xF0000 + n:032x}"


lookup = lookup_tool("result for {q}")


def helper(name: str = "Helper", answer: str = "done") -> Agent:
    """An agent that calls ``lookup`` once and answers."""
    return Agent(
        name=name,
        tools=[lookup],
        model=DemoModel([[call("lookup", {"q": name})], [text(answer)]]),
    )


def spans_of(receiver: Receiver, trace_id: str) -> list[Any]:
    """Received spans of one SDK trace."""
    hexid = otel_trace_id_hex(trace_id)
    return [s for s in receiver.snapshot() if s.trace_id == hexid]


def hex_span(span_id: str) -> str:
    """The OTel span id (hex) of an SDK span id."""
    return f"{otel_span_id(span_id):016x}"


def test_parent_ending_before_child_and_trace_ending_first(
    exporter: TurnscopeProcessor, receiver: Receiver
) -> None:
    t = trace("Out of order", trace_id=tid(1))
    t.start(mark_as_current=False)
    outer = agent_span(name="Outer", parent=t)
    outer.start()
    tool = function_span(name="slow_tool", parent=outer)
    tool.start()
    outer.finish()  # the parent ends first
    t.finish()  # then the trace
    tool.finish()  # the child last
    assert exporter.flush(10)
    spans = spans_of(receiver, tid(1))
    check_traces(spans)
    by_id = {s.span_id: s for s in spans}
    child = by_id[hex_span(tool.span_id)]
    assert child.parent_span_id == hex_span(outer.span_id)
    assert by_id[hex_span(outer.span_id)].parent_span_id == f"{otel_root_span_id(tid(1)):016x}"
    assert len(spans) == 3


def test_trace_ending_before_its_spans_start(
    exporter: TurnscopeProcessor, receiver: Receiver
) -> None:
    # a streamed run whose `with trace()` block closed before the stream was consumed
    t = trace("Ended early", trace_id=tid(2))
    t.start(mark_as_current=False)
    t.finish()
    assert exporter.flush(10)
    assert spans_of(receiver, tid(2)) == []  # no spans yet: the root waits for them
    late = agent_span(name="Late", parent=t)
    late.start()
    step = custom_span("step", parent=late)
    step.start()
    step.finish()
    late.finish()
    assert exporter.flush(10)
    spans = spans_of(receiver, tid(2))
    check_traces(spans)
    root = root_of(spans)
    assert root.name == "invoke_workflow Ended early"
    assert root.start_ns <= min(s.start_ns for s in spans)
    assert root.end_ns >= max(s.end_ns for s in spans)  # widened over the late spans


def test_a_trace_id_used_again_keeps_one_root(
    exporter: TurnscopeProcessor, receiver: Receiver
) -> None:
    config = RunConfig(trace_id=tid(3), workflow_name="Twice")
    Runner.run_sync(helper("First"), "one", run_config=config)
    assert exporter.flush(10)
    first = spans_of(receiver, tid(3))
    Runner.run_sync(helper("Second"), "two", run_config=config)
    assert exporter.flush(10)
    spans = spans_of(receiver, tid(3))
    check_traces(spans)
    assert len(spans) > len(first)
    names = [s.name for s in spans]
    assert "invoke_agent First" in names and "invoke_agent Second" in names
    assert names.count("invoke_workflow Twice") == 1


@pytest.mark.new_sdk
def test_human_in_the_loop_resume_stays_in_one_trace(
    exporter: TurnscopeProcessor, receiver: Receiver
) -> None:
    from agents.testing import ScriptedModel, assistant_message, function_call

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file (needs a human's approval)."""
        return f"deleted {path}"

    model = ScriptedModel(
        [
            [function_call("delete_file", {"path": "/tmp/x"}, call_id="c1")],
            [assistant_message("done")],
        ],
        emit_traces=True,
    )
    agent = Agent(name="Janitor", tools=[delete_file], model=model)
    config = RunConfig(trace_id=tid(4), workflow_name="Cleanup")
    first = Runner.run_sync(agent, "delete /tmp/x", run_config=config)
    assert first.interruptions
    assert exporter.flush(10)
    leg_one = spans_of(receiver, tid(4))
    state = first.to_state()
    for item in first.interruptions:
        state.approve(item)
    second = Runner.run_sync(agent, state, run_config=config)  # a ReattachedTrace: no callbacks
    assert second.final_output == "done"
    assert exporter.flush(10)
    spans = spans_of(receiver, tid(4))
    check_traces(spans)  # one trace, one root, the resumed leg's parents all present
    resumed = [s for s in spans if s.span_id not in {x.span_id for x in leg_one}]
    assert resumed and all(s.trace_id == otel_trace_id_hex(tid(4)) for s in resumed)
    assert [s.name for s in resumed].count("execute_tool delete_file") == 1


def test_concurrent_runs_on_tasks_and_threads(
    exporter: TurnscopeProcessor, receiver: Receiver
) -> None:
    async def one(n: int) -> None:
        await Runner.run(helper(f"Worker{n}"), "go", run_config=RunConfig(trace_id=tid(100 + n)))

    async def many(first: int) -> None:
        await asyncio.gather(*(one(first + i) for i in range(10)))

    threads = [threading.Thread(target=asyncio.run, args=(many(k * 10),)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert exporter.flush(30)
    by_trace = check_traces(receiver.snapshot())
    for n in range(30):
        spans = by_trace[otel_trace_id_hex(tid(100 + n))]
        agents = {s.attrs.get("gen_ai.agent.name") for s in spans} - {None}
        assert agents == {f"Worker{n}"}  # nothing crossed over from another run


def test_no_opentelemetry_context_is_touched(
    exporter: TurnscopeProcessor, receiver: Receiver
) -> None:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    seen: list[tuple[bool, dict[str, Any]]] = []

    @function_tool
    def probe() -> str:
        """Look at the ambient OpenTelemetry context."""
        span = otel_trace.get_current_span()
        seen.append((span.get_span_context().is_valid, dict(otel_context.get_current())))
        return "ok"

    app_spans = InMemorySpanExporter()
    app_provider = TracerProvider()
    app_provider.add_span_processor(SimpleSpanProcessor(app_spans))
    tracer = app_provider.get_tracer("the-app")
    agent = Agent(name="Prober", tools=[probe], model=DemoModel([[call("probe")], [text("ok")]]))
    Runner.run_sync(agent, "probe", run_config=RunConfig(trace_id=tid(5)))
    with tracer.start_as_current_span("app request"):
        Runner.run_sync(
            Agent(name="Inside", model=DemoModel([[text("ok")]])),
            "hi",
            run_config=RunConfig(trace_id=tid(6)),
        )
    with tracer.start_as_current_span("next app request"):
        pass
    assert exporter.flush(10)
    assert seen == [(False, {})]  # inside a tool: no span of ours is current
    assert dict(otel_context.get_current()) == {}
    assert not otel_trace.get_current_span().get_span_context().is_valid
    first, second = app_spans.get_finished_spans()
    assert second.name == "next app request" and second.parent is None
    assert second.context.trace_id != first.context.trace_id
    assert [s.name for s in app_spans.get_finished_spans()] == ["app request", "next app request"]
    # the agent run inside the app's span is its own trace (ids derived from the SDK's)
    inside = spans_of(receiver, tid(6))
    check_traces(inside)
    assert root_of(inside).trace_id == otel_trace_id_hex(tid(6))
    sink = exporter._pipeline.deliveries[-1].sink
    assert otel_trace.get_tracer_provider() is not sink._provider  # never the global one


def test_custom_mcp_and_unknown_span_types(
    exporter: TurnscopeProcessor, receiver: Receiver
) -> None:
    with trace("Kinds", trace_id=tid(7)) as t:
        with custom_span("sandbox.setup", data={"image": "python:3.11", "ok": True}):
            pass
        with mcp_tools_span(server="files", result=["read", "write"]):
            pass
        broken = custom_span("sandbox.exec", data={"command": "rm -rf /"})
        broken.start()
        broken.set_error(SpanError(message="Sandbox operation failed", data={"exit_code": 1}))
        broken.finish()
        future = FakeSpan(t.trace_id, "span_" + "7" * 24)
        exporter.on_span_start(future)
        future.ended_at = "2026-11-24T10:00:00.250000+00:00"
        exporter.on_span_end(future)
    assert exporter.flush(10)
    spans = {s.name: s for s in spans_of(receiver, tid(7))}
    check_traces(list(spans.values()))
    setup = spans["sandbox.setup"]
    assert setup.kind == "INTERNAL" and setup.status == "UNSET"
    assert not any(k.startswith("openai_agents.custom.") for k in setup.attrs)  # content off
    listing = spans["tools/list files"]
    assert listing.kind == "CLIENT" and listing.attrs["mcp.method.name"] == "tools/list"
    assert listing.attrs["openai_agents.mcp.tools"] == ["read", "write"]
    failed = spans["sandbox.exec"]
    assert failed.status == "ERROR" and failed.attrs["error.type"] == "_OTHER"
    assert failed.status_message == "Sandbox operation failed"
    unknown = spans["sandbox_exec"]
    assert unknown.attrs["openai_agents.span_type"] == "sandbox_exec"
    assert unknown.attrs["openai_agents.sandbox_exec.exit_code"] == 0
    assert unknown.end_ns - unknown.start_ns == 250_000_000


def test_custom_trace_ids_are_hashed(exporter: TurnscopeProcessor, receiver: Receiver) -> None:
    weird = "order #1009 / retry ünïcode"
    Runner.run_sync(helper(), "hi", run_config=RunConfig(trace_id=weird))
    assert exporter.flush(10)
    spans = spans_of(receiver, weird)
    check_traces(spans)
    assert spans and root_of(spans).attrs["openai_agents.trace_id"] == weird
    assert otel_trace_id_hex(weird) != "0" * 32


def test_export_without_a_database(receiver: Receiver, make_recorder: Any) -> None:
    with make_recorder(
        False, otlp_endpoint=receiver.endpoint, otlp_protocol=receiver.protocol
    ) as processor:
        looper = Agent(
            name="Looper",
            tools=[lookup],
            model=DemoModel([[call("lookup", {"q": str(i)})] for i in range(5)]),
        )
        with pytest.raises(Exception, match="Max turns"):
            Runner.run_sync(looper, "loop", max_turns=2, run_config=RunConfig(trace_id=tid(8)))
        assert processor.flush(10)
    assert list(processor.stats()["sinks"]) == ["otlp"]
    spans = spans_of(receiver, tid(8))
    check_traces(spans)
    root = root_of(spans)
    assert root.status == "ERROR" and root.attrs["error.type"] == "max_turns_exceeded"
    assert root.attrs["turnscope.failure.agent"] == "Looper"
    assert root.attrs["turnscope.max_turns"] == 2


ROWS = [{"id": i, "text": "lorem ipsum dolor " * 20} for i in range(120)]  # ~46 KB of JSON


@function_tool
def fetch_report(query: str) -> str:
    """Return a large JSON report."""
    return json.dumps({"query": query, "rows": ROWS})


def _attr_bytes(attrs: dict[str, Any]) -> int:
    total = 0
    for key, value in attrs.items():
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        total += len(key) + len(text.encode("utf-8"))
    return total


def test_content_capture_is_bounded_and_stays_valid_json(
    receiver: Receiver, db_url: str, make_recorder: Any
) -> None:
    huge_question = "Summarise this: " + "é" * 60_000
    agent = Agent(
        name="Analyst",
        instructions="Be thorough.",
        tools=[fetch_report],
        model=DemoModel(
            [[call("fetch_report", {"query": "q" * 2_000})], [text("Summary: " + "z" * 90_000)]]
        ),
    )
    with make_recorder(
        db_url,
        otlp_endpoint=receiver.endpoint,
        otlp_protocol=receiver.protocol,
        otlp_capture_content=True,
        otlp_max_span_bytes=8192,
    ) as processor:
        Runner.run_sync(agent, huge_question, run_config=RunConfig(trace_id=tid(9)))
        assert processor.flush(10)
    spans = spans_of(receiver, tid(9))
    check_traces(spans)
    for span in spans:
        assert _attr_bytes(span.attrs) + len(span.status_message) <= 8192, span.name
        for key in (
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
        ):
            if key in span.attrs:
                json.loads(span.attrs[key])  # cut, but still JSON
    chats = [s for s in spans if s.name.startswith("chat")]
    assert all("gen_ai.input.messages" in s.attrs for s in chats)
    first_input = json.loads(chats[0].attrs["gen_ai.input.messages"])
    assert first_input[0]["role"] in ("system", "user")
    assert chats[0].attrs["turnscope.truncated"] is True
    (tool,) = [s for s in spans if s.name == "execute_tool fetch_report"]
    result = json.loads(tool.attrs["gen_ai.tool.call.result"])
    assert isinstance(result, dict) and "rows" in result  # the document's shape survives
    assert tool.attrs["turnscope.truncated"] is True
    arguments = json.loads(tool.attrs["gen_ai.tool.call.arguments"])
    assert arguments["query"].startswith("qqq")


def test_content_needs_turnscope_capture_too(
    receiver: Receiver, db_url: str, make_recorder: Any
) -> None:
    with make_recorder(
        db_url,
        capture_content=False,
        otlp_endpoint=receiver.endpoint,
        otlp_protocol=receiver.protocol,
        otlp_capture_content=True,
    ) as processor:
        Runner.run_sync(helper(), "secret question", run_config=RunConfig(trace_id=tid(10)))
        assert processor.flush(10)
    spans = spans_of(receiver, tid(10))
    check_traces(spans)
    blob = json.dumps([s.attrs for s in spans])
    assert "secret question" not in blob and "not captured" not in blob
    assert "gen_ai.input.messages" not in blob


def test_requests_stay_under_four_mebibytes(receiver: Receiver, make_recorder: Any) -> None:
    with make_recorder(
        False,
        otlp_endpoint=receiver.endpoint,
        otlp_protocol=receiver.protocol,
        otlp_capture_content=True,
    ) as processor:
        with trace("Big", trace_id=tid(11)):
            for i in range(300):
                with custom_span(f"chunk {i % 3}", data={"blob": "b" * 60_000, "n": i}):
                    pass
        assert processor.flush(60)
    spans = spans_of(receiver, tid(11))
    check_traces(spans)
    assert len(spans) == 301
    assert max(receiver.sizes) < 4 * 1024 * 1024 and sum(receiver.sizes) > 4 * 1024 * 1024
    assert processor.stats()["sinks"]["otlp"]["failed"] == 0
