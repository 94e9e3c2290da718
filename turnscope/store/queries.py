"""Read side: what the CLI and the viewer ask of the database. Read-only, bound parameters.

A run whose writer process died (kill -9, power loss) still says ``running`` in the table;
readers turn it into ``incomplete`` from the ``processes`` heartbeat (and, on the same host,
from the pid), so no writer has to survive to label it.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, or_, select
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
    """Filters for listing runs; every value is bound as a parameter."""

    status: str | None = None
    category: str | None = None
    workflow: str | None = None
    agent: str | None = None
    tool: str | None = None
    group_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None


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
        check_schema(self.engine, self.label)
        self._host = socket.gethostname()

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()

    # -- status -------------------------------------------------------------------------------

    def _effective_status(self, now: datetime) -> Any:
        stale = to_db_time(now - HEARTBEAT_STALE)
        dead = or_(
            Process.id.is_(None), Process.stopped_at.is_not(None), Process.heartbeat_at < stale
        )
        return case((and_(Run.status == RUNNING, dead), INCOMPLETE), else_=Run.status)

    def _base(self, now: datetime) -> tuple[Select[Any], Any]:
        status = self._effective_status(now).label("effective_status")
        columns = [getattr(Run, c) if c != "agents" else Run.agents for c in RUN_COLUMNS]
        query = (
            select(*columns, status)
            .select_from(Run)
            .outerjoin(Process, Process.id == Run.process_id)
        )
        return query, status

    def _where(self, query: Select[Any], status: Any, flt: RunFilter) -> Select[Any]:
        if flt.status:
            query = query.where(status == flt.status)
        if flt.category:
            query = query.where(Run.category == flt.category)
        if flt.workflow:
            query = query.where(Run.workflow == flt.workflow)
        if flt.group_id:
            query = query.where(Run.group_id == flt.group_id)
        if flt.since:
            query = query.where(Run.started_at >= to_db_time(flt.since))
        if flt.until:
            query = query.where(Run.started_at < to_db_time(flt.until))
        if flt.agent:
            query = query.where(
                or_(
                    Run.failing_agent == flt.agent,
                    exists().where(
                        SpanRow.trace_id == Run.trace_id,
                        SpanRow.kind == "agent",
                        SpanRow.name == flt.agent,
                    ),
                )
            )
        if flt.tool:
            query = query.where(
                exists().where(SpanRow.trace_id == Run.trace_id, SpanRow.tool_name == flt.tool)
            )
        if flt.search:
            pattern = "%" + _escape_like(flt.search) + "%"
            query = query.where(
                or_(
                    Run.first_error.like(pattern, escape="\\"),
                    Run.explanation.like(pattern, escape="\\"),
                    Run.trace_id.like(pattern, escape="\\"),
                )
            )
        return query

    # -- runs ---------------------------------------------------------------------------------

    def list_runs(
        self, flt: RunFilter | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Runs newest first, with their effective status."""
        now = datetime.now(timezone.utc)
        query, status = self._base(now)
        query = self._where(query, status, flt or RunFilter())
        query = query.order_by(Run.started_at.desc(), Run.trace_id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [self._run_dict(row) for row in rows]

    def count_runs(self, flt: RunFilter | None = None) -> int:
        """How many runs match."""
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        query = (
            select(func.count()).select_from(Run).outerjoin(Process, Process.id == Run.process_id)
        )
        query = self._where(query, status, flt or RunFilter())
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def get_run(self, trace_id: str) -> dict[str, Any] | None:
        """One run by trace id (with evidence and recovered errors), or None."""
        now = datetime.now(timezone.utc)
        query, _status = self._base(now)
        query = query.add_columns(Run.evidence, Run.recovered_errors, Run.exception_detail)
        query = query.add_columns(Run.metadata_json)
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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
