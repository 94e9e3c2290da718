"""Sustained ingest: how many spans per second the worker normalises, analyses and writes.

Four measurements (the first against SQLite and, if the server binaries exist, PostgreSQL):

1. *Worker throughput.* Real SDK spans (``agents.tracing`` API: agent, generation with
   messages and usage, function calls with arguments and output) are queued while the worker
   is paused; then the worker drains the buffer and we time it until everything is committed.
   Baseline in the same run: the same spans through ``json.dumps`` of ``span.export()`` into
   a plain ``executemany`` — the least any exporter to SQLite has to do.
2. *200 concurrent runs.* 200 real ``Runner.run`` calls in parallel (fake model, tools);
   we report the buffer's high-water mark and how long after the last run ends the database
   is complete — i.e. whether the worker keeps up.
3. *Where the time goes.* The worker's stages (normalise, analyse, building the database
   rows, the rest) in microseconds per span, and what SQLite alone costs for the same rows
   with our schema (on SQLite that cost is paid on the committer thread, mostly without the
   GIL, while the worker goes on with the next batch).
4. *One long run.* 10,000 turns (20,000 spans) arriving in bursts, the worker writing as
   they come: process CPU time and the producer's wall time, with large running traces
   analysed at a bounded rate (the default) and, as the baseline, re-analysed every batch.

Run: ``.venv/bin/python benchmarks/ingest.py [--traces 1000] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    Runner,
    agent_span,
    function_span,
    function_tool,
    generation_span,
    set_trace_processors,
    trace,
)

from turnscope.demo.model import DemoModel, call, text
from turnscope.exporter.processor import TurnscopeProcessor

SPANS_PER_TRACE = 41  # 1 agent + 20 x (generation + function)


def produce(traces: int) -> None:
    """Create real SDK traces and spans (they reach whatever processors are registered)."""
    for i in range(traces):
        with trace(f"workflow-{i % 7}"), agent_span(name="Agent", tools=["lookup"]):
            for j in range(20):
                with generation_span(
                    model="gpt-4o",
                    input=[{"role": "user", "content": f"question {i}.{j} " * 4}],
                    output=[{"role": "assistant", "content": f"answer {i}.{j} " * 6}],
                    usage={"input_tokens": 120, "output_tokens": 40},
                ):
                    pass
                with function_span(name="lookup", input=json.dumps({"q": f"{i}-{j}"})) as span:
                    span.span_data.output = f"result {i}-{j}"


class Capture:
    """Keeps every ended span (baseline input)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def on_trace_start(self, trace: Any) -> None: ...
    def on_trace_end(self, trace: Any) -> None: ...
    def on_span_start(self, span: Any) -> None: ...
    def on_span_end(self, span: Any) -> None:
        self.items.append(span)

    def shutdown(self) -> None: ...
    def force_flush(self) -> None: ...


def baseline(db: Path, traces: int) -> float:
    """Spans/s for export() + json.dumps + one executemany (no analysis, no upsert)."""
    capture = Capture()
    set_trace_processors([capture])  # type: ignore[list-item]
    produce(traces)
    set_trace_processors([])
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("pragma journal_mode=wal")
    conn.execute("create table if not exists spans (id text primary key, trace text, body text)")
    started = time.perf_counter()
    rows = [(s.span_id, s.trace_id, json.dumps(s.export())) for s in capture.items]
    conn.execute("begin")
    conn.executemany("insert into spans values (?, ?, ?)", rows)
    conn.execute("commit")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def worker_throughput(db: str, traces: int) -> tuple[float, dict[str, Any]]:
    """Spans/s the worker drains from a full buffer into ``db`` (schema created beforehand)."""
    processor = TurnscopeProcessor(db, flush_interval=3600, max_queue_size=10_000_000)
    set_trace_processors([processor])
    assert processor.flush(60)  # opens the database, creates the schema
    processor._wake_at = 10**12  # the worker sleeps while we fill the buffer
    produce(traces)
    set_trace_processors([])
    spans = traces * SPANS_PER_TRACE
    full = gc.get_stats()[2]["collections"]
    started = time.perf_counter()
    assert processor.flush(600)
    elapsed = time.perf_counter() - started
    stats = processor.stats()
    # a full collection (~15% of a drain here) walks every object of the process: whether one
    # falls inside the drain depends on what the producer allocated before it
    stats["full_collections"] = gc.get_stats()[2]["collections"] - full
    processor.shutdown(60)
    assert stats["written"] >= spans, stats
    return spans / elapsed, stats


def stages(db: Path, traces: int) -> dict[str, float]:
    """Where the worker's time goes, in microseconds per span: the stages timed by wrapping
    them (a little overhead each), and the same rows re-inserted through the writer's own
    statements into a fresh turnscope schema, i.e. what SQLite itself costs with our indexes."""
    from turnscope.exporter import pipeline
    from turnscope.exporter.normalize import Normalizer
    from turnscope.store import writer
    from turnscope.store.engine import make_writer_engine, upgrade

    spent: dict[str, float] = {"normalise": 0.0, "analyse": 0.0, "database rows": 0.0}
    originals = [
        (Normalizer, "span", "normalise"),
        (pipeline, "analyze", "analyse"),
        (writer.DbSink, "prepare", "database rows"),
    ]

    def timed(fn: Any, label: str) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return run

    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in originals]
    for owner, name, label in originals:
        setattr(owner, name, timed(getattr(owner, name), label))
    try:
        processor = TurnscopeProcessor(
            f"sqlite:///{db}", flush_interval=3600, max_queue_size=10_000_000
        )
        set_trace_processors([processor])
        assert processor.flush(60)
        processor._wake_at = 10**12
        produce(traces)
        set_trace_processors([])
        started = time.perf_counter()
        assert processor.flush(600)
        total = time.perf_counter() - started
        processor.shutdown(60)
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    spans = traces * SPANS_PER_TRACE
    out = {label: value * 1e6 / spans for label, value in spent.items()}
    out["rest of the worker"] = (total - sum(spent.values())) * 1e6 / spans
    out["total"] = total * 1e6 / spans
    # SQLite alone: the stored rows again, through the same upsert, into an empty schema
    rows = sqlite3.connect(db).execute(f"select {', '.join(writer.SPAN_COLUMNS)} from spans")
    rows_list = rows.fetchall()
    fresh = db.with_name(db.stem + "-again.db")
    upgrade(make_writer_engine(f"sqlite:///{fresh}"))
    conn = sqlite3.connect(fresh, isolation_level=None)
    conn.execute("pragma synchronous=normal")
    started = time.perf_counter()
    for i in range(0, len(rows_list), 2048):
        conn.execute("begin")
        chunk = rows_list[i : i + 2048]
        writer._sqlite_execute(
            conn, writer.SqliteRows(writer._SQLITE_SPANS_HEAD, writer._SQLITE_SPANS_TAIL, chunk)
        )
        conn.execute("commit")
    out["of which SQLite itself"] = (time.perf_counter() - started) * 1e6 / len(rows_list)
    conn.close()
    return out


def concurrent_runs(db: str, runs: int = 200) -> dict[str, float]:
    """200 parallel Runner.run calls: buffer high-water mark and catch-up time."""
    processor = TurnscopeProcessor(db)
    set_trace_processors([processor])
    assert processor.flush(60)
    high = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal high
        while not done.is_set():
            high = max(high, len(processor._buffer))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()

    @function_tool
    async def lookup(q: str) -> str:
        """Look something up (yields)."""
        await asyncio.sleep(0.01)
        return "found"

    async def one(i: int) -> None:
        agent = Agent(
            name="Worker",
            tools=[lookup],
            model=DemoModel(
                [[call("lookup", {"q": f"{i}-{t}"})] for t in range(5)] + [[text("done")]]
            ),
        )
        await Runner.run(agent, f"job {i}")

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(runs)))

    started = time.perf_counter()
    asyncio.run(main())
    runs_done = time.perf_counter()
    assert processor.flush(600)
    written = time.perf_counter()
    done.set()
    watcher.join()
    stats = processor.stats()
    processor.shutdown(60)
    set_trace_processors([])
    return {
        "runs_s": runs_done - started,
        "catch_up_s": written - runs_done,
        "buffer_high_water": high,
        "spans": stats["written"],
        "dropped": stats["dropped"],
    }


def long_run(db: str, analyse_every_batch: bool, turns: int = 10_000) -> dict[str, float]:
    """A run that grows while the worker writes: CPU and wall time of the whole process."""
    processor = TurnscopeProcessor(db, flush_interval=0.1)
    if analyse_every_batch:
        processor._pipeline.analyze_always_below = 10**9
    set_trace_processors([processor])
    assert processor.flush(60)
    cpu, started = time.process_time(), time.perf_counter()
    with trace("long"), agent_span(name="Agent", tools=["lookup"]):
        for j in range(turns):
            with generation_span(model="gpt-4o", usage={"input_tokens": 12, "output_tokens": 4}):
                pass
            with function_span(name="lookup", input=json.dumps({"q": j})) as span:
                span.span_data.output = "ok"
            if j % 250 == 249:
                time.sleep(0.05)  # a pause between bursts, as an agent waits on its model
    produced = time.perf_counter() - started
    assert processor.flush(600)
    out = {"wall_s": produced, "cpu_s": time.process_time() - cpu}
    set_trace_processors([])
    processor.shutdown(60)
    return out


def main() -> None:
    """Print spans/s for SQLite (and PostgreSQL), ratios to the baseline, and the 200-run test."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="turnscope-ingest-"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {args.traces} traces x {SPANS_PER_TRACE} spans, "
        f"{args.rounds} rounds interleaved, medians\n"
    )
    targets: dict[str, Any] = {"sqlite": lambda n: f"sqlite:///{tmp / f'ingest-{n}.db'}"}
    pg = _postgres()
    if pg is not None:
        targets["postgresql"] = lambda n: pg.create_database(f"ingest_{n}")
    rates: dict[str, list[float]] = {name: [] for name in [*targets, "baseline"]}
    collections: dict[str, list[int]] = {name: [] for name in targets}
    for round_ in range(args.rounds):
        rates["baseline"].append(baseline(tmp / f"base-{round_}.db", args.traces))
        for name, make in targets.items():
            rate, stats = worker_throughput(make(round_), args.traces)
            rates[name].append(rate)
            collections[name].append(stats["full_collections"])
    base = statistics.median(rates["baseline"])
    print(f"{'target':<12}{'spans/s':>12}{'vs baseline':>14}   each round")
    for name, values in rates.items():
        rate = statistics.median(values)
        rounds = " ".join(f"{v / 1000:.1f}k" for v in values)
        print(f"{name:<12}{rate:>12,.0f}{rate / base:>13.2f}x   {rounds}")
    for name, counts in collections.items():
        print(f"full garbage collections during each {name} drain: {counts}")
    print("\nWhere the worker's time goes (SQLite, us per span, median of rounds):")
    parts = [stages(tmp / f"stages-{r}.db", args.traces) for r in range(args.rounds)]
    for key in parts[0]:
        value = statistics.median(p[key] for p in parts)
        print(f"  {key:<24}{value:>7.1f}")
    print("\n200 concurrent Runner.run (5 tool turns each), SQLite:")
    result = concurrent_runs(f"sqlite:///{tmp / 'concurrent.db'}")
    for key, value in result.items():
        print(f"  {key:<18}{value:,.3f}" if isinstance(value, float) else f"  {key:<18}{value:,}")
    print("\nOne long run (20,000 spans in bursts of 500), SQLite:")
    bounded = long_run(f"sqlite:///{tmp / 'long-bounded.db'}", analyse_every_batch=False)
    every = long_run(f"sqlite:///{tmp / 'long-every.db'}", analyse_every_batch=True)
    for label, key in (("process CPU", "cpu_s"), ("producer wall time", "wall_s")):
        print(
            f"  {label:<20}{bounded[key]:>7.2f} s   re-analysed every batch {every[key]:>7.2f} s"
            f"   ({bounded[key] / every[key]:.2f}x)"
        )
    if pg is not None:
        pg.cleanup()


def _postgres() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    try:
        from support.pgserver import PgServer

        server = PgServer()
        server.start()
        return server
    except Exception as exc:
        print(f"(PostgreSQL skipped: {exc})")
        return None


if __name__ == "__main__":
    main()
