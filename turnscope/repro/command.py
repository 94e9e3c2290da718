"""``turnscope repro TRACE_ID``: write a recorded run as an offline pytest file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from turnscope.repro.render import default_filename, render
from turnscope.repro.script import ReproError, read_script

DB_HELP = "database file or SQLAlchemy URL (default: $TURNSCOPE_DB, else ./turnscope.db)"


def add_repro_command(sub: Any) -> None:
    """Register ``turnscope repro``."""
    p = sub.add_parser(
        "repro",
        help="write a recorded run as an offline pytest file that replays it",
        description=(
            "Write one self-contained pytest file that replays a recorded run through the real "
            "Agents SDK Runner, offline: a scripted model plays the recorded model outputs turn "
            "by turn (agents.testing.ScriptedModel where the SDK has it), the agents are "
            "rebuilt from what was recorded (names, instructions where captured, handoffs, "
            "tools, output type names), tools and guardrails become stubs that give what was "
            "recorded, max_turns and the other recorded settings are kept. The test asserts "
            "that turnscope gives the replay the recorded verdict (status, category, reason, "
            "agent, turn); its comment block says what is stubbed and where to put a real tool "
            "or a changed setting to test a fix. Refused (exit 2) for a run recorded without "
            "content (capture_content=False), a run still running, an incomplete run (its "
            "process stopped mid-run) and one that lost spans. MCP servers become stubs that "
            "list the recorded tools and answer as recorded. TRACE_ID may be a unique prefix."
        ),
    )
    p.add_argument("trace_id", metavar="TRACE_ID")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="file to write (default: test_repro_<id>.py in the current directory); '-' prints it",
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=cmd_repro)


def cmd_repro(args: argparse.Namespace) -> int:
    """Write the replay test of one run."""
    from turnscope.store.queries import Store

    store = Store(args.db)
    try:
        trace_id = store.resolve_trace_id(args.trace_id)
        script = read_script(store, trace_id)
    finally:
        store.close()
    text = render(script)
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.output or default_filename(trace_id))
    if path.exists() and not args.force:
        raise ReproError(f"{path} exists: give another -o FILE, or --force to overwrite it")
    if path.is_dir():
        raise ReproError(f"{path} is a directory: give -o a file name")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReproError(f"cannot write {path}: {exc.strerror or exc}") from None
    v = script.verdict
    verdict = v["status"] + (f" · {v['category']}" if v["category"] else "")
    print(f"Wrote {path} (replays {trace_id}: {verdict})")
    print(f"Run it:  {_python()} -m pytest -q {_quoted(path)}")
    return 0


def _python() -> str:
    return sys.executable or "python"


def _quoted(path: Path) -> str:
    text = str(path)
    return f"'{text}'" if any(c in text for c in " '\"$") else text
