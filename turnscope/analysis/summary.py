"""A run's facts and its ``runs`` row.

Facts the verdict, its explanations and the viewer all read (top-level runs, the turn in
flight, tool calls that never returned or await approval, repeated identical calls), and the
summary row stored per run (tokens, counts, first input, final output).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from turnscope.analysis.conversation import conversation_key, last_response_id
from turnscope.analysis.errors import SpanFailure
from turnscope.analysis.turns import Scope, Structure, Turn, agent_path
from turnscope.content import canonical_args, clip, last_user_text, output_text
from turnscope.records import (
    FAILED,
    MODEL_KINDS,
    RUNNING,
    ExceptionInfo,
    RunRecord,
    SpanRecord,
    TraceInfo,
    Verdict,
    is_captured,
)

PREVIEW_CHARS = 400


def top_scopes(st: Structure) -> list[Scope]:
    """The trace's top-level runs (not nested agent-as-tool runs), in order."""
    return [s for s in st.scopes if s.top_level]


def current_turn(st: Structure) -> Turn | None:
    """The last turn of the last top-level run that has one."""
    for scope in reversed(top_scopes(st)):
        if scope.turns:
            return scope.turns[-1]
    return st.turns[-1] if st.turns else None


def aborted(st: Structure) -> SpanRecord | None:
    """A span that never ended although its trace did, or a tool call that never returned."""
    for span in reversed(st.spans):
        if span.ended_at is None:
            return span
    for span in reversed(st.spans):
        if no_output(span) and not cleanly_ended_task(st, span) and not _resumed(st, span):
            return span
    return None


def _resumed(st: Structure, span: SpanRecord) -> bool:
    """The same tool call (same tool, same arguments) ran later in the trace and returned: a
    pause for approval that a resumed run carried on (with or without task spans)."""
    args = span.data.get("input")
    return any(
        other.kind == "function"
        and other.tool_name == span.tool_name
        and other.data.get("input") == args
        and other.data.get("output") is not None
        and other.seq > span.seq
        for other in st.spans
    )


def no_output(span: SpanRecord) -> bool:
    """A tool call that has arguments but never got a result."""
    return (
        span.kind == "function"
        and span.error_message is None
        and "output" in span.data
        and span.data.get("output") is None
        and span.data.get("input") is not None
    )


def cleanly_ended_task(st: Structure, span: SpanRecord) -> bool:
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
    scopes = top_scopes(st)
    if not scopes:
        return []
    last = scopes[-1].index
    return [
        s
        for s in st.spans
        if st.scope_of.get(s.span_id) == last and no_output(s) and cleanly_ended_task(st, s)
    ]


def repeated_tool_calls(st: Structure) -> list[dict[str, Any]]:
    """Identical tool calls (same tool, same arguments) made more than once in one run (one
    run: a nested agent-as-tool run is another), most repeated first."""
    calls: dict[tuple[int, str, str], list[str]] = {}
    for span in st.spans:
        if span.kind != "function" or not span.tool_name:
            continue
        args = span.data.get("input")
        if not isinstance(args, str) or not is_captured(args):
            continue
        key = (st.scope_of.get(span.span_id, -1), span.tool_name, canonical_args(args))
        calls.setdefault(key, []).append(span.span_id)
    repeated = sorted(
        ((key, ids) for key, ids in calls.items() if len(ids) > 1), key=lambda kv: -len(kv[1])
    )
    return [
        {"tool": key[1], "arguments": key[2], "count": len(ids), "span_id": ids[0], "span_ids": ids}
        for key, ids in repeated
    ]


def run_row(
    info: TraceInfo,
    st: Structure,
    failures: list[SpanFailure],
    verdict: Verdict,
    run_exc: ExceptionInfo | None,
) -> RunRecord:
    """The ``runs`` row for an analysed trace."""
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
            first_error = f"{primary.message}: {clip(primary.detail, 300)}"
    elif failures:
        first_error = failures[0].line()
    top_turns = [t for s in top_scopes(st) for t in s.turns]
    last_response = last_response_id(models)
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
        ending=info.ending,
        conversation_id=conversation_key(info, last_response),
        previous_response_id=info.previous_response_id,
        last_response_id=last_response,
    )


def _task_name(st: Structure) -> str | None:
    for span in st.spans:
        if span.kind == "task":
            return span.name
    return None


def _first_input(models: list[SpanRecord]) -> str | None:
    for span in models:
        value = span.data.get("input")
        text = last_user_text(value)
        if text:
            return clip(text, PREVIEW_CHARS)
    return None


def _final_output(models: list[SpanRecord]) -> str | None:
    for span in reversed(models):
        if span.ended_at is None or span.error_message is not None:
            continue
        text = output_text(span.data.get("output"))
        if text:
            return clip(text, PREVIEW_CHARS)
    return None
