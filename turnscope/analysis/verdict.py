"""The verdict: status, failure category, failing agent/turn/span, explanation and evidence.

Pure functions over records. The same code labels a run at write time, in ``turnscope why``,
in the viewer and in the tests. Evidence, in order of trust:

1. the exception in flight when the trace (or the run's task/agent span) ended — the class the
   caller got (captured by the processor with ``sys.exc_info()``);
2. the SpanErrors the SDK attached (sdk-tracing.md §4);
3. structure: spans that never ended, a model span that ended with an exception in flight
   (old SDKs record no SpanError for non-OpenAI models), a tool call that never returned.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from turnscope import jsontext
from turnscope.analysis.errors import (
    AGENT_RUN,
    INFERRED_EXCEPTIONS,
    MAX_TURNS,
    RECOVERED_MESSAGES,
    TRIPWIRE,
    SpanFailure,
    classify_exception,
    classify_message,
)
from turnscope.analysis.turns import Structure, Turn, agent_path, build
from turnscope.records import (
    FAILED,
    INCOMPLETE,
    MODEL_KINDS,
    RUNNING,
    SUCCEEDED,
    SUCCEEDED_WITH_ERRORS,
    Evidence,
    ExceptionInfo,
    RunRecord,
    SpanRecord,
    TraceInfo,
    Verdict,
)

PREVIEW_CHARS = 400


@dataclass(slots=True)
class Analysis:
    """A trace, understood: its structure, its errors, its verdict and its summary row."""

    structure: Structure
    failures: list[SpanFailure]
    verdict: Verdict
    run: RunRecord
    found_loops: list[dict[str, Any]] | None = None

    @property
    def loops(self) -> list[dict[str, Any]]:
        """Repeated identical tool calls (``repeated_tool_calls``), found on first use: only
        a failed run's verdict needs them, and the worker analyses every run it writes."""
        if self.found_loops is None:
            self.found_loops = repeated_tool_calls(self.structure)
        return self.found_loops


def analyze(info: TraceInfo, spans: list[SpanRecord], *, process_alive: bool = True) -> Analysis:
    """Rebuild a trace's turns and decide its verdict."""
    st = build(spans)
    failures = _failures(st)
    run_exc = _run_exception(info, st)
    ended = info.ended_at is not None and not _open_roots(st)
    loops = None

    if not ended:
        status = RUNNING if process_alive else INCOMPLETE
    elif run_exc is not None or _aborted(st) is not None:
        status = FAILED
    elif _terminal(failures, st) and info.streamed is not False:
        # an unrecovered error and no exception in flight: a streamed run raises from
        # stream_events() after its trace ended; a non-streamed run that handled it (a
        # max_turns error handler) returned a result
        status = FAILED
    else:
        status = SUCCEEDED_WITH_ERRORS if failures else SUCCEEDED

    if status in (SUCCEEDED, SUCCEEDED_WITH_ERRORS):
        for failure in failures:
            failure.recovered = True
        verdict = _success(st, failures)
    elif status == RUNNING:
        verdict = _running(st, failures)
    elif status == INCOMPLETE:
        verdict = _incomplete(info, st, failures)
    else:
        loops = repeated_tool_calls(st)
        verdict = _failure(st, failures, run_exc, loops)
    verdict.recovered_errors = _recovered_groups(failures)
    run = _summary(info, st, failures, verdict, run_exc)
    return Analysis(st, failures, verdict, run, loops)


def summarize(info: TraceInfo, spans: list[SpanRecord], *, process_alive: bool = True) -> RunRecord:
    """The ``runs`` row for a trace (verdict included)."""
    return analyze(info, spans, process_alive=process_alive).run


# --- evidence gathering ----------------------------------------------------------------------


SILENT_TIMEOUT = re.compile(r"Tool '.*' timed out after [0-9.]+ seconds\.")
SILENT_TIMEOUT_MESSAGE = "Tool timed out (reported to the model)"


def _failures(st: Structure) -> list[SpanFailure]:
    out: list[SpanFailure] = []
    for span in st.spans:
        if span.error_message is None:
            silent = _silent_failure(span)
            if silent is not None:
                out.append(silent)
            continue
        message = span.error_message
        failure = SpanFailure(
            span,
            message,
            classify_message(span, message),
            recovered=message in RECOVERED_MESSAGES,
            echo=message == AGENT_RUN,
        )
        if not failure.recovered:
            failure.recovered = _contained(st, span) or _survived(st, span)
        out.append(failure)
    return out


def _silent_failure(span: SpanRecord) -> SpanFailure | None:
    """Trouble the SDK records as a tool's output, not as an error: a tool timeout with the
    default ``timeout_behavior="error_as_result"`` (sdk-tracing.md §4.1)."""
    if span.kind != "function":
        return None
    output = span.data.get("output")
    if isinstance(output, str) and SILENT_TIMEOUT.fullmatch(output.strip()):
        return SpanFailure(span, SILENT_TIMEOUT_MESSAGE, "tool_timeout", recovered=True)
    return None


def _contained(st: Structure, span: SpanRecord) -> bool:
    """Inside a tool call that itself did not fail fatally (an agent-as-tool whose failure the
    outer run absorbed)."""
    for ancestor in st.ancestors(span):
        if ancestor.kind == "function":
            message = ancestor.error_message
            if message is None or message in RECOVERED_MESSAGES:
                return True
    return False


def _survived(st: Structure, span: SpanRecord) -> bool:
    """The run went on after this error: a successful retry of a model call in the same turn,
    or a later turn in the same run (e.g. an unknown tool reported back to the model)."""
    turn = st.turn_of(span)
    if turn is None:
        return False
    if span.kind in MODEL_KINDS:
        for other_id in turn.span_ids:
            other = st.by_id[other_id]
            if (
                other.kind in MODEL_KINDS
                and other.error_message is None
                and other.ended_at is not None
                and (other.started_at or span.started_at) >= (span.started_at or other.started_at)
                and other is not span
            ):
                return True
    if span.kind == "agent":
        return False  # agent-level errors come after the agent's turns
    scope = st.scopes[turn.scope]
    return any(t.number > turn.number for t in scope.turns)


def _open_roots(st: Structure) -> bool:
    """A top-level run (task or agent span) has started but not ended."""
    for scope in st.scopes:
        if not scope.top_level:
            continue
        root = st.by_id.get(scope.root_id) if scope.root_id else None
        if root is not None and root.ended_at is None:
            return True
        for agent_id in scope.agent_ids:
            if st.by_id[agent_id].ended_at is None:
                return True
    return False


def _top_scopes(st: Structure) -> list[Any]:
    return [s for s in st.scopes if s.top_level]


def _run_exception(info: TraceInfo, st: Structure) -> ExceptionInfo | None:
    """The exception the caller got: seen at trace end, else at the end of the last run."""
    if info.ended_at is not None and info.exception is not None:
        return info.exception
    scopes = _top_scopes(st)
    if not scopes:
        return None
    last = scopes[-1]
    root = st.by_id.get(last.root_id) if last.root_id else None
    if root is not None and root.kind == "task":
        return root.exception
    if last.agent_ids:
        return st.by_id[last.agent_ids[-1]].exception
    return None


def _terminal(failures: list[SpanFailure], st: Structure) -> bool:
    """An unrecovered error that ends a run (seen without an exception: streamed runs)."""
    return any(not f.recovered for f in failures)


def _aborted(st: Structure) -> SpanRecord | None:
    """A span that never ended although its trace did, or a tool call that never returned."""
    for span in reversed(st.spans):
        if span.ended_at is None:
            return span
    for span in reversed(st.spans):
        if _no_output(span) and not _cleanly_ended_task(st, span):
            return span
    return None


def _no_output(span: SpanRecord) -> bool:
    """A tool call that has arguments but never got a result."""
    return (
        span.kind == "function"
        and span.error_message is None
        and "output" in span.data
        and span.data.get("output") is None
        and span.data.get("input") is not None
    )


def _cleanly_ended_task(st: Structure, span: SpanRecord) -> bool:
    """The span's run has a task span that ended with no exception in flight: the run
    returned, so a tool call without a result was paused (awaiting approval), not cut off."""
    index = st.scope_of.get(span.span_id)
    if index is None:
        return False
    root_id = st.scopes[index].root_id
    root = st.by_id.get(root_id) if root_id else None
    return (
        root is not None
        and root.kind == "task"
        and root.ended_at is not None
        and root.exception is None
    )


def awaiting_approval(st: Structure) -> list[SpanRecord]:
    """Tool calls of the last run that await a human's approval (the run returned with
    interruptions; ``Runner.run(agent, state)`` resumes it)."""
    scopes = _top_scopes(st)
    if not scopes:
        return []
    last = scopes[-1].index
    return [
        s
        for s in st.spans
        if st.scope_of.get(s.span_id) == last and _no_output(s) and _cleanly_ended_task(st, s)
    ]


def repeated_tool_calls(st: Structure) -> list[dict[str, Any]]:
    """Identical tool calls (same tool, same arguments) made more than once in one run."""
    counts: Counter[tuple[int, str, str]] = Counter()
    first: dict[tuple[int, str, str], SpanRecord] = {}
    for span in st.spans:
        if span.kind != "function" or not span.tool_name:
            continue
        args = span.data.get("input")
        if not isinstance(args, str) or args.startswith("[not captured"):
            continue
        key = (st.scope_of.get(span.span_id, -1), span.tool_name, canonical_args(args))
        counts[key] += 1
        first.setdefault(key, span)
    loops = []
    for key, count in counts.most_common():
        if count < 2:
            break
        loops.append(
            {"tool": key[1], "arguments": key[2], "count": count, "span_id": first[key].span_id}
        )
    return loops


def canonical_args(args: str) -> str:
    """Tool arguments compared by meaning: JSON with sorted keys (else the stripped text)."""
    # a run is re-analysed as it grows: small arguments are parsed once, not every time
    return _canonical_small(args) if len(args) <= 1024 else _canonicalize(args)


def _canonicalize(args: str) -> str:
    try:
        return jsontext.dumps_sorted(jsontext.loads(args))
    except (ValueError, TypeError, RecursionError):
        return args.strip()


# bounded: at most 4,096 arguments of at most 1,024 characters each
_canonical_small = functools.lru_cache(maxsize=4096)(_canonicalize)


# --- verdicts by outcome ---------------------------------------------------------------------


def _success(st: Structure, failures: list[SpanFailure]) -> Verdict:
    top_turns = [t for s in _top_scopes(st) for t in s.turns]
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
            + [Evidence(f.span.span_id, f.span.kind, _line(f)) for f in survived][:8],
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
    evidence = [Evidence(f.span.span_id, f.span.kind, _line(f)) for f in failures if not f.echo][:8]
    return Verdict(
        status=status,
        agent=agent,
        turn=last.number if last else None,
        explanation=explanation,
        evidence=evidence,
    )


def _running(st: Structure, failures: list[SpanFailure]) -> Verdict:
    turn = _current_turn(st)
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
        evidence=[Evidence(f.span.span_id, f.span.kind, _line(f)) for f in failures][:8],
    )


def _current_turn(st: Structure) -> Turn | None:
    for scope in reversed(_top_scopes(st)):
        if scope.turns:
            return scope.turns[-1]
    return st.turns[-1] if st.turns else None


def _incomplete(info: TraceInfo, st: Structure, failures: list[SpanFailure]) -> Verdict:
    turn = _current_turn(st)
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
    evidence += [Evidence(f.span.span_id, f.span.kind, _line(f)) for f in failures][:3]
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


def _failure(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    loops: list[dict[str, Any]],
) -> Verdict:
    fatal = [f for f in failures if not f.recovered]
    category = classify_exception(exc)
    primary: SpanFailure | None = None

    if category == "cancelled" or (exc is None and not fatal):
        return _cancelled(st, failures, exc)
    if category is None:
        primary = _root_cause(st, [f for f in fatal if not f.echo])
        if primary is not None:
            category = primary.category
        else:
            # no SpanError names a cause (old SDKs, hooks, guardrail bugs): the span the
            # exception escaped from does
            origin = _origin(st, exc)
            if exc is not None and exc.type == "ModelBehaviorError":
                category = "model_behavior_error"
            elif origin is not None:
                category = _origin_category(origin) or "agent_error"
            elif fatal or exc is not None:
                category = "agent_error"
            else:
                category = "unknown"
            return _from_origin(st, failures, exc, category, origin)
    if category == "guardrail" or category in (
        "input_guardrail_tripwire",
        "output_guardrail_tripwire",
    ):
        return _guardrail(st, failures, exc, category)
    if primary is None:
        primary = _root_cause(st, [f for f in fatal if _matches(f, category)]) or _root_cause(
            st, fatal
        )
    if primary is None:
        return _from_origin(st, failures, exc, category, _origin(st, exc))
    if category == "max_turns_exceeded" or primary.message == MAX_TURNS:
        return _max_turns(st, failures, exc, primary, loops)
    return _from_failure(st, failures, exc, category, primary)


def _matches(failure: SpanFailure, category: str) -> bool:
    if category in ("tool_timeout", "tool_guardrail_tripwire"):
        return failure.category == "tool_error"
    if category == "model_behavior_error":
        return failure.category in ("model_behavior_error", "tool_not_found")
    return failure.category == category


def _root_cause(st: Structure, candidates: list[SpanFailure]) -> SpanFailure | None:
    """The deepest, earliest non-echo failure; echoes ("Error in agent run") only as last resort.

    Deepest first: for an agent used as a tool, the inner agent's error is the root cause."""
    causes = [f for f in candidates if not f.echo] or candidates
    if not causes:
        return None
    return min(causes, key=lambda f: (-len(st.ancestors(f.span)), _end(f.span), f.span.seq))


def _origin(st: Structure, exc: ExceptionInfo | None) -> SpanRecord | None:
    """Where the exception came from: the first span that ended with it in flight."""
    if exc is None:
        return None
    best: SpanRecord | None = None
    for span in st.spans:
        if span.exception is None or span.exception.type != exc.type:
            continue
        if span.kind in ("task",):
            continue
        if best is None or _end(span) < _end(best):
            best = span
    return best


def _end(span: SpanRecord) -> float:
    return span.ended_at.timestamp() if span.ended_at else float("inf")


def _origin_category(span: SpanRecord) -> str | None:
    if span.kind in MODEL_KINDS:
        return "model_error"
    if span.kind == "function":
        return "tool_error"
    if span.kind == "handoff":
        return "handoff_error"
    if span.kind in ("agent", "turn", "guardrail", "custom"):
        return "agent_error"
    return None


# --- explanations per category ----------------------------------------------------------------


def _from_failure(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    category: str,
    primary: SpanFailure,
) -> Verdict:
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
        text += f": {_clip(detail)}" if detail else ""
        text += "; the tool has no failure handler, so the run stopped."
    elif category == "tool_not_found":
        available = _agent_tools(st, span)
        text = f"Agent {_q(agent)} called tool {_q(tool)} {where}, but it has no such tool"
        text += f" (it has: {', '.join(available)})." if available else "."
    elif category == "invalid_final_output":
        output_type = _agent_output_type(st, span)
        text = f"Agent {_q(agent)}'s final output {where} did not parse"
        text += f" as {output_type}" if output_type else ""
        text += f": {_clip(detail)}." if detail else "."
    elif category == "model_error":
        text = f"The model call for agent {_q(agent)} failed {where}"
        text += f": {_clip(detail)}." if detail else "."
    elif category == "model_behavior_error":
        text = f"The model gave agent {_q(agent)} a response the SDK could not use {where}"
        text += f": {_clip(detail or primary.message)}."
    elif category == "handoff_error":
        text = f"A handoff from agent {_q(agent)} failed {where}: {primary.message}"
        text += f" ({_clip(detail)})." if detail else "."
    else:
        text = f"Agent {_q(agent)} failed {where}: {_clip(detail or primary.message)}."
    return Verdict(
        status=FAILED,
        category=category,
        message=primary.message,
        exception=exception,
        agent=agent,
        turn=n,
        span_id=span.span_id,
        tool=tool,
        explanation=text,
        evidence=_evidence(primary, failures),
    )


def _max_turns(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    primary: SpanFailure,
    loops: list[dict[str, Any]],
) -> Verdict:
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
                    f"{lp['tool']}({_clip(lp['arguments'], 80)}) called {lp['count']} times "
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
        explanation=text,
        evidence=evidence,
    )


def _guardrail(
    st: Structure, failures: list[SpanFailure], exc: ExceptionInfo | None, category: str
) -> Verdict:
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
        evidence.append(Evidence(error.span.span_id, error.span.kind, _line(error)))
    evidence += [
        Evidence(f.span.span_id, f.span.kind, _line(f))
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


def _cancelled(st: Structure, failures: list[SpanFailure], exc: ExceptionInfo | None) -> Verdict:
    aborted = _aborted(st)
    turn = st.turn_of(aborted) if aborted is not None else _current_turn(st)
    if turn is None:
        turn = _current_turn(st)
    agent = (aborted.agent if aborted is not None else None) or (turn.agent if turn else None)
    where = f"in turn {turn.number}" if turn else "before its first turn"
    text = f"The run was cancelled while agent {_q(agent)} was {where}"
    if aborted is not None:
        text += f" ({_doing(aborted)})"
    text += "." if exc else "; no error was recorded, only the interrupted work."
    evidence: list[Evidence] = []
    if aborted is not None:
        state = "never ended" if aborted.ended_at is None else "ended without a result"
        evidence.append(
            Evidence(aborted.span_id, aborted.kind, f"{aborted.kind} {aborted.name!r} {state}")
        )
    if exc is not None:
        evidence.append(Evidence(None, "exception", f"{exc.type} in flight when the run ended"))
    return Verdict(
        status=FAILED,
        category="cancelled",
        message="Run cancelled",
        exception=exc.type if exc else None,
        agent=agent,
        turn=turn.number if turn else None,
        span_id=aborted.span_id if aborted is not None else None,
        tool=aborted.tool_name if aborted is not None else None,
        explanation=text,
        evidence=evidence + [Evidence(f.span.span_id, f.span.kind, _line(f)) for f in failures][:6],
    )


def _from_origin(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    category: str,
    origin: SpanRecord | None,
) -> Verdict:
    """No SpanError explains the failure: use the span the exception escaped from."""
    turn = st.turn_of(origin) if origin is not None else _current_turn(st)
    if turn is None:
        turn = _current_turn(st)
    agent = None
    if origin is not None:
        agent = origin.name if origin.kind == "agent" else origin.agent
    if agent is None and turn is not None:
        agent = turn.agent
    exc_text = f"{exc.type}: {exc.message}" if exc and exc.message else (exc.type if exc else "")
    where = f"in turn {turn.number}" if turn else "before its first turn"
    if category == "model_error":
        text = f"The model call for agent {_q(agent)} raised {where}: {_clip(exc_text)}."
    elif category == "tool_error":
        tool = origin.tool_name if origin is not None else None
        text = f"Tool {_q(tool)} of agent {_q(agent)} raised {where}: {_clip(exc_text)}."
    elif category == "unknown":
        text = "The run failed but turnscope found no exception and no error in its spans."
    else:
        text = f"Agent {_q(agent)} failed {where}: {_clip(exc_text or category)}."
    evidence: list[Evidence] = []
    if origin is not None:
        evidence.append(
            Evidence(
                origin.span_id, origin.kind, f"{origin.kind} {origin.name!r} ended with {exc_text}"
            )
        )
    evidence += [Evidence(f.span.span_id, f.span.kind, _line(f)) for f in failures][:6]
    return Verdict(
        status=FAILED,
        category=category,
        message=(exc.message or exc.type) if exc else None,
        exception=exc.type if exc else None,
        agent=agent,
        turn=turn.number if turn else None,
        span_id=origin.span_id if origin is not None else None,
        tool=origin.tool_name if origin is not None and origin.kind == "function" else None,
        explanation=text,
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
    out = [Evidence(primary.span.span_id, primary.span.kind, _line(primary))]
    for failure in failures:
        if failure is primary or failure.recovered:
            continue
        out.append(Evidence(failure.span.span_id, failure.span.kind, _line(failure)))
    return out[:8]


def _recovered_groups(failures: list[SpanFailure]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str | None, str], int] = {}
    for f in failures:
        if not f.recovered or f.echo:
            continue
        key = (f.category, f.tool, f.message)
        groups[key] = groups.get(key, 0) + 1
    return [{"category": c, "tool": t, "message": m, "count": n} for (c, t, m), n in groups.items()]


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


def _line(failure: SpanFailure) -> str:
    detail = failure.detail
    where = f" ({failure.tool})" if failure.tool and failure.span.kind == "function" else ""
    text = f"{failure.message}{where}"
    return f"{text}: {_clip(detail, 200)}" if detail else text


def _q(name: str | None) -> str:
    return f"'{name}'" if name else "(unknown)"


def _turns(n: int) -> str:
    return "1 turn" if n == 1 else f"{n} turns"


def _clip(text: str | None, limit: int = 240) -> str:
    if not text:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the runs row ----------------------------------------------------------------------------


def _summary(
    info: TraceInfo,
    st: Structure,
    failures: list[SpanFailure],
    verdict: Verdict,
    run_exc: ExceptionInfo | None,
) -> RunRecord:
    models = [s for s in st.spans if s.kind in MODEL_KINDS]
    input_tokens = sum([s.input_tokens or 0 for s in models])
    output_tokens = sum([s.output_tokens or 0 for s in models])
    if not (input_tokens or output_tokens):
        for kind in ("turn", "task"):
            group = [s for s in st.spans if s.kind == kind]
            input_tokens = sum(s.input_tokens or 0 for s in group)
            output_tokens = sum(s.output_tokens or 0 for s in group)
            if input_tokens or output_tokens:
                break
    starts = [s.started_at for s in st.spans if s.started_at]
    ends = [s.ended_at for s in st.spans if s.ended_at]
    first = min(starts) if starts else None
    started_at = info.started_at or first
    if first and started_at and first < started_at:
        started_at = first
    ended_at: datetime | None = None
    if verdict.status not in (RUNNING,):
        candidates = [t for t in (info.ended_at, max(ends) if ends else None) if t is not None]
        ended_at = max(candidates) if candidates else None
    fatal = [f for f in failures if not f.recovered]
    first_error = None
    if verdict.status == FAILED and verdict.message:
        first_error = verdict.message
        primary = next((f for f in failures if f.span.span_id == verdict.span_id), None)
        if primary is not None and primary.detail:
            first_error = f"{primary.message}: {_clip(primary.detail, 300)}"
    elif failures:
        first_error = _line(failures[0])
    top_turns = [t for s in _top_scopes(st) for t in s.turns]
    return RunRecord(
        trace_id=info.trace_id,
        workflow=info.workflow or _task_name(st),
        status=verdict.status,
        verdict=verdict,
        group_id=info.group_id,
        metadata=info.metadata,
        sdk_version=info.sdk_version,
        process_id=info.process_id,
        pid=info.pid,
        host=info.host,
        started_at=started_at,
        ended_at=ended_at,
        trace_ended=info.ended_at is not None,
        agents=agent_path(st),
        turns=len(top_turns) or len(st.turns),
        span_count=len(st.spans),
        error_count=len(failures),
        fatal_error_count=len(fatal) if verdict.status == FAILED else 0,
        recovered_error_count=len(failures) - (len(fatal) if verdict.status == FAILED else 0),
        tool_calls=len([s for s in st.spans if s.kind == "function"]),
        model_calls=len(models),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        first_input=_first_input(models),
        final_output=_final_output(models) if verdict.status != FAILED else None,
        first_error=first_error,
        exception=run_exc,
        truncated=any([s.truncated for s in st.spans]),
        dropped_spans=info.dropped_spans,
        streamed=info.streamed,
    )


def _task_name(st: Structure) -> str | None:
    for span in st.spans:
        if span.kind == "task":
            return span.name
    return None


def _first_input(models: list[SpanRecord]) -> str | None:
    for span in models:
        value = span.data.get("input")
        text = _last_user_text(value)
        if text:
            return _clip(text, PREVIEW_CHARS)
    return None


def _final_output(models: list[SpanRecord]) -> str | None:
    for span in reversed(models):
        if span.ended_at is None or span.error_message is not None:
            continue
        text = output_text(span.data.get("output"))
        if text:
            return _clip(text, PREVIEW_CHARS)
    return None


def _last_user_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item.get("role") == "user":
                return _content_text(item.get("content"))
        return _content_text(value)
    return None


def output_text(value: Any) -> str | None:
    """Assistant text in a model output (chat messages or Responses output items)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for item in value:
            if isinstance(item, dict) and item.get("type") in (None, "message"):
                text = _content_text(item.get("content"))
                if text:
                    texts.append(text)
        return "\n".join(texts) if texts else None
    return None


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts) if parts else None
    return None
