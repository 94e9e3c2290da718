"""``turnscope export-otlp``: replaying stored runs into a real OTLP receiver.

Replaying twice sends the very same spans (same trace and span ids, same bytes), and a
replay matches what live export sent. Runs still in progress are skipped; runs whose process
died are sent as incomplete. Both protocols, both SDK versions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from agents.tracing import agent_span, function_span, trace
from support.net import free_port
from support.otlp_receiver import Receiver, check_traces, root_of
from support.tools import lookup_tool

from turnscope.cli import main
from turnscope.demo.runner import CASES, has_feature
from turnscope.ids import otel_span_id, otel_trace_id_hex

TITLES = (
    "handoff, tool call, answer",
    "flaky tool recovered",
    "agent used as a tool",
    "search loop hits max_turns",
    "max_turns, streamed",
    "input guardrail tripwire",
    "tool raises, no handler",
    "caller timeout cancels the run",
)


def tid(n: int) -> str:
    """A well-formed SDK trace id."""
    return f"trace_{0xB0000 + n:032x}"


def record(processor: Any, first: int = 0) -> list[str]:
    """Run a selection of demo cases through ``processor`` (registered); their trace ids."""
    ids = []
    cases = [c for c in CASES if c.title in TITLES and has_feature(c.needs)]
    for index, case in enumerate(cases, first):
        trace_id = tid(index)
        try:
            asyncio.run(case.run(trace_id))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
        ids.append(trace_id)
    assert processor.flush(30)
    return ids


def export(db: str, receiver: Receiver, *extra: str) -> int:
    """``turnscope export-otlp`` to ``receiver``."""
    args = ["export-otlp", "--db", db, "--endpoint", receiver.endpoint]
    return main([*args, "--protocol", receiver.protocol, *extra])


@pytest.fixture
def stored(db_url: str, make_recorder: Any) -> Iterator[list[str]]:
    """Demo runs recorded into ``db_url`` (no OTLP), plus one whose process went away."""
    with make_recorder(db_url) as processor:
        ids = record(processor)
    # a run left open when its process stopped: the shutdown marks it incomplete
    with make_recorder(db_url) as dying:
        t = trace("Reporting", trace_id=tid(99))
        t.start(mark_as_current=False)
        agent = agent_span(name="Reporter", parent=t)
        agent.start()
        tool = function_span(name="export_report", parent=agent, input='{"month": "2026-10"}')
        tool.start()
        assert dying.flush(10)
    yield [*ids, tid(99)]


def test_replaying_twice_sends_the_same_spans(
    stored: list[str], db_url: str, receiver: Receiver, capsys: Any
) -> None:
    assert export(db_url, receiver) == 0
    first = receiver.snapshot()
    out = capsys.readouterr()
    assert f"Exported {len(stored)} run(s) ({len(first)} spans)" in out.out
    assert "the backend accepted all" in out.out
    assert f"{len(stored)}/{len(stored)} runs" in out.err  # the progress display
    receiver.clear()
    assert export(db_url, receiver, "--quiet") == 0
    second = receiver.snapshot()
    assert capsys.readouterr().err == ""
    by_trace = check_traces(first)
    check_traces(second)
    assert set(by_trace) == {otel_trace_id_hex(t) for t in stored}  # no new traces
    assert sorted(s.raw for s in first) == sorted(s.raw for s in second)  # byte for byte


def test_a_run_whose_process_died_is_sent_as_incomplete(
    stored: list[str], db_url: str, receiver: Receiver
) -> None:
    assert export(db_url, receiver, "--trace-id", tid(99), "--quiet") == 0
    spans = receiver.snapshot()
    check_traces(spans)
    root = root_of(spans)
    assert root.status == "ERROR" and root.attrs["error.type"] == "incomplete"
    assert root.attrs["turnscope.status"] == "incomplete"
    unfinished = {s.name: s for s in spans if s.attrs.get("turnscope.span.incomplete")}
    assert set(unfinished) == {"invoke_agent Reporter", "execute_tool export_report"}
    assert all(s.end_ns >= s.start_ns for s in unfinished.values())


def test_a_replay_matches_live_export(db_url: str, receiver: Receiver, make_recorder: Any) -> None:
    options = {"otlp_endpoint": receiver.endpoint, "otlp_protocol": receiver.protocol}
    with make_recorder(db_url, **options) as live:
        ids = record(live, first=50)
    sent_live = {(s.trace_id, s.span_id): s.raw for s in receiver.snapshot()}
    receiver.clear()
    assert export(db_url, receiver, "--quiet") == 0
    replayed = {(s.trace_id, s.span_id): s.raw for s in receiver.snapshot()}
    assert len(sent_live) > len(ids)
    assert replayed == sent_live  # a backend that de-duplicates keeps one copy of each


def test_filters_and_running_runs(
    db_url: str, receiver: Receiver, recorder: Any, capsys: Any
) -> None:
    lookup = lookup_tool("{q}")
    from turnscope.demo.model import DemoModel, call, text

    ids = {n: f"trace_{n}{'a' * 31}" for n in (1, 2, 3)}
    for n in (1, 2):
        model = DemoModel([[call("lookup")], [text("x")]])
        agent = Agent(name=f"A{n}", tools=[lookup], model=model)
        Runner.run_sync(agent, "go", run_config=RunConfig(trace_id=ids[n]))
    t = trace("Still going", trace_id=ids[3])
    t.start(mark_as_current=False)
    open_agent = agent_span(name="Busy", parent=t)
    open_agent.start()
    assert recorder.flush(10)
    try:
        # one run, by a unique prefix
        assert export(db_url, receiver, "--trace-id", ids[2][:10], "--quiet") == 0
        assert {s.trace_id for s in receiver.snapshot()} == {otel_trace_id_hex(ids[2])}
        receiver.clear()
        # everything: the running run is skipped and said so
        assert export(db_url, receiver, "--quiet") == 0
        assert "1 run(s) still running were skipped" in capsys.readouterr().out
        assert {s.trace_id for s in receiver.snapshot()} == {
            otel_trace_id_hex(ids[1]),
            otel_trace_id_hex(ids[2]),
        }
        receiver.clear()
        # nothing started in the future
        assert export(db_url, receiver, "--since", "2999-01-01", "--quiet") == 0
        assert receiver.snapshot() == []
        # an unknown id is a one-line error
        capsys.readouterr()
        assert export(db_url, receiver, "--trace-id", "trace_nope", "--quiet") == 2
        assert "no run with trace id trace_nope" in capsys.readouterr().err
    finally:
        open_agent.finish()
        t.finish()


def test_an_unreachable_backend_is_reported(
    stored: list[str], db_url: str, capsys: Any, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    code = main(
        ["export-otlp", "--db", db_url, "--endpoint", endpoint, "--timeout", "5", "--quiet"]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "did not reach the backend" in out and "Run the command again" in out


def test_the_jaeger_link_of_a_run_opens_its_trace(
    stored: list[str], db_url: str, receiver: Receiver, capsys: Any, monkeypatch: Any
) -> None:
    assert export(db_url, receiver, "--quiet") == 0
    capsys.readouterr()
    monkeypatch.setenv("TURNSCOPE_JAEGER_URL", "http://jaeger.example:16686/")
    trace_id = stored[3]  # the max_turns loop
    assert main(["why", trace_id, "--db", db_url]) == 0
    out = capsys.readouterr().out
    received = {s.trace_id for s in receiver.snapshot()}
    link = f"http://jaeger.example:16686/trace/{otel_trace_id_hex(trace_id)}"
    assert link in out and otel_trace_id_hex(trace_id) in received
    root = root_of([s for s in receiver.snapshot() if s.trace_id == otel_trace_id_hex(trace_id)])
    failing = root.attrs["turnscope.failure.span_id"]
    assert root.attrs["turnscope.failure.otel_span_id"] == f"{otel_span_id(failing):016x}"
