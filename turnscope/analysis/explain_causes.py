"""Explaining failures that only the exception shows, and model errors by reason.

The sentences for a trace processor, a run hook, the session store, an MCP server, a guardrail
function or the run's set-up (``analysis.causes`` finds them from the exception's class and
traceback); what each model-error reason means and what to do next; and the words that name
the outer run when a failure happened inside an agent used as a tool.
"""

from __future__ import annotations

from turnscope.analysis import causes
from turnscope.analysis.errors import SpanFailure
from turnscope.analysis.summary import current_turn
from turnscope.analysis.turns import Structure
from turnscope.content import clip
from turnscope.records import FAILED, MODEL_KINDS, Evidence, ExceptionInfo, SpanRecord, Verdict


def quoted(name: str | None) -> str:
    """``'name'``, or ``(unknown)``."""
    return f"'{name}'" if name else "(unknown)"


def model_error_sentence(
    st: Structure,
    span: SpanRecord | None,
    agent: str | None,
    n: int | None,
    reason: str | None,
    exc: ExceptionInfo | None,
    detail: str | None,
) -> str:
    """One sentence per model-error reason, with what to do next."""
    where = f"at turn {n} of agent {quoted(agent)}" if n else f"for agent {quoted(agent)}"
    code = causes.status_text(exc) or causes.status_text(span.exception if span else None)
    said = f": {clip(detail)}" if detail else ""
    if reason == "rate_limited":
        return f"Rate limited ({code or '429'}) {where}: retry later or lower concurrency."
    if reason == "quota_exceeded":
        return (
            f"Quota exhausted ({code or '429 insufficient_quota'}) {where}: retrying will not"
            " help; check the account's billing and limits."
        )
    if reason == "context_length_exceeded":
        return f"The context grew past the model's limit {where}{_growth(st, span)}{said}."
    if reason == "invalid_request":
        return (
            f"The provider rejected the request ({code or '400'}) {where}{said}. The items or"
            " settings the run sent were not accepted."
        )
    if reason == "auth":
        return f"Authentication failed ({code}) {where}: check the API key and its access{said}."
    if reason == "not_found":
        return (
            f"Not found ({code or '404'}) {where}: the model, or an item the request referred"
            f" to, does not exist for this key{said}."
        )
    if reason == "server_error":
        return f"The provider failed ({code or '5xx'}) {where}: usually transient, retry{said}."
    if reason == "connection":
        return (
            f"The model request {where} got no answer (connection error): check the network,"
            f" proxy and base URL{said}."
        )
    if reason == "timeout":
        return f"The model call {where} timed out: allow more time or send less{said}."
    if reason == "bad_response":
        return f"The provider's answer {where} could not be read into the SDK's types{said}."
    return f"The model call {where} failed{said}."


def _growth(st: Structure, span: SpanRecord | None) -> str:
    """`` (input 131,072 tokens; +9,000 per turn)`` from the run's earlier model calls."""
    if span is None:
        return ""
    index = st.scope_of.get(span.span_id)
    sizes = [
        s.input_tokens
        for s in st.spans
        if s.kind in MODEL_KINDS
        and s.input_tokens
        and s.error_message is None
        and st.scope_of.get(s.span_id) == index
    ]
    if not sizes:
        return ""
    text = f" (last input {sizes[-1]:,} tokens"
    if len(sizes) > 1 and sizes[-1] > sizes[0]:
        text += f"; +{(sizes[-1] - sizes[0]) // (len(sizes) - 1):,} per call"
    return text + ")"


def nested_prefix(st: Structure, span: SpanRecord | None) -> str:
    """``Tool 'ask' of agent 'Billing' ran agent 'Specialist', which failed: `` for a failure
    inside an agent used as a tool ("" elsewhere)."""
    if span is None:
        return ""
    index = st.scope_of.get(span.span_id)
    if index is None or st.scopes[index].top_level:
        return ""
    scope = st.scopes[index]
    root = st.by_id.get(scope.root_id) if scope.root_id else None
    tool = next((a for a in st.ancestors(root) if a.kind == "function"), None) if root else None
    if tool is None:
        return ""
    inner = st.by_id[scope.agent_ids[0]].name if scope.agent_ids else None
    return (
        f"Tool {quoted(tool.tool_name or tool.name)} of agent {quoted(tool.agent)} ran agent"
        f" {quoted(inner)}, which failed. "
    )


# --- failures only the exception's origin explains ---------------------------------------------


def _failed(
    failures: list[SpanFailure],
    exc: ExceptionInfo,
    category: str,
    text: str,
    *,
    reason: str | None = None,
    anchor: SpanRecord | None = None,
    agent: str | None = None,
    turn: int | None = None,
) -> Verdict:
    """A failed verdict naming ``agent`` and ``turn`` (None: nobody), anchored on a span."""
    return Verdict(
        status=FAILED,
        category=category,
        reason=reason,
        message=exc.message or exc.type,
        exception=exc.type,
        agent=agent,
        turn=turn,
        span_id=anchor.span_id if anchor is not None else None,
        explanation=text,
        evidence=origin_evidence(anchor, exc.type, failures),
    )


def _agent_and_turn(st: Structure, span: SpanRecord | None) -> tuple[str | None, int | None]:
    """The agent and turn a span ran in; without a span, the run's last turn."""
    found = st.turn_of(span) if span is not None else current_turn(st)
    agent = (span.agent if span is not None else None) or (found.agent if found else None)
    return agent, found.number if found else None


def origin_evidence(
    origin: SpanRecord | None, ended_with: str, failures: list[SpanFailure]
) -> list[Evidence]:
    """The span the exception escaped from, then the run's SpanErrors."""
    evidence: list[Evidence] = []
    if origin is not None:
        evidence.append(
            Evidence(
                origin.span_id,
                origin.kind,
                f"{origin.kind} {origin.name!r} ended with {ended_with}",
            )
        )
    return evidence + [Evidence(f.span.span_id, f.span.kind, f.line()) for f in failures][:6]


def _said(exc: ExceptionInfo) -> str:
    """``KeyError: 'policy'`` for the innermost exception of a chain (the real cause)."""
    inner = exc.chain()[-1]
    return f"{inner.type}: {clip(inner.message, 200)}" if inner.message else inner.type


def _where(turn: int | None) -> str:
    return f"in turn {turn}" if turn else "before its first turn"


def tracing_error(st: Structure, failures: list[SpanFailure], exc: ExceptionInfo) -> Verdict:
    """Another trace processor raised inside the SDK's tracing and the run stopped."""
    callback = next(
        (
            f.rpartition(".")[2]
            for f in reversed(exc.frames)
            if f.startswith("agents.tracing") and f.rpartition(".")[2].startswith("on_")
        ),
        "a tracing callback",
    )
    text = (
        f"A trace processor raised in {callback} ({_said(exc)}) and the SDK passed it on to"
        " the run, which stopped there. The agent is not at fault: fix or remove that"
        " processor (newer openai-agents releases catch processor errors)."
    )
    return _failed(failures, exc, "tracing_error", text)


def hook_error(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo,
    hook: str,
    origin: SpanRecord | None,
) -> Verdict:
    """A run or agent hook raised; the tool or agent it was called for is not at fault."""
    agent, n = _agent_and_turn(st, origin)
    after = ""
    if origin is not None and origin.kind == "function":
        after = f" (called for tool {quoted(origin.tool_name)}, which is not at fault)"
    text = (
        f"Hook {hook} raised {_where(n)} of agent {quoted(agent)}{after}: {_said(exc)}. An"
        " exception in a hook stops the run; fix the hook or catch its errors."
    )
    return _failed(
        failures, exc, "agent_error", text, reason="hook", anchor=origin, agent=agent, turn=n
    )


SESSION_VERBS = {
    "get_items": "read",
    "pop_item": "change",
    "add_items": "save",
    "clear_session": "clear",
}


def session_error(
    st: Structure, failures: list[SpanFailure], exc: ExceptionInfo, method: str
) -> Verdict:
    """The run's session store failed to read or write its items."""
    verb = SESSION_VERBS.get(method, "use")
    last = current_turn(st)
    if verb == "read":
        when = "before the run's first turn"
    else:
        when = f"after turn {last.number}" if last else "during the run"
    text = (
        f"The session store failed to {verb} the conversation's items ({method}) {when}:"
        f" {_said(exc)}."
    )
    if verb == "save":
        text += " The run had its answer, but the caller got the exception and nothing was saved."
    return _failed(
        failures,
        exc,
        "session_error",
        text,
        agent=last.agent if last else None,
        turn=last.number if last else None,
    )


def mcp_error(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo,
    stage: str,
    origin: SpanRecord | None,
) -> Verdict:
    """An MCP server failed the run: not connected, listing its tools, or a call in transport."""
    earlier = _failed_mcp_call(st, origin) if stage == "list_tools" else None
    if earlier is not None:
        # the server died during an earlier call (reported to the model); listing its tools
        # at the next turn only found the closed connection: the call is the cause
        stage, origin = "call", earlier
    server = _mcp_server(st, origin)
    agent, n = _agent_and_turn(st, origin)
    where = _where(n)
    if stage == "connect":
        text = (
            f"MCP server {server} was used {where} of agent {quoted(agent)} without a connection:"
            f" {_said(exc)}. Connect it first (await server.connect(), or async with server)."
        )
    elif stage == "list_tools":
        text = f"Listing the tools of MCP server {server} failed {where} of agent {quoted(agent)}:"
        text += f" {_said(exc)}."
    else:
        tool = origin.tool_name if origin is not None and origin.kind == "function" else None
        text = (
            f"Calling MCP tool {quoted(tool)} failed {where} of agent {quoted(agent)}:"
            f" {_said(exc)}. The server closed the connection or did not answer"
        )
        text += "; the run went on and failed at the next use of the server." if earlier else "."
    verdict = _failed(
        failures, exc, "mcp_error", text, reason=stage, anchor=origin, agent=agent, turn=n
    )
    if stage == "call" and origin is not None and origin.kind == "function":
        verdict.tool = origin.tool_name
    return verdict


def _mcp_server(st: Structure, origin: SpanRecord | None) -> str:
    if origin is not None:
        name = origin.data.get("server")
        if isinstance(name, str) and name:
            return quoted(name)
    names = [s.data.get("server") for s in st.spans if s.kind == "mcp_tools"]
    named = [n for n in names if isinstance(n, str) and n]
    return quoted(named[-1]) if named else "(unnamed)"


def _failed_mcp_call(st: Structure, before: SpanRecord | None) -> SpanRecord | None:
    """The last call of an MCP server's tool that failed before ``before`` (or anywhere)."""
    mcp_tools = {
        name
        for s in st.spans
        if s.kind == "mcp_tools" and isinstance(s.data.get("result"), list)
        for name in s.data["result"]
        if isinstance(name, str)
    }
    calls = [
        s
        for s in st.spans
        if s.kind == "function"
        and s.tool_name in mcp_tools
        and s.error_message is not None
        and (
            before is None or (s.ended_at and before.started_at and s.ended_at <= before.started_at)
        )
    ]
    return calls[-1] if calls else None


def guardrail_error(
    st: Structure, failures: list[SpanFailure], exc: ExceptionInfo, origin: SpanRecord | None
) -> Verdict:
    """A guardrail's own function raised (not a tripwire)."""
    guard = origin if origin is not None and origin.kind == "guardrail" else None
    if guard is None:
        guard = next(
            (s for s in st.spans if s.kind == "guardrail" and s.exception is not None), None
        )
    agent, n = _agent_and_turn(st, guard)
    name = quoted(guard.name) if guard is not None else "(unknown)"
    text = (
        f"Guardrail {name} raised {_where(n)} of agent {quoted(agent)} instead of returning a"
        f" result: {_said(exc)}. It did not trip: its own error stopped the run."
    )
    return _failed(failures, exc, "guardrail_error", text, anchor=guard, agent=agent, turn=n)


def config_error(st: Structure, failures: list[SpanFailure], exc: ExceptionInfo) -> Verdict:
    """The SDK refused the run's set-up before the first model call."""
    agents = [s.name for s in st.spans if s.kind == "agent"]
    agent = agents[0] if agents else None
    text = f"The run failed before its first model call because of how it was set up: {_said(exc)}"
    outer = exc.chain()
    if len(outer) > 1 and outer[0].message:
        text += f" ({clip(outer[0].message, 200)})"
    text += "."
    return _failed(failures, exc, "config_error", text, agent=agent)
