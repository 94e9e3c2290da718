"""``turnscope diff``: compare two runs turn by turn (the alignment and its sentences:
turnscope/analysis/diff.py and diff_words.py).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from turnscope.cli.options import DB_HELP, open_store


def add_diff_command(sub: Any) -> None:
    """Register ``turnscope diff``."""
    p = sub.add_parser(
        "diff",
        help="compare two runs: the first turn where they part, and both verdicts",
        description=(
            "Compare two runs of the same workflow turn by turn and name the first turn where "
            "they part, in one sentence, with its kind: agent, guardrail, error, model, "
            "handoff, tool, arguments, tool_error, tool_output, output, extra_turns (one run "
            "made turns the other did not, e.g. it looped twice more) or verdict (every turn "
            "alike, the verdicts differ). Turns are aligned on what they did (agent, model "
            "calls, tool names and canonical arguments, tool outputs, handoff, guardrail "
            "results, answer), so inserted or missing turns line up. Then the two verdicts "
            "and the aligned turns. A run recorded with capture_content=False is compared "
            "on its structure only, and the output says so. TRACE_IDs may be unique "
            "prefixes. The viewer's Compare page shows the same: /compare?a=A&b=B."
        ),
        epilog=(
            "Exit status 2 when a trace id is unknown or the runs belong to different "
            "workflows (unless --force). Kinds and the JSON fields: docs/debug-loop.md. "
            "Example: turnscope diff trace_1a2b trace_9f8e --json"
        ),
    )
    p.add_argument("a", metavar="A", help="trace id of the run to compare from (the baseline)")
    p.add_argument("b", metavar="B", help="trace id of the run to compare with it")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: first_divergent_turn, kind, summary, a, b, aligned",
    )
    p.add_argument(
        "--force", action="store_true", help="compare runs of different workflows anyway"
    )
    p.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare two runs."""
    from turnscope.analysis.diff import check_workflows, diff_runs
    from turnscope.analysis.diff_words import render_text

    store = open_store(args.db)
    sides = []
    for given in (args.a, args.b):
        trace_id = store.resolve_trace_id(given)
        sides.append((store.get_run(trace_id), store.analysis(trace_id)))
    (run_a, analysis_a), (run_b, analysis_b) = sides
    if not args.force:
        check_workflows(run_a, run_b)
    diff = diff_runs(run_a, analysis_a, run_b, analysis_b)
    if args.json:
        print(json.dumps(diff.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        print(render_text(diff))
    return 0
