"""``turnscope runs``: list recorded runs, as an aligned text table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from turnscope.cli.conversations import CONVERSATION_HELP, resolve_conversation_id
from turnscope.cli.options import (
    CHECK_COLOR,
    DB_HELP,
    PRICES_HELP,
    STATUS_COLORS,
    open_store,
    paint,
    positive,
    token_count,
    use_color,
)
from turnscope.records import ALL_REASONS, CATEGORIES, STATUSES
from turnscope.viewer.format import category_text, check_text, duration  # no Streamlit


def add_runs_command(sub: Any) -> None:
    """Register ``turnscope runs``."""
    p = sub.add_parser(
        "runs",
        help="list recorded runs, newest first",
        description=(
            "List recorded runs, newest first, with status, failure category and its reason "
            "(e.g. model_error (rate_limited)); CHECK marks runs with warnings, things to look "
            "at in a run that looks fine (`turnscope why` lists them). COST is what the "
            "run's model calls cost (genai-prices' bundled prices, or --prices): ≥ when some "
            "model's price is unknown, ? when no call's is known (`why` names the models). "
            "--json rows carry reason and warning_count, and "
            "cost_usd (null when no call is priced) and cost_partial."
        ),
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    p.add_argument("--category", choices=CATEGORIES, help="only failures of this category")
    p.add_argument(
        "--reason",
        choices=ALL_REASONS,
        metavar="REASON",
        help="only failures with this finer cause: " + ", ".join(ALL_REASONS),
    )
    p.add_argument(
        "--warnings",
        action="store_true",
        help="only runs with warnings (e.g. a tool reported an error, a refusal)",
    )
    p.add_argument("--workflow", help="only runs of this workflow name")
    p.add_argument("--agent", help="only runs in which this agent ran")
    p.add_argument("--tool", help="only runs that called this tool")
    p.add_argument("--search", help="text to find in error messages and explanations")
    p.add_argument("--since", help="only runs started since: 30m, 2h, 7d or an ISO date/time")
    p.add_argument("--conversation", metavar="ID", help=CONVERSATION_HELP)
    p.add_argument("--limit", type=positive, default=20, help="how many runs (default 20)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.set_defaults(func=cmd_runs)


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs as a table or JSON."""
    from turnscope.prices import load_book
    from turnscope.store.costs import add_costs
    from turnscope.store.queries import RunFilter, parse_since

    store = open_store(args.db)
    conversation = args.conversation and resolve_conversation_id(store, args.conversation)
    flt = RunFilter(
        conversation_id=conversation or None,
        status=args.status,
        category=args.category,
        reason=args.reason,
        with_warnings=args.warnings,
        workflow=args.workflow,
        agent=args.agent,
        tool=args.tool,
        search=args.search,
        since=parse_since(args.since),
    )
    runs = store.list_runs(flt, limit=args.limit, order="oldest" if conversation else "newest")
    add_costs(store, runs, load_book(args.prices))
    if args.json:
        print(json.dumps(runs, indent=2, ensure_ascii=False, default=str))
        return 0
    total = store.count_runs(flt)
    print(render_runs_table(runs, color=use_color()))
    shown = f"{len(runs)} of {total} runs" if total > len(runs) else f"{total} runs"
    print(f"\n{shown} in {store.label}. Explain one: turnscope why TRACE_ID")
    return 0


def render_runs_table(runs: list[dict[str, Any]], color: bool = False) -> str:
    """Runs as an aligned text table."""
    headers = ["STARTED", "STATUS", "CHECK", "CATEGORY", "WORKFLOW", "AGENTS", "TURNS", "ERR"]
    headers += ["TOKENS", "COST", "DURATION", "TRACE ID"]
    rows = []
    for run in runs:
        started = (run["started_at"] or "")[:19].replace("T", " ")
        turns = str(run["turns"])
        if run.get("max_turns"):
            turns = f"{run['failing_turn']}/{run['max_turns']}"
        rows.append(
            [
                started,
                run["status"],
                check_text(run.get("warning_count")),
                category_text(run["category"], run.get("reason")),
                _cut(run["workflow"] or "", 28),
                _cut(run["agent_path"] or "", 30),
                turns,
                str(run["error_count"]),
                token_count(run["input_tokens"] + run["output_tokens"]),
                cost_text(run),
                duration(run["duration_ms"]),
                run["trace_id"],
            ]
        )
    if not rows:
        return "No runs match."
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = []
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padded = cell.ljust(width)
            if i == 1:
                padded = paint(padded, STATUS_COLORS.get(cell), color)
            elif i == 2 and cell:
                padded = paint(padded, CHECK_COLOR, color)
            cells.append(padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def cost_text(run: dict[str, Any]) -> str:
    """A runs row's cost: ``$0.042``, ``≥ $0.042`` (partial), ``?`` (no price known)."""
    from turnscope.prices import money

    if run.get("cost_usd") is None:
        return "?" if run.get("cost_partial") else "—"
    return money(run["cost_usd"], bool(run.get("cost_partial")))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
