"""The verdict diagnoses real failures: the promise of docs/verdict.md.

Each test drives the real ``Runner`` (a fake model, the SDK's real OpenAI model on a mock HTTP
transport, real MCP stdio servers, real failing session stores) through a failure shape users
of the Agents SDK really hit, records it with a ``TurnscopeProcessor`` into SQLite, and checks
the verdict: status, category, reason, exception, the agent and turn to blame, and warnings.
A run that returned a final output is never failed, and a clean run carries no warning.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunConfig,
    RunHooks,
    Runner,
    add_trace_processor,
    function_tool,
    input_guardrail,
    trace,
)
from conftest import NEW_SDK
from openai import _base_client
from openai.types.responses import ResponseOutputMessage, ResponseOutputRefusal
from pydantic import BaseModel, ValidationError
from support.tools import lookup_tool

from turnscope.demo.environment import BuggyProcessor  # the demo's own: one copy
from turnscope.demo.model import DemoModel, call, delay, text
from turnscope.store.queries import Store

httpx = getattr(_base_client, "httpx", None) or _base_client.httpx2  # openai 3.x: httpx2
MCP_SERVER = Path(__file__).parent / "support" / "mcp_server.py"
SUCCEEDED = ("succeeded", "succeeded_with_errors")

Scenario = Callable[[RunConfig], Awaitable[Any]]


# --- the one helper: run a case, fetch its verdict --------------------------------------------


class Case:
    """What one run gave: the caller's result or exception, and the recorded verdict."""

    def __init__(self, result: Any, raised: BaseException | None, run: dict[str, Any], v: Any):
        self.result, self.raised, self.run, self.verdict = result, raised, run, v

    def fields(self, *names: str) -> dict[str, Any]:
        """The verdict's fields by name (``warnings`` as their kinds), for one assert."""
        v = self.verdict
        return {
            n: [w.kind for w in v.warnings] if n == "warnings" else getattr(v, n) for n in names
        }


def diagnose(
    recorder: Any, db_url: str, scenario: Any, *, streamed: bool = False, **kw: Any
) -> Case:
    """Run ``scenario`` (an agent, or an async function of a RunConfig) and read its verdict."""
    trace_id = f"trace_{uuid.uuid4().hex}"
    config = RunConfig(trace_id=trace_id, workflow_name="diagnosis")

    async def go() -> Any:
        if not isinstance(scenario, Agent):
            return await scenario(config)
        if not streamed:
            return await Runner.run(scenario, "hi", run_config=config, **kw)
        result = Runner.run_streamed(scenario, "hi", run_config=config, **kw)
        try:
            async for _event in result.stream_events():
                pass
        finally:
            # the SDK ends a failed streamed run's trace in its own task: let it, like a live app
            await asyncio.sleep(0.1)
        return result

    result, raised = None, None
    try:
        result = asyncio.get_event_loop().run_until_complete(go())
    except Exception as exc:  # the failure under test
        raised = exc
    assert recorder.flush(10)
    store = Store(db_url)
    try:
        run = store.get_run(trace_id)
        assert run is not None, f"nothing recorded for {trace_id} (raised {raised!r})"
        return Case(result, raised, run, store.analysis(trace_id).verdict)
    finally:
        store.close()


# --- fakes ------------------------------------------------------------------------------------


lookup = lookup_tool("nothing new")


def openai_model(steps: list[Any]) -> Any:
    """The SDK's real Responses model; each request answered by the next step: ``(status,
    body)`` an HTTP error, an exception the transport raises, a dict a 200 body, or a list of
    output items."""
    from agents import OpenAIResponsesModel

    def answer(request: Any) -> Any:
        step = steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, tuple):
            return httpx.Response(step[0], json=step[1], request=request)
        if isinstance(step, dict):
            return httpx.Response(200, json=step, request=request)
        body = DemoModel([], api="responses")._response(step).model_dump(mode="json")
        return httpx.Response(200, json=body, request=request)

    client = openai.AsyncOpenAI(
        api_key="sk-test",
        base_url="http://api.invalid/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    return OpenAIResponsesModel(model="gpt-4o", openai_client=client)


def api_body(message: str, code: str | None, kind: str = "invalid_request_error") -> dict:
    """An OpenAI error body."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def rate_limit(cls: type = openai.RateLimitError) -> Exception:
    """A genuine 429 exception (``cls`` may be a provider's subclass), as a model raises it."""
    request = httpx.Request("POST", "https://api.openai.com/v1/responses")
    body = api_body("Rate limit reached for gpt-4o", "rate_limit_exceeded", "requests")
    return cls(
        "Rate limit reached for gpt-4o",
        response=httpx.Response(429, request=request),
        body=body["error"],
    )


class LiteLLMRateLimitError(openai.RateLimitError):
    """Like LiteLLM's exceptions, which subclass openai's."""


def validation_error() -> ValidationError:
    """The pydantic error a provider's unreadable answer gives."""
    try:
        openai.types.responses.Response.model_validate({"id": 3})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


# --- model errors: a reason for each ----------------------------------------------------------

MODEL_FAILURES = [
    ("rate_limited", (429, api_body("Rate limit reached", "rate_limit_exceeded", "requests"))),
    ("quota_exceeded", (429, api_body("You exceeded your current quota", "insufficient_quota"))),
    (
        "context_length_exceeded",
        (400, api_body("Maximum context is 128000", "context_length_exceeded")),
    ),
    (
        "context_length_exceeded",
        (400, api_body("This request exceeds the context size limit", None)),
    ),
    (
        "invalid_request",
        (
            400,
            api_body(
                "Item 'rs_68a1' of type 'reasoning' was provided without its required following"
                " item.",
                None,
            ),
        ),
    ),
    ("auth", (401, api_body("Incorrect API key provided: sk-test.", "invalid_api_key"))),
    ("not_found", (404, api_body("The model `gpt-9` does not exist", "model_not_found"))),
    ("server_error", (500, api_body("The server had an error", None, "server_error"))),
    ("server_error", (503, api_body("The engine is currently overloaded.", None, "server_error"))),
    ("connection", httpx.ConnectError("connection refused")),
    ("timeout", httpx.ReadTimeout("read timed out")),
    ("bad_response", {"id": "resp_1", "object": "response", "output": "not a list"}),
]


@pytest.mark.parametrize(
    ("reason", "failure"),
    MODEL_FAILURES,
    ids=[
        "429-rate-limit",
        "429-insufficient-quota",
        "400-context-length-code",
        "400-context-size-no-code",
        "400-reasoning-item",
        "401",
        "404",
        "500",
        "503",
        "connection",
        "timeout",
        "unreadable-200",
    ],
)
def test_a_failed_model_call_names_its_reason_agent_and_turn(
    recorder: Any, db_url: str, reason: str, failure: Any
) -> None:
    model = openai_model([[call("lookup", {"q": "x"})], failure])
    case = diagnose(recorder, db_url, Agent(name="Writer", tools=[lookup], model=model))
    assert case.raised is not None
    assert case.fields(
        "status", "category", "reason", "exception", "agent", "turn", "warnings"
    ) == {
        "status": "failed",
        "category": "model_error",
        "reason": reason,
        "exception": type(case.raised).__name__,
        "agent": "Writer",
        "turn": 2,
        "warnings": [],
    }


def test_a_providers_subclass_of_rate_limit_error_is_rate_limited(
    recorder: Any, db_url: str
) -> None:
    model = DemoModel([rate_limit(LiteLLMRateLimitError)], api="responses")
    case = diagnose(recorder, db_url, Agent(name="Writer", model=model))
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "model_error",
        "reason": "rate_limited",
        "exception": "LiteLLMRateLimitError",
        "agent": "Writer",
        "turn": 1,
    }


def test_a_model_answer_that_does_not_validate_is_a_bad_response(
    recorder: Any, db_url: str
) -> None:
    model = DemoModel([validation_error()], api="responses")
    case = diagnose(recorder, db_url, Agent(name="Writer", model=model))
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "model_error",
        "reason": "bad_response",
        "exception": "ValidationError",
        "agent": "Writer",
        "turn": 1,
    }


def test_a_streamed_rate_limit_is_rate_limited(recorder: Any, db_url: str) -> None:
    model = DemoModel([rate_limit()], api="responses")
    case = diagnose(recorder, db_url, Agent(name="Writer", model=model), streamed=True)
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "model_error",
        "reason": "rate_limited",
        "exception": "RateLimitError",
        "agent": "Writer",
        "turn": 1,
    }


# --- config errors ----------------------------------------------------------------------------


class Loose(BaseModel):
    """An output type without a strict schema (a free-form dict field)."""

    answer: str
    extra: dict[str, Any]


def test_an_output_type_without_a_strict_schema_is_a_config_error(
    recorder: Any, db_url: str
) -> None:
    agent = Agent(name="Extractor", output_type=Loose, model=DemoModel([[text("{}")]]))
    case = diagnose(recorder, db_url, agent)
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "config_error",
        "reason": None,
        "exception": "UserError",
        "agent": None,
        "turn": None,
    }


def test_a_setup_error_in_a_trace_with_no_spans_is_a_config_error(
    recorder: Any, db_url: str
) -> None:
    async def scenario(config: RunConfig) -> Any:
        agent = Agent(name="Extractor", output_type=Loose, model=DemoModel([[text("{}")]]))
        # run_streamed raises before the SDK starts a trace: only the user's trace sees it
        with trace("diagnosis", trace_id=config.trace_id):
            return Runner.run_streamed(agent, "hi")

    case = diagnose(recorder, db_url, scenario)
    assert case.fields("status", "category", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "config_error",
        "exception": "UserError",
        "agent": None,
        "turn": None,
    }


@pytest.mark.new_sdk
def test_incompatible_run_settings_are_a_config_error(recorder: Any, db_url: str) -> None:
    from agents import SQLiteSession

    async def scenario(config: RunConfig) -> Any:
        agent = Agent(name="Chat", model=DemoModel([[text("hello")]]))
        with trace("diagnosis", trace_id=config.trace_id):  # raised before the SDK's trace
            return await Runner.run(
                agent, "hi", session=SQLiteSession("s"), previous_response_id="resp_1"
            )

    case = diagnose(recorder, db_url, scenario)
    assert case.fields("status", "category", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "config_error",
        "exception": "UserError",
        "agent": None,
        "turn": None,
    }


# --- tracing errors ---------------------------------------------------------------------------


def test_a_buggy_trace_processor_is_a_tracing_error_never_the_agents(
    recorder: Any, db_url: str
) -> None:
    add_trace_processor(BuggyProcessor())  # beside turnscope; conftest resets the list
    case = diagnose(recorder, db_url, Agent(name="Helper", model=DemoModel([[text("ok")]])))
    if NEW_SDK:  # 0.24 catches processor exceptions: the run is fine
        assert case.raised is None
        expected = {"status": "succeeded", "category": None, "exception": None, "agent": "Helper"}
    else:  # 0.0.17 lets the exception reach the caller
        expected = {
            "status": "failed",
            "category": "tracing_error",
            "exception": "RuntimeError",
            "agent": None,
        }
    assert case.fields("status", "category", "exception", "agent") == expected


# --- guardrails -------------------------------------------------------------------------------


@input_guardrail
async def broken_policy(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
    """A guardrail with a bug: it raises instead of deciding."""
    raise KeyError("policy")


@input_guardrail
async def block_everything(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
    """Trip on any input."""
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)


def guarded(guardrail: Any) -> Agent:
    """An agent whose model answers a little after its input guardrail ran."""
    return Agent(
        name="Support",
        input_guardrails=[guardrail],
        model=DemoModel([delay(0.05, [text("hello")])]),
    )


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
def test_a_guardrail_that_raises_is_a_guardrail_error_not_a_cancellation(
    recorder: Any, db_url: str, streamed: bool
) -> None:
    case = diagnose(recorder, db_url, guarded(broken_policy), streamed=streamed)
    assert isinstance(case.raised, KeyError)
    assert case.fields("status", "category", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "guardrail_error",
        "exception": "KeyError",
        "agent": "Support",
        "turn": 1,
    }


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
def test_a_tripped_input_guardrail_outranks_the_cancellation_it_causes(
    recorder: Any, db_url: str, streamed: bool
) -> None:
    case = diagnose(recorder, db_url, guarded(block_everything), streamed=streamed)
    assert case.fields("status", "category", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "input_guardrail_tripwire",
        "exception": "InputGuardrailTripwireTriggered",
        "agent": "Support",
        "turn": 1,
    }


# --- MCP: real stdio servers ------------------------------------------------------------------


def mcp_agent(mode: str, *, connect: bool = True, **server_kw: Any) -> Scenario:
    """A run of agent Orders calling ``lookup_order`` on a real MCP server in ``mode``."""

    async def scenario(config: RunConfig) -> Any:
        from agents.mcp import MCPServerStdio

        server = MCPServerStdio(
            params={"command": sys.executable, "args": [str(MCP_SERVER), mode]},
            name=f"orders-{mode}",
            client_session_timeout_seconds=10,
            **server_kw,
        )
        steps = [[call("lookup_order", {"order_id": "A-1"})], [text("Order A-1 shipped")]]
        agent = Agent(name="Orders", mcp_servers=[server], model=DemoModel(steps))
        if connect:
            await server.connect()
        try:
            return await Runner.run(agent, "where is A-1?", run_config=config)
        finally:
            await server.cleanup()

    return scenario


def test_a_healthy_mcp_call_is_a_clean_success(recorder: Any, db_url: str) -> None:
    case = diagnose(recorder, db_url, mcp_agent("ok"))
    assert case.fields("status", "category", "warnings") == {
        "status": "succeeded",
        "category": None,
        "warnings": [],
    }


def test_an_mcp_result_flagged_is_error_is_a_warning_on_a_run_that_went_on(
    recorder: Any, db_url: str
) -> None:
    case = diagnose(recorder, db_url, mcp_agent("tool_error"))
    assert case.raised is None and case.verdict.status in SUCCEEDED
    assert case.fields("category", "warnings") == {
        "category": None,
        "warnings": ["tool_reported_error"],
    }
    assert case.verdict.warnings[0].agent == "Orders"


def test_an_mcp_server_that_dies_mid_call_is_an_mcp_call_error(recorder: Any, db_url: str) -> None:
    case = diagnose(recorder, db_url, mcp_agent("die"))
    assert case.raised is not None
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "mcp_error",
        "reason": "call",
        "exception": type(case.raised).__name__,
        "agent": "Orders",
        "turn": 1,
    }


# 0.0.17 lists an agent's MCP tools before it starts the agent's span: no span names the agent
WHERE_TOOLS_ARE_LISTED = (
    {"agent": "Orders", "turn": 1} if NEW_SDK else {"agent": None, "turn": None}
)


def test_an_mcp_server_never_connected_is_an_mcp_connect_error(recorder: Any, db_url: str) -> None:
    case = diagnose(recorder, db_url, mcp_agent("ok", connect=False))
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "mcp_error",
        "reason": "connect",
        "exception": "UserError",
        **WHERE_TOOLS_ARE_LISTED,
    }


def test_an_mcp_server_whose_tool_list_fails_is_an_mcp_list_tools_error(
    recorder: Any, db_url: str
) -> None:
    case = diagnose(recorder, db_url, mcp_agent("list_fails"))
    assert case.raised is not None
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "mcp_error",
        "reason": "list_tools",
        "exception": type(case.raised).__name__,
        **WHERE_TOOLS_ARE_LISTED,
    }


# --- sessions (0.24) --------------------------------------------------------------------------


def session_run(fail: str | None) -> Scenario:
    """A run with a SQLite session whose ``get_items`` or ``add_items`` fails."""

    async def scenario(config: RunConfig) -> Any:
        from agents import SQLiteSession

        class FailingSession(SQLiteSession):
            async def get_items(self, limit: int | None = None) -> Any:
                if fail == "get_items":
                    raise ConnectionError("session store unreachable (read)")
                return await super().get_items(limit)

            async def add_items(self, items: Any) -> None:
                if fail == "add_items":
                    raise ConnectionError("session store unreachable (write)")
                await super().add_items(items)

        agent = Agent(name="Chat", model=DemoModel([[text("hello")]]))
        # the SDK reads the session before it starts its trace: the user's trace sees it
        with trace("diagnosis", trace_id=config.trace_id):
            return await Runner.run(agent, "hi", session=FailingSession("s"))

    return scenario


@pytest.mark.new_sdk
@pytest.mark.parametrize("fail", ["get_items", "add_items"])
def test_a_session_store_that_fails_is_a_session_error(
    recorder: Any, db_url: str, fail: str
) -> None:
    case = diagnose(recorder, db_url, session_run(fail))
    assert isinstance(case.raised, ConnectionError)
    assert case.fields("status", "category", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "session_error",
        "exception": "ConnectionError",
        "agent": None,
        "turn": None,
    }


@pytest.mark.new_sdk
def test_a_run_with_a_working_session_is_a_clean_success(recorder: Any, db_url: str) -> None:
    case = diagnose(recorder, db_url, session_run(None))
    assert case.fields("status", "category", "warnings") == {
        "status": "succeeded",
        "category": None,
        "warnings": [],
    }


# --- nested runs ------------------------------------------------------------------------------


def specialist(steps: list[Any]) -> Agent:
    """The inner agent, run as a tool."""
    return Agent(name="Specialist", tools=[lookup], model=DemoModel(steps, api="responses"))


def billing_asking(tool: Any, final: str = "done") -> Agent:
    """The outer agent: calls ``ask_specialist`` (``tool``), then answers."""
    argument = "question" if "question" in tool.params_json_schema["properties"] else "input"
    steps = [[call("ask_specialist", {argument: "refund?"})], [text(final)]]
    return Agent(name="Billing", tools=[tool], model=DemoModel(steps))


def ask_tool(inner: Agent, max_turns: int = 10) -> Any:
    """An agent as a tool whose failure reaches the caller (both SDKs)."""

    @function_tool(failure_error_function=None)
    async def ask_specialist(question: str) -> str:
        """Ask the specialist."""
        result = await Runner.run(inner, question, max_turns=max_turns)
        return str(result.final_output)

    return ask_specialist


def test_a_nested_runs_model_failure_is_blamed_on_the_inner_agent_and_turn(
    recorder: Any, db_url: str
) -> None:
    inner = specialist([[call("lookup", {"q": "x"})], rate_limit()])
    case = diagnose(recorder, db_url, billing_asking(ask_tool(inner)))
    assert case.raised is not None
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "model_error",
        "reason": "rate_limited",
        "exception": type(case.raised).__name__,
        "agent": "Specialist",
        "turn": 2,
    }
    assert "Billing" in case.verdict.explanation and "ask_specialist" in case.verdict.explanation


@pytest.mark.new_sdk
def test_an_agent_as_tool_without_failure_handler_is_blamed_on_the_inner_agent(
    recorder: Any, db_url: str
) -> None:
    inner = specialist([[call("lookup", {"q": "x"})], rate_limit()])
    tool = inner.as_tool("ask_specialist", "Ask the specialist.", failure_error_function=None)
    case = diagnose(recorder, db_url, billing_asking(tool))
    assert case.fields("status", "category", "reason", "agent", "turn") == {
        "status": "failed",
        "category": "model_error",
        "reason": "rate_limited",
        "agent": "Specialist",
        "turn": 2,
    }


def test_a_nested_run_that_failed_while_the_outer_run_went_on_is_a_warning(
    recorder: Any, db_url: str
) -> None:
    inner = specialist([[call("lookup", {"q": "x"})], rate_limit()])
    tool = inner.as_tool("ask_specialist", "Ask the specialist.")
    case = diagnose(recorder, db_url, billing_asking(tool, "Sorry, I could not ask."))
    assert case.raised is None and case.verdict.status in SUCCEEDED
    assert case.fields("category", "warnings") == {
        "category": None,
        "warnings": ["nested_run_failed"],
    }
    warning = case.verdict.warnings[0]
    assert (warning.agent, warning.turn) == ("Specialist", 2)


def test_a_nested_run_that_hit_max_turns_is_blamed_on_the_inner_agent(
    recorder: Any, db_url: str
) -> None:
    inner = specialist([[call("lookup", {"q": str(i)})] for i in range(5)])
    case = diagnose(recorder, db_url, billing_asking(ask_tool(inner, max_turns=2)))
    assert case.fields("status", "category", "exception", "agent", "turn", "max_turns") == {
        "status": "failed",
        "category": "max_turns_exceeded",
        "exception": "MaxTurnsExceeded",
        "agent": "Specialist",
        "turn": 2,
        "max_turns": 2,
    }


# --- hooks ------------------------------------------------------------------------------------


class AuditHooks(RunHooks):
    """Run hooks whose ``on_tool_end`` fails."""

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        raise RuntimeError("audit log unavailable")


def test_a_tool_named_like_a_session_method_is_still_a_tool_error(
    recorder: Any, db_url: str
) -> None:
    """The verdict reads the SDK's own code on the traceback, never a name the user chose."""

    @function_tool(failure_error_function=None)
    def get_items(q: str) -> str:
        """Fetch items."""
        raise RuntimeError("inventory down")

    model = DemoModel([[call("get_items", {"q": "x"})]])
    case = diagnose(recorder, db_url, Agent(name="Shop", tools=[get_items], model=model))
    assert case.fields("status", "category", "tool") == {
        "status": "failed",
        "category": "tool_error",
        "tool": "get_items",
    }


def test_a_run_hook_that_raises_is_an_agent_error_never_the_tools(
    recorder: Any, db_url: str
) -> None:
    agent = Agent(
        name="Helper",
        tools=[lookup],
        model=DemoModel([[call("lookup", {"q": "x"})], [text("done")]]),
    )
    case = diagnose(recorder, db_url, agent, hooks=AuditHooks())
    assert case.fields("status", "category", "reason", "exception", "agent", "turn", "tool") == {
        "status": "failed",
        "category": "agent_error",
        "reason": "hook",
        "exception": "UserError",
        "agent": "Helper",
        "turn": 1,
        "tool": None,
    }
    assert "no failure handler" not in case.verdict.explanation


# --- warnings on runs that look fine ----------------------------------------------------------


@function_tool
def flaky_lookup(q: str) -> str:
    """A tool whose backend fails (the SDK reports the failure to the model)."""
    raise ValueError("backend returned 502")


def test_a_tool_failure_the_run_went_on_past_is_a_warning(recorder: Any, db_url: str) -> None:
    agent = Agent(
        name="Helper",
        tools=[flaky_lookup],
        model=DemoModel([[call("flaky_lookup", {"q": "x"})], [text("I could not look it up")]]),
    )
    case = diagnose(recorder, db_url, agent)
    assert case.raised is None and case.verdict.status in SUCCEEDED
    assert case.fields("category", "warnings") == {
        "category": None,
        "warnings": ["tool_reported_error"],
    }
    assert (case.verdict.warnings[0].agent, case.verdict.warnings[0].turn) == ("Helper", 1)


def test_an_empty_final_output_is_a_warning(recorder: Any, db_url: str) -> None:
    case = diagnose(recorder, db_url, Agent(name="Helper", model=DemoModel([[text("")]])))
    assert case.fields("status", "category", "warnings") == {
        "status": "succeeded",
        "category": None,
        "warnings": ["empty_final_output"],
    }


def test_a_model_refusal_as_the_final_message_is_a_warning(recorder: Any, db_url: str) -> None:
    refusal = ResponseOutputMessage(
        id="msg_refusal",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputRefusal(type="refusal", refusal="I can't help with that.")],
    )
    agent = Agent(name="Helper", model=DemoModel([[refusal]], api="responses"))
    # 0.24 raises ModelRefusalError unless a handler turns the refusal into a final output
    kw = {"error_handlers": {"model_refusal": lambda _input: "I can't help."}} if NEW_SDK else {}
    case = diagnose(recorder, db_url, agent, **kw)
    assert case.raised is None and case.verdict.status in SUCCEEDED
    assert case.fields("category", "warnings") == {"category": None, "warnings": ["refusal"]}


# --- defects found by running the SDK's own suite ---------------------------------------------


def test_a_plain_run_called_from_a_coroutine_named_like_streaming_is_not_streamed(
    recorder: Any, db_url: str
) -> None:
    async def scenario(config: RunConfig) -> Any:
        async def handle_stream_request() -> Any:  # a user's name: says nothing about streaming
            agent = Agent(name="Helper", model=DemoModel([rate_limit()], api="responses"))
            return await Runner.run(agent, "hi", run_config=config)

        return await asyncio.create_task(handle_stream_request())

    case = diagnose(recorder, db_url, scenario)
    assert not case.run["streamed"]
    assert case.fields("status", "category", "reason", "exception", "agent", "turn") == {
        "status": "failed",
        "category": "model_error",
        "reason": "rate_limited",
        "exception": "RateLimitError",
        "agent": "Helper",
        "turn": 1,
    }


def approval_then_resume(*, fail_once: bool, task_and_turn_spans: bool = True) -> Scenario:
    """A run paused for a tool approval, resumed from its RunState (after one failed attempt
    when ``fail_once``), all in one trace."""

    async def scenario(config: RunConfig) -> Any:
        @function_tool(needs_approval=True)
        def refund(order_id: str) -> str:
            """Refund an order."""
            return f"refunded {order_id}"

        steps: list[Any] = [[call("refund", {"order_id": "A-1"})]]
        if fail_once:
            steps.append(rate_limit())
        steps.append([text("refunded")])
        agent = Agent(name="Refunds", tools=[refund], model=DemoModel(steps, api="responses"))
        config.tracing = {"include_task_and_turn_spans": task_and_turn_spans}
        paused = await Runner.run(agent, "refund A-1", run_config=config)
        state = paused.to_state()
        for item in paused.interruptions:
            state.approve(item)
        if fail_once:
            with pytest.raises(openai.RateLimitError):
                await Runner.run(agent, state, run_config=config)
        return await Runner.run(agent, state, run_config=config)

    return scenario


@pytest.mark.new_sdk
def test_a_run_resumed_after_a_failed_attempt_succeeds_with_the_failure_recovered(
    recorder: Any, db_url: str
) -> None:
    case = diagnose(recorder, db_url, approval_then_resume(fail_once=True))
    assert case.result.final_output == "refunded"
    assert case.fields("status", "category") == {
        "status": "succeeded_with_errors",
        "category": None,
    }
    assert any(g["category"] == "model_error" for g in case.verdict.recovered_errors)


@pytest.mark.new_sdk
def test_an_approval_pause_and_resume_without_task_and_turn_spans_is_not_a_failure(
    recorder: Any, db_url: str
) -> None:
    case = diagnose(
        recorder, db_url, approval_then_resume(fail_once=False, task_and_turn_spans=False)
    )
    assert case.result.final_output == "refunded"
    assert case.fields("status", "category", "warnings") == {
        "status": "succeeded",
        "category": None,
        "warnings": [],
    }


@pytest.mark.new_sdk
def test_an_input_guardrail_tripping_after_a_streamed_answer_still_fails_the_run(
    recorder: Any, db_url: str
) -> None:
    """0.24 raises the tripwire from stream_events() even once the answer is out (0.0.17 does
    not: there it is the guardrail_tripped_unenforced warning, a demo case)."""

    @input_guardrail
    async def slow_check(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        await asyncio.sleep(0.3)
        return GuardrailFunctionOutput(output_info={}, tripwire_triggered=True)

    agent = Agent(name="Support", input_guardrails=[slow_check], model=DemoModel([[text("hi")]]))
    case = diagnose(recorder, db_url, agent, streamed=True)
    assert type(case.raised).__name__ == "InputGuardrailTripwireTriggered"
    assert case.fields("status", "category", "exception", "agent", "warnings") == {
        "status": "failed",
        "category": "input_guardrail_tripwire",
        "exception": "InputGuardrailTripwireTriggered",
        "agent": "Support",
        "warnings": [],
    }


@pytest.mark.new_sdk
def test_a_soft_cancel_after_the_turn_is_a_cancelled_run_without_final_output(
    recorder: Any, db_url: str
) -> None:
    async def scenario(config: RunConfig) -> Any:
        agent = Agent(
            name="Helper",
            tools=[lookup],
            model=DemoModel([[call("lookup", {"q": "x"})], [text("done")]]),
        )
        result = Runner.run_streamed(agent, "hi", run_config=config)
        async for event in result.stream_events():
            if event.type == "run_item_stream_event":
                result.cancel(mode="after_turn")
        return result

    case = diagnose(recorder, db_url, scenario)
    assert case.result.final_output is None
    assert case.fields("status", "category") == {"status": "failed", "category": "cancelled"}
    assert "produced a final output" not in case.verdict.explanation


@pytest.mark.new_sdk
def test_a_streamed_max_turns_handler_result_is_a_success_with_the_limit_recovered(
    recorder: Any, db_url: str
) -> None:
    async def scenario(config: RunConfig) -> Any:
        agent = Agent(
            name="Bounded",
            tools=[lookup],
            model=DemoModel([[call("lookup", {"q": str(i)})] for i in range(4)]),
        )
        result = Runner.run_streamed(
            agent,
            "hi",
            max_turns=2,
            run_config=config,
            error_handlers={"max_turns": lambda _input: "best effort answer"},
        )
        async for _event in result.stream_events():
            pass
        return result

    case = diagnose(recorder, db_url, scenario)
    assert case.result.final_output == "best effort answer"
    # the spans look the same whether the handler answered or not; the streamed result, read
    # when the SDK closes the trace, tells them apart
    assert case.fields("status", "category") == {
        "status": "succeeded_with_errors",
        "category": None,
    }
    assert any(g["category"] == "max_turns_exceeded" for g in case.verdict.recovered_errors)


# --- clean runs of every shape: never failed, no warning --------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
def test_a_streamed_runs_ending_is_read_where_the_sdk_closes_its_trace(
    recorder: Any, db_url: str, streamed: bool
) -> None:
    """The processor reads a streamed run's result (final output, cancel mode) when the SDK
    closes its trace, and stores it; a plain run has none, and is not called streamed."""
    case = diagnose(
        recorder, db_url, Agent(name="Helper", model=DemoModel([[text("done")]])), streamed=streamed
    )
    store = Store(db_url)
    try:
        info = store.analysis(case.run["trace_id"])
        assert info is not None
        assert info.run.streamed is streamed
        expected = {"final_output": True, "cancel_mode": "none"} if streamed else None
        assert info.run.ending == expected
    finally:
        store.close()


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "streamed"])
def test_a_clean_run_with_handoff_and_agent_as_tool_has_no_warning(
    recorder: Any, db_url: str, streamed: bool
) -> None:
    expert = Agent(name="Specialist", model=DemoModel([[text("42")]]))
    billing = Agent(
        name="Billing",
        tools=[lookup, expert.as_tool("ask_specialist", "Ask the specialist.")],
        model=DemoModel(
            [
                [call("lookup", {"q": "A-1"})],
                [call("ask_specialist", {"input": "q"})],
                [text("The answer is 42")],
            ]
        ),
    )
    triage = Agent(
        name="Triage", handoffs=[billing], model=DemoModel([[call("transfer_to_billing")]])
    )
    case = diagnose(recorder, db_url, triage, streamed=streamed)
    assert case.raised is None
    assert case.fields("status", "category", "reason", "warnings") == {
        "status": "succeeded",
        "category": None,
        "reason": None,
        "warnings": [],
    }
    assert bool(case.run["streamed"]) is streamed
