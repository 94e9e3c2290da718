"""Words, badges and exports for the viewer (pure functions, no streamlit)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from turnscope import content
from turnscope.records import MODEL_KINDS, SpanRecord

if TYPE_CHECKING:
    from turnscope.analysis.cost import RunCost
    from turnscope.analysis.verdict import Analysis

STATUS_BADGES = {
    "failed": "● failed",
    "incomplete": "● incomplete",
    "running": "● running",
    "succeeded_with_errors": "● recovered errors",
    "succeeded": "● succeeded",
}
STATUS_HEX = {  # table cells (pandas Styler)
    "failed": "#D62728",
    "incomplete": "#9467BD",
    "running": "#1F77B4",
    "succeeded_with_errors": "#C98500",
    "succeeded": "#2CA02C",
}
CHECK_HEX = "#C98500"  # the "check" badge of runs with warnings (amber, as recovered errors)
STATUS_ICONS = {  # markdown: colour and Material icon
    "failed": ":red[:material/cancel:]",
    "incomplete": ":violet[:material/pending:]",
    "running": ":blue[:material/sync:]",
    "succeeded_with_errors": ":orange[:material/warning:]",
    "succeeded": ":green[:material/check_circle:]",
}
STATUS_COLORS = {  # streamlit badge / markdown colours
    "failed": "red",
    "incomplete": "violet",
    "running": "blue",
    "succeeded_with_errors": "orange",
    "succeeded": "green",
}
KIND_LABELS = {
    "generation": "model call",
    "response": "model call",
    "function": "tool",
    "handoff": "handoff",
    "guardrail": "guardrail",
    "mcp_tools": "MCP tools list",
    "custom": "custom",
    "agent": "agent",
    "task": "run",
    "turn": "turn",
}


def badge(status: str | None) -> str:
    """Status with a coloured dot (table cells are plain text)."""
    return STATUS_BADGES.get(status or "", status or "—")


def category_text(category: str | None, reason: str | None) -> str:
    """``model_error (rate_limited)``: a category with its reason, the category alone, or
    empty."""
    if not category:
        return ""
    return f"{category} ({reason})" if reason else category


def check_text(warning_count: int | None) -> str:
    """The "check" badge of a run with warnings (``check``, ``check ×3``), else empty."""
    if not warning_count:
        return ""
    return "check" if warning_count == 1 else f"check ×{warning_count}"


def warning_where(agent: str | None, turn: int | None, span_id: str | None = None) -> str:
    """``agent Helper · turn 2`` (and the span, when given) for what a warning names."""
    parts = [f"agent {agent}"] if agent else []
    if turn is not None:
        parts.append(f"turn {turn}")
    if span_id:
        parts.append(f"span `{span_id}`")
    return " · ".join(parts)


def duration(ms: float | None) -> str:
    """``830 ms``, ``4.2 s``, ``3.1 min``."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def tokens(n: int | None) -> str:
    """``950``, ``12.3k``, ``4.1M``."""
    if not n:
        return "0"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def turn_text(turn: int | None, max_turns: int | None) -> str:
    """``3 of 3`` when the budget is known, else ``3``."""
    if turn is None:
        return ""
    return f"{turn} of {max_turns}" if max_turns else str(turn)


def local_time(value: str | datetime | None, offset_minutes: int | None = None) -> str:
    """An ISO time in the browser's time zone (st.context offset), to the second."""
    if value is None:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if offset_minutes is not None:
        # st.context.timezone_offset follows JavaScript: minutes *behind* UTC
        moment = moment.astimezone(timezone(timedelta(minutes=-offset_minutes)))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def clip(text: Any, limit: int = 200) -> str:
    """One line, at most ``limit`` characters (the viewer's default width)."""
    return content.clip(text, limit)


def jaeger_link(base: str | None, trace_id: str, span_id: str | None = None) -> str | None:
    """The run's trace in Jaeger (deterministic OTel ids), optionally with the span found."""
    if not base:
        return None
    from turnscope.ids import otel_span_id, otel_trace_id_hex

    url = f"{base.rstrip('/')}/trace/{otel_trace_id_hex(trace_id)}"
    if span_id:
        url += f"?uiFind={otel_span_id(span_id):016x}"
    return url


# --- what a span says ------------------------------------------------------------------------


def span_label(span: SpanRecord) -> str:
    """``T2 · tool lookup_order · error`` (menus, chart hovers)."""
    parts = []
    if span.turn is not None:
        parts.append(f"T{span.turn}")
    parts.append(f"{KIND_LABELS.get(span.kind, span.kind)} {span.name}")
    if span.error_message is not None:
        parts.append("error")
    elif span.ended_at is None:
        parts.append("never ended")
    return " · ".join(parts)


def model_io(span: SpanRecord) -> tuple[list[str], list[str]]:
    """(what the model saw, what it said) for a generation/response span."""
    data = span.data or {}
    seen = data.get("input")
    said = data.get("output")
    seen_items = seen if isinstance(seen, list) else ([seen] if seen is not None else [])
    said_items = said if isinstance(said, list) else ([said] if said is not None else [])
    return [content.message_text(i) for i in seen_items], [
        content.message_text(i) for i in said_items
    ]


def pretty_json(value: Any) -> str:
    """Arguments or output: indented JSON when it parses, else the text."""
    if isinstance(value, str):
        try:
            return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
        except (ValueError, TypeError):
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def span_dict(span: SpanRecord) -> dict[str, Any]:
    """A span as plain JSON-ready data (raw view and downloads)."""
    return {
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "kind": span.kind,
        "name": span.name,
        "agent": span.agent,
        "turn": span.turn,
        "status": span.status,
        "started_at": span.started_at.isoformat() if span.started_at else None,
        "ended_at": span.ended_at.isoformat() if span.ended_at else None,
        "duration_ms": span.duration_ms,
        "error_message": span.error_message,
        "error_data": span.error_data,
        "exception": span.exception.to_dict() if span.exception else None,
        "model": span.model,
        "tool_name": span.tool_name,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "truncated": span.truncated,
        "data": span.data,
    }


def repeated_spans(analysis: Analysis) -> dict[str, int]:
    """span id -> how many times an identical tool call (same tool, same arguments, same run)
    was made, for calls made more than once: the verdict's own loops."""
    return {sid: loop["count"] for loop in analysis.loops for sid in loop["span_ids"]}


def first_error_span(analysis: Analysis) -> str | None:
    """The span to jump to: the verdict's failing span, else the first fatal error, else the
    first recovered one."""
    verdict = analysis.verdict
    if verdict.span_id and verdict.span_id in analysis.structure.by_id:
        return str(verdict.span_id)
    failures = list(analysis.failures)
    for failure in failures:
        if not failure.recovered:
            return str(failure.span.span_id)
    return str(failures[0].span.span_id) if failures else None


def is_model(span: SpanRecord) -> bool:
    """A model call (Chat Completions generation or Responses response)."""
    return span.kind in MODEL_KINDS


# --- exports -----------------------------------------------------------------------------------


def run_export(run: dict[str, Any], analysis: Analysis) -> dict[str, Any]:
    """Everything about one run as one JSON object (the "Download JSON" button)."""
    return {
        "run": run,
        "verdict": analysis.verdict.to_dict(),
        "turns": [t.to_dict() for t in analysis.structure.turns],
        "repeated_tool_calls": analysis.loops,
        "spans": [span_dict(s) for s in analysis.structure.spans],
    }


def incident_report(
    run: dict[str, Any],
    analysis: Analysis,
    *,
    link: str | None = None,
    jaeger: str | None = None,
    cost: RunCost | None = None,
) -> str:
    """A self-contained Markdown incident report of one run: verdict, evidence, the failing
    turn, recovered errors, warnings and the turn list."""
    verdict = analysis.verdict
    title = run.get("workflow") or run["trace_id"]
    lines = [
        f"# Incident report: {title}",
        "",
        f"- **Trace id:** `{run['trace_id']}`",
        f"- **Status:** {verdict.status}"
        + (f" · {category_text(verdict.category, verdict.reason)}" if verdict.category else ""),
        f"- **Started:** {run.get('started_at') or '—'} · **Duration:** "
        f"{duration(run.get('duration_ms'))}",
        f"- **Agents:** {run.get('agent_path') or '—'} · **Turns:** {run.get('turns')} · "
        f"**Tokens:** {tokens((run.get('input_tokens') or 0) + (run.get('output_tokens') or 0))}",
    ]
    if run.get("group_id"):
        lines.append(f"- **Group id:** `{run['group_id']}`")
    if link:
        lines.append(f"- **Viewer:** {link}")
    if jaeger:
        lines.append(f"- **Jaeger:** {jaeger}")
    lines += ["", "## Verdict", "", verdict.explanation or "(no explanation)", ""]
    facts = [
        ("Category", verdict.category),
        ("Reason", verdict.reason),
        ("Exception", verdict.exception),
        ("Message", verdict.message),
        ("Failing agent", verdict.agent),
        ("Turn", turn_text(verdict.turn, verdict.max_turns) or None),
        ("Tool", verdict.tool),
        ("Span", f"`{verdict.span_id}`" if verdict.span_id else None),
    ]
    lines += [f"- **{k}:** {v}" for k, v in facts if v not in (None, "")]
    if verdict.evidence:
        lines += ["", "## Evidence", ""]
        for item in verdict.evidence:
            where = f"{item.kind} `{item.span_id}`" if item.span_id else item.kind
            lines.append(f"- [{where}] {item.message}")
    if verdict.recovered_errors:
        lines += ["", "## Recovered errors (the run went on)", ""]
        for group in verdict.recovered_errors:
            tool = f" `{group.get('tool')}`" if group.get("tool") else ""
            lines.append(
                f"- {group.get('category')}{tool} ×{group.get('count')}: {group.get('message')}"
            )
    if verdict.warnings:
        lines += ["", "## Warnings", ""]
        for warning in verdict.warnings:
            where = warning_where(warning.agent, warning.turn, warning.span_id)
            where = f" ({where})" if where else ""
            lines.append(f"- **{warning.kind}**{where}: {warning.message}")
    if cost is not None:
        lines += cost.markdown()
    if analysis.loops:
        lines += ["", "## Repeated identical tool calls", ""]
        for loop in analysis.loops:
            lines.append(f"- `{loop['tool']}({clip(loop['arguments'], 120)})` ×{loop['count']}")
    turns = analysis.structure.turns
    if turns:
        lines += ["", "## Turns", "", "| Turn | Agent | Model calls | Tools | Errors | Tokens |"]
        lines.append("|---:|---|---:|---:|---:|---:|")
        for turn in turns:
            marker = " ⟵ failed here" if turn.number == verdict.turn else ""
            lines.append(
                f"| {turn.number} | {turn.agent or '?'}{marker} | {turn.model_calls} | "
                f"{turn.tool_calls} | {turn.errors} | "
                f"{tokens(turn.input_tokens + turn.output_tokens)} |"
            )
    failing = [t for t in turns if verdict.turn is not None and t.number == verdict.turn]
    if failing and verdict.status in ("failed", "incomplete"):
        lines += ["", f"## Turn {failing[-1].number} in detail", ""]
        for span_id in failing[-1].span_ids:
            span = analysis.structure.by_id[span_id]
            if span.kind == "turn":
                continue
            status = f" — **{span.error_message}**" if span.error_message else ""
            lines.append(f"- {span_label(span)} ({duration(span.duration_ms)}){status}")
            if span.kind == "function":
                lines.append(f"  - arguments: `{clip(span.data.get('input'), 300)}`")
                lines.append(f"  - output: `{clip(span.data.get('output'), 300)}`")
    if run.get("first_input"):
        lines += ["", "## First input", "", "> " + clip(run["first_input"], 600)]
    lines += ["", "_Generated by turnscope._", ""]
    return "\n".join(lines)


def cost_cell(row: dict[str, Any]) -> str:
    """A run's or conversation's cost (``cost_usd``, ``cost_partial``, ``unpriced_models``):
    ``$0.042``, ``≥ $0.042``, ``price unknown (model)`` or ``—``."""
    from turnscope.prices import money

    if row.get("cost_usd") is None:
        unpriced = row.get("unpriced_models") or []
        return f"price unknown ({', '.join(unpriced)})" if unpriced else "—"
    return money(row["cost_usd"], bool(row.get("cost_partial")))
