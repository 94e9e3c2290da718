"""Run the demo cases, record them, and check each verdict against its case."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, Runner, function_tool

from turnscope.demo.model import DemoModel, call
from turnscope.demo.scenarios import CASES, Case, config, has_feature

__all__ = ["CASES", "Case", "Result", "Summary", "has_feature", "killed_child", "run_demo"]


@dataclass(slots=True)
class Result:
    """What happened to one case."""

    case: Case
    trace_id: str
    status: str | None = None
    category: str | None = None
    explanation: str = ""
    raised: str | None = None
    row: dict[str, Any] | None = None

    def mismatches(self) -> list[str]:
        """Fields of the recorded verdict that differ from the expected ones."""
        row = self.row or {}
        wanted: dict[str, Any] = {
            "status": self.case.status,
            "category": self.case.category,
            "reason": self.case.reason,
        }
        names = {"agent": "failing_agent", "turn": "failing_turn", "tool": "failing_tool"}
        for key, value in self.case.expect.items():
            if key != "recovered":
                wanted[names.get(key, key)] = value
        out = [
            f"{key}={row.get(key)!r} (expected {value!r})"
            for key, value in wanted.items()
            if row.get(key) != value
        ]
        kinds = sorted(w.get("kind") for w in row.get("warnings") or [])
        if kinds != sorted(self.case.warnings):
            out.append(f"warnings={kinds!r} (expected {sorted(self.case.warnings)!r})")
        if "recovered" in self.case.expect:
            category, tool, count = self.case.expect["recovered"]
            groups = row.get("recovered_errors") or []
            if not any(
                g.get("category") == category and g.get("tool") == tool and g.get("count") == count
                for g in groups
            ):
                out.append(f"recovered_errors={groups!r} (expected {category}/{tool} x{count})")
        return out

    @property
    def ok(self) -> bool:
        """The recorded verdict is the expected one."""
        return not self.mismatches()


@dataclass(slots=True)
class Summary:
    """What the demo recorded."""

    db: str
    results: list[Result] = field(default_factory=list)
    skipped: list[Case] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every case got its expected verdict."""
        return all(r.ok for r in self.results)


def run_demo(
    db: str | None = None,
    *,
    progress: bool = True,
    cases: list[Case] | None = None,
    **processor_options: Any,
) -> Summary:
    """Record the demo cases into ``db`` and check each verdict; prints progress and a summary."""
    from agents import set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor
    from turnscope.store.engine import redact, resolve_url
    from turnscope.store.queries import Store

    url = resolve_url(db)
    processor = TurnscopeProcessor(url, flush_interval=0.1, **processor_options)
    set_trace_processors([processor])  # no upload to OpenAI: the demo never touches the network
    summary = Summary(db=redact(url))
    selected = [c for c in (cases or CASES) if has_feature(c.needs)]
    summary.skipped = [c for c in (cases or CASES) if not has_feature(c.needs)]
    out = sys.stdout
    if progress:
        print(f"Recording {len(selected)} demo runs into {summary.db}", file=out)
    results: list[Result] = []
    for index, case in enumerate(selected, 1):
        trace_id = f"trace_{uuid.uuid4().hex}"
        result = Result(case, trace_id)
        if progress:
            print(f"  [{index:>2}/{len(selected)}] {case.title:<44}", end="", file=out, flush=True)
        started = time.perf_counter()
        try:
            asyncio.run(case.play(trace_id, db=url))
        except BaseException as exc:  # the failures are the point of the demo
            if isinstance(exc, KeyboardInterrupt):
                raise
            result.raised = type(exc).__name__
        results.append(result)
        if progress:
            took = time.perf_counter() - started
            print(f" {result.raised or 'ok':<34} {took * 1000:>6.0f} ms", file=out, flush=True)
    processor.flush(30)
    processor.shutdown(10)
    store = Store(url)
    try:
        for result in results:
            row = store.get_run(result.trace_id)
            if row is not None:
                result.status, result.category = row["status"], row["category"]
                result.explanation = row["explanation"] or ""
                result.row = row
    finally:
        store.close()
    summary.results = results
    if progress:
        _print_summary(summary)
    return summary


def _print_summary(summary: Summary) -> None:
    counts = Counter(r.status for r in summary.results)
    categories = Counter(r.category for r in summary.results if r.category)
    reasons = Counter(r.row["reason"] for r in summary.results if r.row and r.row.get("reason"))
    warnings = Counter(
        w.get("kind") for r in summary.results if r.row for w in r.row.get("warnings") or []
    )
    print("", flush=True)
    print(f"Recorded {len(summary.results)} runs into {summary.db}:")
    print("  " + ", ".join(f"{n} {status}" for status, n in counts.most_common()))
    print("  failure categories: " + ", ".join(f"{c} ×{n}" for c, n in sorted(categories.items())))
    if reasons:
        print("  reasons: " + ", ".join(f"{c} ×{n}" for c, n in sorted(reasons.items())))
    if warnings:
        print("  warnings: " + ", ".join(f"{c} ×{n}" for c, n in sorted(warnings.items())))
    if summary.skipped:
        names = ", ".join(c.title for c in summary.skipped)
        print(f"  skipped (not supported by this openai-agents version): {names}")
    wrong = [r for r in summary.results if not r.ok]
    for r in wrong:
        print(f"  MISMATCH {r.case.title} ({r.trace_id}): {'; '.join(r.mismatches())}")
    if not wrong:
        print("  every run got the verdict it should.")
    print("\nNext: turnscope runs --db ... | turnscope why TRACE_ID | turnscope view")


def killed_child() -> None:
    """Runs in a subprocess (the "worker process killed" case): records a run into
    ``$TURNSCOPE_DB`` and dies mid-tool without any cleanup."""
    from agents import set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor

    processor = TurnscopeProcessor(os.environ["TURNSCOPE_DB"], flush_interval=0.05)
    set_trace_processors([processor])

    @function_tool
    def export_report(month: str) -> str:
        """Export the monthly report (the process dies here)."""
        processor.force_flush()
        os._exit(137)

    agent = Agent(
        name="Reporter",
        tools=[export_report],
        model=DemoModel([[call("export_report", {"month": "2026-10"})]]),
    )
    trace_id = os.environ["TURNSCOPE_DEMO_KILL_TRACE"]
    Runner.run_sync(agent, "Export October's report", run_config=config(trace_id, "Reporting"))
