"""The database sink: bulk upserts of spans and runs, one transaction per batch."""

from __future__ import annotations

import functools
import math
import platform
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Table, select, update
from sqlalchemy.engine import Connection, Engine

from turnscope import jsontext
from turnscope.records import RunRecord, SpanRecord, TraceInfo
from turnscope.sinks import Batch, StagedSink
from turnscope.store.convert import (
    run_row,
    span_from_row,
    span_row,
    to_db_time,
    trace_info_from_row,
)
from turnscope.store.engine import READ_ONLY, make_writer_engine, redact, upgrade
from turnscope.store.models import Process, Run, SpanRow

RUNS: Table = Run.__table__  # type: ignore[assignment]
SPANS: Table = SpanRow.__table__  # type: ignore[assignment]
PROCESSES: Table = Process.__table__  # type: ignore[assignment]


@dataclass(slots=True)
class ProcessInfo:
    """Identity of the writing process (stored in ``processes`` for liveness checks)."""

    id: str
    pid: int
    host: str
    sdk_version: str | None
    turnscope_version: str


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert rows, replacing existing ones with the same key (SQLite and PostgreSQL)."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:  # pragma: no cover - other databases: delete then insert
        for row in rows:
            conn.execute(
                table.delete().where(*[table.c[k] == row[k] for k in keys])  # type: ignore[arg-type]
            )
        conn.execute(table.insert(), rows)
        return
    stmt = insert(table)
    columns = [c.name for c in table.columns if c.name not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in columns}
    )
    conn.execute(stmt, rows)


_SQL_CACHE: dict[str, tuple[str, str, Any, list[int], list[int], list[int]]] = {}


def _sqlite_rows(table: Table, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> SqliteRows:
    """Rows of ``table`` as one multi-row upsert's parameters, values converted the way
    SQLAlchemy's own SQLite types store them (several times faster than the Core statement
    with per-row bind processing)."""
    cached = _SQL_CACHE.get(table.name)
    if cached is None:
        names = [c.name for c in table.columns]
        quoted = ", ".join(f'"{n}"' for n in names)
        updates = ", ".join(f'"{n}" = excluded."{n}"' for n in names if n not in keys)
        kinds = [c.type for c in table.columns]
        cached = _SQL_CACHE[table.name] = (
            f'INSERT INTO "{table.name}" ({quoted}) VALUES ',
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
            itemgetter(*names),
            [i for i, t in enumerate(kinds) if isinstance(t, JSON)],
            [i for i, t in enumerate(kinds) if isinstance(t, DateTime)],
            [i for i, t in enumerate(kinds) if isinstance(t, Boolean)],
        )
    head, tail, getter, json_at, time_at, bool_at = cached
    params = []
    for row in rows:
        values = list(getter(row))
        for i in json_at:
            if values[i] is not None:
                values[i] = _json_text(values[i])
        for i in time_at:
            if values[i] is not None:
                values[i] = sqlite_time(values[i])
        for i in bool_at:
            if values[i] is not None:
                values[i] = int(bool(values[i]))
        params.append(tuple(values))
    return SqliteRows(head, tail, params)


@dataclass(slots=True)
class SqliteRows:
    """An upsert's statement around its VALUES list, and the rows for it."""

    head: str
    tail: str
    rows: list[tuple[Any, ...]]


def _variable_limit(raw: Any) -> int:
    """How many ``?`` one SQLite statement may carry (32766 since SQLite 3.32, else 999)."""
    getlimit = getattr(raw, "getlimit", None)  # Python >= 3.11
    if getlimit is not None:
        try:
            return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        except Exception:
            pass
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


# Rows per multi-row statement (also capped by SQLite's variable limit): fewer, larger
# statements mean fewer GIL hand-backs (figures in benchmarks/README.md).
MAX_ROWS_PER_STATEMENT = 1024


def _sqlite_execute(raw: Any, rows: SqliteRows) -> None:
    """Upsert rows, up to ``MAX_ROWS_PER_STATEMENT`` per statement. The driver releases the
    GIL once per statement instead of once per row: with the write on its own thread, a
    per-row executemany crawled (each row waited for the worker to hand back the GIL),
    while a statement of hundreds of rows costs what executemany costs alone.

    Statement sizes are powers of two, the last one padded by repeating its last row (an
    upsert of the same values again): the driver keeps up to 128 prepared statements per
    connection, each as large as its rows, so one statement per batch size seen filled that
    cache with large statements; eleven sizes keep it small."""
    if not rows.rows:
        return
    width = len(rows.rows[0])
    per = 1 << (min(MAX_ROWS_PER_STATEMENT, max(1, _variable_limit(raw) // width)).bit_length() - 1)
    for i in range(0, len(rows.rows), per):
        chunk = rows.rows[i : i + per]
        size = 1 << (len(chunk) - 1).bit_length()  # the next power of two
        if size > len(chunk):
            chunk = chunk + [chunk[-1]] * (size - len(chunk))
        raw.execute(
            _values_sql(rows.head, rows.tail, width, size), list(chain.from_iterable(chunk))
        )


@functools.lru_cache(maxsize=64)  # eleven sizes per table: built once, not per statement
def _values_sql(head: str, tail: str, width: int, size: int) -> str:
    one = "(" + ", ".join("?" * width) + ")"
    return head + ", ".join([one] * size) + tail


# The spans columns in the order of the hot path's statements (checked against the table
# when the sink opens, so a new column cannot be silently left out).
SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "kind",
    "name",
    "agent",
    "turn",
    "started_at",
    "ended_at",
    "duration_ms",
    "status",
    "error_message",
    "error_data",
    "data",
    "exception",
    "model",
    "tool_name",
    "input_tokens",
    "output_tokens",
    "seq",
    "truncated",
)
_SPAN_JSON = frozenset({"error_data", "data", "exception"})


_COLUMN_LIST = ", ".join(SPAN_COLUMNS)
_ON_CONFLICT = "ON CONFLICT (trace_id, span_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in SPAN_COLUMNS[2:]
)


def _span_upsert(placeholder: str, json_cast: str) -> str:
    values = ", ".join(placeholder + (json_cast if c in _SPAN_JSON else "") for c in SPAN_COLUMNS)
    return f"INSERT INTO spans ({_COLUMN_LIST}) VALUES ({values}) {_ON_CONFLICT}"


# The hot path: parameters straight from the records; on PostgreSQL one prepared upsert
# through the driver's executemany (psycopg 3 pipelines it) or COPY (below), on SQLite
# multi-row statements (see _sqlite_execute). SQLAlchemy Core's upsert was slower: it
# processes every bound value of every row in Python.
_SQLITE_SPANS_HEAD = f"INSERT INTO spans ({_COLUMN_LIST}) VALUES "
_SQLITE_SPANS_TAIL = " " + _ON_CONFLICT
_POSTGRES_SPAN_UPSERT = _span_upsert("%s", "::json")
# PostgreSQL, faster still: COPY the batch into a session-local staging table, then one
# upsert from it (figures in benchmarks/README.md). Needs the TEMP privilege, which every
# role has unless an administrator revoked it from PUBLIC.
_POSTGRES_STAGE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS turnscope_spans_in "
    "(LIKE spans INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_POSTGRES_COPY = f"COPY turnscope_spans_in ({_COLUMN_LIST}) FROM STDIN"
_POSTGRES_STAGED_UPSERT = (
    f"INSERT INTO spans ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM turnscope_spans_in "
    + _ON_CONFLICT
)


def _postgres_spans(conn: Connection, values: list[tuple[Any, ...]], staged: bool) -> None:
    """Upsert span rows on PostgreSQL: staged through COPY when allowed, else executemany."""
    if not staged:
        conn.exec_driver_sql(_POSTGRES_SPAN_UPSERT, values)
        return
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute(_POSTGRES_STAGE)
        with cursor.copy(_POSTGRES_COPY) as copy:
            for row in values:
                copy.write_row(row)
        cursor.execute(_POSTGRES_STAGED_UPSERT)


def _span_values(
    span: SpanRecord,
    times: Callable[[SpanRecord], tuple[Any, Any]],
    flag: Callable[[bool], Any],
    null: Any = None,
) -> tuple[Any, ...]:
    """One span as the upsert's parameters, in ``SPAN_COLUMNS`` order; the data's JSON text is
    reused when the normaliser made it. ``times`` and ``flag`` store times and booleans the
    way SQLAlchemy's types do on that database (so readers see no difference); ``null`` stands
    for a missing value (see ``SQLITE_NULL``)."""
    data = span.data_json if span.data_json is not None else _json_text(span.data)
    exc = span.exception
    started, ended = times(span)
    parent, agent, turn, duration = span.parent_id, span.agent, span.turn, span.duration_ms
    message, error, model, tool = span.error_message, span.error_data, span.model, span.tool_name
    tokens_in, tokens_out = span.input_tokens, span.output_tokens
    return (
        span.trace_id,
        span.span_id,
        null if parent is None else parent,
        span.kind,
        span.name,
        null if agent is None else agent,
        null if turn is None else turn,
        null if started is None else started,
        null if ended is None else ended,
        null if duration is None else duration,
        span.status,
        null if message is None else message,
        null if error is None else _json_text(error),
        data,
        null if exc is None else _json_text(exc.to_dict()),
        null if model is None else model,
        null if tool is None else tool,
        null if tokens_in is None else tokens_in,
        null if tokens_out is None else tokens_out,
        span.seq,
        flag(span.truncated),
    )


def _db_times(span: SpanRecord) -> tuple[Any, Any]:
    started, ended = span.started_at, span.ended_at
    return (
        None if started is None else to_db_time(started),
        None if ended is None else to_db_time(ended),
    )


def _sqlite_times(span: SpanRecord) -> tuple[str | None, str | None]:
    """Start and end as SQLite DateTime text; sliced from the SDK's own ISO text while the
    record still holds the datetimes parsed from it (cheaper than formatting them)."""
    started, ended = span.started_at, span.ended_at
    iso = span.iso_times
    if iso is not None and iso[0] is started and iso[2] is ended:
        # YYYY-MM-DDTHH:MM:SS.ffffff+00:00 -> YYYY-MM-DD HH:MM:SS.ffffff (normalize._sdk_time)
        return iso[1][:10] + " " + iso[1][11:26], iso[3][:10] + " " + iso[3][11:26]
    return (
        None if started is None else sqlite_time(started),
        None if ended is None else sqlite_time(ended),
    )


# SQLite stores a bound NaN as NULL. The driver binds a float directly, but runs every None
# through its adapter lookup (a tuple built, a dict and two attribute lookups, with the GIL
# held: several times what a string costs), and a span row has several missing values.
SQLITE_NULL = math.nan


def _check_span_columns() -> None:
    """The hot path's column list must be the table's (a migration adding a column must
    update it)."""
    names = tuple(c.name for c in SPANS.columns)
    if sorted(names) != sorted(SPAN_COLUMNS):
        raise RuntimeError(f"turnscope: SPAN_COLUMNS {SPAN_COLUMNS} differ from spans {names}")


def _json_text(value: Any) -> str:
    try:
        return _JSON_DUMPS(value)
    except (TypeError, ValueError, RecursionError):
        # data changed after it was made safe (a user mutating a span's dict after it ended):
        # store it described rather than failing the whole batch
        from turnscope.exporter.safe import jsonable

        return _JSON_DUMPS(jsonable(value)[0])


def sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DateTime text (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC)."""
    if value.tzinfo is not None and value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    text = value.isoformat(" ")  # faster than strftime
    if value.microsecond:
        return text[:26]
    return text[:19] + ".000000"


_JSON_DUMPS = jsontext.dumps


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# A run that continues a recorded response (``previous_response_id``) and was given no key
# of its own joins the conversation of the run that produced that response. Run after the
# upsert, in the same transaction, one run at a time in start order: a chain recorded in one
# batch resolves link by link, and readers never see the run without its conversation.
_JOIN_CHAIN = (
    "UPDATE runs SET conversation_id = COALESCE(("
    "SELECT p.conversation_id FROM runs p WHERE p.last_response_id = runs.previous_response_id"
    " AND p.trace_id <> runs.trace_id AND p.conversation_id IS NOT NULL LIMIT 1"
    "), conversation_id) WHERE trace_id = ? AND previous_response_id IS NOT NULL"
    " AND conversation_id = ?"
)


def chained_runs(runs: list[RunRecord]) -> list[str]:
    """Trace ids of the runs whose conversation comes from a ``previous_response_id`` chain
    (keyed by their own trace id until resolved), oldest first."""
    found = [r for r in runs if r.previous_response_id and r.conversation_id == r.trace_id]
    found.sort(key=lambda r: (r.started_at is None, r.started_at or 0))
    return list(dict.fromkeys(r.trace_id for r in found))


@dataclass(slots=True)
class PreparedBatch:
    """What ``DbSink.commit`` writes: span and run rows ready for the driver."""

    spans: Any
    runs: Any
    # runs continuing a recorded response: their conversation is resolved after the upsert
    chained: list[str] = field(default_factory=list)

    def extend(self, later: PreparedBatch) -> None:
        """Append a later batch's rows (written in order, so its records win)."""
        for mine, theirs in ((self.spans, later.spans), (self.runs, later.runs)):
            if isinstance(mine, SqliteRows):
                mine.rows.extend(theirs.rows)
            else:
                mine.extend(theirs)
        self.chained.extend(later.chained)


class DbSink(StagedSink):
    """Writes spans and runs to SQLite or PostgreSQL from the pipeline's worker thread."""

    name = "db"

    def __init__(self, url: str, process: ProcessInfo) -> None:
        self.url = url
        self.label = redact(url)
        self.process = process
        self.engine: Engine | None = None
        self.staged = False  # PostgreSQL: spans go through COPY (see _postgres_spans)
        self._committing: Any = None  # SQLite: the pooled connection commits use

    def open(self) -> None:
        """Create the engine, migrate the schema and register this process."""
        if self.engine is not None:
            return
        _check_span_columns()
        engine = make_writer_engine(self.url)
        try:
            upgrade(engine)
            now = to_db_time(datetime.now(timezone.utc))
            with engine.begin() as conn:
                upsert(
                    conn,
                    PROCESSES,
                    [
                        {
                            "id": self.process.id,
                            "pid": self.process.pid,
                            "host": self.process.host,
                            "started_at": now,
                            "heartbeat_at": now,
                            "stopped_at": None,
                            "sdk_version": self.process.sdk_version,
                            "turnscope_version": self.process.turnscope_version,
                            "python_version": platform.python_version(),
                        }
                    ],
                    ["id"],
                )
            if engine.dialect.name == "postgresql":
                with engine.connect() as conn:
                    self.staged = bool(
                        conn.exec_driver_sql(
                            "SELECT has_database_privilege(current_database(), 'TEMP')"
                        ).scalar()
                    )
        except BaseException:
            engine.dispose()
            raise
        self.engine = engine

    @property
    def overlap_writes(self) -> bool:
        """Whether ``commit`` may run on a thread of its own while the worker goes on: on
        SQLite the statement runs without the GIL (see ``_sqlite_execute``)."""
        return self.engine is not None and self.engine.dialect.name == "sqlite"

    def write(self, batch: Batch) -> None:
        """Upsert the batch's spans and runs in one transaction."""
        self.commit(self.prepare(batch))

    def prepare(self, batch: Batch) -> PreparedBatch:
        """The batch as statement parameters: a snapshot taken on the worker thread, so the
        records may change (a later analysis) while ``commit`` runs elsewhere."""
        assert self.engine is not None
        now = datetime.now(timezone.utc)
        latest: dict[tuple[str, str], SpanRecord] = {}
        for span in batch.spans:
            latest[(span.trace_id, span.span_id)] = span
        runs = [run_row(r, now) for r in batch.runs]
        chained = chained_runs(batch.runs)
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            spans = [_span_values(s, _sqlite_times, int, SQLITE_NULL) for s in latest.values()]
            return PreparedBatch(
                SqliteRows(_SQLITE_SPANS_HEAD, _SQLITE_SPANS_TAIL, spans),
                _sqlite_rows(RUNS, runs, ("trace_id",)),
                chained,
            )
        if dialect == "postgresql":
            spans = [_span_values(s, _db_times, bool) for s in latest.values()]
            return PreparedBatch(spans, runs, chained)
        spans = [span_row(s) for s in latest.values()]  # pragma: no cover
        return PreparedBatch(spans, runs, chained)  # pragma: no cover

    def commit(self, prepared: PreparedBatch) -> None:
        """Write a prepared batch in one transaction (safe to call from another thread)."""
        assert self.engine is not None
        if self.engine.dialect.name == "sqlite":
            self._sqlite_commit(prepared)
            return
        with self.engine.begin() as conn:
            dialect = conn.dialect.name
            if dialect == "postgresql":
                if prepared.spans:
                    _postgres_spans(conn, prepared.spans, self.staged)
                upsert(conn, RUNS, prepared.runs, ["trace_id"])
            else:  # pragma: no cover - other databases
                upsert(conn, SPANS, prepared.spans, ["trace_id", "span_id"])
                upsert(conn, RUNS, prepared.runs, ["trace_id"])
            for trace_id in prepared.chained:
                conn.exec_driver_sql(_JOIN_CHAIN.replace("?", "%(t)s"), {"t": trace_id})

    def _sqlite_commit(self, prepared: PreparedBatch) -> None:
        """One transaction on a connection kept for commits, through the driver itself: the
        driver caches the multi-row statements per connection, and commits taking turns
        over the pool's connections kept a copy in each; SQLAlchemy's transaction around it
        cost the committer thread GIL hand-backs (figures in benchmarks/README.md). After a
        failure the connection is dropped and the next commit starts on a fresh one."""
        assert self.engine is not None
        pooled = self._committing
        if pooled is None:
            pooled = self._committing = self.engine.raw_connection()
        raw = pooled.driver_connection
        try:
            raw.execute("BEGIN IMMEDIATE")
            _sqlite_execute(raw, prepared.spans)
            _sqlite_execute(raw, prepared.runs)
            for trace_id in prepared.chained:
                raw.execute(_JOIN_CHAIN, (trace_id, trace_id))
            raw.execute("COMMIT")
        except BaseException:
            self._committing = None
            try:
                pooled.invalidate()  # rolls back and closes; the pool opens a new one
            except Exception:
                pass
            raise

    def heartbeat(self) -> None:
        """Refresh this process's heartbeat."""
        if self.engine is None:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(PROCESSES)
                .where(PROCESSES.c.id == self.process.id)
                .values(heartbeat_at=to_db_time(datetime.now(timezone.utc)))
            )

    def load_many(self, trace_ids: list[str]) -> dict[str, tuple[TraceInfo, list[SpanRecord]]]:
        """What is stored for these traces (ones the worker evicted, or that another process
        started): one query for the runs, one for the spans of those that exist."""
        if self.engine is None or not trace_ids:
            return {}
        if self.engine.dialect.name == "sqlite":
            trace_ids = self._sqlite_existing(trace_ids)
            if not trace_ids:
                return {}
        out: dict[str, tuple[TraceInfo, list[SpanRecord]]] = {}
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            for chunk in _chunks(trace_ids, 500):
                runs = conn.execute(select(RUNS).where(RUNS.c.trace_id.in_(chunk))).all()
                if not runs:
                    continue
                found = [r.trace_id for r in runs]
                for run in runs:
                    out[run.trace_id] = (trace_info_from_row(run), [])
                rows = conn.execute(select(SPANS).where(SPANS.c.trace_id.in_(found))).all()
                for row in rows:
                    out[row.trace_id][1].append(span_from_row(row))
        return out

    def _sqlite_existing(self, trace_ids: list[str]) -> list[str]:
        """Which of these traces are stored: one bare statement on a pooled connection (every
        batch asks about its new traces, nearly always none; SQLAlchemy's deferred transaction
        around it cost three round trips, each a GIL hand-back while a commit runs)."""
        assert self.engine is not None
        raw = self.engine.raw_connection()
        try:
            found: list[str] = []
            for chunk in _chunks(trace_ids, 500):
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT trace_id FROM runs WHERE trace_id IN ({marks})"
                found.extend(row[0] for row in raw.execute(sql, chunk))  # type: ignore[attr-defined]
            return found
        finally:
            raw.close()

    def close(self, timeout: float | None = None) -> None:
        """Mark this process stopped and release connections."""
        if self.engine is None:
            return
        try:
            if self._committing is not None:
                self._committing.close()
                self._committing = None
            with self.engine.begin() as conn:
                conn.execute(
                    update(PROCESSES)
                    .where(PROCESSES.c.id == self.process.id)
                    .values(stopped_at=to_db_time(datetime.now(timezone.utc)))
                )
        finally:
            self.engine.dispose()
            self.engine = None
