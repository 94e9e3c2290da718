"""What a recorded run did, read from the store into a plain ``Script`` a replay can follow.

Model outputs come from the model spans (``output`` of generation and response spans); where a
span kept no output (a Responses span that holds only its response id), the turn's output is
rebuilt from what it led to: the function spans' tool names and arguments, the handoff, the
run's final output. Spans inside a tool (an agent used as a tool) or a guardrail belong to
that tool's or guardrail's own run: the stub answers for them.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from turnscope.analysis import causes
from turnscope.records import (
    FAILED,
    INCOMPLETE,
    MODEL_KINDS,
    NOT_CAPTURED_PREFIX,
    RUNNING,
    ExceptionInfo,
    SpanRecord,
    is_captured,
)

DEFAULT_MAX_TURNS = 10  # the SDK's default, used when the run did not record its own


class ReproError(ValueError):
    """A run that cannot be replayed; the message says why (the CLI prints it, exit 2)."""


@dataclass(slots=True)
class RecordedError:
    """An exception to raise again: class, module, message and the API facts a verdict reads."""

    type: str
    module: str
    message: str
    status: int | None = None
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (what the generated file holds)."""
        out: dict[str, Any] = {"type": self.type, "module": self.module, "message": self.message}
        if self.status is not None:
            out["status"] = self.status
        if self.code:
            out["code"] = self.code
        return out


@dataclass(slots=True)
class ModelStep:
    """One model call: the output items it returned, the error it raised, or a call that was
    still waiting when the run was cancelled (``hang``)."""

    agent: str
    turn: int | None
    output: list[dict[str, Any]] | None = None
    error: RecordedError | None = None
    hang: bool = False
    rebuilt: bool = False  # the output was rebuilt from the turn's other spans


@dataclass(slots=True)
class ToolCall:
    """One call of a tool: what it returned, raised, reported or that it never returned."""

    arguments: str | None
    output: Any = None
    error: RecordedError | None = None  # raised (fatal unless ``reported``)
    reported: bool = False  # a failure the SDK turned into the output the model saw
    hang: bool = False  # still running when the run was cancelled or timed out


@dataclass(slots=True)
class ToolScript:
    """A tool of the run and its calls in the order they were made."""

    name: str
    calls: list[ToolCall] = field(default_factory=list)
    timeout: float | None = None  # the SDK's tool timeout that fired
    input_guardrail_tripped: bool = False
    output_guardrail_tripped: bool = False
    needs_approval: bool = False  # the run paused on it for a human's approval


@dataclass(slots=True)
class McpServerScript:
    """An MCP server of the run: its tools, each tool listing (None: it worked; else the
    error it raised), whether it was ever connected, and the calls of its tools in order."""

    name: str
    agent: str | None
    tools: list[str] = field(default_factory=list)
    listings: list[RecordedError | None] = field(default_factory=list)
    connected: bool = True
    calls: list[ToolCall] = field(default_factory=list)


@dataclass(slots=True)
class GuardrailScript:
    """An input or output guardrail and the result it gave."""

    name: str
    kind: str  # "input" or "output"
    triggered: bool = False
    error: RecordedError | None = None


@dataclass(slots=True)
class AgentScript:
    """An agent as recorded: its name, instructions where captured, handoffs, tools, output
    type name and guardrails."""

    name: str
    instructions: str | None = None
    handoffs: list[str] = field(default_factory=list)
    rejected_handoffs: list[str] = field(default_factory=list)  # handoffs whose input failed
    tools: list[str] = field(default_factory=list)
    output_type: str | None = None
    output_rejected: bool = False  # its final output did not parse as ``output_type``
    guardrails: list[GuardrailScript] = field(default_factory=list)


@dataclass(slots=True)
class Script:
    """Everything a replay of one recorded run needs, in plain data."""

    trace_id: str
    workflow: str | None
    sdk_version: str | None
    verdict: dict[str, Any]  # status, category, reason, agent, turn
    input: Any
    input_recorded: bool
    max_turns: int
    max_turns_recorded: bool
    streamed: bool
    group_id: str | None
    agents: list[AgentScript]
    steps: list[ModelStep]
    tools: list[ToolScript]
    mcp_servers: list[McpServerScript] = field(default_factory=list)
    hook: tuple[str, RecordedError] | None = None  # a run hook that raised
    session: tuple[str, RecordedError] | None = None  # a session method that raised
    processor: tuple[str, RecordedError] | None = None  # another trace processor that raised
    loose_output_type: bool = False  # the SDK refused the output type before the first call
    cancel_after: float | None = None  # the caller cancelled the run after this many seconds
    notes: list[str] = field(default_factory=list)  # what the replay could not know

    @property
    def starting_agent(self) -> str:
        """The agent the run started with."""
        return self.agents[0].name


def read_script(store: Any, trace_id: str) -> Script:
    """The script of a stored run; raises ``ReproError`` when it cannot be replayed."""
    run = store.get_run(trace_id)
    if run is None:
        raise ReproError(f"no run with trace id {trace_id!r} in {store.label}")
    return build_script(run, store.spans(trace_id))


def build_script(run: dict[str, Any], spans: list[SpanRecord]) -> Script:
    """The script of a run from its ``runs`` row (as ``Store.get_run`` gives it) and spans."""
    trace_id = run["trace_id"]
    _refuse(run, spans)
    by_id = {s.span_id: s for s in spans}
    own = [s for s in spans if not _nested(s, by_id)]
    run_exc = ExceptionInfo.from_dict(run.get("exception_detail"))
    script = Script(
        trace_id=trace_id,
        workflow=run.get("workflow"),
        sdk_version=run.get("sdk_version"),
        verdict={
            "status": run["status"],
            "category": run.get("category"),
            "reason": run.get("reason"),
            "agent": run.get("failing_agent"),
            "turn": run.get("failing_turn"),
        },
        input=None,
        input_recorded=False,
        max_turns=DEFAULT_MAX_TURNS,
        max_turns_recorded=False,
        streamed=bool(run.get("streamed")),
        group_id=run.get("group_id"),
        agents=[],
        steps=[],
        tools=[],
    )
    _agents(script, own, by_id)
    if not script.agents:  # the run failed before any agent span (a setup error)
        script.agents.append(AgentScript(name="Agent"))
        script.notes.append("no agent span was recorded: the agent is a stand-in named 'Agent'")
    _around_the_run(script, run, run_exc)
    _mcp_servers(script, own, by_id)
    _tools(script, own, run_exc)
    _model_steps(script, own, by_id, run, run_exc)
    _guardrails(script, own, by_id)
    _max_turns(script, run, own)
    _input(script, run, own)
    if run.get("category") == "cancelled":
        script.cancel_after = _cancel_after(run, own)
    return script


# --- refusals ---------------------------------------------------------------------------------


def _refuse(run: dict[str, Any], spans: list[SpanRecord]) -> None:
    trace_id = run["trace_id"]
    status = run["status"]
    if status == RUNNING:
        raise ReproError(f"run {trace_id} is still running: replay it once it has ended")
    if status == INCOMPLETE:
        raise ReproError(
            f"run {trace_id} is incomplete (its process stopped before the run ended): the "
            "recording stops mid-run, so there is no ending to replay; refusing"
        )
    dropped = run.get("dropped_spans") or 0
    if dropped:
        raise ReproError(
            f"run {trace_id} lost {dropped} span(s) to a full buffer while it was recorded: "
            "the recording has holes, so a replay would not be the run; refusing"
        )
    if any(_not_captured(s) for s in spans):
        raise ReproError(
            f"run {trace_id} was recorded without content (capture_content=False): its model "
            "outputs and tool results were not kept, so it cannot be replayed"
        )


def _not_captured(span: SpanRecord) -> bool:
    if span.kind not in MODEL_KINDS and span.kind != "function":
        return False
    data = span.data
    return any(
        isinstance(data.get(k), str) and data[k].startswith(NOT_CAPTURED_PREFIX)
        for k in ("input", "output")
    )


def _nested(span: SpanRecord, by_id: dict[str, SpanRecord]) -> bool:
    """True for spans inside a tool's or a guardrail's own run (an agent used as a tool)."""
    parent = by_id.get(span.parent_id or "")
    seen = 0
    while parent is not None and seen < 200:
        if parent.kind in ("function", "guardrail"):
            return True
        parent = by_id.get(parent.parent_id or "")
        seen += 1
    return False


def _agent_of(span: SpanRecord, by_id: dict[str, SpanRecord]) -> str | None:
    """The name of the agent span a span sits in (the analysis's own label as a fallback)."""
    parent = by_id.get(span.parent_id or "")
    seen = 0
    while parent is not None and seen < 200:
        if parent.kind == "agent":
            return parent.name
        parent = by_id.get(parent.parent_id or "")
        seen += 1
    return span.agent


# --- agents, tools, model steps, guardrails -----------------------------------------------------


def _agents(script: Script, own: list[SpanRecord], by_id: dict[str, SpanRecord]) -> None:
    seen: dict[str, AgentScript] = {}
    for span in own:
        if span.kind != "agent":
            continue
        data = span.data
        agent = seen.get(span.name)
        if agent is None:
            agent = seen[span.name] = AgentScript(name=span.name)
            script.agents.append(agent)
        for key, names in (("handoffs", agent.handoffs), ("tools", agent.tools)):
            for name in data.get(key) or []:
                if isinstance(name, str) and name not in names:
                    names.append(name)
        output_type = data.get("output_type")
        if isinstance(output_type, str) and output_type not in ("str", ""):
            agent.output_type = output_type
    for name in [h for a in script.agents for h in a.handoffs]:
        if name not in seen:  # a handoff target that never ran
            seen[name] = AgentScript(name=name)
            script.agents.append(seen[name])
    # instructions, where a model span captured them (a system message, Responses' field)
    for span in own:
        if span.kind in MODEL_KINDS:
            agent = seen.get(_agent_of(span, by_id) or "")
            if agent is not None and agent.instructions is None:
                agent.instructions = _instructions(span.data)


def _instructions(data: dict[str, Any]) -> str | None:
    value = data.get("instructions")
    if isinstance(value, str) and is_captured(value) and value:
        return value
    for item in data.get("input") or []:
        if isinstance(item, dict) and item.get("role") == "system":
            content = item.get("content")
            if isinstance(content, str) and content:
                return content
    return None


def _mcp_servers(script: Script, own: list[SpanRecord], by_id: dict[str, SpanRecord]) -> None:
    """MCP servers from their tool listings (``mcp_tools`` spans); their tools leave the
    agents' function tools."""
    servers: dict[str, McpServerScript] = {}
    for span in own:
        if span.kind != "mcp_tools":
            continue
        name = span.data.get("server")
        name = name if isinstance(name, str) and name else span.name
        server = servers.get(name)
        if server is None:
            agent = _agent_of(span, by_id)
            server = servers[name] = McpServerScript(name=name, agent=agent)
        for tool in span.data.get("result") or []:
            if isinstance(tool, str) and tool not in server.tools:
                server.tools.append(tool)
        exc = span.exception
        if exc is not None and exc.is_a("UserError") and "connect" in exc.message:
            server.connected = False  # the SDK's "Server not initialized ... connect()"
        else:
            server.listings.append(_error_of(exc) if exc is not None else None)
    script.mcp_servers = list(servers.values())
    names = {t for s in script.mcp_servers for t in s.tools}
    for agent in script.agents:
        agent.tools = [t for t in agent.tools if t not in names]
    for server in script.mcp_servers:
        if server.agent is None or all(a.name != server.agent for a in script.agents):
            server.agent = script.agents[0].name if script.agents else None


def _tools(script: Script, own: list[SpanRecord], run_exc: ExceptionInfo | None) -> None:
    tools: dict[str, ToolScript] = {}
    for agent in script.agents:
        for name in agent.tools:
            tools.setdefault(name, ToolScript(name))
    mcp = {t: s for s in script.mcp_servers for t in s.tools}
    hook_error = script.hook[1] if script.hook else None
    for span in own:
        if span.kind != "function":
            continue
        name = span.tool_name or span.name
        tool = ToolScript(name) if name in mcp else tools.setdefault(name, ToolScript(name))
        data = span.data
        arguments = data.get("input") if isinstance(data.get("input"), str) else None
        call = ToolCall(arguments=arguments, output=data.get("output"))
        exc = span.exception
        error = _error_of(exc) if exc is not None else None
        text = _error_text(span)
        if exc is not None and exc.is_a("CancelledError"):
            call.hang = True
        elif exc is not None and exc.is_a("ToolTimeoutError"):
            call.hang = True
            tool.timeout = _seconds(text) or 0.1
        elif exc is not None and exc.is_a("ToolInputGuardrailTripwireTriggered"):
            tool.input_guardrail_tripped = True
        elif exc is not None and exc.is_a("ToolOutputGuardrailTripwireTriggered"):
            tool.output_guardrail_tripped = True
        elif hook_error is not None and text == hook_error.message:
            call.output = None  # the tool worked; a run hook around it raised
        elif span.error_message is not None and exc is None and span.ended_at is not None:
            if "non-fatal" in span.error_message or call.output is not None:
                call.reported = True  # the SDK gave the model the failure as the tool's output
                call.error = RecordedError("Exception", "builtins", text or span.error_message)
                if name in mcp and run_exc is not None:
                    call.error = _error_of(run_exc)  # its details are redacted: the run's
            else:
                call.error = (
                    _error_of(run_exc)
                    if run_exc
                    else RecordedError("RuntimeError", "builtins", text or span.error_message)
                )
        elif error is not None:
            call.error = error
        elif span.ended_at is None:
            call.hang = True
        elif _paused(span, own, run_exc):
            tool.needs_approval = True
        (mcp[name].calls if name in mcp else tool.calls).append(call)
    script.tools = list(tools.values())


def _paused(span: SpanRecord, own: list[SpanRecord], run_exc: ExceptionInfo | None) -> bool:
    """A call that awaits a human's approval: its arguments were kept but it has no output,
    no error, and the run made no model call after it (it returned with an interruption)."""
    if run_exc is not None or span.error_message is not None or span.exception is not None:
        return False
    if not isinstance(span.data.get("input"), str) or span.data.get("output") is not None:
        return False
    after = span.started_at
    return after is not None and not any(
        s.kind in MODEL_KINDS and s.started_at is not None and s.started_at > after for s in own
    )


def _model_steps(
    script: Script,
    own: list[SpanRecord],
    by_id: dict[str, SpanRecord],
    run: dict[str, Any],
    run_exc: ExceptionInfo | None,
) -> None:
    models = [s for s in own if s.kind in MODEL_KINDS]
    for index, span in enumerate(models):
        agent = _agent_of(span, by_id) or script.starting_agent
        step = ModelStep(agent=agent, turn=span.turn)
        output = span.data.get("output")
        exc = span.exception
        if exc is not None and exc.is_a("CancelledError"):
            step.hang = True
        elif span.error_message is not None or exc is not None:
            if exc is None and index == len(models) - 1:
                exc = run_exc
            step.error = (
                _error_of(exc)
                if exc is not None
                else RecordedError(
                    "RuntimeError", "builtins", _error_text(span) or span.error_message or "Error"
                )
            )
        elif isinstance(output, list) and output:
            items = [item for item in output if isinstance(item, dict)]
            step.output = [i for item in items for i in _output_items(item)]
        elif span.ended_at is None:
            step.hang = True
        else:
            later = models[index + 1] if index + 1 < len(models) else None
            step.output = _rebuilt_output(span, later, own, by_id, run)
            step.rebuilt = True
            script.notes.append(
                f"the model output of turn {span.turn} of agent {agent!r} was not stored: "
                "rebuilt from the tool calls, handoff and final output that followed it"
            )
        script.steps.append(step)
    rejected = _rejected_handoff(own)
    for step in script.steps if rejected else []:
        agent = next((a for a in script.agents if a.name == step.agent), None)
        calls = {i.get("name") for i in step.output or [] if i.get("type") == "function_call"}
        for target in agent.handoffs if agent is not None else []:
            if handoff_tool_name(target) in calls and target not in agent.rejected_handoffs:
                agent.rejected_handoffs.append(target)
    category = run.get("category")
    if category == "invalid_final_output" and run.get("failing_agent"):
        for agent in script.agents:
            if agent.name == run["failing_agent"]:
                agent.output_rejected = True


def _rejected_handoff(own: list[SpanRecord]) -> bool:
    """True when a handoff's input failed to parse (not "multiple handoffs requested")."""
    return any(s.kind == "handoff" and "json" in (s.error_message or "").lower() for s in own)


def handoff_tool_name(agent_name: str) -> str:
    """The SDK's default tool name for a handoff to an agent (``transfer_to_billing``)."""
    return "transfer_to_" + re.sub(r"[^a-zA-Z0-9]", "_", agent_name.replace(" ", "_")).lower()


def _output_items(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A Chat Completions message becomes Responses output items; those pass through."""
    if "type" in item or item.get("role") != "assistant":
        return [item]
    out: list[dict[str, Any]] = []
    content = item.get("content")
    if isinstance(content, str) and content:
        out.append(message_item(content))
    for call in item.get("tool_calls") or []:
        function = call.get("function") or {} if isinstance(call, dict) else {}
        out.append(
            {
                "type": "function_call",
                "name": function.get("name"),
                "arguments": function.get("arguments") or "{}",
                "call_id": call.get("id") or "call_replayed",
            }
        )
    return out


def message_item(text: str) -> dict[str, Any]:
    """An assistant message as a Responses output item."""
    return {
        "type": "message",
        "id": "msg_replayed",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _rebuilt_output(
    span: SpanRecord,
    later: SpanRecord | None,
    own: list[SpanRecord],
    by_id: dict[str, SpanRecord],
    run: dict[str, Any],
) -> list[dict[str, Any]]:
    """The output of a model call whose span kept none: the calls made before the next one."""
    end = later.started_at if later is not None else None
    items: list[dict[str, Any]] = []
    for other in own:
        if other.started_at is None or span.started_at is None:
            continue
        if other.started_at < span.started_at:
            continue
        if end is not None and other.started_at >= end:
            break
        if other.kind == "function":
            arguments = other.data.get("input")
            items.append(
                {
                    "type": "function_call",
                    "name": other.tool_name or other.name,
                    "arguments": arguments if isinstance(arguments, str) else "{}",
                    "call_id": f"call_{other.span_id[-12:]}",
                }
            )
        elif other.kind == "handoff" and isinstance(other.data.get("to_agent"), str):
            name = handoff_tool_name(other.data["to_agent"])
            items.append(
                {
                    "type": "function_call",
                    "name": name,
                    "arguments": "{}",
                    "call_id": f"call_{other.span_id[-12:]}",
                }
            )
    if not items and later is None and run["status"] in ("succeeded", "succeeded_with_errors"):
        final = run.get("final_output")  # the run ended with a final answer
        items.append(message_item(final if isinstance(final, str) else "(not recorded)"))
    return items


def _guardrails(script: Script, own: list[SpanRecord], by_id: dict[str, SpanRecord]) -> None:
    agents = {a.name: a for a in script.agents}
    models = [s for s in own if s.kind in MODEL_KINDS]
    for span in own:
        if span.kind != "guardrail":
            continue
        agent = agents.get(_agent_of(span, by_id) or span.agent or "")
        if agent is None:
            continue
        # an output guardrail runs once its agent's model has answered for the last time
        answered = [
            m
            for m in models
            if _agent_of(m, by_id) == agent.name
            and m.ended_at is not None
            and span.started_at is not None
            and m.ended_at <= span.started_at
        ]
        kind = "output" if answered and _final(answered[-1]) else "input"
        guardrail = GuardrailScript(
            name=span.name, kind=kind, triggered=bool(span.data.get("triggered"))
        )
        if span.exception is not None and not span.exception.is_a(
            "InputGuardrailTripwireTriggered", "OutputGuardrailTripwireTriggered"
        ):
            guardrail.error = _error_of(span.exception)
            guardrail.triggered = False
        if all(g.name != guardrail.name for g in agent.guardrails):
            agent.guardrails.append(guardrail)


def _final(model_span: SpanRecord) -> bool:
    output = model_span.data.get("output")
    if not isinstance(output, list):
        return False
    return not any(isinstance(i, dict) and i.get("type") == "function_call" for i in output)


# --- the run's settings and what went wrong around it ------------------------------------------


def _max_turns(script: Script, run: dict[str, Any], own: list[SpanRecord]) -> None:
    recorded = run.get("max_turns")
    if not isinstance(recorded, int):
        for span in own:
            value = (span.error_data or {}).get("max_turns")
            if isinstance(value, int) and not isinstance(value, bool):
                recorded = value
    if isinstance(recorded, int) and recorded > 0:
        script.max_turns, script.max_turns_recorded = recorded, True
        return
    turns = max((s.turn for s in own if isinstance(s.turn, int)), default=0)
    script.max_turns = max(DEFAULT_MAX_TURNS, turns)


def _input(script: Script, run: dict[str, Any], own: list[SpanRecord]) -> None:
    for span in own:
        if span.kind in MODEL_KINDS:
            items = span.data.get("input")
            if isinstance(items, str) and is_captured(items):
                script.input, script.input_recorded = items, True
                return
            if isinstance(items, list):
                users = [i for i in items if isinstance(i, dict) and i.get("role") == "user"]
                if users and isinstance(users[0].get("content"), str):
                    script.input, script.input_recorded = users[0]["content"], True
                    return
    if isinstance(run.get("first_input"), str):
        script.input, script.input_recorded = run["first_input"], True
        return
    script.input = "(the run's input was not recorded)"
    script.notes.append("the run's input was not recorded (no model call saw it): a stand-in")


def _around_the_run(script: Script, run: dict[str, Any], exc: ExceptionInfo | None) -> None:
    if exc is None or run["status"] != FAILED:
        return
    category = run.get("category")
    if category == "agent_error" and run.get("reason") == "hook":
        name = causes.hook(exc)
        if name:
            script.hook = (name, _error_of(_innermost_user(exc)))
    elif category == "session_error":
        method = causes.session_method(exc) or "add_items"
        script.session = (method, _error_of(_innermost_user(exc)))
    elif category == "tracing_error":
        callback = next(
            (
                _frame_function(f)
                for link in exc.chain()
                for f in link.frames
                if _frame_function(f).startswith("on_")
            ),
            "on_span_start",
        )
        script.processor = (callback, _error_of(_innermost_user(exc)))
    elif category == "config_error":
        messages = " ".join(link.message for link in exc.chain())
        if "strict" in messages.lower() or "additionalProperties" in messages:
            script.loose_output_type = True
        else:
            raise ReproError(
                f"run {run['trace_id']} failed in its setup ({exc.type}: {exc.message[:120]}): "
                "only a non-strict output type can be replayed from what was recorded"
            )


def _frame_function(frame: str) -> str:
    return frame.partition(":")[2].rpartition(".")[2]


def _cancel_after(run: dict[str, Any], own: list[SpanRecord]) -> float:
    started = [s.started_at for s in own if s.started_at is not None]
    ended = [s.ended_at for s in own if s.ended_at is not None]
    if started and ended:
        seconds = (max(ended) - min(started)).total_seconds()
        return round(min(max(seconds, 0.1), 2.0), 2)
    return 0.3


# --- errors -------------------------------------------------------------------------------------


def _innermost_user(exc: ExceptionInfo) -> ExceptionInfo:
    """The exception the user's code raised: the SDK wraps tool and hook errors in UserError."""
    for link in exc.chain():
        if not link.module.startswith("agents"):
            return link
    return exc


def _error_of(exc: ExceptionInfo | None) -> RecordedError:
    """The exception to raise again, from what was recorded of it."""
    if exc is None:
        return RecordedError("RuntimeError", "builtins", "error (not recorded)")
    link = _innermost_user(exc)
    message = link.message
    if link.type == "KeyError" and len(message) >= 2 and message[0] == message[-1] == "'":
        try:
            message = str(ast.literal_eval(message))
        except (ValueError, SyntaxError):
            pass
    return RecordedError(link.type, link.module, message, link.status, link.code)


def _error_text(span: SpanRecord) -> str | None:
    data = span.error_data or {}
    text = data.get("error")
    return text if isinstance(text, str) else None


def _seconds(text: str | None) -> float | None:
    match = re.search(r"after ([0-9.]+) seconds", text or "")
    return float(match.group(1)) if match else None


def dumps(value: Any) -> str:
    """JSON for the generated file (stable and readable)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=False)
