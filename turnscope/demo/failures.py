"""Demo cases for the classic failures: max_turns, guardrail tripwires, tool errors and
timeouts, a missing tool, unparsable output, model errors, a bad handoff, a guardrail's bug,
a cancelled run and a killed worker process.

Registered after the cases of ``scenarios.py``; ``environment.py`` adds the finer ones.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    Runner,
    function_tool,
    handoff,
    input_guardrail,
    output_guardrail,
)
from pydantic import BaseModel

from turnscope.demo.model import DemoModel, call, text
from turnscope.demo.scenarios import F, api_error, case, config, lookup_order

# --- tools -----------------------------------------------------------------------------------


@function_tool
def search_docs(query: str) -> str:
    """Search the knowledge base."""
    return "No exact match. Related: 'Refund policy', 'Shipping times'."


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


# --- classic failures ------------------------------------------------------------------------


@case(
    "search loop hits max_turns",
    "Research",
    F,
    "max_turns_exceeded",
    agent="Researcher",
    turn=3,
    max_turns=3,
    tool="search_docs",
    exception="MaxTurnsExceeded",
)
async def max_turns_loop(trace_id: str) -> Any:
    """The model keeps searching for the same thing until max_turns stops it."""
    agent = Agent(
        name="Researcher",
        tools=[search_docs],
        model=DemoModel(
            [[call("search_docs", {"query": "refund policy EU"})] for _ in range(6)],
            name="gpt-4o-mini",
            tokens=(24000, 600),
        ),
    )
    return await Runner.run(
        agent,
        "What is the EU refund policy?",
        max_turns=3,
        run_config=config(trace_id, "Research"),
    )


@case(
    "max_turns, streamed",
    "Research",
    F,
    "max_turns_exceeded",
    agent="Researcher",
    turn=2,
    max_turns=2,
    exception="MaxTurnsExceeded",
)
async def max_turns_streamed(trace_id: str) -> Any:
    """Same loop, streamed: the exception is raised by stream_events(), after the trace ends."""
    agent = Agent(
        name="Researcher",
        tools=[search_docs],
        model=DemoModel([[call("search_docs", {"query": "shipping to Norway"})] for _ in range(6)]),
    )
    result = Runner.run_streamed(
        agent, "Do you ship to Norway?", max_turns=2, run_config=config(trace_id, "Research")
    )
    async for _ in result.stream_events():
        pass
    return result.final_output


@case(
    "input guardrail tripwire",
    "Tutoring",
    F,
    "input_guardrail_tripwire",
    agent="Tutor",
    turn=1,
    exception="InputGuardrailTripwireTriggered",
)
async def input_tripwire(trace_id: str) -> Any:
    """An input guardrail refuses the request."""
    agent = Agent(
        name="Tutor",
        input_guardrails=[no_homework],
        model=DemoModel([[text("The answer is 42.")]]),
    )
    return await Runner.run(
        agent, "Do my math homework: 6 x 7", run_config=config(trace_id, "Tutoring")
    )


@case(
    "output guardrail tripwire",
    "Customer support",
    F,
    "output_guardrail_tripwire",
    agent="Billing",
    turn=1,
    exception="OutputGuardrailTripwireTriggered",
)
async def output_tripwire(trace_id: str) -> Any:
    """An output guardrail blocks an answer that leaks a card number."""
    agent = Agent(
        name="Billing",
        output_guardrails=[no_card_numbers],
        model=DemoModel([[text("The card on file is 4111 1111 1111 1111.")]]),
    )
    return await Runner.run(
        agent, "Which card do you have on file?", run_config=config(trace_id, "Customer support")
    )


@case(
    "tool raises, no handler",
    "Checkout",
    F,
    "tool_error",
    agent="Checkout",
    turn=1,
    tool="charge_card",
    exception="UserError",
)
async def fatal_tool_error(trace_id: str) -> Any:
    """A tool without a failure handler raises: the run stops."""
    agent = Agent(
        name="Checkout",
        tools=[charge_card],
        model=DemoModel([[call("charge_card", {"amount_cents": 8410})]]),
    )
    return await Runner.run(agent, "Pay for order A-1009", run_config=config(trace_id, "Checkout"))


@case(
    "tool timeout",
    "Inventory",
    F,
    "tool_timeout",
    needs="tool_timeout",
    agent="Inventory",
    turn=1,
    tool="scan_warehouse",
    exception="ToolTimeoutError",
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
        agent, "How many units are in BER-2?", run_config=config(trace_id, "Inventory")
    )


@case(
    "tool guardrail",
    "Operations",
    F,
    "tool_guardrail_tripwire",
    needs="tool_guardrails",
    agent="DBA",
    turn=1,
    tool="delete_rows",
    exception="ToolInputGuardrailTripwireTriggered",
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
        agent, "Clean up the orders table", run_config=config(trace_id, "Operations")
    )


@case(
    "model calls a missing tool",
    "Customer support",
    F,
    "tool_not_found",
    agent="Billing",
    turn=1,
    tool="refund_order",
    exception="ModelBehaviorError",
)
async def unknown_tool(trace_id: str) -> Any:
    """The model calls a tool the agent does not have."""
    agent = Agent(
        name="Billing",
        tools=[lookup_order],
        model=DemoModel([[call("refund_order", {"order_id": "A-1009"})]]),
    )
    return await Runner.run(
        agent, "Refund order A-1009", run_config=config(trace_id, "Customer support")
    )


@case(
    "final output does not parse",
    "Invoicing",
    F,
    "invalid_final_output",
    agent="Invoicer",
    turn=1,
    exception="ModelBehaviorError",
)
async def bad_structured_output(trace_id: str) -> Any:
    """The model's final answer does not parse as the agent's output type."""
    agent = Agent(
        name="Invoicer",
        output_type=Invoice,
        model=DemoModel([[text('{"customer": "ACME", "total": "eighty-four dollars"}')]]),
    )
    return await Runner.run(
        agent, "Invoice ACME for order A-1009", run_config=config(trace_id, "Invoicing")
    )


@case(
    "model rate limited (429)",
    "Content",
    F,
    "model_error",
    reason="rate_limited",
    agent="Writer",
    turn=2,
    exception="RateLimitError",
)
async def model_rate_limited(trace_id: str) -> Any:
    """The model provider answers 429 (a Responses-API model records the error)."""
    limited = api_error(
        "RateLimitError", 429, "Rate limit reached for gpt-4o: retry after 20s", None, "requests"
    )
    agent = Agent(name="Writer", model=DemoModel([limited], api="responses"))
    writer_tools_agent = Agent(
        name="Editor", handoffs=[agent], model=DemoModel([[call("transfer_to_writer")]])
    )
    return await Runner.run(
        writer_tools_agent, "Write a product update", run_config=config(trace_id, "Content")
    )


@case(
    "model error without SpanError",
    "Reporting",
    F,
    "model_error",
    reason="connection",
    agent="Summarizer",
    turn=1,
    exception="ConnectionResetError",
)
async def model_error_no_span_error(trace_id: str) -> Any:
    """A Chat-Completions-style model that records no SpanError (like the SDK's own on 0.0.17):
    only the exception in flight tells what failed."""
    agent = Agent(
        name="Summarizer",
        model=DemoModel([ConnectionResetError("connection reset by peer")], record_errors=False),
    )
    return await Runner.run(
        agent, "Summarize today's tickets", run_config=config(trace_id, "Reporting")
    )


@case(
    "handoff with bad arguments",
    "Customer support",
    F,
    "handoff_error",
    agent="FrontDesk",
    turn=1,
    exception="ModelBehaviorError",
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
        front, "I want to speak to a manager", run_config=config(trace_id, "Customer support")
    )


@case(
    "guardrail function bug",
    "Concierge",
    F,
    "guardrail_error",
    agent="Concierge",
    turn=1,
    exception="KeyError",
)
async def guardrail_bug(trace_id: str) -> Any:
    """A guardrail function raises (a bug, not a tripwire)."""
    agent = Agent(
        name="Concierge",
        input_guardrails=[broken_policy_check],
        model=DemoModel([[text("Hello!")]]),
    )
    return await Runner.run(agent, "Book a table for two", run_config=config(trace_id, "Concierge"))


@case(
    "caller timeout cancels the run",
    "Inventory",
    F,
    "cancelled",
    agent="Inventory",
    turn=1,
    tool="slow_inventory_scan",
    exception="CancelledError",
)
async def cancelled_run(trace_id: str) -> Any:
    """The caller gives up after 0.3 s while a tool is still running."""
    agent = Agent(
        name="Inventory",
        tools=[slow_inventory_scan],
        model=DemoModel([[call("slow_inventory_scan", {"warehouse": "AMS-1"})]]),
    )
    return await asyncio.wait_for(
        Runner.run(agent, "Scan AMS-1", run_config=config(trace_id, "Inventory")), timeout=0.3
    )


@case(
    "worker process killed",
    "Reporting",
    "incomplete",
    "incomplete",
    wants_db=True,
    agent="Reporter",
    turn=1,
    tool="export_report",
    exception=None,
)
async def killed_process(trace_id: str, db: str | None = None) -> Any:
    """A worker process is killed (os._exit) in the middle of a tool call; it records into
    ``db``, the database the demo writes (given to the child only, in its environment)."""
    if db is None:
        raise ValueError("the killed-worker case records in a child process: give it db=")
    env = dict(os.environ, TURNSCOPE_DB=db, TURNSCOPE_DEMO_KILL_TRACE=trace_id)
    code = "from turnscope.demo.runner import killed_child; killed_child()"
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", code], env=env, capture_output=True, timeout=120
    )
    if proc.returncode != 137:
        raise RuntimeError(f"child exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return None
