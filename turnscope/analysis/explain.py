"""Explaining a verdict: one sentence builder per outcome and failure category.

``analysis.verdict`` decides what happened (status, category, the span at fault); these turn
that decision into a ``Verdict`` a person can act on: which agent, which turn, what to do.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from turnscope.analysis.errors import INFERRED_EXCEPTIONS, TRIPWIRE, SpanFailure
from turnscope.analysis.explain_causes import (
    model_error_sentence,
    nested_prefix,
    origin_evidence,
    quoted,
)
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
        names = list(dict.fromkeys(quoted(s.tool_name or s.name) for s in paused))
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
                f"Agent {quoted(paused[0].agent or agent)} paused{where}{also}: {tools} a "
                "human's approval; the run returned with an interruption and resumes from "
                "its saved state."
            ),
            evidence=[
                Evidence(s.span_id, s.kind, f"{quoted(s.tool_name)} awaits approval")
                for s in paused
            ]
            + [Evidence(f.span.span_id, f.span.kind, f.line()) for f in survived][:8],
        )
    if failures:
        kinds = Counter(f.category for f in failures if not f.echo)
        summary = ", ".join(f"{cat} ×{count}" for cat, count in kinds.most_common())
        explanation = (
            f"Agent {quoted(agent)} produced a final output after {_turns(n)}, "
            f"surviving {len([f for f in failures if not f.echo])} recovered error(s) ({summary})."
        )
        status = SUCCEEDED_WITH_ERRORS
    else:
        explanation = f"Agent {quoted(agent)} produced a final output after {_turns(n)}."
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
        explanation=f"Agent {quoted(agent)} is {where}; the run has not ended yet.",
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
    where = f"while agent {quoted(agent)} was in turn {turn.number}" if turn else "before any turn"
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
        text = f"Tool {quoted(tool)} of agent {quoted(agent)} timed out {where}"
        text += f" ({detail})." if detail else "."
    elif category == "tool_guardrail_tripwire":
        text = f"A tool guardrail on {quoted(tool)} tripped {where} of agent {quoted(agent)}"
        text += ", stopping the run."
    elif category == "tool_error":
        text = f"Tool {quoted(tool)} raised {where} of agent {quoted(agent)}"
        text += f": {clip(detail)}" if detail else ""
        text += "; the tool has no failure handler, so the run stopped."
    elif category == "tool_not_found":
        available = _agent_tools(st, span)
        text = f"Agent {quoted(agent)} called tool {quoted(tool)} {where}, but it has no such tool"
        text += f" (it has: {', '.join(available)})." if available else "."
    elif category == "invalid_final_output":
        output_type = _agent_output_type(st, span)
        text = f"Agent {quoted(agent)}'s final output {where} did not parse"
        text += f" as {output_type}" if output_type else ""
        text += f": {clip(detail)}." if detail else "."
    elif category == "model_error":
        text = model_error_sentence(st, span, agent, n, reason, exc, detail)
    elif category == "model_behavior_error":
        text = f"The model gave agent {quoted(agent)} a response the SDK could not use {where}"
        text += f": {clip(detail or primary.message)}."
    elif category == "handoff_error":
        text = f"A handoff from agent {quoted(agent)} failed {where}: {primary.message}"
        text += f" ({clip(detail)})." if detail else "."
    else:
        text = f"Agent {quoted(agent)} failed {where}: {clip(detail or primary.message)}."
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
        explanation=nested_prefix(st, span) + text,
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
    text = (
        f"Agent {quoted(agent)} stopped after turn {n} of {max_turns or n} without a final output"
    )
    tool_turns = sum(1 for t in scope_turns if t.tool_calls)
    evidence = _evidence(primary, failures)
    scope_index = st.scope_of.get(span.span_id)
    scope_loops = [
        lp for lp in loops if st.scope_of.get(lp["span_id"]) == scope_index or scope_index is None
    ]
    if scope_loops:
        top = scope_loops[0]
        text += (
            f"; it called tool {quoted(top['tool'])} {top['count']} times with identical arguments"
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
        explanation=nested_prefix(st, span) + text,
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
        text = f"Input guardrail {quoted(name)} tripped on agent {quoted(agent)}"
        text += f" in turn {n}" if n else ""
        text += ", so the run stopped before the agent answered."
    else:
        text = (
            f"Output guardrail {quoted(name)} tripped on the final output of agent {quoted(agent)}"
        )
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
    text = f"The run was cancelled while agent {quoted(agent)} was {where}"
    if after_turn:
        text = (
            f"The streamed run was cancelled after turn {turn.number if turn else '?'} of agent"
            f' {quoted(agent)} (cancel(mode="after_turn")): it stopped without a final output'
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
        text = model_error_sentence(st, origin, agent, n, reason, exc, exc_text)
    elif category == "tool_error":
        tool = origin.tool_name if origin is not None else None
        text = f"Tool {quoted(tool)} of agent {quoted(agent)} raised {where}: {clip(exc_text)}."
    elif category == "unknown":
        text = "The run failed but turnscope found no exception and no error in its spans."
    else:
        text = f"Agent {quoted(agent)} failed {where}: {clip(exc_text or category)}."
    evidence = origin_evidence(origin, exc_text, failures)
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
        explanation=(nested_prefix(st, origin) if origin is not None else "") + text,
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


def _turns(n: int) -> str:
    return "1 turn" if n == 1 else f"{n} turns"
