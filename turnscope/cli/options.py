"""What several turnscope commands share: option help texts, argument types, the user-error
exception, the database opener and the colours of the text output.

The command modules import from here and this module imports none of them, so no command
module needs the package's ``__init__`` (which imports them all to build the parser).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

ENV_JAEGER = "TURNSCOPE_JAEGER_URL"

DB_HELP = "database file or SQLAlchemy URL (default: $TURNSCOPE_DB, else ./turnscope.db)"
PRICES_HELP = (
    "TOML price file adding or overriding models' prices, USD per million tokens "
    "(default: $TURNSCOPE_PRICES; format: docs/cost.md); applies to runs already recorded"
)

STATUS_COLORS = {
    "succeeded": "32",
    "succeeded_with_errors": "33",
    "failed": "31",
    "incomplete": "35",
    "running": "36",
}
CHECK_COLOR = "33"  # the CHECK marker and the Warnings heading (amber, as recovered errors)


class CliError(Exception):
    """A user-fixable problem: printed as one line, exit status 2."""


def positive(value: str) -> int:
    """Argument type of counts such as ``--limit``: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def open_store(db: str | None) -> Any:
    """The read-only ``Store`` of ``--db`` (SQLAlchemy imported only now)."""
    from turnscope.store.queries import Store

    return Store(db)


def use_color() -> bool:
    """Whether to colour the text output: a terminal, and no ``NO_COLOR``."""
    return sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def paint(text: str, code: str | None, color: bool) -> str:
    """``text`` in the ANSI colour ``code`` when colouring, else as it is."""
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def token_count(n: int | None) -> str:
    """A token count as the runs table and ``why``'s turns show it: ``950``, ``12.3k``."""
    if not n:
        return "0"
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)
