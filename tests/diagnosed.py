"""Runs whose verdicts carry a reason and warnings, written through the real writer.

The analysis does not produce reasons or warnings yet everywhere; these records stand for
what it will write, so the store, the CLI and the viewer can be checked on them now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from turnscope.records import RunRecord, RunWarning, Verdict
from turnscope.sinks import Batch
from turnscope.store.writer import DbSink, ProcessInfo

START = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def _run(
    n: int,
    status: str,
    category: str | None = None,
    reason: str | None = None,
    warnings: list[RunWarning] | None = None,
    message: str | None = None,
    agent: str | None = None,
) -> RunRecord:
    started = START + timedelta(minutes=n)
    verdict = Verdict(
        status=status,
        category=category,
        reason=reason,
        message=message,
        agent=agent,
        turn=1 if agent else None,
        explanation=f"run {n}: {category or status}",
        warnings=list(warnings or []),
    )
    return RunRecord(
        trace_id=f"trace_diag{n:028d}",
        workflow="Diagnosed",
        status=status,
        verdict=verdict,
        started_at=started,
        ended_at=started + timedelta(seconds=2),
        trace_ended=True,
        agents=[agent or "Helper"],
        turns=1,
        first_error=message,
    )


REFUSAL = RunWarning("refusal", "The final message is a refusal", "Helper", 2, "span_refusal")
TOOL_REPORTED = RunWarning("tool_reported_error", "lookup said: not found", "Helper", 1, None)
NESTED = RunWarning("nested_run_failed", "Agent-as-tool 'Inner' failed", "Inner", 1, "span_x")

LIMIT = {"message": "Rate limit reached", "agent": "Writer"}
RUNS = [
    _run(1, "failed", "model_error", "rate_limited", **LIMIT),
    _run(2, "failed", "model_error", "rate_limited", **LIMIT),
    _run(3, "failed", "model_error", "quota_exceeded", **LIMIT),
    _run(4, "failed", "model_error", None, **LIMIT),
    _run(5, "failed", "mcp_error", "connect", message="could not connect", agent="Files"),
    _run(6, "succeeded", warnings=[TOOL_REPORTED, REFUSAL]),
    _run(7, "failed", "tool_error", None, [NESTED], message="boom", agent="Outer"),
    _run(8, "succeeded"),
]
BY_ID = {r.trace_id: r for r in RUNS}


def write_diagnosed(url: str, runs: list[RunRecord] | None = None) -> list[RunRecord]:
    """Write the runs through DbSink (SQLite's multi-row upsert, PostgreSQL's Core upsert)."""
    runs = RUNS if runs is None else runs
    sink = DbSink(url, ProcessInfo("diag", 1, "diag-host", None, "0"))
    sink.open()
    try:
        sink.write(Batch(runs=list(runs)))
    finally:
        sink.close()
    return runs
