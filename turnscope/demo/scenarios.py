"""Scripted demo workflows: the real Runner, a fake model, every outcome turnscope knows.

Each scenario is registered with ``@case(...)``, which states the verdict it should get right
above the code that produces it; the demo checks what it recorded against it, so
``turnscope demo`` doubles as an end-to-end self-test on whatever SDK version is installed.
This module holds the registry, the runs that succeed and the runs that succeed with a
warning; ``failures.py`` adds the classic failures and ``environment.py`` the failures around
the run (model errors by reason, MCP, sessions, setup, tracing, hooks).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunConfig,
    Runner,
    function_tool,
    input_guardrail,
)
from openai.types.responses import ResponseOutputMessage, ResponseOutputRefusal

from turnscope.demo.model import DemoModel, call, text

Scenario = Callable[..., Awaitable[Any]]

S, SE, F = "succeeded", "succeeded_with_errors", "failed"


@dataclass(slots=True)
class Case:
    """One demo workflow and the verdict it should get."""

    title: str
    workflow: str
    status: str
    category: str | None
    run: Scenario  # called with the trace id (and ``db=`` when ``wants_db``)
    needs: str | None = None  # an SDK feature; skipped when the installed SDK lacks it
    expect: dict[str, Any] = field(default_factory=dict)  # verdict fields to check
    reason: str | None = None  # the verdict's reason, always checked
    warnings: list[str] = field(default_factory=list)  # the warning kinds, always checked
    wants_db: bool = False  # the scenario records in another process: it needs the database

    def play(self, trace_id: str, db: str | None = None) -> Awaitable[Any]:
        """The scenario's coroutine for one run."""
        return self.run(trace_id, db=db) if self.wants_db else self.run(trace_id)


CASES: list[Case] = []  # in the order the demo runs them


def case(
    title: str,
    workflow: str,
    status: str,
    category: str | None = None,
    *,
    reason: str | None = None,
    warnings: list[str] | tuple[str, ...] = (),
    needs: str | None = None,
    wants_db: bool = False,
    **expect: Any,
) -> Callable[[Scenario], Scenario]:
    """Register the decorated scenario as a demo case with the verdict it should get.

    ``expect`` holds further verdict fields to check: ``agent``, ``turn``, ``tool``,
    ``max_turns``, ``exception`` and ``recovered`` (a ``(category, tool, count)`` group)."""

    def register(run: Scenario) -> Scenario:
        CASES.append(
            Case(
                title,
                workflow,
                status,
                category,
                run,
                needs=needs,
                expect=expect,
                reason=reason,
                warnings=list(warnings),
                wants_db=wants_db,
            )
        )
        return run

    return register


# --- feature detection (0.0.17 lacks tool timeouts, tool guardrails, sessions...) -------------


def has_feature(name: str | None) -> bool:
    """True when the installed SDK supports a feature a case needs."""
    if name is None:
        return True
    params = inspect.signature(function_tool).parameters
    if name == "tool_timeout":
        return "timeout" in params and "timeout_behavior" in params
    if name == "tool_guardrails":
        return "tool_input_guardrails" in params
    if name == "approval":
        return "needs_approval" in params
    if name == "sessions":
        import agents

        return hasattr(agents, "SQLiteSession")
    if name == "mcp":
        import importlib.util

        return importlib.util.find_spec("mcp") is not None
    if name == "old_sdk_tracing":
        return _processor_errors_reach_the_run()
    if name == "unawaited_streamed_guardrails":
        # before guardrails could run in parallel or not (0.0.x), a streamed run finished
        # without waiting for a slow input guardrail
        return "run_in_parallel" not in inspect.signature(input_guardrail).parameters
    return False


def _processor_errors_reach_the_run() -> bool:
    """True when the SDK lets a trace processor's exception reach the run (0.0.17 does, newer
    versions log it): tried on the SDK's own multi-processor, not guessed from a version."""
    import logging

    from agents import tracing

    multi = getattr(getattr(tracing, "setup", None), "SynchronousMultiTracingProcessor", None)
    if multi is None:
        try:
            from agents.tracing.provider import SynchronousMultiTracingProcessor as multi
        except ImportError:
            return False

    class Raising:
        def on_span_start(self, span: Any) -> None:
            raise RuntimeError("probe")

    probe = multi()
    probe.add_tracing_processor(Raising())
    logger = logging.getLogger("openai.agents")
    disabled, logger.disabled = logger.disabled, True  # a newer SDK logs the probe's error
    try:
        probe.on_span_start(None)
    except RuntimeError:
        return True
    finally:
        logger.disabled = disabled
    return False


def config(trace_id: str, workflow: str, **kwargs: Any) -> RunConfig:
    """The run config of a demo run: its trace id and workflow name."""
    return RunConfig(workflow_name=workflow, trace_id=trace_id, **kwargs)


def api_error(cls_name: str, status: int, message: str, code: str | None, kind: str) -> Exception:
    """A genuine openai API error (``openai.RateLimitError`` and its kin) with an HTTP response
    and an error body, as a model raises it, without touching the network."""
    import openai
    from openai import _base_client

    httpx = getattr(_base_client, "httpx", None) or _base_client.httpx2  # openai 3.x: httpx2
    request = httpx.Request("POST", "https://api.openai.com/v1/responses")
    body = {"message": message, "type": kind, "param": None, "code": code}
    cls = getattr(openai, cls_name)
    return cls(message, response=httpx.Response(status, request=request), body=body)


# --- tools -----------------------------------------------------------------------------------


@function_tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return f"Order {order_id}: 2 items, shipped 2026-11-20, total $84.10"


_flaky_calls = Counter[str]()


@function_tool
def fetch_exchange_rate(currency: str) -> str:
    """Fetch an exchange rate (fails twice, then works: the SDK reports the error to the model)."""
    _flaky_calls[currency] += 1
    if _flaky_calls[currency] <= 2:
        raise ConnectionError("upstream rates API timed out (502)")
    return f"1 USD = 0.92 {currency}"


# --- runs that succeed -----------------------------------------------------------------------


# A support chat: one conversation (group id ``conv_demo_42``) of three exchanges, one run
# per customer message, the second of which fails.
CHAT = "conv_demo_42"


@case("handoff, tool call, answer", "Customer support", S, agent="Billing", turn=3)
async def support_handoff(trace_id: str) -> Any:
    """Triage hands off to Billing, which looks up the order and answers."""
    billing = Agent(
        name="Billing",
        instructions="Answer billing questions using the order tools.",
        tools=[lookup_order],
        model=DemoModel(
            [
                [call("lookup_order", {"order_id": "A-1009"})],
                [text("Your order A-1009 shipped on Nov 20; total $84.10.")],
            ],
            name="gpt-4o-mini",
            tokens=(18000, 400),
            cached_tokens=16384,
        ),
    )
    triage = Agent(
        name="Triage",
        instructions="Route the customer to the right specialist.",
        handoffs=[billing],
        model=DemoModel([[call("transfer_to_billing")]], name="gpt-4o-mini"),
    )
    run_config = config(trace_id, "Customer support", group_id=CHAT)
    return await Runner.run(triage, "Where is my order A-1009?", run_config=run_config)


@function_tool(failure_error_function=None)
def cancel_order(order_id: str) -> str:
    """Cancel an order (no failure handler: an error stops the run)."""
    raise RuntimeError(f"order {order_id} has already shipped: the warehouse refused to cancel")


@case(
    "same conversation, a failing exchange",
    "Customer support",
    F,
    "tool_error",
    agent="Billing",
    turn=1,
    tool="cancel_order",
    exception="UserError",
)
async def chat_cancel_fails(trace_id: str) -> Any:
    """The customer's second message in the same conversation: the cancellation tool fails."""
    agent = Agent(
        name="Billing",
        tools=[cancel_order],
        model=DemoModel([[call("cancel_order", {"order_id": "A-1009"})]]),
    )
    run_config = config(trace_id, "Customer support", group_id=CHAT)
    return await Runner.run(agent, "Please cancel order A-1009.", run_config=run_config)


@case(
    "same conversation, streamed (Responses API)",
    "Customer support",
    S,
    agent="Billing",
    turn=1,
)
async def follow_up_same_conversation(trace_id: str) -> Any:
    """The third exchange of the same conversation (same group id), streamed."""
    agent = Agent(
        name="Billing",
        tools=[lookup_order],
        model=DemoModel(
            [[text("It shipped, so it can't be cancelled; you can return it for a refund.")]],
            api="responses",
            name="my-finetune",  # a model no price list knows: its cost shows as unknown
        ),
    )
    run_config = config(trace_id, "Customer support", group_id=CHAT)
    result = Runner.run_streamed(agent, "Why not? What can I do?", run_config=run_config)
    async for _ in result.stream_events():
        pass
    return result.final_output


@case(
    "flaky tool recovered",
    "Treasury",
    SE,
    warnings=["tool_reported_error", "tool_reported_error"],  # the model saw both failures
    agent="Treasurer",
    turn=4,
    recovered=("tool_error", "fetch_exchange_rate", 2),
)
async def flaky_tool_recovers(trace_id: str) -> Any:
    """A tool fails twice; the SDK reports the error to the model, which retries."""
    _flaky_calls.clear()
    agent = Agent(
        name="Treasurer",
        tools=[fetch_exchange_rate],
        model=DemoModel(
            [
                [call("fetch_exchange_rate", {"currency": "EUR"})],
                [call("fetch_exchange_rate", {"currency": "EUR"})],
                [call("fetch_exchange_rate", {"currency": "EUR"})],
                [text("1 USD is 0.92 EUR today.")],
            ]
        ),
    )
    return await Runner.run(
        agent, "How many euros is a dollar?", run_config=config(trace_id, "Treasury")
    )


@case("agent used as a tool", "Translation", S, agent="Orchestrator", turn=2)
async def agent_as_tool(trace_id: str) -> Any:
    """An orchestrator calls a translator agent as a tool."""
    translator = Agent(
        name="Translator", model=DemoModel([[text("Bonjour, où est ma commande ?")]])
    )
    orchestrator = Agent(
        name="Orchestrator",
        tools=[
            translator.as_tool(
                tool_name="translate_to_french", tool_description="Translate to French."
            )
        ],
        model=DemoModel(
            [
                [call("translate_to_french", {"input": "Hello, where is my order?"})],
                [text("Voici : « Bonjour, où est ma commande ? »")],
            ]
        ),
    )
    return await Runner.run(
        orchestrator,
        "Translate 'Hello, where is my order?' to French",
        run_config=config(trace_id, "Translation"),
    )


@case(
    "two handoffs at once",
    "Customer support",
    SE,
    agent="Billing",
    turn=2,
    recovered=("handoff_error", None, 1),
)
async def double_handoff(trace_id: str) -> Any:
    """The model asks for two handoffs at once: the first wins, the other is an error the run
    survives."""
    # the support handoff's models: the Compare page's example pair differs in its turns only
    billing = Agent(
        name="Billing",
        model=DemoModel([[text("Billing here: your refund is on its way.")]], name="gpt-4o-mini"),
    )
    shipping = Agent(name="Shipping", model=DemoModel([[text("Shipping here.")]]))
    triage = Agent(
        name="Triage",
        handoffs=[billing, shipping],
        model=DemoModel(
            [[call("transfer_to_billing"), call("transfer_to_shipping")]], name="gpt-4o-mini"
        ),
    )
    return await Runner.run(
        triage, "Refund and reship my order", run_config=config(trace_id, "Customer support")
    )


@case(
    "tool awaits a human's approval",
    "Customer support",
    S,
    needs="approval",
    agent="Refunds",
    turn=1,
)
async def awaiting_approval(trace_id: str) -> Any:
    """A tool that needs a human's approval: the run pauses and returns its interruption
    (``result.to_state()`` and ``Runner.run(agent, state)`` would resume it)."""

    @function_tool(needs_approval=True)  # new SDKs only: the case is skipped on others
    def refund_payment(order_id: str, amount_eur: float) -> str:
        """Refund a payment (a human approves it first)."""
        return f"refunded {amount_eur} EUR on {order_id}"

    agent = Agent(
        name="Refunds",
        tools=[refund_payment],
        model=DemoModel(
            [[call("refund_payment", {"order_id": "A-2001", "amount_eur": 120.0})], [text("Done.")]]
        ),
    )
    return await Runner.run(
        agent, "Refund order A-2001", run_config=config(trace_id, "Customer support")
    )


# --- warnings on runs that look fine ----------------------------------------------------------


@case(
    "agent as tool fails, outer run goes on",
    "Translation",
    SE,
    warnings=["nested_run_failed"],
    agent="Orchestrator",
    turn=2,
)
async def nested_run_fails(trace_id: str) -> Any:
    """The translator agent's model is rate limited; its tool reports the failure and the
    orchestrator answers anyway."""
    limited = api_error(
        "RateLimitError", 429, "Rate limit reached", "rate_limit_exceeded", "requests"
    )
    translator = Agent(name="Translator", model=DemoModel([limited], api="responses"))
    orchestrator = Agent(
        name="Orchestrator",
        tools=[translator.as_tool("translate_to_french", "Translate to French.")],
        model=DemoModel(
            [
                [call("translate_to_french", {"input": "Where is my order?"})],
                [text("Sorry, translation is unavailable right now.")],
            ]
        ),
    )
    return await Runner.run(
        orchestrator, "Translate 'Where is my order?'", run_config=config(trace_id, "Translation")
    )


@case(
    "slow guardrail trips after streamed answer",
    "Support",
    S,
    warnings=["guardrail_tripped_unenforced"],
    needs="unawaited_streamed_guardrails",
    agent="Support",
    turn=1,
)
async def guardrail_trips_too_late(trace_id: str) -> Any:
    """0.0.17 streams the answer and ends the run without waiting for the input guardrail,
    which trips a moment later: nothing stops the run."""
    answered, tripped = asyncio.Event(), asyncio.Event()

    @input_guardrail
    async def slow_abuse_check(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        """An input guardrail slower than the model: it trips once the answer is out."""
        await answered.wait()  # an event, not a sleep: the same order on a busy machine
        tripped.set()
        return GuardrailFunctionOutput(output_info={"abuse": True}, tripwire_triggered=True)

    agent = Agent(
        name="Support",
        input_guardrails=[slow_abuse_check],
        model=DemoModel([[text("Here is how to reset it.")]]),
    )
    result = Runner.run_streamed(
        agent, "How do I reset my password?", run_config=config(trace_id, "Support")
    )
    async for _ in result.stream_events():
        pass
    answered.set()
    # the guardrail's own task goes on after the stream ended: let it trip and end its span
    await asyncio.wait_for(tripped.wait(), timeout=5)
    for _ in range(3):
        await asyncio.sleep(0)
    return result.final_output


@case("empty final answer", "Helpdesk", S, warnings=["empty_final_output"], agent="Helper", turn=1)
async def empty_answer(trace_id: str) -> Any:
    """The model ends the run with an empty message."""
    agent = Agent(name="Helper", model=DemoModel([[text("")]]))
    return await Runner.run(agent, "Any news?", run_config=config(trace_id, "Helpdesk"))


@case("model refuses", "Helpdesk", S, warnings=["refusal"], agent="Helper", turn=1)
async def model_refuses(trace_id: str) -> Any:
    """The model's final message is a refusal (0.0.17 returns it as an empty answer; newer
    SDKs raise unless a ``model_refusal`` error handler answers instead)."""
    import inspect

    refusal = ResponseOutputMessage(
        id="msg_refusal",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputRefusal(type="refusal", refusal="I can't help with that.")],
    )
    agent = Agent(name="Helper", model=DemoModel([[refusal]], api="responses"))
    options: dict[str, Any] = {}
    if "error_handlers" in inspect.signature(Runner.run).parameters:
        options["error_handlers"] = {"model_refusal": lambda _input: "I can't help with that."}
    return await Runner.run(
        agent, "Write my exam for me", run_config=config(trace_id, "Helpdesk"), **options
    )


# the failures register after these, in this order (imported last: they use `case`)
for _module in ("failures", "environment"):
    importlib.import_module(f"turnscope.demo.{_module}")
