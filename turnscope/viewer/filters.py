"""The runs page's filters as URL query parameters, and their translation to a RunFilter.

Pure functions (no streamlit): the pages and the failures page build links with them, and the
tests check them directly. Every filter lives in the URL so a filtered view can be shared.

Query parameters of the runs page:

``status``, ``category``, ``reason`` (repeatable), ``warnings`` (``true``: only runs with
warnings), ``workflow``, ``agent``, ``tool``, ``q`` (text search), ``range`` (``15m`` ...
``30d``, or ``custom`` with ``since``/``until``), ``group_id``, ``sort``, ``page``; and, set by
the failures page, ``failing_agent``, ``failing_tool``, ``failing_reason`` and ``msg`` (one
failure group; an empty value means "none").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from turnscope.records import ALL_REASONS, CATEGORIES, STATUSES
from turnscope.store.queries import ORDERS, RunFilter, parse_since

RANGES: dict[str, tuple[str, int | None]] = {
    "all": ("All time", None),
    "15m": ("Last 15 minutes", 15 * 60),
    "1h": ("Last hour", 3600),
    "6h": ("Last 6 hours", 6 * 3600),
    "24h": ("Last 24 hours", 86400),
    "7d": ("Last 7 days", 7 * 86400),
    "30d": ("Last 30 days", 30 * 86400),
    "custom": ("Custom…", None),
}
SORTS: dict[str, str] = {
    "failures": "Failures first, then newest",
    "newest": "Newest first",
    "oldest": "Oldest first",
    "slowest": "Slowest first",
    "tokens": "Most tokens first",
}
DEFAULT_SORT = "failures"
FAILURE_STATUSES = ["failed", "incomplete"]
GROUP_PARAMS = ("failing_agent", "failing_tool", "failing_reason", "msg")
LIST_PARAMS = ("status", "category", "reason")
TRUE = "true"  # a checkbox bound to the URL writes true/false
PARAMS = (
    "status",
    "category",
    "reason",
    "warnings",
    "workflow",
    "agent",
    "tool",
    "q",
    "range",
    "since",
    "until",
    "group_id",
    "sort",
    *GROUP_PARAMS,
)
assert set(SORTS) == set(ORDERS)


@dataclass(slots=True)
class Filters:
    """What the runs page shows, as the URL says it."""

    status: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    reason: list[str] = field(default_factory=list)
    warnings: bool = False
    workflow: str | None = None
    agent: str | None = None
    tool: str | None = None
    q: str = ""
    range: str = "all"
    since: str = ""
    until: str = ""
    group_id: str | None = None
    sort: str = DEFAULT_SORT
    failing_agent: str | None = None
    failing_tool: str | None = None
    failing_reason: str | None = None
    msg: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Filters:
        """Read query parameters (values may be strings or lists); unknown values are
        dropped rather than trusted."""

        def one(name: str) -> str | None:
            value = params.get(name)
            if isinstance(value, (list, tuple)):
                value = value[-1] if value else None
            return None if value is None else str(value)

        def many(name: str, allowed: tuple[str, ...]) -> list[str]:
            value = params.get(name)
            values = value if isinstance(value, (list, tuple)) else [value]
            out: list[str] = []
            for item in values:
                if item in allowed and item not in out:
                    out.append(str(item))
            return out

        sort = one("sort") or DEFAULT_SORT
        time_range = one("range") or "all"
        return cls(
            status=many("status", STATUSES),
            category=many("category", CATEGORIES),
            reason=many("reason", ALL_REASONS),
            warnings=(one("warnings") or "").lower() == TRUE,
            workflow=one("workflow") or None,
            agent=one("agent") or None,
            tool=one("tool") or None,
            q=(one("q") or "").strip(),
            range=time_range if time_range in RANGES else "all",
            since=(one("since") or "").strip(),
            until=(one("until") or "").strip(),
            group_id=one("group_id") or None,
            sort=sort if sort in SORTS else DEFAULT_SORT,
            failing_agent=one("failing_agent"),
            failing_tool=one("failing_tool"),
            failing_reason=one("failing_reason"),
            msg=one("msg"),
        )

    def to_params(self) -> dict[str, str | list[str]]:
        """Query parameters, defaults left out (the inverse of ``from_params``)."""
        out: dict[str, str | list[str]] = {}
        if self.status:
            out["status"] = list(self.status)
        if self.category:
            out["category"] = list(self.category)
        if self.reason:
            out["reason"] = list(self.reason)
        if self.warnings:
            out["warnings"] = TRUE
        for name in ("workflow", "agent", "tool", "group_id"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.q:
            out["q"] = self.q
        if self.range != "all":
            out["range"] = self.range
        if self.range == "custom":
            if self.since:
                out["since"] = self.since
            if self.until:
                out["until"] = self.until
        if self.sort != DEFAULT_SORT:
            out["sort"] = self.sort
        for name in GROUP_PARAMS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @property
    def group(self) -> bool:
        """True when the view is narrowed to one failure group."""
        return any(getattr(self, name) is not None for name in GROUP_PARAMS)

    def time_window(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """(since, until) as aware UTC datetimes; ValueError for an unreadable custom time."""
        now = now or datetime.now(timezone.utc)
        if self.range == "custom":
            since = parse_since(self.since, now) if self.since else None
            until = parse_since(self.until, now) if self.until else None
            return since, until
        seconds = RANGES[self.range][1]
        if seconds is None:
            return None, None
        return now - timedelta(seconds=seconds), None

    def to_run_filter(
        self,
        now: datetime | None = None,
        *,
        trace_ids: list[str] | None = None,
        as_of: datetime | None = None,
    ) -> RunFilter:
        """The store filter. ``trace_ids`` replaces the text search with the runs it already
        found; without it the search runs inside every query."""
        since, until = self.time_window(now)
        return RunFilter(
            status=list(self.status) or None,
            category=list(self.category) or None,
            reason=list(self.reason) or None,
            with_warnings=self.warnings,
            workflow=self.workflow,
            agent=self.agent,
            tool=self.tool,
            group_id=self.group_id,
            since=since,
            until=until,
            search=None if trace_ids is not None else (self.q or None),
            failing_agent=self.failing_agent,
            failing_tool=self.failing_tool,
            failing_reason=self.failing_reason,
            message=self.msg,
            trace_ids=trace_ids,
            as_of=as_of,
        )


def group_params(group: Mapping[str, Any], base: Filters | None = None) -> dict[str, Any]:
    """Runs-page query parameters that show exactly the runs of one failure group."""
    filters = Filters(
        status=list(FAILURE_STATUSES),
        category=[group["category"]] if group.get("category") else [],
        workflow=base.workflow if base else None,
        range=base.range if base else "all",
        since=base.since if base else "",
        until=base.until if base else "",
        failing_agent=group.get("agent") or "",
        failing_tool=group.get("tool") or "",
        failing_reason=group.get("reason") or "",
        msg=group.get("message") or "",
    )
    return filters.to_params()


def filter_key(flt: RunFilter) -> tuple[Any, ...]:
    """A hashable, stable form of a RunFilter (cache keys)."""
    out: list[Any] = []
    for name in RunFilter.__dataclass_fields__:
        value = getattr(flt, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, (list, tuple)):
            value = tuple(value)
        out.append((name, value))
    return tuple(out)


def run_filter_from_key(key: tuple[Any, ...]) -> RunFilter:
    """Inverse of ``filter_key``."""
    values: dict[str, Any] = {}
    for name, value in key:
        if name in ("since", "until", "as_of") and value is not None:
            value = datetime.fromisoformat(value)
        elif isinstance(value, tuple):
            value = list(value)
        values[name] = value
    return RunFilter(**values)
