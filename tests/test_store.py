"""The store: Alembic migrations, SQLite WAL with several writer processes, PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from turnscope.demo.runner import CASES, run_demo
from turnscope.store.engine import (
    current_revision,
    head_revision,
    make_writer_engine,
    upgrade,
)
from turnscope.store.queries import Store


def test_upgrade_from_the_first_schema_keeps_data(db_url: str) -> None:
    engine = make_writer_engine(db_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    started = datetime(2026, 11, 1, 12, 0, 0)
    with engine.begin() as conn:  # a run written by the first schema
        conn.execute(
            text(
                "insert into runs (trace_id, workflow, status, category, turns, span_count, "
                "error_count, fatal_error_count, recovered_error_count, tool_calls, model_calls, "
                "input_tokens, output_tokens, started_at, trace_ended, truncated, dropped_spans) "
                "values ('trace_old', 'Legacy', 'failed', 'max_turns_exceeded', 3, 5, 1, 1, 0, "
                "2, 3, 10, 20, :started, 1, 0, 0)"
            ),
            {"started": started},
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    store = Store(db_url)
    run = store.get_run("trace_old")
    assert run is not None
    assert (run["workflow"], run["status"], run["category"]) == (
        "Legacy",
        "failed",
        "max_turns_exceeded",
    )
    assert run["started_at"] == "2026-11-01T12:00:00+00:00"


def test_upgrade_from_0004_reads_runs_without_reason_or_warnings(db_url: str) -> None:
    """A run written before 0005 reads back with no reason and no warnings, and the writer
    fills the new columns when it writes the run again."""
    from diagnosed import RUNS, write_diagnosed

    engine = make_writer_engine(db_url)
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "insert into runs (trace_id, workflow, status, category, turns, span_count, "
                "error_count, fatal_error_count, recovered_error_count, tool_calls, model_calls, "
                "input_tokens, output_tokens, started_at, trace_ended, truncated, dropped_spans) "
                "values (:id, 'Legacy', 'failed', 'model_error', 1, 2, 1, 1, 0, 0, 1, 10, 20, "
                ":started, 1, 0, 0)"
            ),
            {"id": RUNS[0].trace_id, "started": datetime(2026, 11, 1, 12, 0, 0)},
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    store = Store(db_url)
    try:
        run = store.get_run(RUNS[0].trace_id)
        assert run is not None
        assert (run["category"], run["reason"], run["warnings"], run["warning_count"]) == (
            "model_error",
            None,
            [],
            0,
        )
        listed = store.list_runs()
        assert (listed[0]["reason"], listed[0]["warning_count"]) == (None, 0)
        assert "warnings" not in listed[0]  # lists carry the count, not the JSON
        write_diagnosed(db_url, [RUNS[0]])  # the same run, analysed again
        run = store.get_run(RUNS[0].trace_id)
        assert (run["reason"], run["warning_count"]) == ("rate_limited", 0)
    finally:
        store.close()


def test_readers_refuse_an_older_schema_in_one_line(db_url: str) -> None:
    """Readers never migrate: a database no writer has upgraded yet is a clear message, not
    a missing-column error in the middle of a page."""
    from turnscope.store.engine import READER_REVISION, StoreError

    assert head_revision() == READER_REVISION
    upgrade(make_writer_engine(db_url), "0004")
    with pytest.raises(StoreError, match=r"older turnscope schema \(0004.*open it once for"):
        Store(db_url)


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from turnscope.store.models import Base, include_object

    engine = make_writer_engine(db_url)
    upgrade(engine, head_revision())  # through every migration (a new file skips them)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def _sqlite_schema(path: Path) -> dict[str, Any]:
    """Tables' columns and indexes (columns, uniqueness, partial condition) of a file."""
    import re
    import sqlite3

    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        schema: dict[str, Any] = {}
        for table in names:
            columns = sorted(r[1:] for r in conn.execute(f"pragma table_info('{table}')"))
            indexes = {}
            for _, name, unique, _origin, _partial in conn.execute(f"pragma index_list('{table}')"):
                cols = [r[2] for r in conn.execute(f"pragma index_info('{name}')")]
                sql = conn.execute("select sql from sqlite_master where name=?", (name,)).fetchone()
                where = re.sub(r"[\s\"()]", "", (sql[0] or "").partition(" WHERE ")[2])
                indexes[name if not name.startswith("sqlite_") else "pk"] = (cols, unique, where)
            schema[table] = (columns, indexes)
    return schema


def test_a_new_sqlite_file_gets_the_schema_the_migrations_give(tmp_path: Path) -> None:
    """A new file is made from the models and stamped, without Alembic: the same tables,
    columns, defaults, indexes and revision as running every migration."""
    from turnscope.store.engine import HEAD_REVISION

    assert head_revision() == HEAD_REVISION
    made, migrated = tmp_path / "made.db", tmp_path / "migrated.db"
    engine = make_writer_engine(f"sqlite:///{made}")
    upgrade(engine)
    upgrade(make_writer_engine(f"sqlite:///{migrated}"), head_revision())
    assert current_revision(engine) == HEAD_REVISION
    assert _sqlite_schema(made) == _sqlite_schema(migrated)
    assert len(_sqlite_schema(made)["runs"][1]) > 10  # the comparison saw the indexes


def test_opening_a_new_or_current_sqlite_file_never_loads_alembic(tmp_path: Path) -> None:
    """Alembic (and its migration scripts) load only when there is something to migrate."""
    script = textwrap.dedent(
        f"""
        import sys
        from turnscope.store.engine import make_writer_engine, upgrade
        for _ in range(2):  # a new file, then the same file at its head
            upgrade(make_writer_engine({f"sqlite:///{tmp_path / 'new.db'}"!r}))
        print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_sqlite_is_in_wal_mode_with_a_busy_timeout(recorder: object, db_path: Path) -> None:
    from agents import Agent, Runner

    from turnscope.demo.model import DemoModel
    from turnscope.demo.model import text as say

    Runner.run_sync(Agent(name="A", model=DemoModel([[say("hi")]])), "hi")
    recorder.flush()  # type: ignore[attr-defined]
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_refuses_a_database_newer_than_itself(db_url: str) -> None:
    from turnscope.store.engine import StoreError

    engine = make_writer_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("update alembic_version set version_num = '9999'"))
    with pytest.raises(StoreError, match="newer than this turnscope"):
        upgrade(engine)


# a child process: no fixtures there, it registers its processor itself
WRITER = textwrap.dedent(
    """
    import sys
    from agents import Agent, Runner, RunConfig, set_trace_processors, function_tool
    from turnscope.exporter.processor import TurnscopeProcessor
    from turnscope.demo.model import DemoModel, call, text

    @function_tool
    def ping(n: int) -> str:
        return "pong"

    processor = TurnscopeProcessor(sys.argv[1], flush_interval=0.01)
    set_trace_processors([processor])
    for i in range(int(sys.argv[3])):
        agent = Agent(name="W" + sys.argv[2], tools=[ping],
                      model=DemoModel([[call("ping", {"n": i})], [text("done")]]))
        Runner.run_sync(agent, "go", run_config=RunConfig(workflow_name="proc" + sys.argv[2]))
    processor.shutdown(30)
    stats = processor.stats()
    assert stats["failed"] == 0 and stats["dropped"] == 0, stats
    """
)


def test_four_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(db), str(n), "25"]) for n in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    store = Store(str(db))
    assert store.count_runs() == 100
    from turnscope.store.queries import RunFilter

    for n in range(4):
        runs = store.list_runs(RunFilter(workflow=f"proc{n}"), limit=100)
        assert len(runs) == 25
        assert {r["status"] for r in runs} == {"succeeded"}
        assert {r["turns"] for r in runs} == {2}


@pytest.mark.postgres
def test_postgres_records_the_demo_like_sqlite(pg_url: str) -> None:
    cases = [c for c in CASES if c.title in ("search loop hits max_turns", "flaky tool recovered")]
    summary = run_demo(pg_url, progress=False, cases=cases)
    assert summary.ok, [r.mismatches() for r in summary.results]
    store = Store(pg_url)
    assert store.count_runs() == 2
    loop = next(r for r in summary.results if r.case.title == "search loop hits max_turns")
    run = store.get_run(loop.trace_id)
    assert run is not None and run["category"] == "max_turns_exceeded"
    spans = store.spans(loop.trace_id)
    assert [s.turn for s in spans if s.kind == "function"] == [1, 2, 3]


def _stored_spans(url: str) -> list[object]:
    """Every span of every run, as the reader sees it (but ``seq``: each processor numbers
    arrivals with the same process-wide counter)."""
    store = Store(url)
    try:
        runs = sorted(store.list_runs(limit=100), key=lambda r: r["trace_id"])
        return [s.copy(seq=0) for r in runs for s in store.spans(r["trace_id"])]
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_stores_spans_like_sqlite_with_and_without_temp_tables(
    pg: object, pg_url: str, db_url: str
) -> None:
    """Spans reach PostgreSQL through COPY into a temporary table when the role may create
    one, and through executemany when an administrator revoked TEMP; both store exactly
    what SQLite stores (the same runs, recorded by three processors at once)."""
    import asyncio
    import os
    import uuid

    import psycopg
    from agents import set_trace_processors
    from sqlalchemy.engine import make_url

    from turnscope.exporter.processor import TurnscopeProcessor
    from turnscope.store.writer import DbSink, ProcessInfo

    database = make_url(pg_url).database
    role = f"notemp_{os.getpid()}"
    admin = f"host=127.0.0.1 port={pg.port} user=postgres dbname={database}"  # type: ignore[attr-defined]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
    limited = str(make_url(pg_url).set(username=role))
    staged = pg.create_database(f"{database}_staged")  # type: ignore[attr-defined]

    def stages(url: str) -> bool:
        sink = DbSink(url, ProcessInfo("p", 1, "h", None, "0"))
        sink.open()
        try:
            return sink.staged
        finally:
            sink.close()

    assert stages(staged) and not stages(limited)
    titles = ("flaky tool recovered", "tool raises, no handler", "search loop hits max_turns")
    # set up by hand: three processors at once, one per database
    processors = [TurnscopeProcessor(u, flush_interval=0.05) for u in (db_url, staged, limited)]
    set_trace_processors(processors)  # type: ignore[arg-type]
    try:
        for case in (c for c in CASES if c.title in titles):
            try:
                asyncio.run(case.run(f"trace_{uuid.uuid4().hex}"))
            except Exception:
                pass  # failing runs are the point
    finally:
        set_trace_processors([])
        for processor in processors:
            processor.shutdown(10)
    expected = _stored_spans(db_url)
    assert len(expected) >= 15 and any(s.error_message for s in expected)
    assert _stored_spans(staged) == expected
    assert _stored_spans(limited) == expected


def _check_diagnosed(url: str) -> None:
    """What ``diagnosed.RUNS`` must read back as: reason, warnings, counts and filters."""
    from diagnosed import BY_ID, RUNS

    from turnscope.store.convert import verdict_from_row
    from turnscope.store.models import Run
    from turnscope.store.queries import RunFilter

    store = Store(url)
    try:
        for record in RUNS:
            run = store.get_run(record.trace_id)
            assert run is not None
            assert run["reason"] == record.verdict.reason
            assert run["warnings"] == [w.to_dict() for w in record.verdict.warnings]
            assert run["warning_count"] == len(record.verdict.warnings)
        with store.engine.connect() as conn:
            rows = conn.execute(Run.__table__.select()).all()
        assert {r.trace_id: verdict_from_row(r) for r in rows} == {
            k: v.verdict for k, v in BY_ID.items()
        }

        def ids(**flt: object) -> set[str]:
            return {r["trace_id"][-2:] for r in store.list_runs(RunFilter(**flt), limit=100)}

        assert ids(reason="rate_limited") == {"01", "02"}
        assert ids(reason=["rate_limited", "connect"]) == {"01", "02", "05"}
        assert ids(with_warnings=True) == {"06", "07"}
        assert ids(with_warnings=True, status="failed") == {"07"}
        assert ids(category="model_error", failing_reason="") == {"04"}
        assert ids(reason="auth") == set()
        assert store.count_runs(RunFilter(with_warnings=True)) == 2
        groups = {(g["category"], g["reason"]): g["runs"] for g in store.failure_groups()["groups"]}
        assert groups == {
            ("model_error", "rate_limited"): 2,
            ("model_error", "quota_exceeded"): 1,
            ("model_error", None): 1,
            ("mcp_error", "connect"): 1,
            ("tool_error", None): 1,
        }
    finally:
        store.close()


def test_reason_and_warnings_round_trip_on_sqlite(db_url: str) -> None:
    from diagnosed import write_diagnosed

    write_diagnosed(db_url)  # SQLite: the raw multi-row upsert
    _check_diagnosed(db_url)


@pytest.mark.postgres
def test_reason_and_warnings_round_trip_on_postgres(pg_url: str) -> None:
    from diagnosed import write_diagnosed

    write_diagnosed(pg_url)  # PostgreSQL: SQLAlchemy Core's upsert
    _check_diagnosed(pg_url)
    write_diagnosed(pg_url)  # written again: the upsert replaces, nothing doubles
    _check_diagnosed(pg_url)


@pytest.mark.postgres
def test_postgres_reader_is_read_only(pg_url: str) -> None:
    from sqlalchemy.exc import DBAPIError

    upgrade(make_writer_engine(pg_url))
    store = Store(pg_url)
    with pytest.raises(DBAPIError, match="read-only"), store.engine.begin() as conn:
        conn.execute(text("delete from runs"))


def test_sqlite_reader_is_read_only(db_url: str) -> None:
    from sqlalchemy.exc import OperationalError

    upgrade(make_writer_engine(db_url))
    store = Store(db_url)
    with pytest.raises(OperationalError, match="readonly"), store.engine.begin() as conn:
        conn.execute(text("delete from runs"))


def test_timestamps_are_stored_exactly(recorder: object, db_url: str) -> None:
    from agents import Agent, Runner

    from turnscope.demo.model import DemoModel
    from turnscope.demo.model import text as say

    Runner.run_sync(Agent(name="A", model=DemoModel([[say("hi")]])), "hi")
    recorder.flush()  # type: ignore[attr-defined]
    store = Store(db_url)
    run = store.list_runs()[0]
    for span in store.spans(run["trace_id"]):
        assert span.started_at is not None and span.started_at.tzinfo == timezone.utc
        assert span.ended_at is not None and span.ended_at >= span.started_at


@pytest.mark.parametrize("second", ["same processor, run evicted", "another processor"])
def test_a_stored_run_that_continues_is_read_back_first(db_url: str, second: str) -> None:
    """A trace that goes on after its spans left memory (evicted, or written by another
    process) is read back from the database before its summary is recomputed: the run
    counts the spans of both parts."""
    from agents import function_span, set_trace_processors, trace

    from turnscope.exporter.processor import TurnscopeProcessor

    def part(n: int) -> None:
        with trace("Resumed", trace_id="trace_" + "ab" * 16):
            for i in range(n):
                with function_span(name="lookup", input="{}") as span:
                    span.span_data.output = f"part result {i}"

    # set up by hand: a second processor takes over from the first in the middle
    first = TurnscopeProcessor(db_url, flush_interval=0.05)
    first._pipeline.linger = 0.0  # ended runs leave memory at the next housekeeping
    set_trace_processors([first])
    try:
        part(3)
        assert first.flush(30)
        assert first.flush(30)  # the first flush's housekeeping evicted the ended run
        assert first.stats()["traces_in_memory"] == 0
        if second == "another processor":
            set_trace_processors([])
            first.shutdown(30)
            other = TurnscopeProcessor(db_url, flush_interval=0.05)
            set_trace_processors([other])
        else:
            other = first
        part(2)
        assert other.flush(30)
    finally:
        set_trace_processors([])
        first.shutdown(30)
        other.shutdown(30)
    store = Store(db_url)
    try:
        run = store.get_run("trace_" + "ab" * 16)
        spans = store.spans("trace_" + "ab" * 16)
    finally:
        store.close()
    assert run is not None and len(spans) == 5
    assert run["span_count"] == 5 and run["tool_calls"] == 5, run
