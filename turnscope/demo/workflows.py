"""Scripted demo workflows: the real Runner, a fake model, every outcome turnscope knows.

Each scenario states the verdict it should get; the demo checks what it recorded against it,
so ``turnscope demo`` doubles as an end-to-end self-test on whatever SDK version is installed.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import time
import uuid
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
    handoff,
    input_guardrail,
    output_guardrail,
)
from pydantic import BaseModel

from turnscope.demo.model import DemoModel, call, text

Scenario = Callable[[str], Awaitable[Any]]


@dataclass(slots=True)
class Case:
    """One demo workflow and the verdict it should get."""

    title: str
    workflow: str
    status: str
    category: str | None
    run: Scenario
    needs: str | None = None  # an SDK feature; skipped when the installed SDK lacks it
    expect: dict[str, Any] = field(default_factory=dict)  # verdict fields to check


@dataclass(slots=True)
class Result:
    """What happened to one case."""

    case: Case
    trace_id: str
    status: str | None = None
    category: str | None = None
    explanation: str = ""
    raised: str | None = None
    row: dict[str, Any] | None = None

    def mismatches(self) -> list[str]:
        """Fields of the recorded verdict that differ from the expected ones."""
        row = self.row or {}
        wanted: dict[str, Any] = {"status": self.case.status, "category": self.case.category}
        names = {"agent": "failing_agent", "turn": "failing_turn", "tool": "failing_tool"}
        for key, value in self.case.expect.items():
            if key != "recovered":
                wanted[names.get(key, key)] = value
        out = [
            f"{key}={row.get(key)!r} (expected {value!r})"
            for key, value in wanted.items()
            if row.get(key) != value
        ]
        if "recovered" in self.case.expect:
            category, tool, count = self.case.expect["recovered"]
            groups = row.get("recovered_errors") or []
            if not any(
                g.get("category") == category and g.get("tool") == tool and g.get("count") == count
                for g in groups
            ):
                out.append(f"recovered_errors={groups!r} (expected {category}/{tool} x{count})")
        return out

    @property
    def ok(self) -> bool:
        """The recorded verdict is the expected one."""
        return not self.mismatches()


@dataclass(slots=True)
class Summary:
    """What the demo recorded."""

    db: str
    results: list[Result] = field(default_factory=list)
    skipped: list[Case] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every case got its expected verdict."""
        return all(r.ok for r in self.results)


# --- feature detection (0.0.17 lacks tool timeouts and tool guardrails) ----------------------


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
    return False


def _rate_limit_error() -> Exception:
    """A genuine ``openai.RateLimitError`` (HTTP 429) without touching the network."""
    import openai
    from openai import _base_client

    httpx = getattr(_base_client, "httpx", None) or _base_client.httpx2
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx.Response(429, request=request)
    return openai.RateLimitError(
        "Rate limit reached for gpt-4o: retry after 20s", response=response, body=None
    )


def _config(trace_id: str, workflow: str, **kwargs: Any) -> RunConfig:
    return RunConfig(workflow_name=workflow, trace_id=trace_id, **kwargs)


# --- tools -----------------------------------------------------------------------------------


@function_tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id."""
    return f"Order {order_id}: 2 items, shipped 2026-11-20, total $84.10"


@function_tool
def search_docs(query: str) -> str:
    """Search the knowledge base."""
    return "No exact match. Related: 'Refund policy', 'Shipping times'."


_flaky_calls = Counter[str]()


@function_tool
def fetch_exchange_rate(currency: str) -> str:
    """Fetch an exchange rate (fails twice, then works: the SDK reports the error to the model)."""
    _flaky_calls[currency] += 1
    if _flaky_calls[currency] <= 2:
        raise ConnectionError("upstream rates API timed out (502)")
    return f"1 USD = 0.92 {currency}"


@function_tool(failure_error_function=None)
def charge_card(amount_cents: int) -> str:
    """Charge the customer's card (no failure handler: an error stops the run)."""
    raise RuntimeError(f"card declined by issuer for {amount_cents} cents (code 51)")


@function_tool
async def slow_inventory_scan(warehouse: str) -> str:
    """Scan a warehouse (slow)."""
    await asyncio.sleep(5)
    return "done"


# --- guardrails ------------------------------------------------------------------------------


@input_guardrail
async def no_homework(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
    """Refuse homework requests."""
    text_in = user_input if isinstance(user_input, str) else str(user_input)
    return GuardrailFunctionOutput(
        output_info={"reason": "homework request"}, tripwire_triggered="homework" in text_in
    )


@input_guardrail
async def broken_policy_check(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
    """A guardrail with a bug (raises instead of answering)."""
    raise KeyError("policy_version")


@output_guardrail
async def no_card_numbers(ctx: Any, agent: Any, output: Any) -> GuardrailFunctionOutput:
    """Block answers that contain something like a card number."""
    leaked = any(ch.isdigit() for ch in str(output)) and "4111" in str(output)
    return GuardrailFunctionOutput(output_info={"leak": leaked}, tripwire_triggered=leaked)


class Invoice(BaseModel):
    """Structured output of the invoicing agent."""

    customer: str
    total_cents: int


class EscalationData(BaseModel):
    """What a handoff to the escalation agent must carry."""

    reason: str
    priority: int


# --- scenarios -------------------------------------------------------------------------------


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
            ]
        ),
    )
    triage = Agent(
        name="Triage",
        instructions="Route the customer to the right specialist.",
        handoffs=[billing],
        model=DemoModel([[call("transfer_to_billing")]]),
    )
    config = _config(trace_id, "Customer support", group_id="conv_demo_42")
    return await Runner.run(triage, "Where is my order A-1009?", run_config=config)


async def follow_up_same_conversation(trace_id: str) -> Any:
    """A second turn of the same conversation (same group id), streamed."""
    agent = Agent(
        name="Billing",
        tools=[lookup_order],
        model=DemoModel(
            [[text("You're welcome! Anything else about order A-1009?")]], api="responses"
        ),
    )
    config = _config(trace_id, "Customer support", group_id="conv_demo_42")
    result = Runner.run_streamed(agent, "Thanks!", run_config=config)
    async for _ in result.stream_events():
        pass
    return result.final_output


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
        agent, "How many euros is a dollar?", run_config=_config(trace_id, "Treasury")
    )


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
        run_config=_config(trace_id, "Translation"),
    )


async def max_turns_loop(trace_id: str) -> Any:
    """The model keeps searching for the same thing until max_turns stops it."""
    agent = Agent(
        name="Researcher",
        tools=[search_docs],
        model=DemoModel([[call("search_docs", {"query": "refund policy EU"})] for _ in range(6)]),
    )
    return await Runner.run(
        agent,
        "What is the EU refund policy?",
        max_turns=3,
        run_config=_config(trace_id, "Research"),
    )


async def max_turns_streamed(trace_id: str) -> Any:
    """Same loop, streamed: the exception is raised by stream_events(), after the trace ends."""
    agent = Agent(
        name="Researcher",
        tools=[search_docs],
        model=DemoModel([[call("search_docs", {"query": "shipping to Norway"})] for _ in range(6)]),
    )
    result = Runner.run_streamed(
        agent, "Do you ship to Norway?", max_turns=2, run_config=_config(trace_id, "Research")
    )
    async for _ in result.stream_events():
        pass
    return result.final_output


async def input_tripwire(trace_id: str) -> Any:
    """An input guardrail refuses the request."""
    agent = Agent(
        name="Tutor",
        input_guardrails=[no_homework],
        model=DemoModel([[text("The answer is 42.")]]),
    )
    return await Runner.run(
        agent, "Do my math homework: 6 x 7", run_config=_config(trace_id, "Tutoring")
    )


async def output_tripwire(trace_id: str) -> Any:
    """An output guardrail blocks an answer that leaks a card number."""
    agent = Agent(
        name="Billing",
        output_guardrails=[no_card_numbers],
        model=DemoModel([[text("The card on file is 4111 1111 1111 1111.")]]),
    )
    return await Runner.run(
        agent, "Which card do you have on file?", run_config=_config(trace_id, "Customer support")
    )


async def fatal_tool_error(trace_id: str) -> Any:
    """A tool without a failure handler raises: the run stops."""
    agent = Agent(
        name="Checkout",
        tools=[charge_card],
        model=DemoModel([[call("charge_card", {"amount_cents": 8410})]]),
    )
    return await Runner.run(agent, "Pay for order A-1009", run_config=_config(trace_id, "Checkout"))


async def unknown_tool(trace_id: str) -> Any:
    """The model calls a tool the agent does not have."""
    agent = Agent(
        name="Billing",
        tools=[lookup_order],
        model=DemoModel([[call("refund_order", {"order_id": "A-1009"})]]),
    )
    return await Runner.run(
        agent, "Refund order A-1009", run_config=_config(trace_id, "Customer support")
    )


async def bad_structured_output(trace_id: str) -> Any:
    """The model's final answer does not parse as the agent's output type."""
    agent = Agent(
        name="Invoicer",
        output_type=Invoice,
        model=DemoModel([[text('{"customer": "ACME", "total": "eighty-four dollars"}')]]),
    )
    return await Runner.run(
        agent, "Invoice ACME for order A-1009", run_config=_config(trace_id, "Invoicing")
    )


async def model_rate_limited(trace_id: str) -> Any:
    """The model provider answers 429 (a Responses-API model records the error)."""
    agent = Agent(name="Writer", model=DemoModel([_rate_limit_error()], api="responses"))
    writer_tools_agent = Agent(
        name="Editor", handoffs=[agent], model=DemoModel([[call("transfer_to_writer")]])
    )
    return await Runner.run(
        writer_tools_agent, "Write a product update", run_config=_config(trace_id, "Content")
    )


async def model_error_no_span_error(trace_id: str) -> Any:
    """A Chat-Completions-style model that records no SpanError (like the SDK's own on 0.0.17):
    only the exception in flight tells what failed."""
    agent = Agent(
        name="Summarizer",
        model=DemoModel([ConnectionResetError("connection reset by peer")], record_errors=False),
    )
    return await Runner.run(
        agent, "Summarize today's tickets", run_config=_config(trace_id, "Reporting")
    )


async def bad_handoff_arguments(trace_id: str) -> Any:
    """The model hands off with arguments that do not match the handoff's input type."""

    async def on_escalate(ctx: Any, data: EscalationData) -> None:
        return None

    escalation = Agent(name="Escalation", model=DemoModel([[text("Escalated.")]]))
    front = Agent(
        name="FrontDesk",
        handoffs=[handoff(escalation, input_type=EscalationData, on_handoff=on_escalate)],
        model=DemoModel(
            [[call("transfer_to_escalation", '{"reason": "angry customer", "priority": "high"')]]
        ),
    )
    return await Runner.run(
        front, "I want to speak to a manager", run_config=_config(trace_id, "Customer support")
    )


async def double_handoff(trace_id: str) -> Any:
    """The model asks for two handoffs at once: the first wins, the other is an error the run
    survives."""
    billing = Agent(
        name="Billing", model=DemoModel([[text("Billing here: your refund is on its way.")]])
    )
    shipping = Agent(name="Shipping", model=DemoModel([[text("Shipping here.")]]))
    triage = Agent(
        name="Triage",
        handoffs=[billing, shipping],
        model=DemoModel([[call("transfer_to_billing"), call("transfer_to_shipping")]]),
    )
    return await Runner.run(
        triage, "Refund and reship my order", run_config=_config(trace_id, "Customer support")
    )


async def guardrail_bug(trace_id: str) -> Any:
    """A guardrail function raises (a bug, not a tripwire)."""
    agent = Agent(
        name="Concierge",
        input_guardrails=[broken_policy_check],
        model=DemoModel([[text("Hello!")]]),
    )
    return await Runner.run(
        agent, "Book a table for two", run_config=_config(trace_id, "Concierge")
    )


async def tool_timeout(trace_id: str) -> Any:
    """A tool exceeds its timeout (openai-agents >= 0.8 with timeout_behavior='raise_exception')."""

    @function_tool(timeout=0.2, timeout_behavior="raise_exception")
    async def scan_warehouse(warehouse: str) -> str:
        """Scan a warehouse's inventory."""
        await asyncio.sleep(3)
        return "done"

    agent = Agent(
        name="Inventory",
        tools=[scan_warehouse],
        model=DemoModel([[call("scan_warehouse", {"warehouse": "BER-2"})]]),
    )
    return await Runner.run(
        agent, "How many units are in BER-2?", run_config=_config(trace_id, "Inventory")
    )


async def tool_guardrail(trace_id: str) -> Any:
    """A tool input guardrail blocks a dangerous call."""
    from agents import ToolGuardrailFunctionOutput, tool_input_guardrail

    @tool_input_guardrail
    def no_bulk_delete(data: Any) -> Any:
        """Block deletes of more than 100 rows."""
        return ToolGuardrailFunctionOutput.raise_exception(output_info={"rows": 5000})

    @function_tool(tool_input_guardrails=[no_bulk_delete])
    def delete_rows(table: str, count: int) -> str:
        """Delete rows from a table."""
        return "deleted"

    agent = Agent(
        name="DBA",
        tools=[delete_rows],
        model=DemoModel([[call("delete_rows", {"table": "orders", "count": 5000})]]),
    )
    return await Runner.run(
        agent, "Clean up the orders table", run_config=_config(trace_id, "Operations")
    )


async def cancelled_run(trace_id: str) -> Any:
    """The caller gives up after 0.3 s while a tool is still running."""
    agent = Agent(
        name="Inventory",
        tools=[slow_inventory_scan],
        model=DemoModel([[call("slow_inventory_scan", {"warehouse": "AMS-1"})]]),
    )
    return await asyncio.wait_for(
        Runner.run(agent, "Scan AMS-1", run_config=_config(trace_id, "Inventory")), timeout=0.3
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
        agent, "Refund order A-2001", run_config=_config(trace_id, "Customer support")
    )


async def killed_process(trace_id: str) -> Any:
    """A worker process is killed (os._exit) in the middle of a tool call."""
    env = dict(os.environ, TURNSCOPE_DEMO_KILL_TRACE=trace_id)
    code = "from turnscope.demo.workflows import _killed_child; _killed_child()"
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], env=env, capture_output=True, timeout=120
    )
    if proc.returncode != 137:
        raise RuntimeError(f"child exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return None


def _killed_child() -> None:
    """Runs in a subprocess: records a run and dies mid-tool without any cleanup."""
    from agents import set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor

    processor = TurnscopeProcessor(os.environ["TURNSCOPE_DB"], flush_interval=0.05)
    set_trace_processors([processor])

    @function_tool
    def export_report(month: str) -> str:
        """Export the monthly report (the process dies here)."""
        processor.force_flush()
        os._exit(137)

    agent = Agent(
        name="Reporter",
        tools=[export_report],
        model=DemoModel([[call("export_report", {"month": "2026-10"})]]),
    )
    trace_id = os.environ["TURNSCOPE_DEMO_KILL_TRACE"]
    Runner.run_sync(agent, "Export October's report", run_config=_config(trace_id, "Reporting"))


S, SE, F = "succeeded", "succeeded_with_errors", "failed"
CASES: list[Case] = [
    Case(
        "handoff, tool call, answer",
        "Customer support",
        S,
        None,
        support_handoff,
        expect={"agent": "Billing", "turn": 3},
    ),
    Case(
        "same conversation, streamed (Responses API)",
        "Customer support",
        S,
        None,
        follow_up_same_conversation,
        expect={"agent": "Billing", "turn": 1},
    ),
    Case(
        "flaky tool recovered",
        "Treasury",
        SE,
        None,
        flaky_tool_recovers,
        expect={
            "agent": "Treasurer",
            "turn": 4,
            "recovered": ("tool_error", "fetch_exchange_rate", 2),
        },
    ),
    Case(
        "agent used as a tool",
        "Translation",
        S,
        None,
        agent_as_tool,
        expect={"agent": "Orchestrator", "turn": 2},
    ),
    Case(
        "two handoffs at once",
        "Customer support",
        SE,
        None,
        double_handoff,
        expect={"agent": "Billing", "turn": 2, "recovered": ("handoff_error", None, 1)},
    ),
    Case(
        "tool awaits a human's approval",
        "Customer support",
        S,
        None,
        awaiting_approval,
        needs="approval",
        expect={"agent": "Refunds", "turn": 1},
    ),
    Case(
        "search loop hits max_turns",
        "Research",
        F,
        "max_turns_exceeded",
        max_turns_loop,
        expect={
            "agent": "Researcher",
            "turn": 3,
            "max_turns": 3,
            "tool": "search_docs",
            "exception": "MaxTurnsExceeded",
        },
    ),
    Case(
        "max_turns, streamed",
        "Research",
        F,
        "max_turns_exceeded",
        max_turns_streamed,
        expect={"agent": "Researcher", "turn": 2, "max_turns": 2, "exception": "MaxTurnsExceeded"},
    ),
    Case(
        "input guardrail tripwire",
        "Tutoring",
        F,
        "input_guardrail_tripwire",
        input_tripwire,
        expect={"agent": "Tutor", "turn": 1, "exception": "InputGuardrailTripwireTriggered"},
    ),
    Case(
        "output guardrail tripwire",
        "Customer support",
        F,
        "output_guardrail_tripwire",
        output_tripwire,
        expect={"agent": "Billing", "turn": 1, "exception": "OutputGuardrailTripwireTriggered"},
    ),
    Case(
        "tool raises, no handler",
        "Checkout",
        F,
        "tool_error",
        fatal_tool_error,
        expect={"agent": "Checkout", "turn": 1, "tool": "charge_card", "exception": "UserError"},
    ),
    Case(
        "tool timeout",
        "Inventory",
        F,
        "tool_timeout",
        tool_timeout,
        needs="tool_timeout",
        expect={
            "agent": "Inventory",
            "turn": 1,
            "tool": "scan_warehouse",
            "exception": "ToolTimeoutError",
        },
    ),
    Case(
        "tool guardrail",
        "Operations",
        F,
        "tool_guardrail_tripwire",
        tool_guardrail,
        needs="tool_guardrails",
        expect={
            "agent": "DBA",
            "turn": 1,
            "tool": "delete_rows",
            "exception": "ToolInputGuardrailTripwireTriggered",
        },
    ),
    Case(
        "model calls a missing tool",
        "Customer support",
        F,
        "tool_not_found",
        unknown_tool,
        expect={
            "agent": "Billing",
            "turn": 1,
            "tool": "refund_order",
            "exception": "ModelBehaviorError",
        },
    ),
    Case(
        "final output does not parse",
        "Invoicing",
        F,
        "invalid_final_output",
        bad_structured_output,
        expect={"agent": "Invoicer", "turn": 1, "exception": "ModelBehaviorError"},
    ),
    Case(
        "model rate limited (429)",
        "Content",
        F,
        "model_error",
        model_rate_limited,
        expect={"agent": "Writer", "turn": 2, "exception": "RateLimitError"},
    ),
    Case(
        "model error without SpanError",
        "Reporting",
        F,
        "model_error",
        model_error_no_span_error,
        expect={"agent": "Summarizer", "turn": 1, "exception": "ConnectionResetError"},
    ),
    Case(
        "handoff with bad arguments",
        "Customer support",
        F,
        "handoff_error",
        bad_handoff_arguments,
        expect={"agent": "FrontDesk", "turn": 1, "exception": "ModelBehaviorError"},
    ),
    Case(
        "guardrail function bug",
        "Concierge",
        F,
        "guardrail_error",
        guardrail_bug,
        expect={"agent": "Concierge", "turn": 1, "exception": "KeyError"},
    ),
    Case(
        "caller timeout cancels the run",
        "Inventory",
        F,
        "cancelled",
        cancelled_run,
        expect={
            "agent": "Inventory",
            "turn": 1,
            "tool": "slow_inventory_scan",
            "exception": "CancelledError",
        },
    ),
    Case(
        "worker process killed",
        "Reporting",
        "incomplete",
        "incomplete",
        killed_process,
        expect={"agent": "Reporter", "turn": 1, "tool": "export_report", "exception": None},
    ),
]


# --- runner ----------------------------------------------------------------------------------


def run_demo(
    db: str | None = None,
    *,
    progress: bool = True,
    cases: list[Case] | None = None,
    **processor_options: Any,
) -> Summary:
    """Record the demo cases into ``db`` and check each verdict; prints progress and a summary."""
    from agents import set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor
    from turnscope.store.engine import redact, resolve_url
    from turnscope.store.queries import Store

    url = resolve_url(db)
    os.environ["TURNSCOPE_DB"] = url  # the killed-worker child writes to the same database
    processor = TurnscopeProcessor(url, flush_interval=0.1, **processor_options)
    set_trace_processors([processor])  # no upload to OpenAI: the demo never touches the network
    summary = Summary(db=redact(url))
    selected = [c for c in (cases or CASES) if has_feature(c.needs)]
    summary.skipped = [c for c in (cases or CASES) if not has_feature(c.needs)]
    out = sys.stdout
    if progress:
        print(f"Recording {len(selected)} demo runs into {summary.db}", file=out)
    results: list[Result] = []
    for index, case in enumerate(selected, 1):
        trace_id = f"trace_{uuid.uuid4().hex}"
        result = Result(case, trace_id)
        if progress:
            print(f"  [{index:>2}/{len(selected)}] {case.title:<44}", end="", file=out, flush=True)
        started = time.perf_counter()
        try:
            asyncio.run(case.run(trace_id))
        except BaseException as exc:  # the failures are the point of the demo
            if isinstance(exc, KeyboardInterrupt):
                raise
            result.raised = type(exc).__name__
        results.append(result)
        if progress:
            took = time.perf_counter() - started
            print(f" {result.raised or 'ok':<34} {took * 1000:>6.0f} ms", file=out, flush=True)
    processor.flush(30)
    processor.shutdown(10)
    store = Store(url)
    try:
        for result in results:
            row = store.get_run(result.trace_id)
            if row is not None:
                result.status, result.category = row["status"], row["category"]
                result.explanation = row["explanation"] or ""
                result.row = row
    finally:
        store.close()
    summary.results = results
    if progress:
        _print_summary(summary)
    return summary


def _print_summary(summary: Summary) -> None:
    counts = Counter(r.status for r in summary.results)
    categories = Counter(r.category for r in summary.results if r.category)
    print("", flush=True)
    print(f"Recorded {len(summary.results)} runs into {summary.db}:")
    print("  " + ", ".join(f"{n} {status}" for status, n in counts.most_common()))
    print("  failure categories: " + ", ".join(f"{c} ×{n}" for c, n in sorted(categories.items())))
    if summary.skipped:
        names = ", ".join(c.title for c in summary.skipped)
        print(f"  skipped (not supported by this openai-agents version): {names}")
    wrong = [r for r in summary.results if not r.ok]
    for r in wrong:
        print(f"  MISMATCH {r.case.title} ({r.trace_id}): {'; '.join(r.mismatches())}")
    if not wrong:
        print("  every run got the verdict it should.")
    print("\nNext: turnscope runs --db ... | turnscope why TRACE_ID | turnscope view")
