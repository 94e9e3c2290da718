"""Ingest into PostgreSQL from 8 processes at once: total spans/s, against bare writes.

Eight processes are forked from one that imported the SDK (as a prefork server does). In
each, real SDK spans (``ingest.produce``: agent, generations with messages and usage,
function calls) are queued while turnscope's worker is paused; then all eight workers are
released at the same moment and we time until the last one has committed everything (the
schema exists beforehand; every process writes through its own ``TurnscopeProcessor``:
normalise, analyse, COPY into a staging table, upsert). Baselines in the same run, same
spans, same eight processes released together: ``json.dumps(span.export())`` written with a
bare ``COPY`` into a table with a primary key, and with a bare ``executemany`` (psycopg 3
pipelines it), one transaction per process — the least any exporter to PostgreSQL has to do.
Rounds interleave the variants, each on a fresh database; medians are reported.

Run: ``.venv/bin/python benchmarks/pg_ingest.py [--processes 8] [--traces 250] [--rounds 3]``
(needs PostgreSQL's server binaries, as the tests do; the server is started on 127.0.0.1
in a temporary folder and removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import time
from typing import Any

from agents import set_trace_processors
from ingest import SPANS_PER_TRACE, Capture, _postgres, produce

import turnscope.exporter.processor  # noqa: F401  (imported once, before forking)
from turnscope.store.engine import make_writer_engine, upgrade

BASELINE_TABLE = "CREATE TABLE bare_spans (span_id text PRIMARY KEY, trace_id text, body text)"


def turnscope_writer(url: str, traces: int, ready: Any, done: Any) -> None:
    """One process: fill a paused processor's buffer, wait for the start, drain it."""
    from turnscope.exporter.processor import TurnscopeProcessor

    processor = TurnscopeProcessor(url, flush_interval=3600, max_queue_size=10_000_000)
    set_trace_processors([processor])
    assert processor.flush(60)  # opens the database
    processor._wake_at = 10**12  # the worker sleeps while the buffer fills
    produce(traces)
    set_trace_processors([])
    ready.wait()
    assert processor.flush(600)
    stats = processor.stats()
    done.put(stats["written"])
    processor.shutdown(60)
    # every span written, none dropped or given up (a rate of lost spans means nothing)
    spans = traces * SPANS_PER_TRACE
    assert (stats["dropped"], stats["failed"]) == (0, 0) and stats["written"] >= spans, stats


def bare_writer(dsn: str, traces: int, copy: bool, ready: Any, done: Any) -> None:
    """One process: capture the spans, wait for the start, then JSON + COPY/executemany."""
    import psycopg

    capture = Capture()
    set_trace_processors([capture])  # type: ignore[list-item]
    produce(traces)
    set_trace_processors([])
    with psycopg.connect(dsn) as conn:
        ready.wait()
        rows = [(s.span_id, s.trace_id, json.dumps(s.export())) for s in capture.items]
        with conn.cursor() as cursor:
            if copy:
                with cursor.copy("COPY bare_spans (span_id, trace_id, body) FROM STDIN") as out:
                    for row in rows:
                        out.write_row(row)
            else:
                cursor.executemany("INSERT INTO bare_spans VALUES (%s, %s, %s)", rows)
        conn.commit()
    done.put(len(rows))


def one_round(target: Any, args: tuple[Any, ...], processes: int) -> float:
    """Fork the writers, release them together, spans/s until the last one is done."""
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Barrier(processes + 1), ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args, ready, done)) for _ in range(processes)]
    for w in workers:
        w.start()
    ready.wait(600)
    started = time.perf_counter()
    spans = sum(done.get(timeout=600) for _ in workers)
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join(120)
        assert w.exitcode == 0, w.exitcode
    return spans / elapsed


def main() -> None:
    """Print total spans/s into PostgreSQL from N processes, turnscope against bare writes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--traces", type=int, default=250, help="traces per process")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pg = _postgres()
    if pg is None:
        raise SystemExit("PostgreSQL server binaries not found")
    try:
        import agents
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={pg.port} user=postgres") as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        spans = args.processes * args.traces * SPANS_PER_TRACE
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, openai-agents {agents.__version__}, PostgreSQL "
            f"{server} on the same machine; {args.processes} processes x {args.traces} traces x "
            f"{SPANS_PER_TRACE} spans = {spans:,} spans per round, {args.rounds} rounds "
            "interleaved, medians\n"
        )
        rates: dict[str, list[float]] = {"turnscope": [], "bare COPY": [], "bare executemany": []}
        for n in range(args.rounds):
            for name in rates:
                url = pg.create_database(f"pg_ingest_{n}_{name.replace(' ', '_')}")
                if name == "turnscope":
                    engine = make_writer_engine(url)
                    upgrade(engine)  # the schema exists before the clock starts
                    engine.dispose()
                    rate = one_round(turnscope_writer, (url, args.traces), args.processes)
                else:
                    dsn = url.replace("postgresql+psycopg", "postgresql")
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute(BASELINE_TABLE)
                    copy = name == "bare COPY"
                    rate = one_round(bare_writer, (dsn, args.traces, copy), args.processes)
                rates[name].append(rate)
        base = statistics.median(rates["bare COPY"])
        print(f"{'target':<18}{'spans/s':>12}{'vs bare COPY':>15}   each round")
        for name, values in rates.items():
            rate = statistics.median(values)
            rounds = " ".join(f"{v / 1000:.1f}k" for v in values)
            print(f"{name:<18}{rate:>12,.0f}{rate / base:>14.2f}x   {rounds}")
    finally:
        pg.cleanup()


if __name__ == "__main__":
    main()
