"""Retention: delete old runs and their spans in small batches, while writers go on writing.

A run is old when it started before the cutoff and nothing was written to it since (its
``updated_at``). A run still ``running`` is never deleted while its writer's heartbeat is
fresh: only once the writer stopped or went silent (its run reads ``incomplete``). Each
batch (a few hundred runs, at most ``BATCH_SPANS`` spans) is one short transaction, so
writers and readers wait at most one batch: on SQLite for its write lock (writers wait up to
their 30 s busy timeout), on PostgreSQL not at all (rows being written are skipped, ``SKIP
LOCKED``). Readers see a run with all its spans or not at all.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, or_, select
from sqlalchemy.engine import Engine

from turnscope.records import RUNNING
from turnscope.store.convert import to_db_time
from turnscope.store.engine import make_writer_engine, resolve_url, sqlite_path
from turnscope.store.models import Process, Run, SpanRow
from turnscope.store.queries import HEARTBEAT_STALE, Store

BATCH_RUNS = 500  # runs looked at per batch
BATCH_SPANS = 5000  # spans deleted per batch, at most (but always one run)
KEPT_BY_KEEP_FAILED = ("failed", "incomplete")


@dataclass
class PruneResult:
    """What ``prune`` deleted (or, in a dry run, would delete)."""

    database: str
    cutoff: datetime
    dry_run: bool
    runs: Counter[str] = field(default_factory=Counter)  # by status (a dead writer's: incomplete)
    spans: int = 0
    processes: int = 0  # rows of writers that stopped before the cutoff and left no runs
    batches: int = 0

    @property
    def run_count(self) -> int:
        """Runs deleted (or that would be)."""
        return sum(self.runs.values())


def old_runs(
    cutoff: datetime, now: datetime, keep_failed: bool, gone: Sequence[str] = ()
) -> ColumnElement[bool]:
    """The runs ``prune`` deletes: started before ``cutoff``, not written since, and not
    running under a live writer (``Run`` outer-joined to ``Process``; ``gone``: writers
    known dead though their heartbeat is fresh, as readers judge them)."""
    cut = to_db_time(cutoff)
    stale = to_db_time(now - HEARTBEAT_STALE)
    writer_gone = or_(
        Process.id.is_(None), Process.stopped_at.is_not(None), Process.heartbeat_at < stale
    )
    if gone:
        writer_gone = or_(writer_gone, Process.id.in_(gone))
    condition = and_(
        Run.started_at < cut,
        or_(Run.updated_at.is_(None), Run.updated_at < cut),
        or_(Run.status != RUNNING, writer_gone),
    )
    if keep_failed:  # neither failed nor incomplete (a running run of a dead writer is)
        condition = and_(condition, Run.status.not_in((RUNNING, *KEPT_BY_KEEP_FAILED)))
    return condition


def _status(status: str) -> str:
    """A deleted run's status as readers showed it (only a dead writer's run is running)."""
    return "incomplete" if status == RUNNING else status


def prune(
    db: str | os.PathLike[str] | None,
    cutoff: datetime,
    *,
    keep_failed: bool = False,
    dry_run: bool = False,
    batch_spans: int = BATCH_SPANS,
) -> PruneResult:
    """Delete old runs, their spans and the rows of writers long gone, one batch per
    transaction; with ``dry_run``, only count them (read-only)."""
    store = Store(db)  # refuses a missing or foreign database: never create one to prune it
    try:
        # writers on this host killed a moment ago: their running runs read incomplete
        gone = store.writers_gone_here(datetime.now(timezone.utc))
        if dry_run:
            return _count(store.engine, store.label, cutoff, keep_failed, gone)
    finally:
        store.close()
    engine = make_writer_engine(store.url)
    try:
        return _delete(engine, store.label, cutoff, keep_failed, gone, batch_spans)
    finally:
        engine.dispose()


def _joined(*columns: Any) -> Any:
    return select(*columns).select_from(Run).outerjoin(Process, Process.id == Run.process_id)


def _count(
    engine: Engine, label: str, cutoff: datetime, keep_failed: bool, gone: list[str]
) -> PruneResult:
    result = PruneResult(label, cutoff, dry_run=True)
    condition = old_runs(cutoff, datetime.now(timezone.utc), keep_failed, gone)
    with engine.connect() as conn:
        for status, count in conn.execute(
            _joined(Run.status, func.count()).where(condition).group_by(Run.status)
        ):
            result.runs[_status(status)] += count
        chosen = _joined(Run.trace_id).where(condition)
        result.spans = int(
            conn.execute(
                select(func.count()).select_from(SpanRow).where(SpanRow.trace_id.in_(chosen))
            ).scalar_one()
        )
    return result


def _delete(
    engine: Engine,
    label: str,
    cutoff: datetime,
    keep_failed: bool,
    gone: list[str],
    batch_spans: int,
) -> PruneResult:
    result = PruneResult(label, cutoff, dry_run=False)
    postgres = engine.dialect.name == "postgresql"
    while True:
        condition = old_runs(cutoff, datetime.now(timezone.utc), keep_failed, gone)
        query = (
            _joined(Run.trace_id, Run.status, Run.span_count)
            .where(condition)
            .order_by(Run.started_at)
            .limit(BATCH_RUNS)
        )
        if postgres:  # a run a writer is upserting right now is left for the next prune
            query = query.with_for_update(of=Run.__table__, skip_locked=True)  # type: ignore[arg-type]
        with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, the batch is one write
            rows = conn.execute(query).all()
            if not rows:
                break
            chosen, spans = [], 0
            for trace_id, status, span_count in rows:
                if chosen and spans + (span_count or 0) > batch_spans:
                    break
                chosen.append((trace_id, status))
                spans += span_count or 0
            ids = [trace_id for trace_id, _ in chosen]
            result.spans += conn.execute(delete(SpanRow).where(SpanRow.trace_id.in_(ids))).rowcount
            conn.execute(delete(Run).where(Run.trace_id.in_(ids)))
        for _, status in chosen:
            result.runs[_status(status)] += 1
        result.batches += 1
    result.processes = _forget_writers(engine, cutoff)
    return result


def _forget_writers(engine: Engine, cutoff: datetime) -> int:
    """Delete the rows of writer processes silent since before the cutoff that no run
    names any more (their heartbeat is how readers tell live runs from dead ones)."""
    cut = to_db_time(cutoff)
    with engine.begin() as conn:
        return int(
            conn.execute(
                delete(Process).where(
                    Process.heartbeat_at < cut,
                    not_(exists().where(Run.process_id == Process.id)),
                )
            ).rowcount
        )


@dataclass
class VacuumResult:
    """Database size before and after ``vacuum`` (bytes; None where unknown)."""

    before: int | None
    after: int | None


def vacuum(db: str | os.PathLike[str] | None) -> VacuumResult:
    """Give the space of deleted rows back: SQLite ``VACUUM`` (the file shrinks; writers wait
    while it runs), PostgreSQL ``VACUUM (ANALYZE)`` of turnscope's tables (space reusable,
    no exclusive lock)."""
    url = resolve_url(db)
    engine = make_writer_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            path = sqlite_path(engine.url)
            before = _file_size(path)
            raw = engine.raw_connection()
            try:
                driver: Any = raw.driver_connection
                driver.execute("VACUUM")
                driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                raw.close()
            return VacuumResult(before, _file_size(path))
        size = "SELECT pg_database_size(current_database())"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            before = int(conn.exec_driver_sql(size).scalar_one())
            conn.exec_driver_sql("VACUUM (ANALYZE) spans, runs, processes")
            return VacuumResult(before, int(conn.exec_driver_sql(size).scalar_one()))
    finally:
        engine.dispose()


def _file_size(path: Any) -> int | None:
    if path is None:
        return None
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(f"{path}{suffix}")
        except OSError:
            pass
    return total
