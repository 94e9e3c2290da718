"""Warnings: what a person should look at in a run that looks fine, or whose cause lies
elsewhere (a tool that reported a failure, an agent used as a tool that failed, a guardrail
that tripped without stopping the run, an empty or refused final answer)."""

from __future__ import annotations

import re

from turnscope.analysis.errors import RECOVERED_MESSAGES, SpanFailure
from turnscope.analysis.summary import awaiting_approval, top_scopes
from turnscope.analysis.turns import Structure
from turnscope.content import asks_for_tools, clip, output_text, refusal_text
from turnscope.records import (
    FAILED,
    MODEL_KINDS,
    SUCCEEDED,
    SUCCEEDED_WITH_ERRORS,
    RunWarning,
    SpanRecord,
    Verdict,
    is_captured,
)

# the SDK's default failure_error_function text (0.0.x adds ": Error: <e>")
TOOL_FAILURE_TEXT = "An error occurred while running the tool"
# what the mcp package's servers return with isError for a tool that raised (the SDK keeps
# only the content, not the flag)
MCP_ERROR_TEXT = re.compile(r"""(^|['"]text['"]\s*:\s*['"])Error executing tool \S""")
NON_FATAL_TOOL = frozenset(m for m in RECOVERED_MESSAGES if "non-fatal" in m)


def find_warnings(st: Structure, failures: list[SpanFailure], verdict: Verdict) -> list[RunWarning]:
    """The warnings of an ended (or incomplete) run."""
    out = _nested_failures(st, failures, verdict)
    covered = {w.span_id for w in out} | {_tool_of(st, f.span) for f in failures if f.contained}
    out += _tool_reports(st, verdict, covered)
    if verdict.status in (SUCCEEDED, SUCCEEDED_WITH_ERRORS):
        out += _unenforced_guardrails(st)
        out += _final_answer(st)
    return out


def _nested_failures(
    st: Structure, failures: list[SpanFailure], verdict: Verdict
) -> list[RunWarning]:
    """One warning per agent-as-tool run that failed while the outer run went on."""
    out: list[RunWarning] = []
    seen: set[str | None] = set()
    for failure in failures:
        if not failure.contained or failure.echo or failure.span.span_id == verdict.span_id:
            continue
        tool = _tool_span(st, failure.span)
        key = tool.span_id if tool is not None else None
        if key in seen:
            continue
        seen.add(key)
        turn = st.turn_of(failure.span)
        inner = failure.span.agent or (failure.span.name if failure.span.kind == "agent" else None)
        where = f" at its turn {turn.number}" if turn else ""
        via = (
            f"Tool '{tool.tool_name or tool.name}' of agent '{tool.agent}' ran agent '{inner}'"
            if tool is not None
            else f"Agent '{inner}' (run inside another)"
        )
        out.append(
            RunWarning(
                "nested_run_failed",
                f"{via}, which failed{where} ({failure.category}: {clip(failure.line(), 200)});"
                " the outer run went on.",
                agent=inner,
                turn=turn.number if turn else None,
                span_id=failure.span.span_id,
            )
        )
    return out


def _tool_span(st: Structure, span: SpanRecord) -> SpanRecord | None:
    return next((a for a in st.ancestors(span) if a.kind == "function"), None)


def _tool_of(st: Structure, span: SpanRecord) -> str | None:
    tool = _tool_span(st, span)
    return tool.span_id if tool is not None else None


def _tool_reports(st: Structure, verdict: Verdict, covered: set[str | None]) -> list[RunWarning]:
    """Tool calls whose output reports a failure the run went on past."""
    out: list[RunWarning] = []
    for span in st.spans:
        if span.kind != "function" or span.span_id in covered or span.span_id == verdict.span_id:
            continue
        text = _output_text(span.data.get("output"))
        reported = (
            span.error_message in NON_FATAL_TOOL
            or text.lstrip().startswith(TOOL_FAILURE_TEXT)
            or bool(MCP_ERROR_TEXT.search(text[:300]))
        )
        if not reported:
            continue
        if verdict.status == FAILED and span.ended_at is None:
            continue
        turn = st.turn_of(span)
        where = f" in turn {turn.number}" if turn else ""
        said = f": {clip(text, 160)}" if text else ""
        out.append(
            RunWarning(
                "tool_reported_error",
                f"Tool '{span.tool_name or span.name}' reported a failure{where} and the run"
                f" went on{said}",
                agent=span.agent,
                turn=turn.number if turn else None,
                span_id=span.span_id,
            )
        )
    return out


def _output_text(output: object) -> str:
    """A tool output as text: a string, or the text of an MCP content item (or items)."""
    if isinstance(output, str):
        return output if is_captured(output) else ""
    items = output if isinstance(output, list) else [output]
    texts = [i.get("text") for i in items if isinstance(i, dict)]
    return " ".join(t for t in texts if isinstance(t, str))


def _unenforced_guardrails(st: Structure) -> list[RunWarning]:
    """Guardrails that tripped in a run that completed anyway (old SDKs' streamed runs)."""
    return [
        RunWarning(
            "guardrail_tripped_unenforced",
            f"Guardrail '{s.name}' tripped, yet the run completed: its tripwire did not stop it.",
            agent=s.agent,
            turn=turn.number if (turn := st.turn_of(s)) else None,
            span_id=s.span_id,
        )
        for s in st.spans
        if s.kind == "guardrail" and s.data.get("triggered") is True
    ]


def _final_answer(st: Structure) -> list[RunWarning]:
    """An empty or refused final answer in a run that returned."""
    if awaiting_approval(st):
        return []
    scopes = top_scopes(st)
    index = scopes[-1].index if scopes else None
    last: SpanRecord | None = None
    for span in st.spans:
        if (
            span.kind in MODEL_KINDS
            and span.ended_at is not None
            and span.error_message is None
            and (index is None or st.scope_of.get(span.span_id) == index)
        ):
            last = span
    if last is None:
        return []
    output = last.data.get("output")
    if output is None or not is_captured(output) or asks_for_tools(output):
        return []
    turn = st.turn_of(last)
    where = f" in turn {turn.number}" if turn else ""
    refusal = refusal_text(output)
    if refusal is not None:
        return [
            RunWarning(
                "refusal",
                f"The final answer{where} is a refusal by the model: {clip(refusal, 200)}",
                agent=last.agent,
                turn=turn.number if turn else None,
                span_id=last.span_id,
            )
        ]
    text = output_text(output)
    if text is not None and text.strip():
        return []
    if (
        text is None
        and isinstance(output, list)
        and any(
            not (isinstance(item, dict) and item.get("type") in (None, "message"))
            for item in output
        )
    ):
        return []  # something other than a message (reasoning only, an unknown item)
    return [
        RunWarning(
            "empty_final_output",
            f"The final answer{where} is empty: the run succeeded with nothing to show.",
            agent=last.agent,
            turn=turn.number if turn else None,
            span_id=last.span_id,
        )
    ]
