"""``turnscope conversations`` and ``turnscope runs --conversation``: the runs of one chat."""

from __future__ import annotations

import argparse
import json
from typing import Any

from turnscope.cli.options import DB_HELP, PRICES_HELP, positive
from turnscope.viewer.format import clip, cost_cell, duration, tokens  # no Streamlit

CONVERSATION_HELP = (
    "only the exchanges of this conversation (its key: Responses conversation_id, session "
    "id, group_id, or the first trace id of a previous_response_id chain; a unique prefix "
    "is enough), oldest first"
)


def add_conversations_command(sub: Any) -> None:
    """Register ``turnscope conversations``."""
    p = sub.add_parser(
        "conversations",
        help="list conversations (runs of one chat), the most recently active first",
        description=(
            "List conversations: the runs one chat made, one per user message (an exchange "
            "each). A run's conversation is the first of: the Responses API conversation_id "
            "the runner was given, its session's id, the trace's group_id, and the "
            "conversation of the run whose response it continued (previous_response_id). "
            "STATUS is the worst exchange's. `turnscope runs --conversation ID` lists the "
            "exchanges. --json prints [{conversation_id, exchanges, status, started_at, "
            "last_at, cost_usd, cost_partial, trace_ids}]: cost_usd is the priced calls' sum "
            "(null when none is priced), cost_partial true when some call's price is unknown."
        ),
        epilog="Example: turnscope conversations --db demo.db --limit 5",
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--limit", type=positive, default=20, help="how many conversations (default 20)")
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_conversations)


def cmd_conversations(args: argparse.Namespace) -> int:
    """List conversations as a table or JSON."""
    from turnscope.prices import load_book
    from turnscope.store.conversations import count_conversations, list_conversations
    from turnscope.store.queries import Store

    book = load_book(args.prices)  # a bad price file: one line and exit 2, before reading
    store = Store(args.db)
    found = list_conversations(store, limit=args.limit, book=book)
    if args.json:
        keys = ("conversation_id", "exchanges", "status", "started_at", "last_at")
        keys += ("cost_usd", "cost_partial", "trace_ids")
        print(json.dumps([{k: c[k] for k in keys} for c in found], indent=2, ensure_ascii=False))
        return 0
    total = count_conversations(store)
    print(render_conversations_table(found))
    shown = f"{len(found)} of {total}" if total > len(found) else f"{total}"
    plural = "s" if total != 1 else ""
    print(
        f"\n{shown} conversation{plural} in {store.label}. "
        "Their exchanges: turnscope runs --conversation ID"
    )
    return 0


def render_conversations_table(rows: list[dict[str, Any]]) -> str:
    """Conversations as an aligned text table."""
    from turnscope.store.convert import from_db_time

    headers = ["LAST ACTIVE", "STATUS", "EXCHANGES", "TOKENS", "COST", "ELAPSED", "CONVERSATION"]
    table = []
    for c in rows:
        first, last = from_db_time(c["started_at"]), from_db_time(c["last_at"])
        span = (last - first).total_seconds() * 1000 if first and last else None
        table.append(
            [
                (c["last_at"] or "")[:19].replace("T", " "),
                c["status"] or "",
                str(c["exchanges"]),
                tokens(c["input_tokens"] + c["output_tokens"]),
                cost_cell(c),
                duration(span),
                clip(c["conversation_id"], 60),
            ]
        )
    if not table:
        return "No conversations: runs share one when they have a group_id, session or chain."
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return "\n".join(lines)


def resolve_conversation_id(store: Any, given: str) -> str:
    """A conversation key from a key or a unique prefix of one; ValueError (one line for the
    user, exit status 2) otherwise."""
    from turnscope.store.conversations import find_conversation_ids

    matches = find_conversation_ids(store, given)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ValueError(f"conversation {given!r} is ambiguous: {', '.join(matches)}")
    raise ValueError(f"no conversation {given!r} in {store.label}")
