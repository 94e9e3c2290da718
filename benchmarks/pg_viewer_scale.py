"""The viewer at scale on PostgreSQL: 1,000,000 runs and 20,000,000 spans, queried and rendered.

The same data, queries and browser timings as ``viewer_scale.py`` (SQLite, 100,000 runs),
whose template and clone machinery this imports, into a PostgreSQL server this script starts
itself (Debian's server binaries, ``tests/support/pgserver.py``; 127.0.0.1 only):

1. *Generate.* The schema comes from the real migrations; the templates and the clone plan
   are ``viewer_scale.py``'s. The runs go in through ``COPY`` (psycopg 3's ``cursor.copy``),
   the spans are cloned by PostgreSQL itself (``INSERT ... SELECT`` from the templates, as
   ``clone_spans`` does it). For the bulk load only: the tables' indexes are dropped and
   rebuilt afterwards from their migration definitions, the loading sessions run with
   ``synchronous_commit=off``, and the server has ``maintenance_work_mem=1GB``,
   ``max_wal_size=4GB`` and ``wal_level=minimal`` (a table emptied in the transaction that
   fills it is not written to the WAL). Then ``VACUUM ANALYZE``, as autovacuum would leave a
   table that stopped growing.
2. *Queries.* The SQL behind each page, timed over several repetitions (median), as for SQLite.
   ``--explain`` also prints PostgreSQL's ``EXPLAIN ANALYZE`` of every statement of each.
3. *Render.* ``turnscope view`` on the database in headless Chromium, timed exactly as for
   SQLite, plus a status filter and the failures page (not the text search: at a million
   runs its SQL alone takes about a minute, which the queries show).

The server runs with ``shared_buffers=2GB``, ``effective_cache_size=8GB``, ``work_mem=32MB``
and ``fsync=off`` (a benchmark's throwaway cluster; reads do not depend on it).

Run: ``.venv/bin/python benchmarks/pg_viewer_scale.py [--runs 1000000] [--spans 20000000]
[--dir PATH] [--keep] [--reuse] [--no-browser] [--no-queries] [--explain]``. The cluster goes
to a temporary folder (or ``--dir``, then kept) and is deleted unless ``--keep``; ``--reuse``
starts the cluster kept in ``--dir`` and applies any newer migration to it instead of
generating.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import viewer_scale as vs  # benchmarks/ is the script's directory, so first on sys.path

from turnscope.store.engine import make_writer_engine, upgrade

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.pgserver import PgServer  # found through the line above

DATABASE = "scale"
SERVER_SETTINGS = {
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "work_mem": "32MB",
    "maintenance_work_mem": "1GB",  # the index builds after COPY
    "max_wal_size": "4GB",  # the bulk load: fewer checkpoints
    "wal_level": "minimal",  # the bulk load: COPY into a table emptied in its transaction
    "max_wal_senders": "0",  # (needed by wal_level=minimal)
    "checkpoint_timeout": "30min",
}
TABLES = ("runs", "spans")


def start_server(folder: Path, fresh: bool) -> PgServer:
    """A PostgreSQL cluster in ``folder`` (created when ``fresh``), started with the settings
    above."""
    server = PgServer()
    shutil.rmtree(server.root, ignore_errors=True)  # its own temp folder: ours is given
    server.root, server.data = folder, folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    server.start()
    if fresh:
        with _connect(server, "postgres") as conn:
            for name, value in SERVER_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        server.stop()
        server.start()
    return server


def _connect(server: PgServer, database: str = DATABASE) -> Any:
    import psycopg

    return psycopg.connect(
        f"host=127.0.0.1 port={server.port} user=postgres dbname={database}", autocommit=True
    )


def generate(server: PgServer, runs: int, target_spans: int, seed: int = 7) -> dict[str, Any]:
    """Fill the database through COPY; returns counts, timings and the ids worth opening."""
    rng = random.Random(seed)
    started = time.perf_counter()
    plan = vs.plan(runs, target_spans, rng)
    engine = make_writer_engine(server.url(DATABASE))
    upgrade(engine)  # the real schema and indexes
    engine.dispose()
    picks: dict[str, str] = {}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    span_total = 0
    with _connect(server) as conn, _connect(server) as runs_conn:
        indexes = _drop_indexes(conn)
        for c in (conn, runs_conn):
            c.execute("SET synchronous_commit = off")
        loading = time.perf_counter()
        runs_sql = f"COPY runs ({', '.join(vs.RUN_COLUMNS)}) FROM STDIN"
        # each table filled in the transaction that emptied it, which wal_level=minimal does not
        # log; two connections, so the runs and the clone list are streamed in one pass
        with (
            conn.transaction(),
            runs_conn.transaction(),
            conn.cursor() as cur,
            runs_conn.cursor() as runs_cur,
        ):
            cur.execute("TRUNCATE spans")
            runs_cur.execute("TRUNCATE runs")
            _copy_templates(cur, plan)
            cur.execute(
                "CREATE TEMPORARY TABLE clones (i bigint, tpl int, base timestamp, scale float8)"
            )
            sizes = [t.size for t in plan.all]
            huge = len(plan.templates)
            with cur.copy("COPY clones FROM STDIN") as clones, runs_cur.copy(runs_sql) as copy:
                for c in vs.schedule(plan, runs, rng, now):
                    run = vs.clone_run(plan.all[c.template], c.index, c.base, c.scale)
                    vs.pick(picks, run, c.template == huge)
                    copy.write_row(run)
                    clones.write_row((c.index, c.template, c.base.replace(tzinfo=None), c.scale))
                    span_total += sizes[c.template]
            _progress(f"{runs:,} runs copied", loading)
            # the spans cloned by PostgreSQL itself, as clone_spans() does it: cloning 20M
            # spans in Python took ~20 us of a busy core each
            cur.execute("ANALYZE tpl_spans; ANALYZE clones")
            step = 100_000
            for first in range(1, runs + 1, step):
                cur.execute(CLONE_SPANS, (first, first + step - 1))
                _progress(f"spans of runs {first:,}-{min(runs, first + step - 1):,}", loading)
        stamp = vs.sqlite_time(now)
        conn.execute(
            "INSERT INTO processes (id, pid, host, started_at, heartbeat_at, stopped_at) "
            "VALUES (%s, 1, 'bench', %s, %s, %s)",
            (vs.PROCESS_ID, stamp, stamp, stamp),
        )
        copied = time.perf_counter() - loading
        _progress("copied; building indexes", loading)
        building = time.perf_counter()
        for statement in indexes:
            conn.execute(statement)
        indexed = time.perf_counter() - building
        _progress("indexes built; VACUUM ANALYZE", loading)
        vacuuming = time.perf_counter()
        for table in TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
        vacuumed = time.perf_counter() - vacuuming
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {
        "runs": runs,
        "spans": span_total,
        "templates": len(plan.templates),
        "seconds": time.perf_counter() - started,
        "copy_s": copied,
        "index_s": indexed,
        "vacuum_s": vacuumed,
        "size_mb": size / 1e6,
        **picks,
    }


def _copy_templates(cur: Any, plan: vs.Plan) -> None:
    """The template spans, into a temporary table with their number, their parent's and
    their times as offsets from the template's start."""
    cur.execute(
        "CREATE TEMPORARY TABLE tpl_spans (LIKE spans); ALTER TABLE tpl_spans ADD tpl int, "
        "ADD n int, ADD parent_n int, ADD start_off interval, ADD end_off interval"
    )
    columns = ", ".join([*vs.SPAN_COLUMNS, "tpl", "n", "parent_n", "start_off", "end_off"])
    parent, start, end = (vs.SPAN_COLUMNS.index(c) for c in ("parent_id", "started_at", "ended_at"))
    with cur.copy(f"COPY tpl_spans ({columns}) FROM STDIN") as copy:
        for number, tpl in enumerate(plan.all):
            for encoded in tpl.encoded:
                row = list(encoded)  # times are offsets (timedelta) here, see make_template
                offsets = row[start], row[end]
                row[start] = row[end] = None
                n = tpl.positions[row[vs.SPAN_COLUMNS.index("span_id")]]
                copy.write_row([*row, number, n, tpl.positions.get(row[parent]), *offsets])


def _clone_spans_sql() -> str:
    def span_id(position: str) -> str:
        return f"'span_' || lpad(to_hex(c.i), 16, '0') || lpad(to_hex({position}), 8, '0')"

    special = {
        "trace_id": "'trace_' || lpad(to_hex(c.i), 32, '0')",
        "span_id": span_id("t.n"),
        "parent_id": (
            f"CASE WHEN t.parent_n IS NULL THEN t.parent_id ELSE {span_id('t.parent_n')} END"
        ),
        "started_at": "c.base + t.start_off * c.scale",
        "ended_at": "c.base + t.end_off * c.scale",
        "duration_ms": "t.duration_ms * c.scale",
        "input_tokens": "trunc(t.input_tokens * c.scale)::int",
        "output_tokens": "trunc(t.output_tokens * c.scale)::int",
    }
    values = ", ".join(special.get(col, f"t.{col}") for col in vs.SPAN_COLUMNS)
    return (
        f"INSERT INTO spans ({', '.join(vs.SPAN_COLUMNS)}) SELECT {values} "
        "FROM clones c JOIN tpl_spans t ON t.tpl = c.tpl WHERE c.i BETWEEN %s AND %s"
    )


CLONE_SPANS = _clone_spans_sql()


def _drop_indexes(conn: Any) -> list[str]:
    """Drop the indexes and primary keys of runs and spans; returns the statements that
    recreate them as the migrations made them (an index is cheaper built once than kept up
    to date row by row)."""
    keys = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'p' AND conrelid::regclass::text = ANY(%s)",
        (list(TABLES),),
    ).fetchall()
    plain = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname "
        "NOT IN (SELECT conname FROM pg_constraint WHERE contype = 'p')",
        (list(TABLES),),
    ).fetchall()
    for _table, name, _definition in keys:
        conn.execute(f"ALTER TABLE {_table} DROP CONSTRAINT {name}")
    for name, _definition in plain:
        conn.execute(f"DROP INDEX {name}")
    return [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, d in keys] + [d for _n, d in plain]


def _progress(what: str, since: float) -> None:
    print(f"  {time.perf_counter() - since:7.0f} s  {what}", flush=True)


def _picks(server: PgServer) -> dict[str, Any]:
    with _connect(server) as conn:
        huge = conn.execute("select trace_id from runs order by span_count desc limit 1").fetchone()
        loop = conn.execute(
            "select trace_id from runs where category = 'max_turns_exceeded' "
            "and span_count < 100 order by started_at desc limit 1"
        ).fetchone()
        runs = conn.execute("select count(*) from runs").fetchone()[0]
    return {"huge": huge[0], "max_turns": loop[0], "runs": runs}


def explain(url: str, picks: dict[str, Any]) -> None:
    """EXPLAIN ANALYZE of every statement the page queries run (captured as they run)."""
    from sqlalchemy import event

    from turnscope.store.queries import Store

    captured: list[tuple[str, Any]] = []
    store = Store(url)

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    runs = [
        ("runs page figures", lambda s: s.summary(vs_filter())),
        ("runs over time", lambda s: s.time_buckets(vs_filter())),
        ("page 1, failures first", lambda s: s.list_runs(vs_filter(), order="failures")),
        ("search", lambda s: s.search_trace_ids("connection refused")),
        ("failures page", lambda s: s.failure_groups()),
        ("data version", lambda s: s.data_version()),
    ]
    for label, call in runs:
        captured.clear()
        call(store)
        print(f"\n=== {label}")
        with store.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            for statement, params in list(captured):
                if statement.lstrip().upper().startswith(("SELECT", "WITH", "(SELECT")):
                    with raw.cursor() as cur:
                        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                        print("\n".join(r[0] for r in cur.fetchall()))
                        print("---")
    store.close()


def vs_filter() -> Any:
    """The runs page's filter with nothing chosen."""
    from turnscope.viewer.filters import Filters

    return Filters().to_run_filter(as_of=None)


def main() -> int:
    """Start the server, generate (or reuse), measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--spans", type=int, default=20_000_000)
    parser.add_argument("--dir", help="the cluster's folder (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster")
    parser.add_argument("--reuse", action="store_true", help="reuse the cluster in --dir")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE plans")
    parser.add_argument(
        "--generate-only", action="store_true", help="stop after generating (with --dir)"
    )
    parser.add_argument("--no-queries", action="store_true", help="skip the SQL timings")
    args = parser.parse_args()
    if args.reuse and not args.dir:
        parser.error("--reuse needs --dir")
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="turnscope-pgscale-"))
    reuse = args.reuse and (folder / "data").exists()
    print(f"Machine: {vs.machine()}")
    server = start_server(folder, fresh=not reuse)
    url = server.url(DATABASE)
    try:
        with _connect(server) as conn:
            print(f"PostgreSQL {conn.execute('show server_version').fetchone()[0]}")
        if reuse:
            engine = make_writer_engine(url)
            upgrade(engine)  # a migration added since the cluster was made
            engine.dispose()
            picks = _picks(server)
            print(f"Reusing {folder} ({picks['runs']:,} runs)")
        else:
            print(f"Generating {args.runs:,} runs / ~{args.spans:,} spans into {folder} ...")
            picks = generate(server, args.runs, args.spans)
            print(
                f"  {picks['runs']:,} runs, {picks['spans']:,} spans, {picks['size_mb']:,.0f} MB "
                f"in {picks['seconds']:.0f} s: COPY {picks['copy_s']:.0f} s, indexes "
                f"{picks['index_s']:.0f} s, VACUUM ANALYZE {picks['vacuum_s']:.0f} s "
                f"({picks['templates']} templates)"
            )
        if args.generate_only:
            return 0
        if args.explain:
            explain(url, picks)
        if not args.no_queries:
            print("\nQueries (median of 5, warm cache):")
            for label, ms, note in vs.measure_queries(url, picks):
                print(f"  {label:<58} {ms:>8.1f} ms  {note}")
        if not args.no_browser:
            print("\nHeadless Chromium (seconds from navigation or click):")
            print(f"  {'':<50} {'content':>8} {'complete':>9}   target: complete < 2 s")
            label = f"{picks['runs']:,} runs"
            # no text search in the browser: at a million runs its SQL alone takes a minute
            # (see the queries), and each visit would wait for it
            timings, ready = vs.measure_browser(url, picks, label, more_pages=True, search=False)
            for name, (content, full) in timings:
                verdict = "met" if full < 2.0 else "NOT met"
                print(f"  {name:<50} {content:>8.2f} {full:>9.2f}   {verdict}")
            print(
                "  content: runs table / verdict card / failure figures drawn; complete: charts "
                f"and tables drawn too and Streamlit done\n  server: {ready}"
            )
    finally:
        server.stop()
        if args.keep or args.dir:
            print(f"\nCluster kept in {folder} (do not commit it).")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
