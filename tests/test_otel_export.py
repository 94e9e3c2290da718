"""OTLP export end to end: the demo workflows (every failure category the installed SDK can
produce) run through the real Runner, recorded by a TurnscopeProcessor that writes the
database and exports over OTLP to a real gRPC or HTTP receiver, which decodes the protobuf.

Runs on openai-agents 0.24 and 0.0.17, for both protocols.
"""

from __future__ import annotations

import asyncio
import calendar
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from agents import set_trace_processors
from agents.tracing import TracingProcessor
from support.otlp_receiver import (
    PROTOCOLS,
    Received,
    Receiver,
    check_traces,
    receiver_for,
    root_of,
)

from turnscope import __version__
from turnscope.demo.runner import CASES, Case, has_feature
from turnscope.exporter.processor import TurnscopeProcessor
from turnscope.ids import otel_root_span_id, otel_span_id, otel_trace_id_hex
from turnscope.store.queries import Store

SKIP = {"worker process killed"}  # a subprocess that dies: nothing of it is exported live


class SdkClock(TracingProcessor):
    """Keeps the SDK's own ISO timestamps of every span, to compare with what was exported."""

    def __init__(self) -> None:
        self.times: dict[str, tuple[str, str]] = {}

    def on_trace_start(self, trace: Any) -> None:
        pass

    def on_trace_end(self, trace: Any) -> None:
        pass

    def on_span_start(self, span: Any) -> None:
        pass

    def on_span_end(self, span: Any) -> None:
        self.times[span.span_id] = (span.started_at, span.ended_at)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


@dataclass
class Exported:
    """What one protocol's run of the demo cases produced."""

    protocol: str
    receiver: Receiver
    db: str
    cases: dict[str, Case] = field(default_factory=dict)  # trace id -> case
    raised: dict[str, str | None] = field(default_factory=dict)
    clock: SdkClock = field(default_factory=SdkClock)
    stats: dict[str, Any] = field(default_factory=dict)

    def spans(self) -> list[Received]:
        """Everything the backend received."""
        return self.receiver.snapshot()

    def trace(self, title: str) -> tuple[str, list[Received]]:
        """(SDK trace id, received spans) of the case with this title."""
        trace_id = next(t for t, c in self.cases.items() if c.title == title)
        hexid = otel_trace_id_hex(trace_id)
        return trace_id, [s for s in self.spans() if s.trace_id == hexid]


def run_cases(processor: Any, cases: list[Case], clock: Any = None) -> dict[str, Any]:
    """Run demo cases through the real Runner with ``processor`` as the only processor."""
    # registered by hand: the clock is a second processor beside it
    set_trace_processors([processor] + ([clock] if clock else []))
    out: dict[str, Any] = {}
    for index, case in enumerate(cases):
        trace_id = f"trace_{0xE0000 + index:032x}"
        try:
            asyncio.run(case.run(trace_id))
            out[trace_id] = (case, None)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            out[trace_id] = (case, type(exc).__name__)
    return out


@pytest.fixture(scope="module", params=PROTOCOLS)
def exported(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Exported]:
    """The demo cases, recorded into a database and exported to a live receiver."""
    protocol = request.param
    db = f"sqlite:///{tmp_path_factory.mktemp('otel') / 'runs.db'}"
    with receiver_for(protocol) as receiver:
        result = Exported(protocol, receiver, db)
        processor = TurnscopeProcessor(
            db, flush_interval=0.05, otlp_endpoint=receiver.endpoint, otlp_protocol=protocol
        )
        cases = [c for c in CASES if c.title not in SKIP and has_feature(c.needs)]
        try:
            ran = run_cases(processor, cases, result.clock)
            assert processor.flush(30)
        finally:
            set_trace_processors([])
            processor.shutdown(10)
        result.stats = processor.stats()
        for trace_id, (case, raised) in ran.items():
            result.cases[trace_id] = case
            result.raised[trace_id] = raised
        yield result


def test_every_trace_has_one_root_and_every_parent(exported: Exported) -> None:
    by_trace = check_traces(exported.spans())
    assert set(by_trace) == {otel_trace_id_hex(t) for t in exported.cases}
    otlp = exported.stats["sinks"]["otlp"]
    assert otlp["exported"] == otlp["emitted"] == len(exported.spans())
    assert otlp["failed"] == 0 and exported.stats["failed"] == 0
    assert exported.receiver.protocol == exported.protocol


def test_the_root_carries_the_verdict(exported: Exported) -> None:
    store = Store(exported.db)
    for trace_id, case in exported.cases.items():
        root = root_of([s for s in exported.spans() if s.trace_id == otel_trace_id_hex(trace_id)])
        run = store.get_run(trace_id)
        assert run is not None
        a = root.attrs
        assert root.name == f"invoke_workflow {case.workflow}", case.title
        assert root.kind == "INTERNAL"
        assert a["gen_ai.operation.name"] == "invoke_workflow"
        assert a["gen_ai.workflow.name"] == case.workflow
        assert a["openai_agents.trace_id"] == trace_id
        assert a["turnscope.status"] == case.status == run["status"], case.title
        assert a["turnscope.turns"] == run["turns"]
        assert a["turnscope.usage.input_tokens"] == run["input_tokens"]
        if case.status == "failed":
            assert root.status == "ERROR", case.title
            assert a["error.type"] == case.category == a["turnscope.failure.category"], case.title
            assert a.get("turnscope.failure.reason") == run["reason"], case.title
            assert a.get("turnscope.failure.exception") == run["exception"]
            assert a.get("turnscope.failure.agent") == run["failing_agent"]
            assert a.get("turnscope.failure.turn") == run["failing_turn"]
            assert root.status_message.startswith(case.category)
            if run["failing_span_id"]:
                assert a["turnscope.failure.span_id"] == run["failing_span_id"]
                assert a["turnscope.failure.otel_span_id"] == (
                    f"{otel_span_id(run['failing_span_id']):016x}"
                )
        else:
            assert root.status == "UNSET", case.title
            assert "error.type" not in a and "turnscope.failure.category" not in a
        assert a.get("turnscope.warnings", []) == [
            w["kind"] for w in store.get_run(trace_id)["warnings"]
        ], case.title


def test_failing_spans_are_errors_with_a_category(exported: Exported) -> None:
    store = Store(exported.db)
    for trace_id, case in exported.cases.items():
        run = store.get_run(trace_id)
        assert run is not None
        if case.status != "failed" or not run["failing_span_id"]:
            continue
        spans = {s.span_id: s for s in exported.spans()}
        failing = spans[f"{otel_span_id(run['failing_span_id']):016x}"]
        if failing.attrs.get("gen_ai.guardrail.result.value") == "true":
            assert failing.status == "UNSET"  # a tripped guardrail did its job
            continue
        assert failing.status == "ERROR", case.title
        assert failing.attrs["error.type"], case.title
    # a few exact cases from the documented table
    expect = {
        "search loop hits max_turns": ("invoke_agent Researcher", "max_turns_exceeded"),
        "tool raises, no handler": ("execute_tool charge_card", "tool_error"),
        "model calls a missing tool": (None, "tool_not_found"),
        "model rate limited (429)": ("chat", "model_error"),
        "handoff with bad arguments": ("handoff FrontDesk -> ?", "handoff_error"),
    }
    for title, (name, etype) in expect.items():
        _tid, spans = exported.trace(title)
        errors = {(s.name, s.attrs.get("error.type")) for s in spans if s.status == "ERROR"}
        assert any(e == etype and (name is None or n == name) for n, e in errors), (title, errors)


def test_success_is_unset_and_recovered_errors_stay_on_their_span(exported: Exported) -> None:
    _tid, spans = exported.trace("handoff, tool call, answer")
    assert {s.status for s in spans} == {"UNSET"}
    _tid, spans = exported.trace("flaky tool recovered")
    root = root_of(spans)
    assert root.status == "UNSET" and root.attrs["turnscope.status"] == "succeeded_with_errors"
    assert root.attrs["turnscope.recovered_errors"] == ["tool_error fetch_exchange_rate x2"]
    failed_tools = [s for s in spans if s.status == "ERROR"]
    assert len(failed_tools) == 2
    assert {s.name for s in failed_tools} == {"execute_tool fetch_exchange_rate"}
    assert {s.attrs["error.type"] for s in failed_tools} == {"tool_error"}
    assert {s.status_message for s in failed_tools} == {"Error running tool (non-fatal)"}


def test_guardrails_follow_the_genai_conventions(exported: Exported) -> None:
    _tid, spans = exported.trace("input guardrail tripwire")
    (guard,) = [s for s in spans if s.name == "guardrail no_homework"]
    assert guard.status == "UNSET"  # a tripped guardrail did its job
    assert guard.attrs["gen_ai.guardrail.component.name"] == "no_homework"
    assert guard.attrs["gen_ai.guardrail.result.type"] == "tripwire_triggered"
    assert guard.attrs["gen_ai.guardrail.result.value"] == "true"
    assert guard.attrs["gen_ai.guardrail.source"] == "input"
    ((event, when, attrs),) = guard.events
    assert event == "gen_ai.guardrail.result" and attrs["gen_ai.guardrail.result.value"] == "true"
    assert guard.start_ns <= when <= guard.end_ns
    root = root_of(spans)
    assert root.status == "ERROR" and root.attrs["error.type"] == "input_guardrail_tripwire"
    _tid, spans = exported.trace("output guardrail tripwire")
    (guard,) = [s for s in spans if s.name == "guardrail no_card_numbers"]
    assert guard.status == "UNSET" and guard.attrs["gen_ai.guardrail.source"] == "output"
    _tid, spans = exported.trace("guardrail function bug")
    (guard,) = [s for s in spans if s.name == "guardrail broken_policy_check"]
    assert guard.status == "ERROR" and guard.attrs["error.type"] == "KeyError"
    assert "gen_ai.guardrail.result.value" not in guard.attrs  # it raised: no result


def test_names_kinds_and_semantic_attributes(exported: Exported) -> None:
    trace_id, spans = exported.trace("handoff, tool call, answer")
    names = [s.name for s in spans]
    assert names.count("invoke_agent Triage") == 1 and names.count("invoke_agent Billing") == 1
    assert "execute_tool lookup_order" in names
    assert "handoff Triage -> Billing" in names  # the target is known at the end
    for span in spans:
        a = span.attrs
        assert a["gen_ai.conversation.id"] == "conv_demo_42"
        assert a["openai_agents.trace_id"] == trace_id
        if span.name.startswith("chat"):
            assert span.kind == "CLIENT"
            assert span.name == "chat gpt-4o-mini"
            assert a["gen_ai.operation.name"] == "chat"
            assert a["gen_ai.provider.name"] == "openai"
            assert a["gen_ai.request.model"] == "gpt-4o-mini"
            usage = (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"])
            assert usage == {"Triage": (120, 40), "Billing": (18000, 400)}[a["gen_ai.agent.name"]]
            assert a["gen_ai.agent.name"] in ("Triage", "Billing")
            assert isinstance(a["turnscope.turn"], int)
        elif span.name.startswith("invoke_agent"):
            assert span.kind == "INTERNAL"
            assert a["gen_ai.operation.name"] == "invoke_agent"
            assert a["gen_ai.agent.name"] == span.name.split(" ", 1)[1]
            assert a["gen_ai.request.model"] == "gpt-4o-mini"
        elif span.name.startswith("execute_tool"):
            assert a["gen_ai.operation.name"] == "execute_tool"
            assert a["gen_ai.tool.name"] == "lookup_order"
            assert a["gen_ai.tool.type"] == "function"
            assert a["gen_ai.agent.name"] == "Billing"
    (triage,) = [s for s in spans if s.name == "invoke_agent Triage"]
    assert triage.attrs["openai_agents.agent.handoffs"] == ["Billing"]
    root = root_of(spans)
    assert root.attrs["turnscope.agents"] == ["Triage", "Billing"]
    assert {s.scope for s in spans} == {("turnscope", __version__)}
    assert {s.resource["service.name"] for s in spans} == {"openai-agents"}


@pytest.mark.new_sdk
def test_the_conversation_id_is_the_runs_conversation_key(tmp_path: Path) -> None:
    """gen_ai.conversation.id is the key the conversations page groups by: a session's id
    for a run given a session and no group id; none for a run given no key."""
    from agents import Agent, RunConfig, Runner, SQLiteSession

    from turnscope.demo.model import DemoModel, text

    with receiver_for("http/protobuf") as receiver:
        processor = TurnscopeProcessor(
            False,
            flush_interval=0.05,
            otlp_endpoint=receiver.endpoint,
            otlp_protocol=receiver.protocol,
        )
        set_trace_processors([processor])
        try:
            session = SQLiteSession("user-42", str(tmp_path / "sessions.sqlite"))
            for trace_id, given in (("trace_" + "5" * 32, session), ("trace_" + "6" * 32, None)):
                agent = Agent(name="Concierge", model=DemoModel([[text("Hello!")]]))
                config = RunConfig(trace_id=trace_id)
                Runner.run_sync(agent, "hi", session=given, run_config=config)
            assert processor.flush(10)
        finally:
            set_trace_processors([])
            processor.shutdown(10)
        traces = receiver.by_trace()
    keys = [
        {span.attrs.get("gen_ai.conversation.id") for span in traces[otel_trace_id_hex(t)]}
        for t in ("trace_" + "5" * 32, "trace_" + "6" * 32)
    ]
    assert keys == [{"user-42"}, {None}]


def test_handoffs_are_linked_from_the_receiving_agent(exported: Exported) -> None:
    _tid, spans = exported.trace("handoff, tool call, answer")
    (handoff,) = [s for s in spans if s.name.startswith("handoff")]
    (billing,) = [s for s in spans if s.name == "invoke_agent Billing"]
    ((trace_id, span_id, attrs),) = billing.links
    assert (trace_id, span_id) == (handoff.trace_id, handoff.span_id)
    assert attrs["openai_agents.link.type"] == "handoff"
    assert handoff.attrs["openai_agents.handoff.to_agent"] == "Billing"


def test_tool_spans_carry_the_call_id_the_model_asked_for(exported: Exported) -> None:
    trace_id, spans = exported.trace("handoff, tool call, answer")
    store = Store(exported.db)
    calls = [
        item["call_id"]
        for s in store.spans(trace_id)
        if s.kind == "generation"
        for item in (s.data.get("output") or [])
        if item.get("type") == "function_call" and item.get("name") == "lookup_order"
    ]
    (tool,) = [s for s in spans if s.name == "execute_tool lookup_order"]
    assert calls and tool.attrs["gen_ai.tool.call.id"] == calls[0]
    _tid, spans = exported.trace("flaky tool recovered")
    ids = [s.attrs.get("gen_ai.tool.call.id") for s in spans if s.name.startswith("execute_tool")]
    assert len(ids) == 3 and len(set(ids)) == 3 and all(ids)


def test_ids_are_derived_from_the_sdk_ids(exported: Exported) -> None:
    store = Store(exported.db)
    received = {s.span_id: s for s in exported.spans()}
    for trace_id in exported.cases:
        hexid = otel_trace_id_hex(trace_id)
        assert hexid == trace_id.removeprefix("trace_")  # well-formed ids map one to one
        root = received[f"{otel_root_span_id(trace_id):016x}"]
        assert root.trace_id == hexid and not root.parent_span_id
        for record in store.spans(trace_id):
            span = received[f"{otel_span_id(record.span_id):016x}"]
            assert span.trace_id == hexid
            assert span.attrs["openai_agents.span_id"] == record.span_id
            parent = (
                otel_span_id(record.parent_id) if record.parent_id else otel_root_span_id(trace_id)
            )
            assert span.parent_span_id == f"{parent:016x}"


def _iso_ns(value: str) -> int:
    """Independent ISO -> ns conversion (calendar.timegm, not turnscope's)."""
    parsed = datetime.fromisoformat(value)
    return calendar.timegm(parsed.utctimetuple()) * 10**9 + parsed.microsecond * 1000


def test_timestamps_are_the_sdks_to_the_microsecond(exported: Exported) -> None:
    received = {s.attrs.get("openai_agents.span_id"): s for s in exported.spans()}
    checked = 0
    for sdk_span_id, (started, ended) in exported.clock.times.items():
        span = received.get(sdk_span_id)
        if span is None:
            continue
        assert span.start_ns == _iso_ns(started), span.name
        assert span.end_ns == _iso_ns(ended), span.name
        checked += 1
    assert checked == len(exported.spans()) - len(exported.cases)  # every span but the roots
    for trace_id in exported.cases:
        spans = [s for s in exported.spans() if s.trace_id == otel_trace_id_hex(trace_id)]
        root = root_of(spans)
        assert root.start_ns <= min(s.start_ns for s in spans)
        assert root.end_ns >= max(s.end_ns for s in spans)


def test_no_content_leaves_by_default(exported: Exported) -> None:
    content_keys = {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "turnscope.exception.message",
        "turnscope.explanation",
    }
    for span in exported.spans():
        assert not content_keys & set(span.attrs), span.name
        text = json.dumps(span.attrs) + span.status_message
        assert "card declined" not in text and "A-1009" not in text and "policy_version" not in text


def test_the_database_is_written_too(exported: Exported) -> None:
    store = Store(exported.db)
    assert store.count_runs() == len(exported.cases)
    for trace_id, case in exported.cases.items():
        run = store.get_run(trace_id)
        assert run is not None and (run["status"], run["category"]) == (case.status, case.category)


def test_demo_command_sends_the_runs(tmp_path: Path, capsys: Any) -> None:
    from turnscope.cli import main

    with receiver_for("http/protobuf") as receiver:
        code = main(
            [
                "demo",
                "--db",
                str(tmp_path / "demo.db"),
                "--otlp-endpoint",
                receiver.endpoint,
                "--otlp-protocol",
                "http/protobuf",
                "--quiet",
            ]
        )
        assert code == 0
        by_trace = check_traces(receiver.snapshot())
    store = Store(str(tmp_path / "demo.db"))
    runs = store.list_runs(limit=100)
    # every run but the worker killed mid-run (nothing of it could be exported live)
    assert len(by_trace) == len(runs) - 1
    killed = [r for r in runs if r["status"] == "incomplete"]
    assert len(killed) == 1 and otel_trace_id_hex(killed[0]["trace_id"]) not in by_trace
