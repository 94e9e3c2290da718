"""``turnscope prune``: retention, the one command besides demo that writes (store/prune.py)."""

from __future__ import annotations

import argparse
from typing import Any

from turnscope.cli.options import DB_HELP, CliError


def add_prune_command(sub: Any) -> None:
    """Register ``turnscope prune``."""
    p = sub.add_parser(
        "prune",
        help="delete old runs and their spans (writes: the only command besides demo)",
        description=(
            "Delete runs that started before a cutoff and were not written since, with their "
            "spans, in small batches (one transaction each): safe while agent processes "
            "write and the viewer is open. A run still running under a live writer is never "
            "deleted. This command WRITES to the database: every other command but demo only "
            "reads it. Prints what it deleted, or with --dry-run what it would delete."
        ),
        epilog=(
            "Examples: turnscope prune --older-than 30d --dry-run; "
            "turnscope prune --db postgresql+psycopg://... --older-than 2026-11-01 --keep-failed"
        ),
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="delete runs started before now minus AGE (90s, 15m, 2h, 30d, 2w) or before an "
        "ISO date/time (2026-11-01, 2026-11-01T12:00+01:00; UTC if no zone)",
    )
    p.add_argument(
        "--keep-failed",
        action="store_true",
        help="keep failed and incomplete runs, whatever their age",
    )
    p.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    p.add_argument(
        "--vacuum",
        action="store_true",
        help="then give the space back: SQLite VACUUM (the file shrinks; writers wait while it "
        "runs, so choose a quiet moment), PostgreSQL VACUUM (ANALYZE) (no exclusive lock)",
    )
    p.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete (or count) old runs; print what went."""
    from turnscope.store.prune import prune, vacuum
    from turnscope.store.queries import parse_since

    cutoff = parse_since(args.older_than)
    if cutoff is None:
        raise CliError("--older-than needs an age (30d) or an ISO date/time")
    result = prune(args.db, cutoff, keep_failed=args.keep_failed, dry_run=args.dry_run)
    statuses = ", ".join(f"{n:,} {status}" for status, n in result.runs.most_common())
    what = f"{result.run_count:,} runs" + (f" ({statuses})" if statuses else "")
    when = cutoff.strftime("%Y-%m-%d %H:%M:%S UTC")
    if result.dry_run:
        print(
            f"would delete {what} and {result.spans:,} spans, started before {when}, "
            f"from {result.database} (dry run: nothing deleted)"
        )
        return 0
    print(
        f"deleted {what} and {result.spans:,} spans, started before {when}, "
        f"from {result.database} in {result.batches:,} "
        + ("batch" if result.batches == 1 else "batches")
    )
    if result.processes:
        print(f"deleted {result.processes:,} rows of writer processes gone since before then")
    if args.vacuum:
        sizes = vacuum(args.db)
        if sizes.before is not None and sizes.after is not None:
            print(f"vacuumed: {_mb(sizes.before)} -> {_mb(sizes.after)}")
        else:
            print("vacuumed")
    return 0


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"
