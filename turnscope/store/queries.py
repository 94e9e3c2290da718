"""Read side: what the CLI and the viewer ask of the database. Read-only, bound parameters.

A run whose writer process died (kill -9, power loss) still says ``running`` in the table;
readers turn it into ``incomplete`` from the ``processes`` heartbeat (and, on the same host,
from the pid), so no writer has to survive to label it.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Select,
    Text,
    and_,
    case,
    cast,
    event,
    func,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine

from turnscope.records import INCOMPLETE, RUNNING, SpanRecord
from turnscope.store.aggregates import MESSAGE_RULES as MESSAGE_RULES  # re-exported for callers
from turnscope.store.aggregates import Aggregates, register_sqlite_functions
from turnscope.store.aggregates import bucket_size as bucket_size  # re-exported for callers
from turnscope.store.aggregates import message_key as message_key  # re-exported for callers
from turnscope.store.convert import (
    from_db_time,
    iso_time,
    span_from_row,
    to_db_time,
    trace_info_from_row,
)
from turnscope.store.engine import (
    StoreError,
    check_schema,
    make_reader_engine,
    redact,
    resolve_url,
)
from turnscope.store.models import Process, Run, SpanRow
from turnscope.store.runfilter import RunFilter, selected

if TYPE_CHECKING:
    from turnscope.analysis.verdict import Analysis

HEARTBEAT_STALE = timedelta(seconds=30)  # writers beat every 5 s
RUN_COLUMNS = (
    "trace_id",
    "workflow",
    "status",
    "category",
    "reason",
    "message",
    "exception",
    "failing_agent",
    "failing_turn",
    "max_turns",
    "failing_span_id",
    "failing_tool",
    "explanation",
    "agent_path",
    "agents",
    "turns",
    "span_count",
    "error_count",
    "fatal_error_count",
    "recovered_error_count",
    "warning_count",
    "tool_calls",
    "model_calls",
    "input_tokens",
    "output_tokens",
    "started_at",
    "ended_at",
    "duration_ms",
    "group_id",
    "sdk_version",
    "pid",
    "host",
    "process_id",
    "first_input",
    "final_output",
    "first_error",
    "truncated",
    "dropped_spans",
    "trace_ended",
    "conversation_id",
)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``30m``, ``2h``, ``7d``, ``1w`` or an ISO date/time -> aware UTC datetime."""
    if value is None or not value.strip():
        return None
    now = now or datetime.now(timezone.utc)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
    if match:
        amount = float(match.group(1))
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return now - timedelta(seconds=amount * unit)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"cannot read time {value!r}: use e.g. 30m, 2h, 7d or 2026-11-24T10:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


class Store(Aggregates):
    """A read-only view of a turnscope database (figures, charts and failure groups from
    ``Aggregates``)."""

    def __init__(self, db: str | os.PathLike[str] | None = None, engine: Engine | None = None):
        self.url = resolve_url(db)
        self.label = redact(self.url)
        self.engine = engine or make_reader_engine(self.url)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            # the failure-group key is computed in SQL; SQLite gets it as a function
            event.listen(self.engine, "connect", register_sqlite_functions)
            if engine is not None:
                self.engine.dispose()  # pooled connections opened before lack the function
        check_schema(self.engine, self.label)
        self._host = socket.gethostname()
        self._gone_cache: tuple[datetime, list[str]] | None = None

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    # -- status -------------------------------------------------------------------------------

    def _effective_status(self, now: datetime) -> Any:
        stale = to_db_time(now - HEARTBEAT_STALE)
        dead = or_(
            Process.id.is_(None), Process.stopped_at.is_not(None), Process.heartbeat_at < stale
        )
        gone = self._gone_here(now)
        if gone:
            dead = or_(dead, Process.id.in_(gone))
        return case((and_(Run.status == RUNNING, dead), INCOMPLETE), else_=Run.status)

    def writers_gone_here(self, now: datetime) -> list[str]:
        """Ids of writers on this host killed a moment ago (see ``_gone_here``)."""
        return self._gone_here(now)

    def _gone_here(self, now: datetime) -> list[str]:
        """Writers on this host whose heartbeat is recent but whose pid is gone (killed a
        moment ago): their runs read ``incomplete`` at once in lists and counts, as on the
        run page, instead of after the heartbeat goes stale. Cached for a second."""
        cached = self._gone_cache
        if cached is not None and (now - cached[0]).total_seconds() < 1.0:
            return cached[1]
        stale = to_db_time(now - HEARTBEAT_STALE)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Process.id, Process.pid).where(
                    Process.host == self._host,
                    Process.stopped_at.is_(None),
                    Process.heartbeat_at >= stale,
                )
            ).all()
        gone = [pid_row.id for pid_row in rows if not self._pid_alive(self._host, pid_row.pid)]
        self._gone_cache = (now, gone)
        return gone

    def _effective_category(self, status: Any) -> Any:
        """A dead writer's ``running`` run reads as category ``incomplete``."""
        return case(
            (and_(Run.status == RUNNING, status == INCOMPLETE), "incomplete"), else_=Run.category
        )

    def _effective_reason(self, status: Any) -> Any:
        """A dead writer's ``running`` run (category ``incomplete``) has no reason."""
        return case((and_(Run.status == RUNNING, status == INCOMPLETE), None), else_=Run.reason)

    def _base(self, now: datetime) -> tuple[Select[Any], Any]:
        status = self._effective_status(now).label("effective_status")
        columns = [getattr(Run, c) if c != "agents" else Run.agents for c in RUN_COLUMNS]
        query = (
            select(*columns, status)
            .select_from(Run)
            .outerjoin(Process, Process.id == Run.process_id)
        )
        return query, status

    def _from_runs(self, *columns: Any) -> Select[Any]:
        return select(*columns).select_from(Run).outerjoin(Process, Process.id == Run.process_id)

    def _where(self, query: Select[Any], status: Any, flt: RunFilter) -> Select[Any]:
        statuses = selected(flt.status)
        if statuses:
            # said with the stored status, a plain column condition answered from
            # ix_runs_status_started (and estimated right by the planner); only a running run's
            # status is computed (a dead writer's reads incomplete), so only then is it checked
            stored = set(statuses) | ({RUNNING} if INCOMPLETE in statuses else set())
            query = query.where(Run.status.in_(sorted(stored)))
            if RUNNING in stored:
                query = query.where(status.in_(statuses))
        categories = selected(flt.category)
        if categories:
            query = query.where(self._effective_category(status).in_(categories))
        reasons = selected(flt.reason)
        if reasons:
            query = query.where(Run.reason.in_(reasons))
        if flt.with_warnings:
            # the literal condition of the partial index ix_runs_warnings_started (SQLite uses
            # a partial index only for a query term that matches its WHERE exactly)
            query = query.where(WITH_WARNINGS)
        if flt.workflow:
            query = query.where(Run.workflow == flt.workflow)
        if flt.group_id:
            query = query.where(Run.group_id == flt.group_id)
        if flt.conversation_id:
            query = query.where(Run.conversation_id == flt.conversation_id)
        if flt.since:
            query = query.where(Run.started_at >= to_db_time(flt.since))
        if flt.until:
            query = query.where(Run.started_at < to_db_time(flt.until))
        if flt.as_of:
            query = query.where(Run.started_at <= to_db_time(flt.as_of))
        if flt.agent:
            # the partial index ix_spans_agent_trace answers this without reading span rows
            ran = select(SpanRow.trace_id).where(SpanRow.kind == "agent", SpanRow.name == flt.agent)
            query = query.where(or_(Run.failing_agent == flt.agent, Run.trace_id.in_(ran)))
        if flt.tool:
            called = select(SpanRow.trace_id).where(SpanRow.tool_name == flt.tool)
            query = query.where(Run.trace_id.in_(called))
        if flt.failing_agent is not None:
            query = query.where(_equal_or_none(Run.failing_agent, flt.failing_agent))
        if flt.failing_tool is not None:
            query = query.where(_equal_or_none(Run.failing_tool, flt.failing_tool))
        if flt.failing_reason is not None:
            query = query.where(_equal_or_none(Run.reason, flt.failing_reason))
        if flt.message is not None:
            query = query.where(self._message_key() == flt.message)
        if flt.trace_ids is not None:
            query = query.where(Run.trace_id.in_(list(flt.trace_ids)))
        if flt.search:
            query = query.where(
                or_(self._run_text_match(flt.search), Run.trace_id.in_(self._span_text(flt.search)))
            )
        return query

    # -- text search --------------------------------------------------------------------------

    def _like(self, column: Any, pattern: str) -> Any:
        # LIKE is case-insensitive (for ASCII) on SQLite; PostgreSQL needs ILIKE for the same
        if self.dialect == "postgresql":
            return column.ilike(pattern, escape="\\")
        return column.like(pattern, escape="\\")

    def _run_text_match(self, text: str) -> Any:
        pattern = "%" + _escape_like(text) + "%"
        columns = (
            Run.first_error,
            Run.explanation,
            Run.message,
            Run.first_input,
            Run.final_output,
            Run.trace_id,
        )
        return or_(*(self._like(c, pattern) for c in columns))

    def _span_text(self, text: str) -> Select[Any]:
        """Trace ids of spans whose error, tool arguments/output or model input/output contain
        ``text``. JSON columns are matched as stored text, against the text as JSON escapes
        it, so a quote or backslash in the search matches only the same character in a value."""
        plain = "%" + _escape_like(text) + "%"
        escaped = "%" + _escape_like(json.dumps(text, ensure_ascii=False)[1:-1]) + "%"
        data = _as_text(SpanRow.data, self.dialect)
        error_data = _as_text(SpanRow.error_data, self.dialect)
        return select(SpanRow.trace_id).where(
            or_(
                self._like(SpanRow.error_message, plain),
                self._like(error_data, escaped),
                and_(SpanRow.kind.in_(TEXT_KINDS), self._like(data, escaped)),
            )
        )

    def search_trace_ids(self, text: str, limit: int = 5000) -> tuple[list[str], bool]:
        """Trace ids of runs whose errors, explanation, input/output, tool arguments/outputs or
        model text contain ``text`` (case-insensitive); at most ``limit``, and whether that is
        all of them. One pass over the spans, so a page can reuse the ids for every query."""
        runs = select(Run.trace_id).where(self._run_text_match(text))
        query = runs.union(self._span_text(text)).limit(limit + 1)
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(query)]
        return ids[:limit], len(ids) <= limit

    # -- runs ---------------------------------------------------------------------------------

    def list_runs(
        self,
        flt: RunFilter | None = None,
        *,
        limit: int = 50,
        offset: int = 0,
        order: str = "newest",
    ) -> list[dict[str, Any]]:
        """Runs matching ``flt`` with their effective status, one page.

        ``order``: ``newest`` (default), ``failures`` (failed and incomplete first, then
        newest), ``slowest``, ``tokens`` or ``oldest``."""
        now = datetime.now(timezone.utc)
        query, status = self._base(now)
        query = self._where(query, status, flt or RunFilter())
        if order == "failures":
            query = self._failures_first(query, status, limit, offset)
        else:
            query = query.order_by(*self._order(order, status)).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._run_dict(row) for row in rows]

    def _failures_first(self, query: Select[Any], status: Any, limit: int, offset: int) -> Any:
        """The ``failures`` order (failed, then incomplete, then the rest, each newest first)
        as one query per part, each read newest first from a start-time index and cut at the
        page's end, then merged: ordering by the computed rank sorted every matching run
        (seconds at 1,000,000 runs on PostgreSQL)."""
        parts = []
        for rank, (effective, stored) in enumerate(
            (
                (None, Run.status == "failed"),  # a stored failure is one
                (status == INCOMPLETE, Run.status.in_((INCOMPLETE, RUNNING))),
                (status.not_in(FAILURE_STATUSES), Run.status.not_in(FAILURE_STATUSES)),
            )
        ):
            part = (
                query.where(stored, *([] if effective is None else [effective]))
                .add_columns(literal(rank).label("rank"))
                .order_by(Run.started_at.desc(), Run.trace_id)
                .limit(limit + offset)
                .subquery(f"part{rank}")
            )
            parts.append(select(part))
        merged = union_all(*parts).subquery("merged")
        return (
            select(merged)
            .order_by(merged.c.rank, merged.c.started_at.desc(), merged.c.trace_id)
            .limit(limit)
            .offset(offset)
        )

    def _order(self, order: str, status: Any) -> list[Any]:
        newest = [Run.started_at.desc(), Run.trace_id]
        if order == "newest":
            return newest
        if order == "oldest":
            return [Run.started_at.asc(), Run.trace_id]
        if order == "failures":
            rank = case((status == "failed", 0), (status == INCOMPLETE, 1), else_=2)
            return [rank, *newest]
        if order == "slowest":
            return [Run.duration_ms.is_(None), Run.duration_ms.desc(), *newest]
        if order == "tokens":
            return [(Run.input_tokens + Run.output_tokens).desc(), *newest]
        raise ValueError(f"unknown order {order!r}: use one of {', '.join(ORDERS)}")

    def count_runs(self, flt: RunFilter | None = None) -> int:
        """How many runs match."""
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        query = self._where(self._from_runs(func.count()), status, flt or RunFilter())
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def latest_start(self) -> datetime | None:
        """The newest run's start time (the snapshot the runs page pins its list to)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(Run.started_at))).scalar()
        return from_db_time(value)

    def data_version(self) -> tuple[str | None, int]:
        """Changes whenever a run is written: (latest write time, number of runs)."""
        with self.engine.connect() as conn:
            latest, count = conn.execute(select(func.max(Run.updated_at), func.count())).one()
        return iso_time(latest), int(count)

    def run_version(self, trace_id: str) -> tuple[str | None, int, str | None]:
        """Changes whenever a run is written: (write time, span count, stored status)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Run.updated_at, Run.span_count, Run.status).where(Run.trace_id == trace_id)
            ).first()
        if row is None:
            return (None, 0, None)
        return iso_time(row[0]), int(row[1] or 0), row[2]

    def get_run(self, trace_id: str) -> dict[str, Any] | None:
        """One run by trace id (with evidence and recovered errors), or None."""
        now = datetime.now(timezone.utc)
        query, _status = self._base(now)
        query = query.add_columns(Run.evidence, Run.recovered_errors, Run.exception_detail)
        query = query.add_columns(Run.metadata_json, Run.streamed, Run.updated_at, Run.warnings)
        with self.engine.connect() as conn:
            row = conn.execute(query.where(Run.trace_id == trace_id)).first()
        if row is None:
            return None
        out = self._run_dict(row)
        m = row._mapping
        out["evidence"] = m["evidence"] or []
        out["recovered_errors"] = m["recovered_errors"] or []
        out["exception_detail"] = m["exception_detail"]
        out["metadata"] = m["metadata"]
        out["streamed"] = m["streamed"]
        out["updated_at"] = iso_time(m["updated_at"])
        out["warnings"] = m["warnings"] or []
        return out

    def find_trace_ids(self, prefix: str, limit: int = 5) -> list[str]:
        """Trace ids starting with ``prefix`` (for short ids on the command line)."""
        pattern = _escape_like(prefix) + "%"
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Run.trace_id).where(Run.trace_id.like(pattern, escape="\\")).limit(limit)
            ).all()
        return [r[0] for r in rows]

    def resolve_trace_id(self, given: str) -> str:
        """The trace id ``given`` names: itself, or the one run whose id starts with it (with
        or without ``trace_``); StoreError, one line for the user, otherwise."""
        if self.get_run(given) is not None:
            return given
        matches: list[str] = []
        if len(given) >= 4:
            matches = self.find_trace_ids(given)
            if not matches and not given.startswith("trace_"):
                matches = self.find_trace_ids("trace_" + given)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise StoreError(f"trace id {given!r} is ambiguous: {', '.join(matches)}")
        raise StoreError(f"no run with trace id {given!r} in {self.label}")

    def _run_dict(self, row: Any) -> dict[str, Any]:
        m = row._mapping
        out = {c: m[c] for c in RUN_COLUMNS}
        out["status"] = m["effective_status"]
        if out["status"] == RUNNING and not self._pid_alive(out.get("host"), out.get("pid")):
            out["status"] = INCOMPLETE
        if out["status"] == INCOMPLETE and m["status"] == RUNNING:
            out["category"] = "incomplete"
            out["reason"] = None
        for key in ("started_at", "ended_at"):
            value = from_db_time(out[key])
            out[key] = value.isoformat() if value else None
        out["agents"] = list(out["agents"] or [])
        out["truncated"] = bool(out["truncated"])
        out["trace_ended"] = bool(out["trace_ended"])
        return out

    def _pid_alive(self, host: str | None, pid: int | None) -> bool:
        """False only when we can tell: same host and no such process."""
        if not pid or host != self._host:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except (PermissionError, OSError):
            return True
        return True

    def count_newer(self, flt: RunFilter | None, after: datetime) -> int:
        """Runs matching ``flt`` (snapshot ignored) that started after ``after``."""
        flt = replace(flt or RunFilter(), as_of=None)
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        query = self._where(self._from_runs(func.count()), status, flt)
        query = query.where(Run.started_at > to_db_time(after))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # -- spans --------------------------------------------------------------------------------

    def spans(self, trace_id: str) -> list[SpanRecord]:
        """All spans of a trace, in start order."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(SpanRow.__table__).where(SpanRow.trace_id == trace_id)).all()
        records = [span_from_row(r) for r in rows]
        records.sort(
            key=lambda s: (s.started_at or datetime.max.replace(tzinfo=timezone.utc), s.seq)
        )
        return records

    def analysis(self, trace_id: str) -> Analysis | None:
        """Recompute a run's turns and verdict from its stored spans (liveness included)."""
        from turnscope.analysis.verdict import analyze

        run = self.get_run(trace_id)
        if run is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(Run.__table__).where(Run.trace_id == trace_id)).first()
        info = trace_info_from_row(row)
        alive = run["status"] != INCOMPLETE
        return analyze(info, self.spans(trace_id), process_alive=alive)

    def distinct(self, column: str, limit: int = 500) -> list[str]:
        """Distinct values of a runs column (workflow, category, ...), for filter menus."""
        col = getattr(Run, column)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(col).where(col.is_not(None)).distinct().order_by(col).limit(limit)
            ).all()
        return [r[0] for r in rows]

    def agent_names(self, limit: int = 500) -> list[str]:
        """Names of agents that ran (for the agent filter menu)."""
        query = (
            select(SpanRow.name)
            .where(SpanRow.kind == "agent", SpanRow.name.is_not(None))
            .distinct()
            .order_by(SpanRow.name)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def tool_names(self, limit: int = 500) -> list[str]:
        """Names of tools that were called (for the tool filter menu)."""
        query = (
            select(SpanRow.tool_name)
            .where(SpanRow.tool_name.is_not(None))
            .distinct()
            .order_by(SpanRow.tool_name)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]


# --- helpers -----------------------------------------------------------------------------------

ORDERS = ("newest", "failures", "slowest", "tokens", "oldest")
FAILURE_STATUSES = ("failed", INCOMPLETE)
TEXT_KINDS = ("function", "generation", "response", "guardrail", "handoff", "custom")
WITH_WARNINGS = sql_text("runs.warning_count > 0")


def _equal_or_none(column: Any, value: str) -> Any:
    return column.is_(None) if value == "" else column == value


def _as_text(column: Any, dialect: str) -> Any:
    """A JSON column as its stored text."""
    if dialect == "postgresql":
        return cast(column, Text)
    return type_coerce(column, Text)  # SQLite stores JSON as TEXT already


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
