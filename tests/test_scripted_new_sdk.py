"""New-SDK behaviours, driven by the SDK's own ``agents.testing.ScriptedModel``.

Task/turn spans, retries, error handlers, tool-not-found reported to the model, model
timeouts, task/turn spans switched off, streamed guardrails. Skipped on openai-agents 0.0.17.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.tools import lookup_tool

pytest.importorskip("agents.testing")

from agents import (
    Agent,
    GuardrailFunctionOutput,
    ModelRetrySettings,
    ModelSettings,
    RunConfig,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from turnscope.store.queries import Store

pytestmark = pytest.mark.new_sdk


lookup = lookup_tool("nothing new")


def scripted(steps: list[Any]) -> ScriptedModel:
    """The SDK's fake model, with model spans on."""
    return ScriptedModel(steps, emit_traces=True)


def record(recorder: Any, db_url: str, trace_id: str) -> tuple[dict[str, Any], Any]:
    """Flush and return the stored run and its recomputed analysis."""
    assert recorder.flush(10)
    store = Store(db_url)
    run = store.get_run(trace_id)
    assert run is not None, trace_id
    return run, store.analysis(trace_id)


def cfg(n: int, **kwargs: Any) -> RunConfig:
    """A RunConfig with a known trace id."""
    return RunConfig(trace_id=f"trace_{n:032x}", **kwargs)


def test_model_error_names_the_exception_and_the_generation_span(
    recorder: Any, db_url: str
) -> None:
    agent = Agent(name="Writer", model=scripted([ValueError("context window exceeded")]))
    with pytest.raises(ValueError):
        Runner.run_sync(agent, "hi", run_config=cfg(1))
    run, analysis = record(recorder, db_url, f"trace_{1:032x}")
    assert (run["status"], run["category"], run["exception"]) == (
        "failed",
        "model_error",
        "ValueError",
    )
    failing = analysis.structure.by_id[run["failing_span_id"]]
    assert failing.kind == "generation" and failing.turn == 1
    assert "context window exceeded" in run["explanation"]


def test_max_turns_with_scripted_model_flags_the_loop(recorder: Any, db_url: str) -> None:
    steps = [[function_call("lookup", {"q": "same"}, call_id=f"c{i}")] for i in range(6)]
    agent = Agent(name="Looper", tools=[lookup], model=scripted(steps))
    with pytest.raises(Exception, match="Max turns"):
        Runner.run_sync(agent, "loop", max_turns=4, run_config=cfg(2))
    run, analysis = record(recorder, db_url, f"trace_{2:032x}")
    assert run["category"] == "max_turns_exceeded"
    assert (run["failing_turn"], run["max_turns"], run["failing_tool"]) == (4, 4, "lookup")
    assert "stopped after turn 4 of 4" in run["explanation"]
    assert analysis.loops[0]["count"] == 4
    assert [t.span_id is not None for t in analysis.structure.turns] == [True] * 4  # SDK turns


def test_unknown_tool_reported_to_the_model_is_recovered(recorder: Any, db_url: str) -> None:
    agent = Agent(
        name="Helper",
        tools=[lookup],
        model=scripted([[function_call("nope", {}, call_id="c1")], [assistant_message("ok")]]),
    )
    config = cfg(3, tool_not_found_behavior="return_error_to_model")
    assert Runner.run_sync(agent, "hi", run_config=config).final_output == "ok"
    run, _ = record(recorder, db_url, f"trace_{3:032x}")
    assert run["status"] == "succeeded_with_errors"
    assert run["recovered_errors"][0]["category"] == "tool_not_found"


def test_retried_model_call_is_a_recovered_error_in_one_turn(recorder: Any, db_url: str) -> None:
    settings = ModelSettings(
        retry=ModelRetrySettings(max_retries=2, policy=lambda *args, **kwargs: True)
    )
    agent = Agent(
        name="Retrier",
        model=scripted([TimeoutError("upstream timeout"), [assistant_message("second try")]]),
        model_settings=settings,
    )
    assert Runner.run_sync(agent, "hi", run_config=cfg(4)).final_output == "second try"
    run, analysis = record(recorder, db_url, f"trace_{4:032x}")
    assert run["status"] == "succeeded_with_errors"
    assert run["turns"] == 1
    assert analysis.structure.turns[0].model_calls == 2
    assert run["recovered_errors"][0]["category"] == "model_error"


def test_max_turns_handler_turns_the_failure_into_a_recovered_error(
    recorder: Any, db_url: str
) -> None:
    steps = [[function_call("lookup", {"q": str(i)}, call_id=f"c{i}")] for i in range(3)]
    agent = Agent(name="Bounded", tools=[lookup], model=scripted(steps))
    result = Runner.run_sync(
        agent,
        "hi",
        max_turns=2,
        run_config=cfg(5),
        error_handlers={"max_turns": lambda _input: "best effort answer"},
    )
    assert result.final_output == "best effort answer"
    run, _ = record(recorder, db_url, f"trace_{5:032x}")
    assert run["status"] == "succeeded_with_errors"
    assert run["recovered_errors"][0]["category"] == "max_turns_exceeded"


def test_turns_are_derived_when_turn_spans_are_off(recorder: Any, db_url: str) -> None:
    billing = Agent(
        name="Billing",
        tools=[lookup],
        model=scripted(
            [[function_call("lookup", {"q": "A-1"}, call_id="c1")], [assistant_message("done")]]
        ),
    )
    triage = Agent(
        name="Triage",
        handoffs=[billing],
        model=scripted([[function_call("transfer_to_billing", {}, call_id="h1")]]),
    )
    config = cfg(6, tracing={"include_task_and_turn_spans": False})
    Runner.run_sync(triage, "where is A-1?", run_config=config)
    run, analysis = record(recorder, db_url, f"trace_{6:032x}")
    assert run["status"] == "succeeded" and run["agents"] == ["Triage", "Billing"]
    turns = [(t.agent, t.number, t.span_id) for t in analysis.structure.turns]
    assert turns == [("Triage", 1, None), ("Billing", 2, None), ("Billing", 3, None)]


def test_explicit_turn_numbers_run_across_handoffs(recorder: Any, db_url: str) -> None:
    billing = Agent(name="Billing", model=scripted([[assistant_message("done")]]))
    triage = Agent(
        name="Triage",
        handoffs=[billing],
        model=scripted([[function_call("transfer_to_billing", {}, call_id="h1")]]),
    )
    Runner.run_sync(triage, "hi", run_config=cfg(7))
    _run, analysis = record(recorder, db_url, f"trace_{7:032x}")
    assert [(t.agent, t.number) for t in analysis.structure.turns] == [
        ("Triage", 1),
        ("Billing", 2),
    ]


def test_failed_agent_as_tool_is_recovered_by_the_outer_run(recorder: Any, db_url: str) -> None:
    inner = Agent(name="Inner", model=scripted([RuntimeError("inner model down")]))
    outer = Agent(
        name="Outer",
        tools=[inner.as_tool(tool_name="ask_inner", tool_description="Ask the inner agent.")],
        model=scripted(
            [
                [function_call("ask_inner", {"input": "help"}, call_id="t1")],
                [assistant_message("answered without help")],
            ]
        ),
    )
    assert Runner.run_sync(outer, "hi", run_config=cfg(8)).final_output == "answered without help"
    run, analysis = record(recorder, db_url, f"trace_{8:032x}")
    assert run["status"] == "succeeded_with_errors"
    assert run["agents"] == ["Outer"]
    nested = [s for s in analysis.structure.scopes if not s.top_level]
    assert len(nested) == 1 and [t.agent for t in nested[0].turns] == ["Inner"]
    assert any(g["tool"] == "ask_inner" for g in run["recovered_errors"])


@input_guardrail
async def block_everything(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
    """Trip on any input."""
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)


def test_streamed_input_guardrail(recorder: Any, db_url: str) -> None:
    agent = Agent(
        name="Guarded",
        input_guardrails=[block_everything],
        model=scripted([ModelStep.respond(_slow_answer)]),
    )

    async def main() -> None:
        result = Runner.run_streamed(agent, "hi", run_config=cfg(9))
        async for _ in result.stream_events():
            pass

    with pytest.raises(Exception, match="Guardrail"):
        asyncio.run(main())
    run, _ = record(recorder, db_url, f"trace_{9:032x}")
    assert run["category"] == "input_guardrail_tripwire"
    assert run["exception"] == "InputGuardrailTripwireTriggered"
    assert run["failing_agent"] == "Guarded"


async def _slow_answer(call: Any) -> Any:
    await asyncio.sleep(0.5)
    return [assistant_message("too late")]


def test_model_timeout(recorder: Any, db_url: str) -> None:
    agent = Agent(
        name="Slow",
        model=scripted([ModelStep.respond(_slow_answer)]),
        model_settings=ModelSettings(timeout=0.05),
    )
    with pytest.raises(Exception, match="timed out"):
        Runner.run_sync(agent, "hi", run_config=cfg(10))
    run, _ = record(recorder, db_url, f"trace_{10:032x}")
    assert (run["category"], run["exception"]) == ("model_error", "ModelTimeoutError")
    assert run["failing_turn"] == 1


def test_silent_tool_timeout_is_a_recovered_error(recorder: Any, db_url: str) -> None:
    @function_tool(timeout=0.05)
    async def sluggish(q: str) -> str:
        """Too slow; the SDK reports the timeout to the model as the tool's output."""
        await asyncio.sleep(2)
        return "late"

    agent = Agent(
        name="Patient",
        tools=[sluggish],
        model=scripted(
            [[function_call("sluggish", {"q": "x"}, call_id="s1")], [assistant_message("gave up")]]
        ),
    )
    assert Runner.run_sync(agent, "hi", run_config=cfg(11)).final_output == "gave up"
    run, _ = record(recorder, db_url, f"trace_{11:032x}")
    assert run["status"] == "succeeded_with_errors"
    assert run["recovered_errors"][0]["category"] == "tool_timeout"
    assert run["recovered_errors"][0]["tool"] == "sluggish"


def test_tool_awaiting_approval_is_a_pause_not_a_cancellation(recorder: Any, db_url: str) -> None:
    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file (needs a human's approval)."""
        return f"deleted {path}"

    steps = [
        [function_call("delete_file", {"path": "/tmp/x"}, call_id="c1")],
        [assistant_message("done")],
    ]
    agent = Agent(name="Janitor", tools=[delete_file], model=scripted(steps))
    config = cfg(40, workflow_name="Cleanup")
    first = Runner.run_sync(agent, "delete /tmp/x", run_config=config)
    assert first.interruptions
    run, _ = record(recorder, db_url, f"trace_{40:032x}")
    assert (run["status"], run["category"], run["exception"]) == ("succeeded", None, None)
    assert "awaits a human's approval" in run["explanation"]
    assert run["failing_span_id"]  # the paused tool call, for the viewer to focus

    state = first.to_state()
    for item in first.interruptions:
        state.approve(item)
    assert Runner.run_sync(agent, state, run_config=config).final_output == "done"
    run, _ = record(recorder, db_url, f"trace_{40:032x}")
    assert (run["status"], run["category"]) == ("succeeded", None)
    assert "final output" in run["explanation"]
