"""turnscope command line: record demo runs, list runs, explain why a run failed.

This module builds the parser and dispatches; each command lives in the module named after it
(export-otlp in otlp.py, repro in turnscope/repro/command.py), and what several commands share
in options.py. Every command imports its heavy dependencies inside its ``cmd_*`` function, so
that ``turnscope --help`` and each command load only what they use.

Every command reads the database read-only except ``demo`` and ``prune``. Errors a user can fix (no
database, unknown trace id, bad URL) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from turnscope import __version__
from turnscope.cli.conversations import add_conversations_command
from turnscope.cli.demo import add_demo_command
from turnscope.cli.diff import add_diff_command
from turnscope.cli.options import CliError  # there: the commands' modules raise it
from turnscope.cli.otlp import add_export_otlp_command
from turnscope.cli.prune import add_prune_command
from turnscope.cli.runs import add_runs_command
from turnscope.cli.view import add_view_command
from turnscope.cli.why import add_why_command
from turnscope.repro.command import add_repro_command

__all__ = ["CliError", "build_parser", "main"]

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``turnscope`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"turnscope: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # StoreError, ConfigError and bad option values
        print(f"turnscope: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("turnscope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help texts are the manual)."""
    parser = argparse.ArgumentParser(
        prog="turnscope",
        description=(
            "See and debug OpenAI Agents SDK runs: every run recorded with its turns and a "
            "verdict that says why it failed. Record runs with turnscope.instrument() in your "
            "app, or try `turnscope demo`."
        ),
        epilog="Run `turnscope COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"turnscope {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    add_demo_command(sub)
    add_runs_command(sub)
    add_why_command(sub)
    add_diff_command(sub)
    add_conversations_command(sub)
    add_view_command(sub)
    add_export_otlp_command(sub)
    add_repro_command(sub)
    add_prune_command(sub)
    return parser
