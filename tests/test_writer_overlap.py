"""The SQLite write path: multi-row statements, committed on a thread of their own while the
worker prepares the next batch (how ingest uses the second core)."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest
from agents import agent_span, function_span, set_trace_processors, trace
from sqlalchemy import event

import turnscope.store.writer as writer_module
from turnscope.exporter.processor import TurnscopeProcessor
from turnscope.store.queries import Store


def produce(traces: int, calls: int) -> None:
    """Real SDK traces: an agent span and ``calls`` tool calls each."""
    for i in range(traces):
        with trace(f"wf-{i}"), agent_span(name="Agent", tools=["lookup"]):
            for j in range(calls):
                with function_span(name="lookup", input=f'{{"q": "{i}-{j}"}}') as span:
                    span.span_data.output = f"result {i}-{j}"


def paused(db_url: str, **kwargs: Any) -> TurnscopeProcessor:
    """A processor whose worker sleeps until flushed, so events pile up into full batches.

    The tests register it by hand, only while they produce: what they look at is what the
    flushes and the shutdown do afterwards, each at a chosen moment."""
    processor = TurnscopeProcessor(db_url, flush_interval=3600, **kwargs)
    assert processor.flush(30)  # the database is open and migrated
    processor._wake_at = 10**12
    return processor


def test_thousands_of_spans_take_a_handful_of_statements(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement per 1,024 spans: per-row statements on the committer thread would each
    wait for the GIL (an executemany there crawled at ~1 ms per row)."""
    statements: list[str] = []
    real = writer_module.make_writer_engine

    def traced(url: str) -> Any:
        engine = real(url)

        @event.listens_for(engine, "connect")
        def _trace(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.set_trace_callback(lambda sql: statements.append(sql[:40]))

        return engine

    monkeypatch.setattr(writer_module, "make_writer_engine", traced)
    processor = paused(db_url)
    set_trace_processors([processor])
    try:
        produce(30, 100)  # 3,030 spans, 6,120 events: two batches
    finally:
        set_trace_processors([])
    assert processor.flush(60)
    processor.shutdown(30)
    inserts = [s for s in statements if s.startswith("INSERT INTO spans")]
    assert 2 <= len(inserts) <= 8, inserts
    assert Store(db_url).count_runs() == 30
    assert processor.stats()["written"] == 30 * 101


def test_the_worker_goes_on_while_a_commit_runs(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the first batch's commit is held up, the worker already processes the next
    batches, gathered into the next commit; the flush answers only once all are written."""
    gate, entered = threading.Event(), threading.Event()
    commit = writer_module.DbSink.commit
    commits: list[int] = []

    def held(self: Any, prepared: Any) -> None:
        commits.append(len(prepared.spans.rows))
        if len(commits) == 1:
            entered.set()
            gate.wait(30)
        commit(self, prepared)

    monkeypatch.setattr(writer_module.DbSink, "commit", held)
    processor = paused(db_url)
    pipeline = processor._pipeline
    pipeline.max_batch_size = 40
    set_trace_processors([processor])
    try:
        produce(4, 20)  # 84 spans, 176 events: five batches
    finally:
        set_trace_processors([])
    flushed: list[bool] = []
    flusher = threading.Thread(target=lambda: flushed.append(processor.flush(60)))
    flusher.start()
    try:
        assert entered.wait(30)
        delivery = pipeline.deliveries[0]

        def gathered_all() -> bool:
            # every later batch delivered: all four trace ends wait in the gathered rows (the
            # first batch, held in its commit, holds none); polled, so a loaded machine only
            # makes it slower
            ready = delivery.ready
            return ready is not None and len(ready[1].ended_traces) == 4

        deadline = time.monotonic() + 30
        while not gathered_all() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pipeline.processed == 176  # every batch, with the first still uncommitted
        assert gathered_all()
        assert not flushed and processor.stats()["written"] < 84
    finally:
        gate.set()
        flusher.join(60)
    assert flushed == [True]
    assert processor.stats()["written"] == 84
    processor.shutdown(30)
    assert len(commits) == 2  # what came while the first commit was held went in one more
    assert Store(db_url).count_runs() == 4


def test_statements_come_in_few_sizes_and_padding_changes_nothing(tmp_path: Any) -> None:
    """Whatever the batch sizes, at most eleven distinct statements per table (the driver
    caches prepared statements, ~2 MB per 1,024 rows); the padding rows repeat a row, so
    what is stored is exactly what was written."""
    import sqlite3

    from turnscope.store.engine import make_writer_engine, upgrade

    path = tmp_path / "sizes.db"
    upgrade(make_writer_engine(f"sqlite:///{path}"))
    conn = sqlite3.connect(path, isolation_level=None)
    seen: set[int] = set()
    # the callback sees the SQL with the values filled in: count each statement's rows
    conn.set_trace_callback(
        lambda sql: seen.add(sql.count("), (") + 1) if sql.startswith("INSERT") else None
    )
    columns = writer_module.SPAN_COLUMNS
    written = []
    for size in range(1, 1400, 13):
        values = {"trace_id": f"trace_{size}", "kind": "function", "status": "ok", "truncated": 0}
        rows = [
            tuple(
                f"span_{i}" if c == "span_id" else i if c == "seq" else values.get(c)
                for c in columns
            )
            for i in range(size)
        ]
        written.extend(rows)
        writer_module._sqlite_execute(
            conn,
            writer_module.SqliteRows(
                writer_module._SQLITE_SPANS_HEAD, writer_module._SQLITE_SPANS_TAIL, rows
            ),
        )
    assert 1024 in seen and seen <= {1 << k for k in range(11)}, sorted(seen)  # 1, 2, ... 1024
    stored = conn.execute(f"SELECT {', '.join(columns)} FROM spans").fetchall()
    assert sorted(stored, key=repr) == sorted(written, key=repr)


def test_batches_gathered_behind_a_failed_commit_do_not_overtake_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held commit fails: it and everything gathered behind it are retried in order, so
    a span's ended record (a later batch) is never overwritten by its running one."""
    from sqlalchemy.exc import OperationalError

    gate, entered = threading.Event(), threading.Event()
    commit = writer_module.DbSink.commit
    calls = [0]

    def fails_once(self: Any, prepared: Any) -> None:
        calls[0] += 1
        if calls[0] == 1:
            entered.set()
            gate.wait(30)
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        commit(self, prepared)

    monkeypatch.setattr(writer_module.DbSink, "commit", fails_once)
    processor = paused(db_url)
    processor._pipeline.max_batch_size = 7  # spans start in one batch and end in another
    set_trace_processors([processor])
    try:
        produce(3, 10)
    finally:
        set_trace_processors([])
    flusher = threading.Thread(target=processor.flush, args=(60,))
    flusher.start()
    assert entered.wait(30)
    time.sleep(0.2)  # the worker gathers the other batches behind the held commit
    gate.set()
    flusher.join(60)
    deadline = time.monotonic() + 30
    while processor.stats()["written"] < 33 and time.monotonic() < deadline:
        processor.flush(5)  # the retry waits for its backoff
        time.sleep(0.05)
    stats = processor.stats()
    processor.shutdown(30)
    assert stats["written"] == 33 and stats["sinks"]["db"]["failures"] == 0, stats
    store = Store(db_url)
    try:
        spans = [s for r in store.list_runs(limit=10) for s in store.spans(r["trace_id"])]
    finally:
        store.close()
    assert len(spans) == 33
    assert all(s.ended_at is not None for s in spans), [s.name for s in spans if not s.ended_at]


def test_missing_values_are_stored_as_sql_null(db_url: str, make_recorder: Any) -> None:
    """SQLite rows bind a NaN for a missing value (cheaper for the driver than None): every
    one of them must land as a real NULL, never as a number."""
    with make_recorder(db_url, flush_interval=None, shutdown_timeout=30) as processor:
        # no error, model or usage anywhere; the agent span has no parent, no tool name
        with trace("nulls"), agent_span(name="Agent"), function_span(name="lookup", input="{}"):
            pass
        assert processor.flush(30)
    path = db_url.removeprefix("sqlite:///")
    nullable = [c for c in writer_module.SPAN_COLUMNS if c not in ("trace_id", "span_id", "seq")]
    rows = sqlite3.connect(path).execute(
        f"SELECT kind, {', '.join(f'typeof({c})' for c in nullable)} FROM spans ORDER BY kind"
    )
    types = {row[0]: dict(zip(nullable, row[1:], strict=True)) for row in rows}
    assert set(types) == {"agent", "function"}
    missing = ("error_message", "error_data", "exception", "model", "input_tokens")
    for columns in types.values():
        assert {c: columns[c] for c in missing} == dict.fromkeys(missing, "null")
        assert columns["output_tokens"] == "null" and columns["duration_ms"] == "real"
    assert types["agent"]["parent_id"] == "null" and types["function"]["parent_id"] == "text"
    assert types["agent"]["tool_name"] == "null" and types["function"]["tool_name"] == "text"
