"""The verdict: decide a run's status, failure category and the span at fault.

``analyze()`` is the one entry point. Pure functions over records: the same code labels a run
at write time, in ``turnscope why``, in the viewer and in the tests. Sentences are built in
``analysis.explain``, the ``runs`` row in ``analysis.summary``. Evidence, in order of trust:

1. the exception in flight when the trace (or the run's task/agent span) ended — the class the
   caller got (captured by the processor with ``sys.exc_info()``);
2. the SpanErrors the SDK attached (docs/design/sdk-tracing.md §4);
3. structure: spans that never ended, a model span that ended with an exception in flight
   (old SDKs record no SpanError for non-OpenAI models), a tool call that never returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from turnscope.analysis import causes, explain, explain_causes
from turnscope.analysis.errors import (
    AGENT_RUN,
    MAX_TURNS,
    RECOVERED_MESSAGES,
    TRIPWIRE,
    SpanFailure,
    classify_exception,
    classify_message,
    is_cancellation,
    kind_category,
)
from turnscope.analysis.run_warnings import find_warnings
from turnscope.analysis.summary import (
    aborted,
    repeated_tool_calls,
    run_row,
    top_scopes,
)
from turnscope.analysis.turns import Scope, Structure, build
from turnscope.records import (
    FAILED,
    INCOMPLETE,
    MODEL_KINDS,
    RUNNING,
    SUCCEEDED,
    SUCCEEDED_WITH_ERRORS,
    ExceptionInfo,
    RunRecord,
    SpanRecord,
    TraceInfo,
    Verdict,
)


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
    ended = (info.ended_at is not None and not _open_roots(st)) or _cancelled_in_cleanup(info, st)
    ending = info.ending or {}
    soft_cancel = ending.get("cancel_mode") not in (None, "none") and not ending.get("final_output")
    loops = None

    if not ended:
        status = RUNNING if process_alive else INCOMPLETE
    elif run_exc is not None or aborted(st) is not None or soft_cancel:
        status = FAILED
    elif _terminal(failures, st) and info.streamed is not False and not _handled(ending, failures):
        # an unrecovered error and no exception in flight: a streamed run raises from
        # stream_events() after its trace ended; a run that returned a result (a max_turns
        # error handler) did not fail
        status = FAILED
    else:
        status = SUCCEEDED_WITH_ERRORS if failures else SUCCEEDED

    if status in (SUCCEEDED, SUCCEEDED_WITH_ERRORS):
        for failure in failures:
            failure.recovered = True
        verdict = explain.success(st, failures)
    elif status == RUNNING:
        verdict = explain.running(st, failures)
    elif status == INCOMPLETE:
        verdict = explain.incomplete(info, st, failures)
    elif soft_cancel and run_exc is None:
        after_turn = ending.get("cancel_mode") == "after_turn"
        verdict = explain.cancelled(st, failures, None, after_turn=after_turn)
    else:
        loops = repeated_tool_calls(st)
        verdict = _failure(st, failures, run_exc, loops)
        if run_exc is None and info.streamed and not info.ending:
            _say_what_spans_cannot_tell(verdict)
    verdict.recovered_errors = _recovered_groups(failures)
    if status != RUNNING:
        verdict.warnings = find_warnings(st, failures, verdict)
    run = run_row(info, st, failures, verdict, run_exc)
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
            survived = _survived(st, span) or _retried(st, span)
            # contained: the inner run of an agent used as a tool failed, the outer went on
            failure.contained = not survived and _contained(st, span)
            failure.recovered = survived or failure.contained
        out.append(failure)
    return out


def _retried(st: Structure, span: SpanRecord) -> bool:
    """An earlier attempt of a run resumed later in the same trace (``Runner.run(agent,
    state)``), or an earlier run the caller went on from: the last run decides the outcome."""
    scopes = top_scopes(st)
    if len(scopes) < 2 or span.ended_at is None:
        return False
    started = _scope_start(st, scopes[-1])
    return started is not None and span.ended_at <= started


def _silent_failure(span: SpanRecord) -> SpanFailure | None:
    """Trouble the SDK records as a tool's output, not as an error: a tool timeout with the
    default ``timeout_behavior="error_as_result"`` (docs/design/sdk-tracing.md §4.1)."""
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


# failures a RunConfig error handler can turn into a result, leaving the same spans
HANDLED_CATEGORIES = frozenset(
    {"max_turns_exceeded", "invalid_final_output", "model_behavior_error"}
)


def _say_what_spans_cannot_tell(verdict: Verdict) -> None:
    """A streamed run whose result was not seen (its trace closed outside the SDK's loop):
    a failure an error handler could have answered is stated with that caveat."""
    if verdict.category in HANDLED_CATEGORIES:
        verdict.explanation += (
            " No exception was seen: a streamed run raises it from stream_events(); had a"
            " RunConfig error handler returned a result instead, the spans would look the"
            " same."
        )


def _handled(ending: dict[str, Any], failures: list[SpanFailure]) -> bool:
    """A streamed run whose result got a final output despite its unrecovered errors (an
    error handler's answer), unless an input guardrail tripped: the SDK raises the tripwire
    from stream_events() even after the answer is out."""
    return bool(ending.get("final_output")) and not any(
        f.message == TRIPWIRE and not f.recovered for f in failures
    )


def _cancelled_in_cleanup(info: TraceInfo, st: Structure) -> bool:
    """The run's own spans ended with a cancellation in flight, but the SDK never closed its
    trace (a streamed run cancelled during its cleanup): the run ended, cancelled, whether or
    not the process lives on."""
    if info.ended_at is not None or _open_roots(st):
        return False
    scopes = top_scopes(st)
    if not scopes:
        return False
    last = scopes[-1]
    root_id = last.root_id or (last.agent_ids[-1] if last.agent_ids else None)
    root = st.by_id.get(root_id) if root_id else None
    return root is not None and root.ended_at is not None and is_cancellation(root.exception)


def _run_exception(info: TraceInfo, st: Structure) -> ExceptionInfo | None:
    """The exception the caller got: seen at trace end, else at the end of the last run. A run
    resumed after the trace closed (its spans start later) answers for itself."""
    scopes = top_scopes(st)
    if info.ended_at is not None and info.exception is not None:
        last_start = _scope_start(st, scopes[-1]) if scopes else None
        if last_start is None or last_start <= info.ended_at:
            return info.exception
    if not scopes:
        return None
    last = scopes[-1]
    root = st.by_id.get(last.root_id) if last.root_id else None
    if root is not None and root.kind == "task":
        return root.exception
    if last.agent_ids:
        return st.by_id[last.agent_ids[-1]].exception
    return None


def _scope_start(st: Structure, scope: Scope) -> datetime | None:
    root_id = scope.root_id or (scope.agent_ids[0] if scope.agent_ids else None)
    root = st.by_id.get(root_id) if root_id else None
    return root.started_at if root is not None else None


def _terminal(failures: list[SpanFailure], st: Structure) -> bool:
    """An unrecovered error that ends a run (seen without an exception: streamed runs)."""
    return any(not f.recovered for f in failures)


def _failure(
    st: Structure,
    failures: list[SpanFailure],
    exc: ExceptionInfo | None,
    loops: list[dict[str, Any]],
) -> Verdict:
    fatal = [f for f in failures if not f.recovered]
    if is_cancellation(exc):
        # a consequence never outranks its cause: a streamed run's task is cancelled after a
        # guardrail tripped or raised, and CancelledError is what is in flight at trace end
        cause = _cause_behind_cancel(st, fatal)
        if cause is not None:
            exc = cause if isinstance(cause, ExceptionInfo) else None
    category = classify_exception(exc)
    primary: SpanFailure | None = None

    if category == "cancelled" or (exc is None and not fatal):
        return explain.cancelled(st, failures, exc)
    if category is None and exc is not None:
        verdict = _from_exception_origin(st, failures, exc)
        if verdict is not None:
            return verdict
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
            elif causes.in_model_call(exc):
                # a provider's answer the SDK could not read (pydantic, attribute errors)
                reason = causes.model_reason([exc]) or (
                    "bad_response" if causes.unreadable_answer(exc) else None
                )
                return explain.from_origin(st, failures, exc, "model_error", origin, reason)
            elif origin is not None:
                category = kind_category(origin.kind) or "agent_error"
            elif fatal or exc is not None:
                category = "agent_error"
            else:
                category = "unknown"
            reason = _reason(category, exc, origin, None)
            return explain.from_origin(st, failures, exc, category, origin, reason)
    if category == "guardrail" or category in (
        "input_guardrail_tripwire",
        "output_guardrail_tripwire",
    ):
        return explain.guardrail(st, failures, exc, category)
    if primary is None:
        primary = _root_cause(st, [f for f in fatal if _matches(f, category)]) or _root_cause(
            st, fatal
        )
    if primary is None:
        origin = _origin(st, exc)
        reason = _reason(category, exc, origin, None)
        return explain.from_origin(st, failures, exc, category, origin, reason)
    if category == "max_turns_exceeded" or primary.message == MAX_TURNS:
        return explain.max_turns_exceeded(st, failures, exc, primary, loops)
    reason = _reason(category, exc, primary.span, primary)
    return explain.from_failure(st, failures, exc, category, primary, reason)


def _reason(
    category: str,
    exc: ExceptionInfo | None,
    span: SpanRecord | None,
    failure: SpanFailure | None,
) -> str | None:
    """The finer cause of a model error, from every exception and text that saw it."""
    if category != "model_error":
        return None
    texts = [failure.detail if failure is not None else None]
    if span is not None:
        texts.append(span.error_message)
    seen = [exc, span.exception if span is not None else None]
    reason = causes.model_reason(seen, texts)
    if reason is None and any(causes.unreadable_answer(e) for e in seen):
        reason = "bad_response"
    return reason


def _cause_behind_cancel(
    st: Structure, fatal: list[SpanFailure]
) -> SpanFailure | ExceptionInfo | None:
    """What a cancellation at trace end was the consequence of: an unrecovered SpanError, or
    a span (a guardrail, a tool) that ended with another exception in flight."""
    causes_seen = [f for f in fatal if not f.echo]
    if causes_seen:
        return causes_seen[0]
    ended_with: list[SpanRecord] = [
        s
        for s in st.spans
        if s.exception is not None
        and not is_cancellation(s.exception)
        and s.kind not in ("task", "agent", "turn")
    ]
    if not ended_with:
        return None
    return min(ended_with, key=_end).exception


def _from_exception_origin(
    st: Structure, failures: list[SpanFailure], exc: ExceptionInfo
) -> Verdict | None:
    """Failures whose cause only the exception's class and traceback show: another trace
    processor, a run hook, the session store, an MCP server, a guardrail function, or the
    run's set-up before its first model call."""
    if causes.in_tracing(exc):
        return explain_causes.tracing_error(st, failures, exc)
    hook = causes.hook(exc)
    if hook is not None:
        return explain_causes.hook_error(st, failures, exc, hook, _origin_any(st, exc))
    method = causes.session_method(exc)
    if method is not None:
        return explain_causes.session_error(st, failures, exc, method)
    stage = causes.mcp_stage(exc)
    if stage is not None:
        return explain_causes.mcp_error(st, failures, exc, stage, _origin_any(st, exc))
    if causes.in_guardrail(exc):
        return explain_causes.guardrail_error(st, failures, exc, _origin_any(st, exc))
    if not any(s.kind in MODEL_KINDS for s in _last_run_spans(st)) and (
        exc.is_a("UserError") or causes.raised_by_sdk(exc)
    ):
        return explain_causes.config_error(st, failures, exc)
    return None


def _origin_any(st: Structure, exc: ExceptionInfo) -> SpanRecord | None:
    """The first span that ended with this exception, or with the one it came from."""
    for link in exc.chain():
        origin = _origin(st, link)
        if origin is not None:
            return origin
    return None


def _last_run_spans(st: Structure) -> list[SpanRecord]:
    scopes = top_scopes(st)
    if not scopes:
        return list(st.spans)
    last = scopes[-1].index
    return [s for s in st.spans if st.scope_of.get(s.span_id, last) == last]


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


def _recovered_groups(failures: list[SpanFailure]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str | None, str], int] = {}
    for f in failures:
        if not f.recovered or f.echo:
            continue
        key = (f.category, f.tool, f.message)
        groups[key] = groups.get(key, 0) + 1
    return [{"category": c, "tool": t, "message": m, "count": n} for (c, t, m), n in groups.items()]
