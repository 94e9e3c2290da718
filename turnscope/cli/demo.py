"""``turnscope demo``: record the scripted workflows of turnscope/demo (no API key, no network)."""

from __future__ import annotations

import argparse
from typing import Any

from turnscope.cli.otlp import add_demo_otlp_options, demo_otlp_settings


def add_demo_command(sub: Any) -> None:
    """Register ``turnscope demo``."""
    p = sub.add_parser(
        "demo",
        help="record scripted agent runs (no API key, no network)",
        description=(
            "Run scripted workflows through the real Agents SDK Runner with a fake model and "
            "record them: successes, successes with recovered errors, a run paused for a "
            "human's approval (new SDKs), and every failure category the installed SDK can "
            "produce."
        ),
    )
    p.add_argument("--db", help="database to write (default: $TURNSCOPE_DB, else ./turnscope.db)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    add_demo_otlp_options(p)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Record the scripted demo workflows."""
    from turnscope.demo.runner import run_demo

    summary = run_demo(db=args.db, progress=not args.quiet, **demo_otlp_settings(args))
    return 0 if summary.ok else 1
