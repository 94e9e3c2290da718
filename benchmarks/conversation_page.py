"""The conversation page at length: one chat of 500 exchanges, opened in a real browser.

1. *Record.* 500 runs through the real ``Runner`` (the demo's fake model, no network), one per
   user message, all with one ``group_id``; every 50th exchange fails (a model error), so the
   page has failures to mark. Recorded by the real processor into a fresh SQLite file.
2. *Query.* ``store.conversations.exchanges`` (what the page reads), median of 5.
3. *Render.* ``turnscope view`` on the database, ``/conversation?id=...`` opened in headless
   Chromium (Debian's ``chromium`` through Playwright): the time from navigation until the
   last exchange is on screen, and until Streamlit has finished; first in a fresh browser
   profile, then the median of three more new tabs (checked at every animation frame, as in
   viewer_scale.py). Baseline in the same run, alternating with it: the Failures page of the
   same database (a light page: what Streamlit itself costs on this machine right now).

Target: under 2 s (on a machine busy with other work, compare with the baseline).

Run: ``.venv/bin/python benchmarks/conversation_page.py [--exchanges 500] [--db PATH]
[--keep]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from browsing import chromium, viewer
from viewer_scale import _drawn, _settle, machine

KEY = "bench-chat"
TARGET_S = 2.0
WARM_VISITS = 3


def record(db: Path, exchanges: int) -> float:
    """One chat of ``exchanges`` runs into ``db``; returns the seconds it took."""
    from agents import Agent, RunConfig, Runner, set_trace_processors

    from turnscope.demo.model import DemoModel, call, text
    from turnscope.exporter.processor import TurnscopeProcessor

    steps: list = []
    for n in range(exchanges):
        if n % 50 == 49:
            steps.append(RuntimeError("upstream 503 from the model provider"))
        elif n % 5 == 0:  # a tool call, then the answer: two turns
            steps += [[call("lookup", {"q": f"order {n}"})], [text(f"Order {n} shipped.")]]
        else:
            steps.append([text(f"Answer {n}: " + "details " * 20)])

    from agents import function_tool

    @function_tool
    def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    agent = Agent(name="Support", tools=[lookup], model=DemoModel(steps))
    processor = TurnscopeProcessor(str(db), flush_interval=0.2)
    set_trace_processors([processor])

    async def chat() -> None:
        for n in range(exchanges):
            try:
                await Runner.run(
                    agent, f"Message {n}: where is my order?", run_config=RunConfig(group_id=KEY)
                )
            except RuntimeError:
                pass

    started = time.perf_counter()
    try:
        asyncio.run(chat())
        processor.flush(60)
    finally:
        set_trace_processors([])
        processor.shutdown(30)
    return time.perf_counter() - started


def measure_query(db: Path) -> tuple[float, int]:
    """Median milliseconds of the page's query, and the exchanges it returned."""
    from turnscope.store.conversations import exchanges
    from turnscope.store.queries import Store

    store = Store(str(db))
    times, rows = [], []
    for _ in range(5):
        started = time.perf_counter()
        rows = exchanges(store, KEY)
        times.append((time.perf_counter() - started) * 1000)
    store.close()
    return statistics.median(times), len(rows)


def measure_browser(db: Path, exchanges: int) -> list[tuple[str, float, float]]:
    """(label, seconds until the last exchange is drawn, seconds until Streamlit is done)."""
    last = [(f'.ts-ex[data-exchange="{exchanges}"]', "", False)]
    failures = [("h1", "Failures", False)]
    targets = [
        (f"conversation page, {exchanges} exchanges", f"/conversation?id={KEY}", last),
        ("baseline: failures page", "/failures", failures),
    ]
    results = []
    with viewer(db) as url, chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        timings: dict[str, list[tuple[float, float]]] = {label: [] for label, _r, _c in targets}
        for _visit in range(1 + WARM_VISITS):
            for label, route, checks in targets:  # alternating: the same load for both
                page = context.new_page()
                started = time.perf_counter()
                page.goto(url + route)
                _drawn(page, checks)
                content = time.perf_counter() - started
                _settle(page, checks)
                full = time.perf_counter() - started
                assert page.locator('[data-testid="stException"]').count() == 0
                timings[label].append((content, full))
                page.close()
    for label, seen in timings.items():
        results.append((f"{label}, first visit", *seen[0]))
        results.append(
            (
                f"{label}, new tab, median of {WARM_VISITS}",
                statistics.median(t[0] for t in seen[1:]),
                statistics.median(t[1] for t in seen[1:]),
            )
        )
    return results


def main() -> None:
    """Record, query, render; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=500)
    parser.add_argument("--db", type=Path, help="database to create (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="turnscope-conv-"))
    db = args.db or workdir / "conversation.db"
    if db.exists():
        raise SystemExit(f"{db} exists: give a new path")
    print(machine())
    seconds = record(db, args.exchanges)
    print(f"recorded {args.exchanges} exchanges through the Runner in {seconds:.1f} s")
    ms, count = measure_query(db)
    print(f"query: {count} exchanges in {ms:.1f} ms (median of 5)")
    figures = measure_browser(db, args.exchanges)
    for label, content, full in figures:
        print(f"{label}: content drawn {content:.2f} s, finished {full:.2f} s")
    page, baseline = figures[1][2], figures[3][2]  # new tabs, finished
    verdict = "met" if page < TARGET_S else "NOT met"
    print(
        f"target < {TARGET_S:.0f} s to open: {verdict} ({page:.2f} s in a new tab; "
        f"{page / baseline:.2f}x the failures page in the same run)"
    )
    if not args.keep and args.db is None:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
