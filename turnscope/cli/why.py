"""``turnscope why``: one run's verdict, evidence, warnings, cost and turns, in words or JSON."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from turnscope.cli.options import (
    CHECK_COLOR,
    DB_HELP,
    ENV_JAEGER,
    PRICES_HELP,
    STATUS_COLORS,
    open_store,
    paint,
    token_count,
    use_color,
)
from turnscope.viewer.format import category_text, duration  # no Streamlit


def add_why_command(sub: Any) -> None:
    """Register ``turnscope why``."""
    p = sub.add_parser(
        "why",
        help="explain a run: status, failure category and reason, failing agent and turn, evidence",
        description=(
            "Explain one run: its verdict in one sentence, the category and its reason (e.g. "
            "rate_limited), the exception, the failing agent, turn and span, the evidence, "
            "recovered errors, warnings (things to look at even in a run that looks fine), "
            "the cost per agent and turn (and, for a failed run, what was spent after it went "
            "wrong) and the turns. TRACE_ID may be a unique prefix."
        ),
    )
    p.add_argument("trace_id", metavar="TRACE_ID")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.set_defaults(func=cmd_why)


def cmd_why(args: argparse.Namespace) -> int:
    """Explain one run."""
    from turnscope.analysis.cost import run_cost
    from turnscope.prices import load_book

    book = load_book(args.prices)
    store = open_store(args.db)
    trace_id = store.resolve_trace_id(args.trace_id)
    run = store.get_run(trace_id)
    analysis = store.analysis(trace_id)
    report = why_report(run, analysis)
    cost = run_cost(analysis, book)
    report["cost"] = cost.to_dict()
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print(render_why(report, analysis, color=use_color(), cost=cost))
    return 0


def why_report(run: dict[str, Any], analysis: Any) -> dict[str, Any]:
    """The ``turnscope why --json`` object (its fields: docs/verdict.md)."""
    verdict = analysis.verdict
    report: dict[str, Any] = {
        "trace_id": run["trace_id"],
        "workflow": run["workflow"],
        **verdict.to_dict(),
    }
    order = ["trace_id", "workflow", "status", "category", "reason", "message", "exception"]
    order += ["agent", "turn", "max_turns", "span_id", "tool", "explanation", "recovered_errors"]
    order += ["evidence", "warnings"]
    report = {k: report[k] for k in order}
    report["started_at"] = run["started_at"]
    report["duration_ms"] = run["duration_ms"]
    report["turns"] = [t.to_dict() for t in analysis.structure.turns]
    jaeger = os.environ.get(ENV_JAEGER)
    if jaeger:
        from turnscope.ids import otel_trace_id_hex

        report["jaeger_url"] = f"{jaeger.rstrip('/')}/trace/{otel_trace_id_hex(run['trace_id'])}"
    return report


def render_why(report: dict[str, Any], analysis: Any, color: bool = False, cost: Any = None) -> str:
    """The verdict in words, then evidence, recovered errors, warnings and turns."""
    status = report["status"]
    head = f"{report['trace_id']}  {report['workflow'] or ''}".rstrip()
    category = category_text(report["category"], report.get("reason"))
    label = status + (f" · {category}" if category else "")
    lines = [head, paint(label, STATUS_COLORS.get(status), color), "", report["explanation"], ""]
    facts = [
        ("exception", report["exception"]),
        ("message", report["message"]),
        ("agent", report["agent"]),
        ("turn", _turn_text(report)),
        ("tool", report["tool"]),
        ("span", report["span_id"]),
        ("jaeger", report.get("jaeger_url")),
    ]
    if cost is not None:
        facts += cost_facts(cost)
    for key, value in facts:
        if value not in (None, ""):
            lines.append(f"  {key:<10} {value}")
    if report["evidence"]:
        lines += ["", "Evidence:"]
        for item in report["evidence"]:
            where = f"{item['kind']} {item['span_id']}" if item["span_id"] else item["kind"]
            lines.append(f"  - [{where}] {item['message']}")
    if report["recovered_errors"]:
        lines += ["", "Recovered errors (the run went on):"]
        for group in report["recovered_errors"]:
            tool = f" {group['tool']}" if group.get("tool") else ""
            lines.append(f"  - {group['category']}{tool} ×{group['count']}: {group['message']}")
    if report.get("warnings"):
        lines += ["", paint("Warnings (worth a look):", CHECK_COLOR, color)]
        for warning in report["warnings"]:
            lines.append(f"  - {warning['kind']}{_where(warning)}: {warning['message']}")
    turns = analysis.structure.turns
    if turns:
        lines += ["", "Turns:"]
        for turn in turns:
            nested = "" if analysis.structure.scopes[turn.scope].top_level else " (agent as tool)"
            took = "—"
            if turn.started_at and turn.ended_at:
                took = duration((turn.ended_at - turn.started_at).total_seconds() * 1000)
            tokens = turn.input_tokens + turn.output_tokens
            errors = f" · {turn.errors} error(s)" if turn.errors else ""
            lines.append(
                f"  {turn.number:>3}  {turn.agent or '?'}{nested}: {turn.model_calls} model call(s)"
                f", {turn.tool_calls} tool call(s), {token_count(tokens)} tokens, {took}{errors}"
            )
    return "\n".join(lines)


def cost_facts(cost: Any) -> list[tuple[str, str | None]]:
    """The ``why`` lines about money: total, per agent, and the spend after the failure."""
    facts: list[tuple[str, str | None]] = [("cost", cost.total.text())]
    if len(cost.by_agent) > 1:
        facts.append(("by agent", ", ".join(f"{a} {t.text()}" for a, t in cost.by_agent.items())))
    facts.append(("after fail", cost.after_failure_text()))
    return facts


def _where(warning: dict[str, Any]) -> str:
    """`` [agent Helper, turn 2, span span_1]`` for what a warning names, else empty."""
    parts = []
    if warning.get("agent"):
        parts.append(f"agent {warning['agent']}")
    if warning.get("turn") is not None:
        parts.append(f"turn {warning['turn']}")
    if warning.get("span_id"):
        parts.append(f"span {warning['span_id']}")
    return f" [{', '.join(parts)}]" if parts else ""


def _turn_text(report: dict[str, Any]) -> str | None:
    if report["turn"] is None:
        return None
    if report["max_turns"]:
        return f"{report['turn']} of {report['max_turns']} (max_turns)"
    return str(report["turn"])
