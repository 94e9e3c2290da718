"""The Compare page for two 60-turn runs, rendered in a real browser.

1. *Record.* Pairs of 60-turn runs of one workflow, through the real ``Runner`` with the
   demo's fake model (a tool call per turn, then an answer), into a fresh SQLite file:
   - *late*: the runs part at turn 40 (39 identical turns collapse into one line);
   - *early*: they part at turn 2 and every later turn differs too (59 rows of differences,
     the most the page draws for 60 turns).
2. *Diff.* ``diff_runs`` on each pair, timed (median of 5): the alignment alone.
3. *Render.* ``turnscope view`` on the database, the page ``/compare?a=...&b=...`` opened in
   headless Chromium (Debian's ``chromium`` through Playwright): the time from navigation
   until the divergence card is drawn (content), and until both timelines (server-drawn HTML
   from ``st.html``: its bars are links) and the open divergent turn are drawn and Streamlit
   has finished (complete); first in a fresh browser profile, then the median of three more
   new tabs. The page is checked at every animation frame (``viewer_scale.py``'s helpers).
   Measured beside it the same way, as a baseline on a busy machine: the viewer's own run
   page for one of the 60-turn runs (its timeline is still Plotly).

Run: ``.venv/bin/python benchmarks/compare_page.py [--turns 60] [--no-browser]``. The database
goes to a temporary folder and is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner, function_tool, set_trace_processors
from browsing import chromium, viewer
from viewer_scale import WARM_VISITS, _drawn, _settle, machine

from turnscope.analysis.diff import diff_runs
from turnscope.demo.model import DemoModel, call, text
from turnscope.exporter.processor import TurnscopeProcessor
from turnscope.store.queries import Store

TARGET_S = 2.0
RUN_PAGE = (
    [(".st-key-verdict_card", "", False)],
    [(".st-key-timeline .main-svg", "", False)],
)


@function_tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"result for {q}"


async def _run(trace_id: str, turns: int, changed_from: int, every: bool) -> None:
    """``turns`` turns: a lookup per turn, then an answer; from turn ``changed_from`` on the
    arguments differ (only there, or ``every`` later turn too)."""
    steps: list[Any] = []
    for n in range(1, turns):
        moved = n == changed_from or (every and n >= changed_from)
        steps.append([call("lookup", {"q": f"item {n}" + (" (changed)" if moved else "")})])
    steps.append([text("Here is everything I found.")])
    agent = Agent(name="Researcher", tools=[lookup], model=DemoModel(steps))
    config = RunConfig(workflow_name="Long research", trace_id=trace_id)
    await Runner.run(agent, "Research everything", max_turns=turns + 5, run_config=config)


def record(path: Path, turns: int) -> dict[str, tuple[str, str]]:
    """The pairs, recorded through the real Runner: name -> (trace id of A, of B)."""
    pairs = {
        "late": ("trace_" + "a1" * 16, "trace_" + "b1" * 16, 40, False),
        "early": ("trace_" + "a2" * 16, "trace_" + "b2" * 16, 2, True),
    }
    processor = TurnscopeProcessor(f"sqlite:///{path}", flush_interval=0.05)
    set_trace_processors([processor])
    try:
        for a, b, changed, every in pairs.values():
            asyncio.run(_run(a, turns, turns + 1, False))
            asyncio.run(_run(b, turns, changed, every))
    finally:
        set_trace_processors([])
        processor.shutdown(30)
    return {name: (a, b) for name, (a, b, _, _) in pairs.items()}


def time_diffs(path: Path, pairs: dict[str, tuple[str, str]]) -> list[tuple[str, float, str]]:
    """``diff_runs`` per pair (runs read and analysed once): median of 5, in ms."""
    store = Store(str(path))
    out = []
    for name, (a, b) in pairs.items():
        sides = [(store.get_run(t), store.analysis(t)) for t in (a, b)]
        times = []
        diff = None
        for _ in range(5):
            started = time.perf_counter()
            diff = diff_runs(sides[0][0], sides[0][1], sides[1][0], sides[1][1])
            times.append((time.perf_counter() - started) * 1000)
        assert diff is not None
        rows = len(diff.rows)
        note = f"{rows} rows; {diff.summary[:90]}"
        out.append((name, statistics.median(times), note))
    store.close()
    return out


def time_pages(path: Path, pairs: dict[str, tuple[str, str]]) -> list[tuple[str, float, float]]:
    """The Compare page of each pair in headless Chromium: (label, content s, complete s)."""
    content = [(".st-key-divergence", "Turn", False)]
    complete = [
        (".st-key-compare_timeline a.tlh-bar", "", False),
        (".st-key-divergent_turn details[open]", "", False),
    ]
    results = []
    with viewer(path) as url, chromium() as browser:
        targets = [
            (f"{name}: Compare page", f"/compare?a={a}&b={b}", content, complete)
            for name, (a, b) in pairs.items()
        ]
        # the baseline: the viewer's own run page for one of the runs (60 turns)
        b = pairs["early"][1]
        targets.append(("baseline: run page of B", f"/run?trace_id={b}", *RUN_PAGE))
        for name, route, first_checks, last_checks in targets:
            timings = []
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            for _visit in range(1 + WARM_VISITS):
                page = context.new_page()
                started = time.perf_counter()
                page.goto(url + route)
                _drawn(page, first_checks)
                shown = time.perf_counter() - started
                _settle(page, last_checks)
                full = time.perf_counter() - started
                assert page.locator('[data-testid="stException"]').count() == 0, name
                timings.append((shown, full))
                page.close()
            context.close()
            results.append((f"{name}: empty browser cache", *timings[0]))
            warm = [statistics.median(t[i] for t in timings[1:]) for i in (0, 1)]
            results.append((f"{name}: new tab, median of {WARM_VISITS}", *warm))
    return results


def main() -> int:
    """Record, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=60, help="turns per run (default 60)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="turnscope-compare-"))
    path = folder / "compare.db"
    print(f"Machine: {machine()}")
    try:
        pairs = record(path, args.turns)
        print(f"\nTwo pairs of {args.turns}-turn runs recorded into {path}")
        print("\ndiff_runs (median of 5):")
        for name, ms, note in time_diffs(path, pairs):
            print(f"  {name:<6} {ms:>7.1f} ms  {note}")
        if not args.no_browser:
            print("\nCompare page in headless Chromium (seconds from navigation):")
            print(f"  {'':<50} {'content':>8} {'complete':>9}   target: complete < 2 s")
            for label, shown, full in time_pages(path, pairs):
                verdict = "met" if full < TARGET_S else "NOT met"
                print(f"  {label:<50} {shown:>8.2f} {full:>9.2f}   {verdict}")
            print(
                "  content: the divergence sentence (run page: the verdict card) drawn; complete: "
                "the timelines' bars and the open divergent turn drawn, Streamlit done"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
