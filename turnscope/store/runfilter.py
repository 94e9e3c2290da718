"""What a query of runs selects: ``RunFilter``, shared by ``Store`` and its ``Aggregates``.

A module of its own so that ``queries`` and ``aggregates`` both import it without importing
each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class RunFilter:
    """Filters for listing runs; every value is bound as a parameter.

    ``status``, ``category`` and ``reason`` take one value or several (any of them);
    ``with_warnings`` keeps only runs with at least one warning. ``agent`` matches runs in
    which an agent of that name ran (or failed); ``tool`` runs that called that tool.
    ``failing_agent``, ``failing_tool``, ``failing_reason`` and ``message`` select one failure
    group (see ``Store.failure_groups``): an empty string there means "none". ``trace_ids``
    restricts to an explicit set (search results); ``as_of`` hides runs started after a
    snapshot time.
    """

    status: str | Sequence[str] | None = None
    category: str | Sequence[str] | None = None
    reason: str | Sequence[str] | None = None
    with_warnings: bool = False
    workflow: str | None = None
    agent: str | None = None
    tool: str | None = None
    group_id: str | None = None
    conversation_id: str | None = None  # the exchanges of one conversation
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    failing_agent: str | None = None
    failing_tool: str | None = None
    failing_reason: str | None = None
    message: str | None = None
    trace_ids: Sequence[str] | None = None
    as_of: datetime | None = None


def selected(value: str | Sequence[str] | None) -> list[str]:
    """The values a one-or-many filter field selects (empty strings dropped)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if v]
