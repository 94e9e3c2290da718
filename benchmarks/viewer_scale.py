"""The viewer at scale: 100,000 runs and 2,000,000 spans in SQLite, queried and rendered.

1. *Generate.* Template traces come from the real demo (every outcome, recorded through the
   real SDK) and from synthetic multi-turn runs shaped like openai-agents 0.24 traces (task,
   agent, turn, generation and function spans); each template's verdict is computed by the
   real analysis. The templates are then cloned with fresh ids, start times spread over 30
   days, and scaled durations and token counts, and bulk-inserted with ``executemany`` into a
   database created by the real migrations (so search triggers and indexes are the real ones).
   One extra run has 2,000 spans (a 500-turn loop), the worst case for a run page.
2. *Queries.* The SQL behind each page, timed over several repetitions (median).
3. *Render.* ``turnscope view`` on the database, opened in headless Chromium (Debian's
   ``chromium`` through Playwright): the time from navigation until the page shows its
   content and Streamlit has stopped running, for the runs page, a failed run's page and the
   2,000-span run's page, each by its URL (as a shared link): first in a fresh browser
   profile (nothing cached; for the runs page also the first visit after the server started,
   while it warms itself up), then the median of three more new tabs; and a run opened from
   the runs page. The page is checked at every animation frame (not with Playwright's
   locator waits, whose polling back-off added up to 0.5 s).

Run: ``.venv/bin/python benchmarks/viewer_scale.py [--runs 100000] [--spans 2000000]
[--db PATH] [--keep] [--no-browser]``. The generated database goes to a temporary folder
(or ``--db``) and is deleted unless ``--keep``; it is never committed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from turnscope.analysis.verdict import analyze
from turnscope.records import ExceptionInfo, SpanRecord, TraceInfo
from turnscope.store.convert import run_row, span_row
from turnscope.store.engine import make_writer_engine, upgrade
from turnscope.store.models import Run, SpanRow
from turnscope.store.writer import sqlite_time
from turnscope.viewer.serve import wait_healthy

SPAN_COLUMNS = [c.name for c in SpanRow.__table__.columns]
RUN_COLUMNS = [c.name for c in Run.__table__.columns]
JSON_SPAN = {"error_data", "data", "exception"}
JSON_RUN = {
    "metadata",
    "evidence",
    "recovered_errors",
    "exception_detail",
    "agents",
    "warnings",
    "ending",
}
EPOCH = datetime(2026, 10, 25, tzinfo=timezone.utc)
PROCESS_ID = "bench0000000000"
WORKFLOWS = ["Customer support", "Research", "Checkout", "Reporting", "Inventory", "Content"]
TOOLS = ["lookup_order", "search_docs", "fetch_exchange_rate", "charge_card", "scan_warehouse"]


# --- synthetic traces (openai-agents 0.24 shape) -----------------------------------------------


class TraceBuilder:
    """Builds the span records of one synthetic run, the way the SDK nests them."""

    def __init__(self, workflow: str, agent: str, tools: list[str]) -> None:
        self.trace_id = "trace_template"
        self.spans: list[SpanRecord] = []
        self.clock = EPOCH
        self.workflow = workflow
        self.task = self._open("task", workflow, None, {"name": workflow})
        self.agent = self._open(
            "agent", agent, self.task.span_id, {"name": agent, "tools": tools, "handoffs": []}
        )
        self.turn: SpanRecord | None = None
        self.turns = 0
        self.history: list[dict[str, Any]] = [{"role": "user", "content": f"Help with {workflow}"}]

    def _tick(self, ms: float) -> datetime:
        self.clock += timedelta(milliseconds=ms)
        return self.clock

    def _open(self, kind: str, name: str, parent: str | None, data: dict[str, Any]) -> SpanRecord:
        span = SpanRecord(
            trace_id=self.trace_id,
            span_id=f"span_t{len(self.spans):06d}",
            parent_id=parent,
            kind=kind,
            name=name,
            started_at=self._tick(0.3),
            data=data,
            seq=len(self.spans),
        )
        self.spans.append(span)
        return span

    def _close(self, span: SpanRecord, ms: float = 0.2) -> None:
        span.ended_at = self._tick(ms)

    def new_turn(self) -> None:
        """Close the current turn span and open the next."""
        if self.turn is not None:
            self._close(self.turn)
        self.turns += 1
        self.turn = self._open(
            "turn",
            f"turn {self.turns}",
            self.agent.span_id,
            {"turn": self.turns, "agent_name": self.agent.name},
        )

    def model(self, output: list[dict[str, Any]], ms: float, error: str | None = None) -> None:
        """A generation span in the current turn."""
        assert self.turn is not None
        usage = {"input_tokens": 150 + 40 * min(self.turns, 20), "output_tokens": 45}
        span = self._open(
            "generation",
            "gpt-4o",
            self.turn.span_id,
            {"input": self.history[-4:], "output": output, "model": "gpt-4o", "usage": usage},
        )
        span.model = "gpt-4o"
        span.input_tokens, span.output_tokens = usage["input_tokens"], usage["output_tokens"]
        self.turn.input_tokens = (self.turn.input_tokens or 0) + usage["input_tokens"]
        self.turn.output_tokens = (self.turn.output_tokens or 0) + usage["output_tokens"]
        if error:
            span.error_message = "Error getting response"
            span.error_data = {"error": error}
        self._close(span, ms)
        self.history.extend(output)

    def tool(self, name: str, args: str, output: str | None, ms: float, error: str = "") -> None:
        """A function span in the current turn (error: 'fatal' or 'recovered')."""
        assert self.turn is not None
        span = self._open(
            "function", name, self.turn.span_id, {"name": name, "input": args, "output": output}
        )
        span.tool_name = name
        if error == "recovered":
            span.error_message = "Error running tool (non-fatal)"
            span.error_data = {"tool_name": name, "error": "upstream returned HTTP 503"}
        elif error == "fatal":
            span.error_message = "Error running tool"
            span.error_data = {"tool_name": name, "error": f"{name} failed: connection refused"}
        self._close(span, ms)
        self.history.append({"type": "function_call_output", "output": output or ""})

    def finish(self, exception: ExceptionInfo | None = None, agent_error: str | None = None) -> Any:
        """End every open span and the trace; returns the analysis of the template."""
        if self.turn is not None:
            self._close(self.turn)
        if agent_error:
            self.agent.error_message = agent_error
            if agent_error == "Max turns exceeded":
                self.agent.error_data = {"max_turns": self.turns}
        self.agent.exception = exception
        self.task.exception = exception
        self._close(self.agent)
        self._close(self.task)
        info = TraceInfo(
            trace_id=self.trace_id,
            workflow=self.workflow,
            started_at=EPOCH,
            ended_at=self.clock,
            exception=exception,
            sdk_version="0.24.0",
            process_id=PROCESS_ID,
            pid=1,
            host="bench",
            streamed=False,
        )
        return info, self.spans


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function_call", "name": name, "arguments": json.dumps(args)}


def _say(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def synthetic_templates(rng: random.Random) -> list[tuple[str, float, Any, list[SpanRecord]]]:
    """(label, weight, trace info, spans) of multi-turn runs, successes and failures."""
    out: list[tuple[str, float, Any, list[SpanRecord]]] = []
    for workflow in WORKFLOWS:
        for turns in (2, 4, 6, 9):
            tools = rng.sample(TOOLS, 3)
            b = TraceBuilder(workflow, f"{workflow.split()[0]}Agent", tools)
            for t in range(turns - 1):
                b.new_turn()
                calls = [_call(tools[(t + k) % 3], {"id": f"A-{t}{k}"}) for k in range(1 + t % 3)]
                b.model(calls, rng.uniform(300, 1500))
                for k, c in enumerate(calls):
                    error = "recovered" if turns == 6 and t == 1 and k == 0 else ""
                    b.tool(c["name"], c["arguments"], f"result {t}.{k}", rng.uniform(5, 400), error)
            b.new_turn()
            b.model([_say(f"Done with {workflow.lower()} request after {turns} turns.")], 600)
            out.append((f"ok-{workflow}-{turns}", 6.0, *b.finish()))
        # max turns: the same search again and again
        b = TraceBuilder(workflow, "Researcher", ["search_docs"])
        for _ in range(10):
            b.new_turn()
            call = _call("search_docs", {"query": f"{workflow} policy"})
            b.model([call], rng.uniform(300, 900))
            b.tool("search_docs", call["arguments"], "No exact match.", rng.uniform(20, 200))
        exc = ExceptionInfo("MaxTurnsExceeded", "agents.exceptions", "Max turns (10) exceeded")
        out.append((f"max-turns-{workflow}", 0.5, *b.finish(exc, "Max turns exceeded")))
        # a fatal tool error on turn 3
        b = TraceBuilder(workflow, "Cashier", ["charge_card", "lookup_order"])
        for t in range(3):
            b.new_turn()
            name = "lookup_order" if t < 2 else "charge_card"
            call = _call(name, {"amount_cents": 1000 + t})
            b.model([call], rng.uniform(300, 900))
            b.tool(name, call["arguments"], None if t == 2 else "ok", 50, "fatal" if t == 2 else "")
        exc = ExceptionInfo("UserError", "agents.exceptions", "charge_card failed")
        out.append((f"tool-error-{workflow}", 0.4, *b.finish(exc, "Error in agent run")))
        # a model error after two good turns
        b = TraceBuilder(workflow, "Writer", ["search_docs"])
        for t in range(2):
            b.new_turn()
            call = _call("search_docs", {"query": f"draft {t}"})
            b.model([call], 700)
            b.tool("search_docs", call["arguments"], "notes", 90)
        b.new_turn()
        b.model([], 30_000, error="Request timed out after 30 seconds")
        exc = ExceptionInfo("APITimeoutError", "openai", "Request timed out.")
        out.append((f"model-error-{workflow}", 0.3, *b.finish(exc, "Error in agent run")))
    return out


def huge_template() -> tuple[Any, list[SpanRecord]]:
    """A 500-turn loop that ends on max_turns: 2,002 spans in one run."""
    b = TraceBuilder("Research", "Looper", ["search_docs", "lookup_order"])
    for t in range(500):
        b.new_turn()
        call = _call("search_docs", {"query": "refund policy" if t % 50 else f"refund {t}"})
        other = _call("lookup_order", {"id": f"A-{t}"})
        b.model([call, other], 400)
        b.tool("search_docs", call["arguments"], "No exact match.", 30)
        b.tool("lookup_order", other["arguments"], "not found", 20)
    exc = ExceptionInfo("MaxTurnsExceeded", "agents.exceptions", "Max turns (500) exceeded")
    return b.finish(exc, "Max turns exceeded")


def demo_templates(workdir: Path) -> list[tuple[str, float, Any, list[SpanRecord]]]:
    """The demo's runs (real SDK traces covering every outcome), re-analysed as templates."""
    from turnscope.demo.runner import run_demo
    from turnscope.store.queries import Store

    db = workdir / "demo.db"
    run_demo(db=str(db), progress=False)
    store = Store(str(db))
    out = []
    try:
        for run in store.list_runs(limit=1000):
            analysis_input = _stored_trace(store, run["trace_id"])
            weight = 1.0 if run["status"] in ("failed", "incomplete") else 2.0
            out.append((f"demo-{run['workflow']}-{run['status']}", weight, *analysis_input))
    finally:
        store.close()
    return out


def _stored_trace(store: Any, trace_id: str) -> tuple[TraceInfo, list[SpanRecord]]:
    from sqlalchemy import select

    from turnscope.store.convert import trace_info_from_row

    with store.engine.connect() as conn:
        row = conn.execute(select(Run.__table__).where(Run.trace_id == trace_id)).first()
    info = trace_info_from_row(row)
    info.process_id, info.pid, info.host = PROCESS_ID, 1, "bench"
    if info.ended_at is None:  # the killed-process run: its writer is gone for good
        info.process_id = "bench-dead-process"
    return info, store.spans(trace_id)


# --- cloning -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Template:
    """A trace turned into row tuples, with the offsets needed to clone it fast."""

    label: str
    weight: float
    run: dict[str, Any]
    spans: list[dict[str, Any]]
    span_ids: list[str]
    start: datetime
    # the span rows in SPAN_COLUMNS order, JSON already encoded and times as offsets from
    # ``start``: a clone only swaps ids and scales (encoding JSON per clone cost ~35 us a span)
    encoded: list[list[Any]]
    positions: dict[str, int]  # a template span id -> its number (the clone's id is made of it)

    @property
    def size(self) -> int:
        """Number of spans."""
        return len(self.spans)


def make_template(label: str, weight: float, info: TraceInfo, spans: list[SpanRecord]) -> Template:
    """Analyse a trace with the real verdict code and keep its rows."""
    # the killed-process run stays "running" in the table, as a real writer leaves it; readers
    # turn it into "incomplete" because its process has no heartbeat
    analysis = analyze(info, spans, process_alive=True)
    now = datetime.now(timezone.utc)
    run = run_row(analysis.run, now)
    rows = [span_row(s) for s in analysis.structure.spans]
    start = min(r["started_at"] for r in rows if r["started_at"] is not None)
    encoded = []
    for row in rows:
        values = []
        for col in SPAN_COLUMNS:
            v = row[col]
            if col in ("started_at", "ended_at") and v is not None:
                v = v - start
            elif col in JSON_SPAN:
                v = _text(v)
            elif col == "truncated":
                v = int(bool(v))
            values.append(v)
        encoded.append(values)
    span_ids = [r["span_id"] for r in rows]
    positions = {old: n for n, old in enumerate(span_ids)}
    return Template(label, weight, run, rows, span_ids, start, encoded, positions)


def _time(value: datetime | None, start: datetime, base: datetime, scale: float) -> str | None:
    if value is None:
        return None
    return sqlite_time(base + (value - start) * scale)


def _text(value: Any) -> Any:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False)


_TRACE, _SPAN, _PARENT, _DURATION = (
    SPAN_COLUMNS.index(c) for c in ("trace_id", "span_id", "parent_id", "duration_ms")
)
_TIMES = (SPAN_COLUMNS.index("started_at"), SPAN_COLUMNS.index("ended_at"))
_TOKENS = (SPAN_COLUMNS.index("input_tokens"), SPAN_COLUMNS.index("output_tokens"))


def clone_rows(
    tpl: Template, index: int, base: datetime, scale: float
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One run row and its span rows: fresh ids, shifted and scaled times and tokens."""
    return clone_run(tpl, index, base, scale), clone_spans(tpl, index, base, scale)


def trace_id_of(index: int) -> str:
    """The trace id of clone number ``index``."""
    return f"trace_{index:032x}"


def span_id_of(index: int, position: int) -> str:
    """The id of span number ``position`` in clone number ``index``."""
    return f"span_{index:016x}{position:08x}"


def clone_spans(tpl: Template, index: int, base: datetime, scale: float) -> list[tuple[Any, ...]]:
    """The span rows of one clone."""
    trace_id = trace_id_of(index)
    ids = {old: span_id_of(index, n) for old, n in tpl.positions.items()}
    spans = []
    for encoded in tpl.encoded:
        values = encoded.copy()
        values[_TRACE] = trace_id
        values[_SPAN] = ids.get(values[_SPAN], values[_SPAN])
        parent = values[_PARENT]
        if parent is not None:
            values[_PARENT] = ids.get(parent, parent)
        for i in _TIMES:
            if values[i] is not None:
                values[i] = sqlite_time(base + values[i] * scale)
        if values[_DURATION] is not None:
            values[_DURATION] *= scale
        for i in _TOKENS:
            if values[i] is not None:
                values[i] = int(values[i] * scale)
        spans.append(tuple(values))
    return spans


def clone_run(tpl: Template, index: int, base: datetime, scale: float) -> tuple[Any, ...]:
    """The run row of one clone."""

    def new_id(old: Any) -> Any:
        position = tpl.positions.get(old)
        return old if position is None else span_id_of(index, position)

    run = []
    for col in RUN_COLUMNS:
        v = tpl.run[col]
        if col == "trace_id":
            v = trace_id_of(index)
        elif col == "failing_span_id":
            v = new_id(v)
        elif col in ("evidence", "warnings") and v:
            v = [{**e, "span_id": new_id(e.get("span_id"))} for e in v]
        elif col in ("started_at", "ended_at", "updated_at"):
            v = _time(v, tpl.start, base, scale) if col != "updated_at" else sqlite_time(base)
        elif col == "duration_ms" and v is not None:
            v = v * scale
        elif col in ("input_tokens", "output_tokens"):
            v = int((v or 0) * scale)
        if col in JSON_RUN:
            v = _text(v)
        elif col in ("trace_ended", "truncated", "streamed") and v is not None:
            v = int(bool(v))
        run.append(v)
    return tuple(run)


@dataclass(slots=True)
class Plan:
    """The templates, how often each is cloned, and the 2,000-span run."""

    templates: list[Template]
    weights: list[float]
    huge: Template

    @property
    def all(self) -> list[Template]:
        """The templates, then the huge run."""
        return [*self.templates, self.huge]


def plan(runs: int, target_spans: int, rng: random.Random) -> Plan:
    """Record and analyse the templates; weights scaled so the average run has
    ``target_spans / runs`` spans."""
    workdir = Path(tempfile.mkdtemp(prefix="turnscope-templates-"))
    try:
        raw = demo_templates(workdir) + synthetic_templates(rng)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    templates = [make_template(label, w, info, spans) for label, w, info, spans in raw]
    huge = make_template("huge", 0.0, *huge_template())
    want = target_spans / runs
    small = [t for t in templates if t.size < want]
    large = [t for t in templates if t.size >= want]
    mean_small = sum(t.size * t.weight for t in small) / sum(t.weight for t in small)
    mean_large = sum(t.size * t.weight for t in large) / sum(t.weight for t in large)
    share_large = min(1.0, max(0.0, (want - mean_small) / (mean_large - mean_small)))
    w_small = (1 - share_large) / sum(t.weight for t in small)
    w_large = share_large / sum(t.weight for t in large)
    weights = [t.weight * (w_large if t.size >= want else w_small) for t in templates]
    return Plan(templates, weights, huge)


RowsOfRun = tuple[tuple[Any, ...], list[tuple[Any, ...]]]


@dataclass(slots=True)
class Clone:
    """One run to make: its template (a number in ``Plan.all``), number, start and time scale."""

    template: int
    index: int
    base: datetime
    scale: float


def schedule(p: Plan, runs: int, rng: random.Random, now: datetime) -> Iterator[Clone]:
    """The ``runs`` runs to make (the last one the 2,000-span run), spread over the 30 days
    before ``now``."""
    window = 30 * 86400
    first = now - timedelta(seconds=window)
    chosen = rng.choices(range(len(p.templates)), weights=p.weights, k=runs - 1)
    for i, t in enumerate(chosen):
        # more traffic in recent days, a daily rhythm, and a bad afternoon 3 days ago
        base = first + timedelta(seconds=window * (i / runs) + rng.uniform(0, 20))
        yield Clone(t, i + 1, base, rng.uniform(0.5, 2.5))
    yield Clone(len(p.templates), runs, now - timedelta(minutes=5), 1.0)


def pick(picks: dict[str, str], run: tuple[Any, ...], huge: bool) -> None:
    """Note the run ids worth opening: a failed run, a max-turns run, the huge run."""
    if huge:
        picks["huge"] = run[0]
    elif run[_STATUS] == "failed":
        picks.setdefault("failed", run[0])
        if run[_CATEGORY] == "max_turns_exceeded":
            picks["max_turns"] = run[0]


_STATUS, _CATEGORY = RUN_COLUMNS.index("status"), RUN_COLUMNS.index("category")


def cloned_runs(
    p: Plan, runs: int, rng: random.Random, now: datetime, picks: dict[str, str]
) -> Iterator[RowsOfRun]:
    """The rows of the runs of ``schedule``; ``picks`` receives the ids worth opening (see
    ``pick``). Values as SQLite stores them (times as text, booleans as 0/1)."""
    templates = p.all
    for c in schedule(p, runs, rng, now):
        run, spans = clone_rows(templates[c.template], c.index, c.base, c.scale)
        pick(picks, run, c.template == len(p.templates))
        yield run, spans


def generate(path: Path, runs: int, target_spans: int, seed: int = 7) -> dict[str, Any]:
    """Create the database at ``path``; returns counts and the ids worth opening."""
    rng = random.Random(seed)
    started = time.perf_counter()
    p = plan(runs, target_spans, rng)
    if path.exists():
        path.unlink()
    engine = make_writer_engine(f"sqlite:///{path}")
    upgrade(engine)  # the real schema: migrations, indexes, search triggers
    engine.dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    span_sql = (
        f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in SPAN_COLUMNS)})"
    )
    run_sql = (
        f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in RUN_COLUMNS)})"
    )
    span_total = 0
    picks: dict[str, str] = {}
    now = datetime.now(timezone.utc).replace(microsecond=0)
    batch_runs: list[tuple[Any, ...]] = []
    batch_spans: list[tuple[Any, ...]] = []

    def flush() -> None:
        conn.executemany(run_sql, batch_runs)
        conn.executemany(span_sql, batch_spans)
        batch_runs.clear()
        batch_spans.clear()

    conn.execute("BEGIN")
    for run, spans in cloned_runs(p, runs, rng, now, picks):
        batch_runs.append(run)
        batch_spans.extend(spans)
        span_total += len(spans)
        if len(batch_spans) > 50_000:
            flush()
    flush()
    stamp = sqlite_time(now)
    conn.execute(
        "INSERT INTO processes (id, pid, host, started_at, heartbeat_at, stopped_at) "
        "VALUES (?, 1, 'bench', ?, ?, ?)",
        (PROCESS_ID, stamp, stamp, stamp),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return {
        "runs": runs,
        "spans": span_total,
        "templates": len(p.templates),
        "seconds": time.perf_counter() - started,
        "size_mb": path.stat().st_size / 1e6,
        **picks,
    }


# --- measurements ------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median wall time in milliseconds over ``repeat`` calls, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure_queries(path: Path | str, picks: dict[str, Any]) -> list[tuple[str, float, str]]:
    """The SQL behind each page, timed (median of 5) on a warm page cache (``path``: a
    SQLite file or a database URL)."""
    from turnscope.store.queries import RunFilter, Store
    from turnscope.viewer.filters import Filters

    store = Store(str(path))
    as_of = None  # what the runs page passes while no run arrived after its snapshot
    base = Filters().to_run_filter(as_of=as_of)
    failed = Filters(status=["failed", "incomplete"]).to_run_filter(as_of=as_of)
    out: list[tuple[str, float, str]] = []

    def add(label: str, fn: Callable[[], Any], show: Callable[[Any], str] = lambda r: "") -> None:
        ms, result = timed(fn)
        out.append((label, ms, show(result)))

    add("data version (cache key)", store.data_version)
    add(
        "runs page: headline figures (count, rate, p50/p95, tokens)",
        lambda: store.summary(base),
        lambda r: f"{r['runs']:,} runs, p95 {r['p95_ms']:.0f} ms",
    )
    add(
        "runs page: runs over time by outcome",
        lambda: store.time_buckets(base),
        lambda r: f"{len(r['points'])} bar segments",
    )
    add(
        "runs page: page 1, failures first",
        lambda: store.list_runs(base, limit=50, order="failures"),
    )
    add("runs page: page 1, newest first", lambda: store.list_runs(base, limit=50))
    add("runs page: page 100, newest first", lambda: store.list_runs(base, limit=50, offset=4950))
    add(
        "filter status=failed: figures",
        lambda: store.summary(failed),
        lambda r: f"{r['runs']:,} runs",
    )
    add("filter status=failed: page 1", lambda: store.list_runs(failed, limit=50, order="newest"))
    add(
        "filter tool=charge_card: figures",
        lambda: store.summary(RunFilter(tool="charge_card", as_of=as_of)),
        lambda r: f"{r['runs']:,} runs",
    )
    add(
        "filter agent=Cashier: figures",
        lambda: store.summary(RunFilter(agent="Cashier", as_of=as_of)),
        lambda r: f"{r['runs']:,} runs",
    )
    add(
        "filter last 24 h: figures",
        lambda: store.summary(Filters(range="24h").to_run_filter(as_of=as_of)),
        lambda r: f"{r['runs']:,} runs",
    )
    add(
        "search 'connection refused' (one pass over the spans)",
        lambda: store.search_trace_ids("connection refused"),
        lambda r: f"{len(r[0]):,} runs",
    )
    ids, _ = store.search_trace_ids("connection refused")
    add(
        "search: figures for the found runs",
        lambda: store.summary(RunFilter(trace_ids=ids, as_of=as_of)),
    )
    add(
        "failures page: groups, trends, examples",
        lambda: store.failure_groups(RunFilter()),
        lambda r: f"{len(r['groups'])} groups of {r['total']:,} runs",
    )
    from turnscope.prices import load_book
    from turnscope.store.costs import cost_figures, run_totals

    prices = load_book(None)
    page = [r["trace_id"] for r in store.list_runs(base, limit=50)]
    add("runs page: cost of page 1 (50 runs)", lambda: run_totals(store, page, prices))
    add(
        "runs page: cost figures and chart (newest 1,000 runs)",
        lambda: cost_figures(store, base, prices),
        lambda r: f"total {r.total.text()}, p95 ${r.p95:.4f}" if r.p95 is not None else "",
    )
    for label, trace_id in (("failed run", picks["max_turns"]), ("2,002-span run", picks["huge"])):
        add(
            f"run page ({label}): row + spans + analysis",
            lambda t=trace_id: (store.get_run(t), store.analysis(t)),
            lambda r: f"{len(r[1].structure.spans):,} spans, {len(r[1].structure.turns)} turns",
        )
    store.close()
    return out


def measure_browser(
    path: Path | str,
    picks: dict[str, Any],
    runs_label: str = "100,000 runs",
    more_pages: bool = False,
    search: bool = True,
) -> tuple[list[tuple[str, list[float]]], str]:
    """``turnscope view`` on the database, pages timed in headless Chromium: from navigation
    until the page's key content is drawn, and until everything (charts included) is drawn
    and Streamlit has finished. Each page first in a fresh browser profile (empty cache; the
    runs page right after the server answers, while it warms itself up), then in new tabs.
    ``more_pages``: also a text search (unless not ``search``), a status filter and the
    failures page. Also returns the server's own warm-up line."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "TURNSCOPE_JAEGER_URL"}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - the server writes it; closed in the finally
    server = subprocess.Popen(
        [sys.executable, "-m", "turnscope.cli", "view", "--db", str(path), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    # what must be on screen: (CSS selector, text it must contain, inside a shadow root)
    runs_page = [
        ('[data-testid="stCaptionContainer"]', "Runs 1–50 of", False),
        ('[data-testid="stDataFrame"] canvas', "", False),
        (".st-key-runs_chart", "rect", True),  # the SVG chart (a style-isolated component)
    ]
    run_page = [(".st-key-verdict_card", "", False), (".st-key-timeline .main-svg", "", False)]
    failures_page = [
        ('[data-testid="stMetric"]', "Failed runs", False),
        ('[data-testid="stDataFrame"] canvas', "", False),
    ]
    results: list[tuple[str, list[float]]] = []
    try:
        if not wait_healthy(url, time.monotonic() + 60):
            raise RuntimeError("turnscope view did not start")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=os.environ.get("TURNSCOPE_CHROMIUM", "/usr/bin/chromium"),
                args=[
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                ],
            )
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            warmup = context.new_page()  # the browser process itself, before any timing
            warmup.goto("about:blank")
            warmup.close()
            context.close()
            targets = [
                (f"runs page, {runs_label}", "/", runs_page),
                ("run page, failed run", f"/run?trace_id={picks['max_turns']}", run_page),
                ("run page, 2,002 spans", f"/run?trace_id={picks['huge']}", run_page),
            ]
            if more_pages:
                targets += [
                    ("runs page, status=failed", "/?status=failed", runs_page),
                    ("failures page", "/failures", failures_page),
                ]
                if search:
                    targets.append(
                        ("runs page, search 'connection refused'", f"/?q={SEARCH}", runs_page)
                    )
            for label, route, selectors in targets:
                timings = []
                # a fresh browser profile (nothing cached), then new tabs in it (shared links)
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                for _visit in range(1 + WARM_VISITS):
                    page = context.new_page()
                    started = time.perf_counter()
                    page.goto(url + route)
                    _drawn(page, selectors[:1])
                    content = time.perf_counter() - started
                    _settle(page, selectors[1:])
                    full = time.perf_counter() - started
                    assert page.locator('[data-testid="stException"]').count() == 0, label
                    timings.append((content, full))
                    page.close()
                context.close()
                results.append((f"{label} (empty browser cache)", list(timings[0])))
                results.append(
                    (
                        f"{label} (new tab, median of {WARM_VISITS})",
                        [statistics.median(t[i] for t in timings[1:]) for i in (0, 1)],
                    )
                )
            # the usual path: the runs page is open, the user selects a run
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.goto(url + "/")
            _settle(page, runs_page)
            for visit in ("first run opened", "next run opened"):
                box = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
                assert box is not None
                started = time.perf_counter()
                page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
                _drawn(page, run_page[:1])
                content = time.perf_counter() - started
                _settle(page, run_page[1:])
                full = time.perf_counter() - started
                results.append((f"runs page -> {visit}", [content, full]))
                page.go_back()
                _settle(page, runs_page)
            browser.close()
    finally:
        server.terminate()
        server.wait(15)
        log.seek(0)
        ready = [line for line in log.read().decode().splitlines() if "viewer ready" in line]
        log.close()
    return results, (ready[0] if ready else "(no warm-up line)")


WARM_VISITS = 3
SEARCH = "connection+refused"


# Checked on every animation frame in the page. Playwright's own locator waits poll with a
# back-off (up to 0.5 s between checks): measured, they added 0.1-0.5 s to a page's time.
_ON_SCREEN = """
(checks) => checks.every(([css, text, shadow]) => {
  for (const host of document.querySelectorAll(css)) {
    if (!shadow) {
      if (!text || host.textContent.includes(text)) return true;
      continue;
    }
    const stack = [host];  // text is a selector inside the component's shadow root
    while (stack.length) {
      const node = stack.pop();
      if (node.shadowRoot) {
        if (node.shadowRoot.querySelector(text)) return true;
        stack.push(...node.shadowRoot.children);
      }
      stack.push(...node.children);
    }
  }
  return false;
})
"""
_IDLE = """() => {
  const w = document.querySelector('[data-testid="stStatusWidget"]');
  return !w || w.getClientRects().length === 0;
}"""


def _drawn(page: Any, checks: list[tuple[str, str, bool]]) -> None:
    """Until every check holds, tested at each animation frame."""
    page.wait_for_function(_ON_SCREEN, arg=checks, polling="raf", timeout=120_000)


def _settle(page: Any, checks: list[tuple[str, str, bool]]) -> None:
    """Until every check holds, Streamlit has finished and a frame was drawn."""
    _drawn(page, checks)
    page.wait_for_function(_IDLE, polling="raf", timeout=120_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(null)))")


def machine() -> str:
    """CPU model, core count, memory and Python/SQLite versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def main() -> int:
    """Generate, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--db", help="where to generate the database (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--reuse", action="store_true", help="reuse --db if it exists")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    args = parser.parse_args()
    folder = None
    if args.db:
        path = Path(args.db)
    else:
        folder = Path(tempfile.mkdtemp(prefix="turnscope-scale-"))
        path = folder / "scale.db"
    print(f"Machine: {machine()}")
    try:
        if args.reuse and path.exists():
            picks = _picks(path)
            print(f"Reusing {path}")
        else:
            print(f"Generating {args.runs:,} runs / ~{args.spans:,} spans into {path} ...")
            picks = generate(path, args.runs, args.spans)
            print(
                f"  {picks['runs']:,} runs, {picks['spans']:,} spans, {picks['size_mb']:,.0f} MB "
                f"in {picks['seconds']:.0f} s ({picks['templates']} templates)"
            )
        print("\nQueries (median of 5, warm cache):")
        for label, ms, note in measure_queries(path, picks):
            print(f"  {label:<58} {ms:>8.1f} ms  {note}")
        if not args.no_browser:
            print("\nHeadless Chromium (seconds from navigation or click):")
            print(f"  {'':<50} {'content':>8} {'complete':>9}   target: complete < 2 s")
            timings, ready = measure_browser(path, picks)
            for label, (content, full) in timings:
                verdict = "met" if full < 2.0 else "NOT met"
                print(f"  {label:<50} {content:>8.2f} {full:>9.2f}   {verdict}")
            print(
                "  content: runs table / verdict card drawn; complete: charts drawn too and "
                f"Streamlit done\n  server: {ready}"
            )
    finally:
        if folder is not None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif args.keep or args.db:
            print(f"\nDatabase kept at {path} (do not commit it).")
    return 0


def _picks(path: Path) -> dict[str, Any]:
    with sqlite3.connect(path) as conn:
        huge = conn.execute("select trace_id from runs order by span_count desc limit 1").fetchone()
        loop = conn.execute(
            "select trace_id from runs where category = 'max_turns_exceeded' "
            "and span_count < 100 order by started_at desc limit 1"
        ).fetchone()
    return {"huge": huge[0], "max_turns": loop[0]}


if __name__ == "__main__":
    raise SystemExit(main())
