"""Many writers, one database: agent processes started together against a fresh SQLite file
or PostgreSQL database, one of them killed mid-stream; and ``turnscope prune`` while they
write. The agent processes are real: ``tests/support/writers.py`` forks them from one
interpreter that imported the SDK (as a prefork server does), each with its own processor
and the real ``Runner`` with the project's fake model."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from support.writers import expected, one_run, trace_id

from turnscope.store.engine import (
    PG_MIGRATION_LOCK,
    StoreError,
    current_revision,
    head_revision,
    make_writer_engine,
    sqlite_path,
    upgrade,
)
from turnscope.store.models import Run, SpanRow
from turnscope.store.queries import Store

WRITERS = Path(__file__).parent / "support" / "writers.py"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, db_url: str) -> str:
    """A fresh database: an SQLite file, or a database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return db_url
    return str(request.getfixturevalue("pg_url"))


class Writers:
    """``support/writers.py`` running: its output lines as they come."""

    def __init__(self, url: str, results: Path, *args: str) -> None:
        self.results = results
        results.mkdir()
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITERS), url, str(results), *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # end of output

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 300) -> list[str]:
        """The first ``count`` lines starting with ``prefix`` (reading on as needed)."""
        deadline = time.monotonic() + timeout
        while len([s for s in self.seen if s.startswith(prefix)]) < count:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line, f"the writers ended before {count} {prefix!r} lines: {self.seen}"
            self.seen.append(line)
        return [s for s in self.seen if s.startswith(prefix)][:count]

    def finish(self, timeout: float = 600) -> list[dict[str, Any]]:
        """Wait for the end; every writer's result (stats and warnings logged)."""
        assert self.proc.wait(timeout) == 0, self.seen
        while (line := self.lines.get(timeout=30)) != "":
            self.seen.append(line)
        return [json.loads(p.read_text()) for p in sorted(self.results.glob("*.json"))]

    def kill(self) -> None:
        """Kill the launcher and the writers it forked (a failed test's clean-up)."""
        for line in self.seen:
            if line.startswith("pid "):
                try:
                    os.kill(int(line.split()[2]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.kill()
        self.proc.wait(30)


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[Any]:
    """``writers(url, *args)`` starts ``support/writers.py``; killed if still running."""
    started: list[Writers] = []

    def start(url: str, *args: str) -> Writers:
        started.append(Writers(url, tmp_path / f"results{len(started)}", *args))
        return started[-1]

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.kill()


def stored(url: str) -> dict[str, dict[str, Any]]:
    """Every run as a reader sees it (liveness included), by trace id."""
    store = Store(url)
    try:
        return {r["trace_id"]: r for r in store.list_runs(limit=100_000)}
    finally:
        store.close()


def half_written(url: str) -> list[tuple[str, int, int]]:
    """Runs whose stored spans are not the spans their row counts, and spans without a
    run: (trace id, spans counted, spans stored)."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            counted = dict(conn.execute(select(Run.trace_id, Run.span_count)).all())
            rows = conn.execute(
                select(SpanRow.trace_id, func.count()).group_by(SpanRow.trace_id)
            ).all()
    finally:
        store.close()
    have = dict(rows)
    return [
        (t, counted.get(t, -1), have.get(t, 0))
        for t in set(counted) | set(have)
        if counted.get(t, -1) != have.get(t, 0)
    ]


def check_verdicts(runs: dict[str, dict[str, Any]], process: int, count: int) -> None:
    """Runs 0..count-1 of ``process`` stored with the verdict their scenario gets."""
    wrong = {}
    for i in range(count):
        run = runs.get(trace_id(process, i))
        got = (run["status"], run["category"]) if run else None
        if got != expected(i):
            wrong[trace_id(process, i)] = (got, expected(i))
    assert not wrong, f"{len(wrong)} runs of process {process} wrong: {list(wrong.items())[:5]}"


# -- schema migrations ------------------------------------------------------------------------


def test_a_migration_waits_for_another_process_holding_the_lock(url: str) -> None:
    """What keeps processes opening a fresh database together apart: while another process
    holds the migration lock (PostgreSQL's advisory lock, the file lock beside an SQLite
    file), ``upgrade`` waits, then finds the schema to create."""
    engine = make_writer_engine(url)
    release: Any
    if engine.dialect.name == "postgresql":
        import psycopg

        holder = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
        holder.execute("SELECT pg_advisory_lock(%s)", (PG_MIGRATION_LOCK,))
        release = holder.close
    else:
        import fcntl

        path = sqlite_path(url)
        assert path is not None
        handle = open(path.with_name(path.name + ".migrate-lock"), "a+b")  # noqa: SIM115
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        release = handle.close
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade(engine)
        except BaseException as exc:
            errors.append(exc)

    migrating = threading.Thread(target=migrate)
    migrating.start()
    try:
        migrating.join(0.8)
        assert migrating.is_alive() and current_revision(engine) is None
    finally:
        release()
    migrating.join(60)
    assert not errors and current_revision(engine) == head_revision()
    engine.dispose()


# -- many writers -----------------------------------------------------------------------------


def test_eight_processes_write_one_fresh_database_and_a_killed_one_leaves_incomplete_runs(
    url: str, writers: Any
) -> None:
    """8 processes x 250 runs (successes, recovered errors, failures, streamed and not) and a
    ninth that is killed (SIGKILL) mid-stream with three runs in flight, all started at once
    against a database no process has opened yet. Every run of the eight is stored once,
    whole, with its verdict, and no writer had to retry anything; the killed process's
    finished runs are intact and the runs it had in flight read ``incomplete`` at once."""
    processes, runs, victim, victim_runs, hanging = 8, 250, 8, 20, 3
    w = writers(
        url,
        *("--processes", str(processes), "--runs", str(runs)),
        *("--victim-runs", str(victim_runs), "--hang", str(hanging)),
    )
    stuck = [line.split()[1] for line in w.wait_for("hang ", hanging)]
    deadline = time.monotonic() + 120
    open_tools: list[str] = []
    while len(open_tools) < hanging and time.monotonic() < deadline:
        # the victim's open tool spans are stored: it is mid-run, on record (the schema
        # may not even exist yet: the workers open the database in the background)
        time.sleep(0.05)
        try:
            store = Store(url)
        except StoreError:
            continue
        try:
            spans = {t: store.spans(t) for t in stuck}
        finally:
            store.close()
        open_tools = [
            t for t in stuck if any(s.kind == "function" and not s.ended_at for s in spans[t])
        ]
    assert len(open_tools) == hanging
    pid = next(
        int(s.split()[2]) for s in w.wait_for("pid ", processes + 1) if s.split()[1] == str(victim)
    )
    os.kill(pid, signal.SIGKILL)
    w.wait_for(f"exit {victim} ")  # reaped: its pid is gone, as a reader checks it

    now = stored(url)  # at once, while the others still write
    for t in stuck:
        assert (now[t]["status"], now[t]["category"]) == ("incomplete", "incomplete"), now[t]
        assert now[t]["failing_tool"] == "wait_forever"
    check_verdicts(now, victim, victim_runs)

    results = w.finish()
    assert sorted(r["process"] for r in results) == list(range(processes)), w.seen
    for r in results:  # nothing dropped, failed or retried (a migration race would log)
        assert (r["stats"]["dropped"], r["stats"]["failed"], r["warnings"]) == (0, 0, []), r
    final = stored(url)
    assert len(final) == processes * runs + victim_runs + hanging
    for n in range(processes):
        check_verdicts(final, n, runs)
    check_verdicts(final, victim, victim_runs)
    assert {final[t]["status"] for t in stuck} == {"incomplete"}
    assert "running" not in {r["status"] for r in final.values()}
    assert half_written(url) == []


# -- prune ------------------------------------------------------------------------------------


def record_old_runs(make_recorder: Any, url: str, process: int, count: int) -> datetime:
    """``count`` runs of the writers' scenarios recorded here, then a cutoff after them."""
    import asyncio

    from support.writers import scenario_tools

    with make_recorder(url):

        async def main() -> None:
            tools = scenario_tools()
            for i in range(count):
                await one_run(process, i, tools)

        asyncio.run(main())
    time.sleep(0.01)
    return datetime.now(timezone.utc)


def test_prune_while_processes_write_removes_only_the_old_runs(
    url: str, writers: Any, make_recorder: Any
) -> None:
    """Old runs go in many small batches while two processes write new ones: the writers
    notice nothing (no retry, no warning), every new run is stored whole with its verdict,
    every old run and its spans are gone."""
    from turnscope.store.prune import prune

    old = 40
    cutoff = record_old_runs(make_recorder, url, 100, old)
    w = writers(url, "--processes", "2", "--runs", "100")
    deadline = time.monotonic() + 600  # a loaded machine makes this slower, not red
    while sum(t.startswith(trace_id(0, 0)[:10]) for t in stored(url)) < 10:
        assert time.monotonic() < deadline and w.proc.poll() is None
        time.sleep(0.1)
    result = prune(url, cutoff, batch_spans=40)  # ~7 runs per batch: many transactions
    assert result.run_count == old and result.batches > 3
    results = w.finish()
    for r in results:
        assert (r["stats"]["dropped"], r["stats"]["failed"], r["warnings"]) == (0, 0, []), r
    final = stored(url)
    assert not [t for t in final if t.startswith(trace_id(100, 0)[:10])]
    assert len(final) == 200
    for n in range(2):
        check_verdicts(final, n, 100)
    assert half_written(url) == []  # no span of a deleted run left, no run missing spans


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``turnscope`` in-process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from turnscope.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def counts(url: str) -> tuple[int, int]:
    """(runs, spans) stored."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            runs = conn.execute(select(func.count()).select_from(Run)).scalar_one()
            spans = conn.execute(select(func.count()).select_from(SpanRow)).scalar_one()
        return runs, spans
    finally:
        store.close()


def test_prune_dry_run_keep_failed_and_a_live_writers_run(url: str, make_recorder: Any) -> None:
    """--dry-run deletes nothing and says what would go; --keep-failed keeps failed runs;
    a run still running under a live writer and runs newer than the cutoff are never
    deleted; then everything old goes, spans and all."""
    import asyncio

    from agents import Agent, RunConfig, Runner, function_tool

    from turnscope.demo.model import DemoModel, call, text

    record_old_runs(make_recorder, url, 100, 16)  # 6 of 16 fail
    entered, release = threading.Event(), threading.Event()

    @function_tool
    def wait(q: str) -> str:
        """Blocks until released."""
        entered.set()
        release.wait(60)
        return "released"

    with make_recorder(url) as processor:
        model = DemoModel([[call("wait", {"q": "x"})], [text("done")]])
        stuck = Agent(name="Stuck", tools=[wait], model=model)
        live = threading.Thread(
            target=lambda: asyncio.run(
                Runner.run(stuck, "go", run_config=RunConfig(trace_id=trace_id(101, 0)))
            ),
            daemon=True,
        )
        live.start()
        try:
            assert entered.wait(30) and processor.flush(10)
            time.sleep(0.01)
            iso = datetime.now(timezone.utc).isoformat()  # after the live run's start
            asyncio.run(one_run(103, 0))  # a run newer than the cutoff
            assert processor.flush(10)
            before = counts(url)

            code, out, err = cli("prune", "--db", url, "--older-than", iso, "--dry-run")
            assert (code, err) == (0, "")
            assert out.startswith("would delete 16 runs (") and "(dry run: nothing deleted)" in out
            assert "6 failed" in out and counts(url) == before

            code, out, _ = cli("prune", "--db", url, "--older-than", iso, "--keep-failed")
            assert code == 0 and out.startswith("deleted 10 runs ("), out
            left = stored(url)
            assert sorted(t for t in left if t.startswith(trace_id(100, 0)[:10])) == sorted(
                trace_id(100, i) for i in range(16) if expected(i)[0] == "failed"
            )

            code, out, _ = cli("prune", "--db", url, "--older-than", iso, "--vacuum")
            assert code == 0 and out.startswith("deleted 6 runs (6 failed)"), out
            assert "vacuumed" in out
            assert sorted(stored(url)) == [trace_id(101, 0), trace_id(103, 0)]
            assert stored(url)[trace_id(101, 0)]["status"] == "running"
            assert half_written(url) == []
        finally:
            release.set()
            live.join(30)


@pytest.mark.parametrize("age", ["5x", "thirty days", "-3d", ""])
def test_prune_refuses_a_bad_age_in_one_line(db_url: str, age: str) -> None:
    code, out, err = cli("prune", "--db", db_url, f"--older-than={age}")
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1, err
    assert err.startswith("turnscope: ")


def test_prune_refuses_a_missing_database(tmp_path: Path) -> None:
    code, _, err = cli("prune", "--db", str(tmp_path / "nope.db"), "--older-than", "30d")
    assert code == 2 and "no turnscope database" in err
    assert not (tmp_path / "nope.db").exists()
