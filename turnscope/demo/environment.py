"""Demo cases for failures around the run: model errors by reason (one case per reason the
demo can produce offline), MCP servers, session stores, the run's setup, another trace
processor, run hooks.

Registered after the cases of ``failures.py``, in the order of this file.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents import Agent, RunHooks, Runner, trace
from pydantic import BaseModel, ValidationError

from turnscope.demo.model import DemoModel, call, text
from turnscope.demo.scenarios import F, S, Scenario, api_error, case, config, lookup_order

MCP_SERVER = Path(__file__).with_name("mcp_server.py")


# --- model errors: one case per reason the demo can produce offline ---------------------------


def _timeout() -> Exception:
    import openai
    from openai import _base_client

    httpx = getattr(_base_client, "httpx", None) or _base_client.httpx2
    return openai.APITimeoutError(httpx.Request("POST", "https://api.openai.com/v1/responses"))


def _unreadable() -> Exception:
    """The pydantic error an answer the SDK cannot read into its types gives."""
    from openai.types.responses import Response

    try:
        Response.model_validate({"id": "resp_1", "object": "response", "output": "not a list"})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


# (title, reason, exception class name, a fresh exception for each run); the rate limit and
# the connection error are the classic cases of scenarios.py
MODEL_FAILURES: list[tuple[str, str, str, Callable[[], BaseException]]] = [
    (
        "model quota exceeded (429)",
        "quota_exceeded",
        "RateLimitError",
        lambda: api_error(
            "RateLimitError",
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        ),
    ),
    (
        "context too long (400 with a code)",
        "context_length_exceeded",
        "BadRequestError",
        lambda: api_error(
            "BadRequestError",
            400,
            "This model's maximum context length is 128000 tokens.",
            "context_length_exceeded",
            "invalid_request_error",
        ),
    ),
    (
        "context too long (400 without a code)",
        "context_length_exceeded",
        "BadRequestError",
        lambda: api_error(
            "BadRequestError",
            400,
            "This request exceeds the context size limit",
            None,
            "invalid_request_error",
        ),
    ),
    (
        "history rejected (400)",
        "invalid_request",
        "BadRequestError",
        lambda: api_error(
            "BadRequestError",
            400,
            "Item 'rs_68a1' of type 'reasoning' was provided without its required following item.",
            None,
            "invalid_request_error",
        ),
    ),
    (
        "bad API key (401)",
        "auth",
        "AuthenticationError",
        lambda: api_error(
            "AuthenticationError",
            401,
            "Incorrect API key provided: sk-demo.",
            "invalid_api_key",
            "invalid_request_error",
        ),
    ),
    (
        "model does not exist (404)",
        "not_found",
        "NotFoundError",
        lambda: api_error(
            "NotFoundError",
            404,
            "The model `gpt-9` does not exist",
            "model_not_found",
            "invalid_request_error",
        ),
    ),
    (
        "provider overloaded (503)",
        "server_error",
        "InternalServerError",
        lambda: api_error(
            "InternalServerError", 503, "The engine is currently overloaded.", None, "server_error"
        ),
    ),
    ("model call timed out", "timeout", "APITimeoutError", _timeout),
    ("model answer unreadable", "bad_response", "ValidationError", _unreadable),
]


def _model_fails_at_turn_2(error: Callable[[], BaseException]) -> Scenario:
    """Agent Assistant looks up an order, then its model call fails with ``error()``."""

    async def scenario(trace_id: str) -> Any:
        agent = Agent(
            name="Assistant",
            tools=[lookup_order],
            model=DemoModel(
                [[call("lookup_order", {"order_id": "A-1009"})], error()], api="responses"
            ),
        )
        return await Runner.run(
            agent, "Where is order A-1009?", run_config=config(trace_id, "Assistant")
        )

    return scenario


for _title, _reason, _exception, _error in MODEL_FAILURES:
    case(
        _title,
        "Assistant",
        F,
        "model_error",
        reason=_reason,
        agent="Assistant",
        turn=2,
        exception=_exception,
    )(_model_fails_at_turn_2(_error))


# --- MCP --------------------------------------------------------------------------------------


def _warehouse(mode: str, *, connect: bool = True) -> Scenario:
    """Agent Warehouse calls ``lookup_order`` on the demo's MCP stdio server in ``mode``."""

    async def scenario(trace_id: str) -> Any:
        from agents.mcp import MCPServerStdio

        server = MCPServerStdio(
            params={"command": sys.executable, "args": [str(MCP_SERVER), mode]},
            name=f"orders-{mode}",
            client_session_timeout_seconds=10,
        )
        steps = [[call("lookup_order", {"order_id": "A-1009"})], [text("Order A-1009 shipped.")]]
        agent = Agent(name="Warehouse", mcp_servers=[server], model=DemoModel(steps))
        if connect:
            await server.connect()
        # the SDK logs a failed MCP call to stderr as well: keep the demo's table readable
        logger = logging.getLogger("openai.agents")
        disabled, logger.disabled = logger.disabled, True
        try:
            return await Runner.run(
                agent, "Where is order A-1009?", run_config=config(trace_id, "Warehouse")
            )
        finally:
            logger.disabled = disabled
            await server.cleanup()

    return scenario


# 0.0.17 lists an agent's MCP tools before it starts the agent's span: no span names the agent
# there, so these cases leave agent and turn unchecked
case(
    "MCP server never connected",
    "Warehouse",
    F,
    "mcp_error",
    reason="connect",
    needs="mcp",
    exception="UserError",
)(_warehouse("ok", connect=False))
case("MCP tool list fails", "Warehouse", F, "mcp_error", reason="list_tools", needs="mcp")(
    _warehouse("list_fails")
)
case(
    "MCP server dies mid-call",
    "Warehouse",
    F,
    "mcp_error",
    reason="call",
    needs="mcp",
    agent="Warehouse",
    turn=1,
)(_warehouse("die"))
case(
    "MCP tool reports an error",
    "Warehouse",
    S,
    warnings=["tool_reported_error"],
    needs="mcp",
    agent="Warehouse",
    turn=2,
)(_warehouse("tool_error"))


# --- sessions, setup, tracing, hooks ----------------------------------------------------------


@case(
    "session store fails to save",
    "Chat",
    F,
    "session_error",
    needs="sessions",
    agent=None,
    turn=None,
    exception="ConnectionError",
)
async def session_write_fails(trace_id: str) -> Any:
    """The run's Session cannot write the conversation's items."""
    from agents import SQLiteSession

    class UnreachableSession(SQLiteSession):
        async def add_items(self, items: Any) -> None:
            raise ConnectionError("session store unreachable (write)")

    agent = Agent(name="Chat", model=DemoModel([[text("Welcome back!")]]))
    # the SDK touches the session before it starts its own trace: the caller's trace sees it
    with trace("Chat", trace_id=trace_id):
        return await Runner.run(agent, "Hi, it's me again", session=UnreachableSession("conv_7"))


class Survey(BaseModel):
    """An output type without a strict schema (a free-form dict field)."""

    answer: str
    extra: dict[str, Any]


@case(
    "output type without a strict schema",
    "Surveys",
    F,
    "config_error",
    agent=None,
    turn=None,
    exception="UserError",
)
async def loose_output_type(trace_id: str) -> Any:
    """The SDK refuses the agent's output type before the first model call."""
    agent = Agent(name="Surveyor", output_type=Survey, model=DemoModel([[text("{}")]]))
    return await Runner.run(agent, "Summarize the survey", run_config=config(trace_id, "Surveys"))


class BuggyProcessor:
    """Another trace processor (an APM vendor's, say) with a bug in ``on_span_start``."""

    def on_trace_start(self, trace: Any) -> None:
        pass

    def on_trace_end(self, trace: Any) -> None:
        pass

    def on_span_start(self, span: Any) -> None:
        raise RuntimeError("vendor processor: span queue not initialized")

    def on_span_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


def _registered_processors() -> tuple[Any, ...]:
    """The trace processors registered now (the SDK has no public getter)."""
    from agents import tracing

    provider = getattr(tracing, "get_trace_provider", None)
    provider = provider() if provider else tracing.setup.GLOBAL_TRACE_PROVIDER
    return tuple(provider._multi_processor._processors)


@case(
    "another trace processor raises",
    "Helpdesk",
    F,
    "tracing_error",
    needs="old_sdk_tracing",
    agent=None,
    exception="RuntimeError",
)
async def buggy_trace_processor(trace_id: str) -> Any:
    """A second trace processor raises; 0.0.17 lets its exception reach the run."""
    from agents import set_trace_processors

    before = _registered_processors()
    set_trace_processors([*before, BuggyProcessor()])  # beside the demo's, for this run only
    try:
        agent = Agent(name="Helper", model=DemoModel([[text("Happy to help.")]]))
        return await Runner.run(agent, "Hello", run_config=config(trace_id, "Helpdesk"))
    finally:
        set_trace_processors(list(before))


class AuditHooks(RunHooks):
    """Run hooks whose ``on_tool_end`` fails (the audit log is down)."""

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        raise RuntimeError("audit log unavailable")


@case(
    "run hook raises after a tool",
    "Helpdesk",
    F,
    "agent_error",
    reason="hook",
    agent="Helper",
    turn=1,
    tool=None,
    exception="UserError",
)
async def hook_raises(trace_id: str) -> Any:
    """``RunHooks.on_tool_end`` raises after a tool that worked: the hook is to blame."""
    agent = Agent(
        name="Helper",
        tools=[lookup_order],
        model=DemoModel([[call("lookup_order", {"order_id": "A-1009"})], [text("Shipped.")]]),
    )
    return await Runner.run(
        agent, "Where is A-1009?", hooks=AuditHooks(), run_config=config(trace_id, "Helpdesk")
    )
