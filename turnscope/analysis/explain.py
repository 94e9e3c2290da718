"""Explaining a verdict: one sentence builder per outcome and failure category.

``analysis.verdict`` decides what happened (status, category, the span at fault); these turn
that decision into a ``Verdict`` a person can act on: which agent, which turn, what to do.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from turnscope.analysis import causes
from turnscope.analysis.errors import INFERRED_EXCEPTIONS, TRIPWIRE, SpanFailure
from turnscope.analysis.summary import aborted, awaiting_approval, current_turn, top_scopes
from turnscope.analysis.turns import Structure
from turnscope.content import clip
from turnscope.records import (
    FAILED,
    INCOMPLETE,
    MODEL_KINDS,
    RUNNING,
    SUCCEEDED,
    SUCCEEDED_WITH_ERRORS,
    Evidence,
    ExceptionInfo,
    SpanRecord,
    TraceInfo,
    Verdict,
)


def success(st: Structure, failures: list[SpanFailure]) -> Verdict:
    """A run that returned: a final output, or a pause for a human's approval."""
    top_turns = [t for s in top_scopes(st) for t in s.turns]
    last = top_turns[-1] if top_turns else None
    agent = last.agent if last else None
    n = len(top_turns)
    paused = awaiting_approval(st)
    if paused:
        names = list(dict.fromkeys(_q(s.tool_name or s.name) for s in paused))
        tools = f"tool {names[0]} awaits" if len(names) == 1 else f"tools {', '.join(names)} await"
        turn = st.turn_of(paused[0])
        where = f" in turn {turn.number}" if turn else ""
        survived = [f for f in failures if not f.echo]
        also = f", after surviving {len(survived)} recovered error(s)" if survived else ""
        return Verdict(
            status=SUCCEEDED_WITH_ERRORS if failures else SUCCEEDED,
            agent=paused[0].agent or agent,
            turn=turn.number if turn else (last.number if last else None),
            span_id=paused[0].span_id,
            explanation=(
                f"Agent {_q(paused[0].agent or agent)} paused{where}{also}: {tools} a "
                "human's approval; the run returned with an interruption and resumes from "
                "its saved state."
            ),
            evidence=[
                Evidence(s.span_id, s.kind, f"{_q(s.tool_name)} awaits approval") for s in paused
            ]
            + [Evidence(f.span.span_id, f.span.kind, f.line()) for f in survived][:8],
        )
    if failures:
        kinds = Counter(f.category for f in failures if not f.echo)
        summary = ", ".join(f"{cat} ×{count}" for cat, count in kinds.most_common())
        explanation = (
            f"Agent {_q(agent)} produced a final output after {_turns(n)}, "
            f"surviving {len([f for f in failures if not f.echo])} recovered error(s) ({summary})."
        )
        status = SUCCEEDED_WITH_ERRORS
    else:
        explanation = f"Agent {_q(agent)} produced a final output after {_turns(n)}."
        status = SUCCEEDED
    evidence = [Evidence(f.span.span_id, f.span.kind, f.line()) for f in failures if not f.echo][:8]
    return Verdict(
        status=status,
        agent=agent,
        turn=last.number if last else None,
        explanation=explanation,
        evidence=evidence,
    )


def running(st: Structure, failures: list[SpanFailure]) -> Verdict:
    """A run still in progress: where it is now."""
    turn = current_turn(st)
    agent = turn.agent if turn else None
    where = f"in turn {turn.number}" if turn else "starting"
    open_spans = [s for s in st.spans if s.ended_at is None and s.kind not in ("task", "agent")]
    doing = open_spans[-1] if open_spans else None
    if doing is not None and doing.kind != "turn":
        where += f" ({_doing(doing)})"
    return Verdict(
        status=RUNNING,
        agent=agent,
        turn=turn.number if turn else None,
        span_id=doing.span_id if doing is not None else None,
        tool=doing.tool_name if doing is not None else None,
        explanation=f"Agent {_q(agent)} is {where}; the run has not ended yet.",
        evidence=[Evidence(f.span.span_id, f.span.kind, f.line()) for f in failures][:8],
    )


def incomplete(info: TraceInfo, st: Structure, failures: list[SpanFailure]) -> Verdict:
    """A run whose process stopped before it ended."""
    turn = current_turn(st)
    agent = turn.agent if turn else None
    open_spans = [s for s in st.spans if s.ended_at is None]
    in_flight = open_spans[-1] if open_spans else (st.spans[-1] if st.spans else None)
    who = f"pid {info.pid}" if info.pid else "the process"
    if info.host:
        who += f" on {info.host}"
    where = f"while agent {_q(agent)} was in turn {turn.number}" if turn else "before any turn"
    doing = ""
    if in_flight is not None and in_flight.ended_at is None:
        doing = f" ({_doing(in_flight)})"
    evidence = [
        Evidence(s.span_id, s.kind, f"{s.kind} {s.name!r} started and never ended")
        for s in reversed(open_spans[-5:])
    ]
    evidence += [Evidence(f.span.span_id, f.span.kind, f.line()) for f in failures][:3]
    return Verdict(
        status=INCOMPLETE,
        category="incomplete",
        message="Run never finished",
        agent=agent,
        turn=turn.number if turn else None,
        span_id=in_flight.span_id if in_flight else None,
        tool=in_flight.tool_name if in_flight is not None else None,
        explanation=(
            f"The run never finished: {who} stopped {where}{doing} and its trace was never closed."
        ),
        evidence=evidence,
    )


def _doing(span: SpanRecord) -> str:
    if span.kind == "function":
        return f"calling tool {span.tool_name!r}"
    if span.kind in MODEL_KINDS:
        return "waiting for the model"
    if span.kind == "guardrail":
        return f"running guardrail {span.name!r}"
    return f"in {span.kind} {span.name!r}"


def from_failure(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    category: str,
    primary: SpanFailure,
    reason: str | None = None,
) -> Verdict:
    """A failure a SpanError names: one sentence per category (and reason)."""
    span = primary.span
    turn = st.turn_of(span)
    agent = span.agent or (span.name if span.kind == "agent" else None)
    if span.kind == "agent":
        agent = span.name
    tool = primary.tool
    detail = primary.detail
    exception = _exception_name(exc, primary, category)
    n = turn.number if turn else None
    where = f"in turn {n}" if n else "before its first turn"
    if category == "tool_timeout":
        text = f"Tool {_q(tool)} of agent {_q(agent)} timed out {where}"
        text += f" ({detail})." if detail else "."
    elif category == "tool_guardrail_tripwire":
        text = f"A tool guardrail on {_q(tool)} tripped {where} of agent {_q(agent)}"
        text += ", stopping the run."
    elif category == "tool_error":
        text = f"Tool {_q(tool)} raised {where} of agent {_q(agent)}"
        text += f": {clip(detail)}" if detail else ""
        text += "; the tool has no failure handler, so the run stopped."
    elif category == "tool_not_found":
        available = _agent_tools(st, span)
        text = f"Agent {_q(agent)} called tool {_q(tool)} {where}, but it has no such tool"
        text += f" (it has: {', '.join(available)})." if available else "."
    elif category == "invalid_final_output":
        output_type = _agent_output_type(st, span)
        text = f"Agent {_q(agent)}'s final output {where} did not parse"
        text += f" as {output_type}" if output_type else ""
        text += f": {clip(detail)}." if detail else "."
    elif category == "model_error":
        text = _model_error(st, span, agent, n, reason, exc, detail)
    elif category == "model_behavior_error":
        text = f"The model gave agent {_q(agent)} a response the SDK could not use {where}"
        text += f": {clip(detail or primary.message)}."
    elif category == "handoff_error":
        text = f"A handoff from agent {_q(agent)} failed {where}: {primary.message}"
        text += f" ({clip(detail)})." if detail else "."
    else:
        text = f"Agent {_q(agent)} failed {where}: {clip(detail or primary.message)}."
    return Verdict(
        status=FAILED,
        category=category,
        reason=reason,
        message=primary.message,
        exception=exception,
        agent=agent,
        turn=n,
        span_id=span.span_id,
        tool=tool,
        explanation=_nested(st, span) + text,
        evidence=_evidence(primary, failures),
    )


def max_turns_exceeded(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    primary: SpanFailure,
    loops: list[dict[str, Any]],
) -> Verdict:
    """A run that used all its turns: where it stopped, and the loop if there was one."""
    span = primary.span
    data = span.error_data or {}
    max_turns = data.get("max_turns") if isinstance(data.get("max_turns"), int) else None
    scope_turns = st.scopes[st.scope_of[span.span_id]].turns if span.span_id in st.scope_of else []
    last = scope_turns[-1].number if scope_turns else None
    n = max_turns if max_turns is not None else last
    agent = span.name if span.kind == "agent" else span.agent
    text = f"Agent {_q(agent)} stopped after turn {n} of {max_turns or n} without a final output"
    tool_turns = sum(1 for t in scope_turns if t.tool_calls)
    evidence = _evidence(primary, failures)
    scope_index = st.scope_of.get(span.span_id)
    scope_loops = [
        lp for lp in loops if st.scope_of.get(lp["span_id"]) == scope_index or scope_index is None
    ]
    if scope_loops:
        top = scope_loops[0]
        text += (
            f"; it called tool {_q(top['tool'])} {top['count']} times with identical arguments"
            " — likely a loop."
        )
        for lp in scope_loops[:3]:
            evidence.append(
                Evidence(
                    lp["span_id"],
                    "function",
                    f"{lp['tool']}({clip(lp['arguments'], 80)}) called {lp['count']} times "
                    "with identical arguments",
                )
            )
    elif tool_turns:
        text += f"; the model asked for tools in {tool_turns} of {len(scope_turns)} turns."
    else:
        text += "."
    return Verdict(
        status=FAILED,
        category="max_turns_exceeded",
        message=primary.message,
        exception=exc.type if exc else "MaxTurnsExceeded",
        agent=agent,
        turn=n,
        max_turns=max_turns,
        span_id=span.span_id,
        tool=scope_loops[0]["tool"] if scope_loops else None,
        explanation=_nested(st, span) + text,
        evidence=evidence,
    )


def guardrail(
    st: Structure, failures: list[SpanFailure], exc: ExceptionInfo | None, category: str
) -> Verdict:
    """A guardrail that tripped: which one, on which agent, input or output side."""
    tripwires = [f for f in failures if f.message == TRIPWIRE and not f.recovered]
    error = tripwires[-1] if tripwires else None
    triggered = [s for s in st.spans if s.kind == "guardrail" and s.data.get("triggered") is True]
    name = None
    if error is not None:
        name = (error.span.error_data or {}).get("guardrail")
    guard = next((g for g in reversed(triggered) if g.name == name), None)
    if guard is None and triggered:
        guard = triggered[-1]
    if category not in ("input_guardrail_tripwire", "output_guardrail_tripwire"):
        category = _guardrail_side(st, error, guard)
    if name is None and guard is not None:
        name = guard.name
    anchor = guard or (error.span if error else None)
    turn = st.turn_of(anchor) if anchor is not None else None
    if error is not None and error.span.kind == "agent":
        turn = turn or st.turn_of(error.span)
    agent = None
    if anchor is not None:
        agent = anchor.agent or (anchor.name if anchor.kind == "agent" else None)
    if agent is None and error is not None:
        agent = error.span.agent or (error.span.name if error.span.kind == "agent" else None)
    n = turn.number if turn else None
    side = "Input" if category == "input_guardrail_tripwire" else "Output"
    if side == "Input":
        text = f"Input guardrail {_q(name)} tripped on agent {_q(agent)}"
        text += f" in turn {n}" if n else ""
        text += ", so the run stopped before the agent answered."
    else:
        text = f"Output guardrail {_q(name)} tripped on the final output of agent {_q(agent)}"
        text += f" (turn {n})." if n else "."
    evidence: list[Evidence] = []
    if guard is not None:
        evidence.append(Evidence(guard.span_id, "guardrail", f"guardrail {guard.name!r} triggered"))
    if error is not None:
        evidence.append(Evidence(error.span.span_id, error.span.kind, error.line()))
    evidence += [
        Evidence(f.span.span_id, f.span.kind, f.line())
        for f in failures
        if f is not error and not f.recovered
    ]
    return Verdict(
        status=FAILED,
        category=category,
        message=error.message if error else TRIPWIRE,
        exception=exc.type if exc else INFERRED_EXCEPTIONS[category],
        agent=agent,
        turn=n,
        span_id=anchor.span_id if anchor is not None else None,
        explanation=text,
        evidence=evidence[:8],
    )


def _guardrail_side(st: Structure, error: SpanFailure | None, guard: SpanRecord | None) -> str:
    """Input or output guardrail, from where the SDK put the error and the guardrail span."""
    if error is not None:
        if (error.span.error_data or {}).get("type") == "input_guardrail":
            return "input_guardrail_tripwire"
        if error.span.kind == "turn":
            return "input_guardrail_tripwire"
    if guard is not None:
        parent = st.parent(guard)
        if parent is not None and parent.kind == "turn":
            return "input_guardrail_tripwire"
        if parent is not None and parent.kind == "agent":
            models = [
                s
                for t in st.agent_turns.get(parent.span_id, [])
                for s in (st.by_id[i] for i in t.span_ids)
                if s.kind in MODEL_KINDS and s.ended_at is not None
            ]
            if (
                models
                and guard.started_at
                and all(m.ended_at and m.ended_at <= guard.started_at for m in models)
            ):
                return "output_guardrail_tripwire"
            return "input_guardrail_tripwire"
    return "output_guardrail_tripwire"


def cancelled(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    *,
    after_turn: bool = False,
) -> Verdict:
    """A run cancelled from outside (task cancelled, Ctrl-C, a streamed run's ``cancel()``)
    or cut off without an error."""
    cut = aborted(st)
    turn = st.turn_of(cut) if cut is not None else current_turn(st)
    if turn is None:
        turn = current_turn(st)
    agent = (cut.agent if cut is not None else None) or (turn.agent if turn else None)
    where = f"in turn {turn.number}" if turn else "before its first turn"
    text = f"The run was cancelled while agent {_q(agent)} was {where}"
    if after_turn:
        text = (
            f"The streamed run was cancelled after turn {turn.number if turn else '?'} of agent"
            f' {_q(agent)} (cancel(mode="after_turn")): it stopped without a final output'
        )
    if cut is not None:
        text += f" ({_doing(cut)})"
    text += "." if exc or after_turn else "; no error was recorded, only the interrupted work."
    evidence: list[Evidence] = []
    if cut is not None:
        state = "never ended" if cut.ended_at is None else "ended without a result"
        evidence.append(Evidence(cut.span_id, cut.kind, f"{cut.kind} {cut.name!r} {state}"))
    if exc is not None:
        evidence.append(Evidence(None, "exception", f"{exc.type} in flight when the run ended"))
    return Verdict(
        status=FAILED,
        category="cancelled",
        message="Run cancelled",
        exception=exc.type if exc else None,
        agent=agent,
        turn=turn.number if turn else None,
        span_id=cut.span_id if cut is not None else None,
        tool=cut.tool_name if cut is not None else None,
        explanation=text,
        evidence=evidence + [Evidence(f.span.span_id, f.span.kind, f.line()) for f in failures][:6],
    )


def from_origin(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    category: str,
    origin: SpanRecord | None,
    reason: str | None = None,
) -> Verdict:
    """No SpanError explains the failure: use the span the exception escaped from."""
    turn = st.turn_of(origin) if origin is not None else current_turn(st)
    if turn is None:
        turn = current_turn(st)
    agent = None
    if origin is not None:
        agent = origin.name if origin.kind == "agent" else origin.agent
    if agent is None and turn is not None:
        agent = turn.agent
    exc_text = f"{exc.type}: {exc.message}" if exc and exc.message else (exc.type if exc else "")
    where = f"in turn {turn.number}" if turn else "before its first turn"
    if category == "model_error":
        n = turn.number if turn else None
        text = _model_error(st, origin, agent, n, reason, exc, exc_text)
    elif category == "tool_error":
        tool = origin.tool_name if origin is not None else None
        text = f"Tool {_q(tool)} of agent {_q(agent)} raised {where}: {clip(exc_text)}."
    elif category == "unknown":
        text = "The run failed but turnscope found no exception and no error in its spans."
    else:
        text = f"Agent {_q(agent)} failed {where}: {clip(exc_text or category)}."
    evidence: list[Evidence] = []
    if origin is not None:
        evidence.append(
            Evidence(
                origin.span_id, origin.kind, f"{origin.kind} {origin.name!r} ended with {exc_text}"
            )
        )
    evidence += [Evidence(f.span.span_id, f.span.kind, f.line()) for f in failures][:6]
    return Verdict(
        status=FAILED,
        category=category,
        reason=reason,
        message=(exc.message or exc.type) if exc else None,
        exception=exc.type if exc else None,
        agent=agent,
        turn=turn.number if turn else None,
        span_id=origin.span_id if origin is not None else None,
        tool=origin.tool_name if origin is not None and origin.kind == "function" else None,
        explanation=(_nested(st, origin) if origin is not None else "") + text,
        evidence=evidence,
    )


def _exception_name(exc: ExceptionInfo | None, primary: SpanFailure, category: str) -> str | None:
    """The class the caller got; inferred from the evidence when it was not seen."""
    if exc is not None:
        return exc.type
    data = primary.span.error_data or {}
    if primary.span.kind in MODEL_KINDS and isinstance(data.get("name"), str):
        return data["name"]  # ScriptedModel and similar record the class name
    if primary.span.exception is not None:
        return primary.span.exception.type
    return INFERRED_EXCEPTIONS.get(category)


def _evidence(primary: SpanFailure, failures: list[SpanFailure]) -> list[Evidence]:
    out = [Evidence(primary.span.span_id, primary.span.kind, primary.line())]
    for failure in failures:
        if failure is primary or failure.recovered:
            continue
        out.append(Evidence(failure.span.span_id, failure.span.kind, failure.line()))
    return out[:8]


def _agent_tools(st: Structure, span: SpanRecord) -> list[str]:
    agent = _agent_span(st, span)
    tools = agent.data.get("tools") if agent is not None else None
    return [t for t in tools if isinstance(t, str)] if isinstance(tools, list) else []


def _agent_output_type(st: Structure, span: SpanRecord) -> str | None:
    agent = _agent_span(st, span)
    value = agent.data.get("output_type") if agent is not None else None
    return value if isinstance(value, str) and value not in ("str", "") else None


def _agent_span(st: Structure, span: SpanRecord) -> SpanRecord | None:
    if span.kind == "agent":
        return span
    return next((a for a in st.ancestors(span) if a.kind == "agent"), None)


def _q(name: str | None) -> str:
    return f"'{name}'" if name else "(unknown)"


def _turns(n: int) -> str:
    return "1 turn" if n == 1 else f"{n} turns"


# --- model errors by reason, nested runs -------------------------------------------------------


def _model_error(
    st: Structure,
    span: SpanRecord | None,
    agent: str | None,
    n: int | None,
    reason: str | None,
    exc: ExceptionInfo | None,
    detail: str | None,
) -> str:
    """One sentence per model-error reason, with what to do next."""
    where = f"at turn {n} of agent {_q(agent)}" if n else f"for agent {_q(agent)}"
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


def _nested(st: Structure, span: SpanRecord | None) -> str:
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
        f"Tool {_q(tool.tool_name or tool.name)} of agent {_q(tool.agent)} ran agent"
        f" {_q(inner)}, which failed. "
    )


# --- failures only the exception's origin explains ---------------------------------------------


def _failed(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo,
    category: str,
    text: str,
    *,
    reason: str | None = None,
    anchor: SpanRecord | None = None,
    agent: str | None = None,
    turn: int | None = None,
    blame: bool = True,
) -> Verdict:
    """A failed verdict anchored on a span (its agent and turn), or on nobody (``blame=False``)."""
    if blame and anchor is not None:
        found = st.turn_of(anchor)
        turn = turn if turn is not None else (found.number if found else None)
        agent = agent or anchor.agent or (anchor.name if anchor.kind == "agent" else None)
    if blame and agent is None:
        last = current_turn(st)
        agent = last.agent if last else None
        turn = turn if turn is not None else (last.number if last else None)
    evidence: list[Evidence] = []
    if anchor is not None:
        evidence.append(
            Evidence(
                anchor.span_id, anchor.kind, f"{anchor.kind} {anchor.name!r} ended with {exc.type}"
            )
        )
    evidence += [Evidence(f.span.span_id, f.span.kind, f.line()) for f in failures][:6]
    return Verdict(
        status=FAILED,
        category=category,
        reason=reason,
        message=exc.message or exc.type,
        exception=exc.type,
        agent=agent if blame else None,
        turn=turn if blame else None,
        span_id=anchor.span_id if anchor is not None else None,
        explanation=text,
        evidence=evidence,
    )


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
    return _failed(st, failures, exc, "tracing_error", text, blame=False)


def hook_error(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo,
    hook: str,
    origin: SpanRecord | None,
) -> Verdict:
    """A run or agent hook raised; the tool or agent it was called for is not at fault."""
    found = st.turn_of(origin) if origin is not None else current_turn(st)
    agent = (origin.agent if origin is not None else None) or (found.agent if found else None)
    n = found.number if found else None
    after = ""
    if origin is not None and origin.kind == "function":
        after = f" (called for tool {_q(origin.tool_name)}, which is not at fault)"
    text = (
        f"Hook {hook} raised {_where(n)} of agent {_q(agent)}{after}: {_said(exc)}. An"
        " exception in a hook stops the run; fix the hook or catch its errors."
    )
    verdict = _failed(st, failures, exc, "agent_error", text, reason="hook", anchor=origin)
    verdict.agent, verdict.turn = agent, n
    return verdict


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
    return _failed(st, failures, exc, "session_error", text, turn=None)


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
    found = st.turn_of(origin) if origin is not None else current_turn(st)
    agent = (origin.agent if origin is not None else None) or (found.agent if found else None)
    n = found.number if found else None
    where = _where(n)
    if stage == "connect":
        text = (
            f"MCP server {server} was used {where} of agent {_q(agent)} without a connection:"
            f" {_said(exc)}. Connect it first (await server.connect(), or async with server)."
        )
    elif stage == "list_tools":
        text = f"Listing the tools of MCP server {server} failed {where} of agent {_q(agent)}:"
        text += f" {_said(exc)}."
    else:
        tool = origin.tool_name if origin is not None and origin.kind == "function" else None
        text = (
            f"Calling MCP tool {_q(tool)} failed {where} of agent {_q(agent)}: {_said(exc)}."
            " The server closed the connection or did not answer"
        )
        text += "; the run went on and failed at the next use of the server." if earlier else "."
    verdict = _failed(st, failures, exc, "mcp_error", text, reason=stage, anchor=origin)
    verdict.agent, verdict.turn = agent, n
    if stage == "call" and origin is not None and origin.kind == "function":
        verdict.tool = origin.tool_name
    return verdict


def _mcp_server(st: Structure, origin: SpanRecord | None) -> str:
    if origin is not None:
        name = origin.data.get("server")
        if isinstance(name, str) and name:
            return _q(name)
    names = [s.data.get("server") for s in st.spans if s.kind == "mcp_tools"]
    named = [n for n in names if isinstance(n, str) and n]
    return _q(named[-1]) if named else "(unnamed)"


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
    found = st.turn_of(guard) if guard is not None else current_turn(st)
    agent = (guard.agent if guard is not None else None) or (found.agent if found else None)
    n = found.number if found else None
    name = _q(guard.name) if guard is not None else "(unknown)"
    text = (
        f"Guardrail {name} raised {_where(n)} of agent {_q(agent)} instead of returning a"
        f" result: {_said(exc)}. It did not trip: its own error stopped the run."
    )
    verdict = _failed(st, failures, exc, "guardrail_error", text, anchor=guard)
    verdict.agent, verdict.turn = agent, n
    return verdict


def config_error(st: Structure, failures: list[SpanFailure], exc: ExceptionInfo) -> Verdict:
    """The SDK refused the run's set-up before the first model call."""
    agents = [s.name for s in st.spans if s.kind == "agent"]
    agent = agents[0] if agents else None
    text = f"The run failed before its first model call because of how it was set up: {_said(exc)}"
    outer = exc.chain()
    if len(outer) > 1 and outer[0].message:
        text += f" ({clip(outer[0].message, 200)})"
    text += "."
    verdict = _failed(st, failures, exc, "config_error", text, agent=agent, turn=None)
    verdict.agent, verdict.turn = agent, None
    return verdict
