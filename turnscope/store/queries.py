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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Text,
    and_,
    case,
    cast,
    event,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine

from turnscope.records import INCOMPLETE, RUNNING, SpanRecord
from turnscope.store.convert import from_db_time, span_from_row, to_db_time, trace_info_from_row
from turnscope.store.engine import check_schema, make_reader_engine, redact, resolve_url
from turnscope.store.models import Process, Run, SpanRow

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
)


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
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    failing_agent: str | None = None
    failing_tool: str | None = None
    failing_reason: str | None = None
    message: str | None = None
    trace_ids: Sequence[str] | None = None
    as_of: datetime | None = None


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


class Store:
    """A read-only view of a turnscope database."""

    def __init__(self, db: str | os.PathLike[str] | None = None, engine: Engine | None = None):
        self.url = resolve_url(db)
        self.label = redact(self.url)
        self.engine = engine or make_reader_engine(self.url)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            # the failure-group key is computed in SQL; SQLite gets it as a function
            event.listen(self.engine, "connect", _register_sqlite_functions)
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
        statuses = _values(flt.status)
        if statuses:
            query = query.where(status.in_(statuses))
        categories = _values(flt.category)
        if categories:
            query = query.where(self._effective_category(status).in_(categories))
        reasons = _values(flt.reason)
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
        query = query.order_by(*self._order(order, status)).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._run_dict(row) for row in rows]

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

    def summary(self, flt: RunFilter | None = None) -> dict[str, Any]:
        """Headline figures of the matching runs, computed in SQL: counts by status, failure
        rate (failed and incomplete among runs that ended), tokens, p50/p95 duration and the
        first and last start time."""
        flt = flt or RunFilter()
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        counts = [func.count()]
        counts += [func.sum(case((status == s, 1), else_=0)) for s in STATUSES]
        query = self._from_runs(
            *counts,
            func.coalesce(func.sum(Run.input_tokens), 0),
            func.coalesce(func.sum(Run.output_tokens), 0),
            func.min(Run.started_at),
            func.max(Run.started_at),
            func.count(Run.duration_ms),
        )
        with self.engine.connect() as conn:
            row = conn.execute(self._where(query, status, flt)).one()
            total = int(row[0])
            by_status = {s: int(row[1 + i] or 0) for i, s in enumerate(STATUSES)}
            timed = int(row[-1] or 0)
            p50, p95 = self._percentiles(conn, status, flt, (0.5, 0.95), timed)
        ended = total - by_status[RUNNING]
        failures = by_status["failed"] + by_status[INCOMPLETE]
        first, last = row[-3], row[-2]
        return {
            "runs": total,
            **by_status,
            "failure_rate": failures / ended if ended else None,
            "input_tokens": int(row[-5]),
            "output_tokens": int(row[-4]),
            "tokens": int(row[-5]) + int(row[-4]),
            "p50_ms": p50,
            "p95_ms": p95,
            "first_started": _iso(first),
            "last_started": _iso(last),
        }

    def _percentiles(
        self, conn: Any, status: Any, flt: RunFilter, points: tuple[float, ...], n: int
    ) -> list[float | None]:
        """Nearest-rank percentiles of duration_ms among the ``n`` matching runs that have
        one. Unfiltered, the k-th value is read through ix_runs_duration (no sort); with
        filters, one pass with window functions (SQLite 3.25+ and PostgreSQL alike)."""
        if n <= 0:
            return [None for _ in points]
        ranks = [int(p * (n - 1)) for p in points]
        if flt == RunFilter():
            values = []
            for rank in ranks:
                query = (
                    select(Run.duration_ms)
                    .where(Run.duration_ms.is_not(None))
                    .order_by(Run.duration_ms)
                    .limit(1)
                    .offset(rank)
                )
                values.append(conn.execute(query).scalar())
            return [float(v) if v is not None else None for v in values]
        inner = self._where(
            self._from_runs(
                Run.duration_ms.label("d"),
                func.row_number().over(order_by=Run.duration_ms).label("rn"),
            ).where(Run.duration_ms.is_not(None)),
            status,
            flt,
        ).subquery()
        query = select(inner.c.rn, inner.c.d).where(inner.c.rn.in_([r + 1 for r in ranks]))
        found = {int(r.rn): float(r.d) for r in conn.execute(query)}
        return [found.get(rank + 1) for rank in ranks]

    def latest_start(self) -> datetime | None:
        """The newest run's start time (the snapshot the runs page pins its list to)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(Run.started_at))).scalar()
        return from_db_time(value)

    def data_version(self) -> tuple[str | None, int]:
        """Changes whenever a run is written: (latest write time, number of runs)."""
        with self.engine.connect() as conn:
            latest, count = conn.execute(select(func.max(Run.updated_at), func.count())).one()
        return _iso(latest), int(count)

    def run_version(self, trace_id: str) -> tuple[str | None, int, str | None]:
        """Changes whenever a run is written: (write time, span count, stored status)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Run.updated_at, Run.span_count, Run.status).where(Run.trace_id == trace_id)
            ).first()
        if row is None:
            return (None, 0, None)
        return _iso(row[0]), int(row[1] or 0), row[2]

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
        out["updated_at"] = _iso(m["updated_at"])
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

    # -- charts and failure groups ------------------------------------------------------------

    def _epoch(self, column: Any) -> Any:
        if self.dialect == "postgresql":
            return func.extract("epoch", column)
        return cast(func.strftime("%s", column), Integer)

    def _bucket(self, size: int) -> Any:
        # the size is one of BUCKET_SIZES (never user input), inlined so GROUP BY sees a plain
        # expression
        if self.dialect == "postgresql":
            return self._epoch(Run.started_at) // literal_column(str(int(size)))
        # SQLite: integer "/" is integer division; SQLAlchemy's "//" would need FLOOR(), which
        # SQLite builds without math functions lack
        return literal_column(
            f"CAST(strftime('%s', runs.started_at) AS INTEGER) / {int(size)}", Integer
        )

    def time_buckets(
        self, flt: RunFilter | None = None, *, bucket_seconds: int | None = None
    ) -> dict[str, Any]:
        """Runs per time bucket and outcome (a failure's category, else its status), for the
        runs-over-time chart. The bucket size is picked from the range unless given."""
        flt = flt or RunFilter()
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        size = bucket_seconds or self._bucket_size(flt, status)
        series = case(
            (status.in_(("failed", INCOMPLETE)), self._effective_category(status)),
            else_=status,
        )
        inner = (
            self._where(
                self._from_runs(self._bucket(size).label("bucket"), series.label("series")),
                status,
                flt,
            )
            .where(Run.started_at.is_not(None))
            .subquery("b")
        )
        query = (
            select(inner.c.bucket, inner.c.series, func.count())
            .group_by(inner.c.bucket, inner.c.series)
            .order_by(inner.c.bucket)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        points = [
            {
                "start": datetime.fromtimestamp(int(b) * size, timezone.utc).isoformat(),
                "series": s or "unknown",
                "runs": int(n),
            }
            for b, s, n in rows
        ]
        return {"bucket_seconds": size, "points": points}

    def _bucket_size(self, flt: RunFilter, status: Any) -> int:
        first, last = flt.since, flt.until or flt.as_of
        if first is None or last is None:
            query = self._where(
                self._from_runs(func.min(Run.started_at), func.max(Run.started_at)), status, flt
            )
            with self.engine.connect() as conn:
                lo, hi = conn.execute(query).one()
            first = first or from_db_time(lo)
            last = last or from_db_time(hi)
        return bucket_size(first, last)

    def _message_key(self) -> Any:
        """The failure-group message: the first error (or the verdict message), with ids and
        numbers masked, so "card declined (code 51)" and "... (code 05)" group together."""
        source = func.coalesce(Run.first_error, Run.message, Run.exception, "")
        if self.dialect == "sqlite":
            return func.turnscope_message_key(source)
        expr = source
        for pattern, replacement in MESSAGE_RULES:
            expr = func.regexp_replace(expr, pattern, replacement, "g")
        return func.substr(func.btrim(expr, " "), 1, MESSAGE_KEY_CHARS)

    def failure_groups(
        self, flt: RunFilter | None = None, *, limit: int = 50, examples: int = 3
    ) -> dict[str, Any]:
        """Failed and incomplete runs grouped by (category, reason, failing agent, failing
        tool, normalised message), biggest first, with share, first/last seen, a trend over time
        buckets and the newest example runs. Everything is grouped in SQL."""
        flt = flt or RunFilter()
        if not _values(flt.status):
            flt = _replace(flt, status=["failed", INCOMPLETE])
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        size = self._bucket_size(flt, status)
        # one derived table with the group keys; every query below groups its plain columns
        f = (
            self._where(
                self._from_runs(
                    self._effective_category(status).label("category"),
                    self._effective_reason(status).label("reason"),
                    Run.failing_agent.label("agent"),
                    Run.failing_tool.label("tool"),
                    self._message_key().label("message"),
                    self._bucket(size).label("bucket"),
                    Run.trace_id,
                    Run.started_at,
                ),
                status,
                flt,
            )
            .where(Run.started_at.is_not(None))
            .subquery("f")
        )
        keys = [f.c[k] for k in GROUP_KEYS]
        top = (
            select(
                *keys,
                func.count().label("runs"),
                func.min(f.c.started_at).label("first_seen"),
                func.max(f.c.started_at).label("last_seen"),
            )
            .group_by(*keys)
            .order_by(func.count().desc(), *keys)
            .limit(limit)
        )
        top_q = top.subquery("top")
        match = and_(*(f.c[k].is_not_distinct_from(top_q.c[k]) for k in GROUP_KEYS))
        trend = (
            select(*keys, f.c.bucket, func.count())
            .select_from(f.join(top_q, match))
            .group_by(*keys, f.c.bucket)
        )
        rank = func.row_number().over(
            partition_by=keys, order_by=[f.c.started_at.desc(), f.c.trace_id]
        )
        ranked = select(*keys, f.c.trace_id, rank.label("rank")).subquery("r")
        example_q = (
            select(*(ranked.c[k] for k in GROUP_KEYS), ranked.c.trace_id)
            .select_from(
                ranked.join(
                    top_q,
                    and_(*(ranked.c[k].is_not_distinct_from(top_q.c[k]) for k in GROUP_KEYS)),
                )
            )
            .where(ranked.c.rank <= examples)
            .order_by(ranked.c.rank)
        )
        span_q = select(func.count(), func.min(f.c.bucket), func.max(f.c.bucket))
        with self.engine.connect() as conn:
            groups = conn.execute(top).all()
            total, lo, hi = conn.execute(span_q).one()
            trend_rows = conn.execute(trend).all() if groups else []
            example_rows = conn.execute(example_q).all() if groups else []
        total = int(total)
        first_bucket = int(lo) if lo is not None else 0
        n_buckets = int(hi) - first_bucket + 1 if hi is not None else 0
        n_keys = len(GROUP_KEYS)
        trends: dict[tuple[Any, ...], list[int]] = {}
        for row in trend_rows:
            series = trends.setdefault(tuple(row[:n_keys]), [0] * n_buckets)
            index = int(row[n_keys]) - first_bucket
            if 0 <= index < n_buckets:
                series[index] = int(row[n_keys + 1])
        samples: dict[tuple[Any, ...], list[str]] = {}
        for row in example_rows:
            samples.setdefault(tuple(row[:n_keys]), []).append(row[n_keys])
        out = []
        for row in groups:
            group_key = tuple(row[:n_keys])
            out.append(
                {
                    "category": row.category,
                    "reason": row.reason,
                    "agent": row.agent,
                    "tool": row.tool,
                    "message": row.message,
                    "runs": int(row.runs),
                    "share": int(row.runs) / total if total else 0.0,
                    "first_seen": _iso(row.first_seen),
                    "last_seen": _iso(row.last_seen),
                    "trend": trends.get(group_key, [0] * n_buckets),
                    "examples": samples.get(group_key, []),
                }
            )
        first = datetime.fromtimestamp(first_bucket * size, timezone.utc) if n_buckets else None
        return {
            "total": total,
            "groups": out,
            "bucket_seconds": size,
            "first_bucket": first.isoformat() if first else None,
        }

    def count_newer(self, flt: RunFilter | None, after: datetime) -> int:
        """Runs matching ``flt`` (snapshot ignored) that started after ``after``."""
        flt = _replace(flt or RunFilter(), as_of=None)
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

    def analysis(self, trace_id: str) -> Any:
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
STATUSES = ("running", "succeeded", "succeeded_with_errors", "failed", "incomplete")
TEXT_KINDS = ("function", "generation", "response", "guardrail", "handoff", "custom")
GROUP_KEYS = ("category", "reason", "agent", "tool", "message")
WITH_WARNINGS = sql_text("runs.warning_count > 0")
MESSAGE_KEY_CHARS = 160
# the same rules in Python (SQLite function) and PostgreSQL (regexp_replace): only syntax both
# regex engines read the same way (no \b, no lookaround). Ids (8+ hex digits) first, then
# numbers that start a word ("code 51", "20s", "(3)") but not names like "gpt-4o" or "v2".
MESSAGE_RULES = (
    ("[0-9a-fA-F]{8,}(-[0-9a-fA-F]{4,})*", "<id>"),
    ("(^|[^A-Za-z0-9_.-])[0-9]+([.,:][0-9]+)*", "\\1#"),
    ("[ \t\r\n]+", " "),
)
_MESSAGE_RES = tuple((re.compile(p), r) for p, r in MESSAGE_RULES)
BUCKET_SIZES = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


def message_key(text: str | None) -> str:
    """A failure message with ids and numbers masked (the failure-group key)."""
    value = text or ""
    for pattern, replacement in _MESSAGE_RES:
        value = pattern.sub(replacement, value)
    return value.strip(" ")[:MESSAGE_KEY_CHARS]


def bucket_size(first: datetime | None, last: datetime | None, buckets: int = 60) -> int:
    """The smallest bucket (seconds) that covers ``first``..``last`` in about ``buckets``."""
    if first is None or last is None:
        return 3600
    span = max(0.0, (last - first).total_seconds())
    for size in BUCKET_SIZES:
        if span / size <= buckets:
            return size
    return BUCKET_SIZES[-1]


def _register_sqlite_functions(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.create_function("turnscope_message_key", 1, message_key, deterministic=True)


def _values(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [v for v in value if v]


def _equal_or_none(column: Any, value: str) -> Any:
    return column.is_(None) if value == "" else column == value


def _replace(flt: RunFilter, **changes: Any) -> RunFilter:
    from dataclasses import replace

    return replace(flt, **changes)


def _as_text(column: Any, dialect: str) -> Any:
    """A JSON column as its stored text."""
    if dialect == "postgresql":
        return cast(column, Text)
    return type_coerce(column, Text)  # SQLite stores JSON as TEXT already


def _iso(value: Any) -> str | None:
    parsed = from_db_time(value)
    return parsed.isoformat() if parsed else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
