"""Every demo workflow, through the real Runner on the installed SDK, gets the right verdict.

The same module runs on openai-agents 0.24 (.venv) and 0.0.17 (.venv-old, Python 3.10);
workflows the installed SDK cannot produce (tool timeouts, tool guardrails, sessions on 0.0.17;
a buggy trace processor or an unenforced streamed guardrail on 0.24) are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnscope.cli import main
from turnscope.demo.runner import CASES, Summary, has_feature, run_demo
from turnscope.records import REASONS, WARNING_KINDS

SUPPORTED = [c for c in CASES if has_feature(c.needs)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    """The demo recorded once into a fresh database."""
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    summary = run_demo(str(db), progress=False)
    return db, summary


@pytest.mark.parametrize("case", SUPPORTED, ids=[c.title for c in SUPPORTED])
def test_each_workflow_gets_its_verdict(demo: tuple[Path, Summary], case: Any) -> None:
    _db, summary = demo
    result = next(r for r in summary.results if r.case is case)
    assert result.row is not None, f"{case.title}: run {result.trace_id} not recorded"
    assert result.mismatches() == [], result.row


def test_every_failure_category_the_sdk_can_produce_is_covered(
    demo: tuple[Path, Summary],
) -> None:
    _db, summary = demo
    seen = {r.category for r in summary.results if r.category}
    expected = {
        "max_turns_exceeded",
        "input_guardrail_tripwire",
        "output_guardrail_tripwire",
        "tool_error",
        "tool_not_found",
        "invalid_final_output",
        "model_error",
        "handoff_error",
        "guardrail_error",
        "mcp_error",
        "config_error",
        "agent_error",
        "cancelled",
        "incomplete",
    }
    if has_feature("tool_timeout"):
        expected |= {"tool_timeout", "tool_guardrail_tripwire"}
    if has_feature("sessions"):
        expected.add("session_error")
    if has_feature("old_sdk_tracing"):
        expected.add("tracing_error")
    assert expected <= seen


def test_every_reason_and_warning_kind_the_sdk_can_produce_is_covered(
    demo: tuple[Path, Summary],
) -> None:
    _db, summary = demo
    rows = [r.row or {} for r in summary.results]
    reasons = {(row.get("category"), row.get("reason")) for row in rows if row.get("reason")}
    kinds = {w["kind"] for row in rows for w in row.get("warnings") or []}
    # every reason of the contract, each under its own category
    assert reasons == {(c, r) for c, rs in REASONS.items() for r in rs}
    expected = set(WARNING_KINDS)
    if not has_feature("unawaited_streamed_guardrails"):  # only 0.0.x streams past one
        expected.remove("guardrail_tripped_unenforced")
    assert kinds == expected
    # each run's warning count in the runs table matches its warnings
    assert all(row.get("warning_count") == len(row.get("warnings") or []) for row in rows)


def test_runs_json_lists_runs_with_the_documented_fields(
    demo: tuple[Path, Summary], capsys: pytest.CaptureFixture[str]
) -> None:
    db, summary = demo
    assert main(["runs", "--db", str(db), "--json", "--limit", "100"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert len(runs) == len(summary.results)
    required = {
        "trace_id",
        "workflow",
        "status",
        "category",
        "started_at",
        "duration_ms",
        "turns",
        "agents",
        "error_count",
        "input_tokens",
        "output_tokens",
    }
    for run in runs:
        assert required <= set(run)
    handoff = next(r for r in runs if r["agents"] == ["Triage", "Billing"] and not r["category"])
    assert handoff["agent_path"] == "Triage → Billing"


def test_runs_filters_by_status_and_category(
    demo: tuple[Path, Summary], capsys: pytest.CaptureFixture[str]
) -> None:
    db, summary = demo
    assert main(["runs", "--db", str(db), "--status", "failed", "--json", "--limit", "100"]) == 0
    failed = json.loads(capsys.readouterr().out)
    assert failed and all(r["status"] == "failed" for r in failed)
    assert len(failed) == sum(1 for r in summary.results if r.status == "failed")
    assert main(["runs", "--db", str(db), "--category", "max_turns_exceeded", "--json"]) == 0
    loops = json.loads(capsys.readouterr().out)
    assert {r["category"] for r in loops} == {"max_turns_exceeded"}
    assert main(["runs", "--db", str(db), "--since", "1h", "--limit", "100"]) == 0
    table = capsys.readouterr().out
    assert "STATUS" in table and "max_turns_exceeded" in table


def test_why_json_is_the_design_contract(
    demo: tuple[Path, Summary], capsys: pytest.CaptureFixture[str]
) -> None:
    db, summary = demo
    result = next(r for r in summary.results if r.case.title == "search loop hits max_turns")
    assert main(["why", result.trace_id, "--db", str(db), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in (
        "trace_id",
        "workflow",
        "status",
        "category",
        "message",
        "exception",
        "agent",
        "turn",
        "max_turns",
        "span_id",
        "tool",
        "explanation",
        "recovered_errors",
        "evidence",
    ):
        assert key in report
    assert report["category"] == "max_turns_exceeded"
    assert report["message"] == "Max turns exceeded"
    assert report["exception"] == "MaxTurnsExceeded"
    assert (report["turn"], report["max_turns"]) == (3, 3)
    assert "stopped after turn 3 of 3" in report["explanation"]
    assert "identical arguments" in report["explanation"]
    assert any("called 3 times" in e["message"] for e in report["evidence"])
    assert all(e["span_id"] for e in report["evidence"])


def test_why_in_words_and_by_prefix(
    demo: tuple[Path, Summary], capsys: pytest.CaptureFixture[str]
) -> None:
    db, summary = demo
    result = next(r for r in summary.results if r.case.title == "flaky tool recovered")
    prefix = result.trace_id.removeprefix("trace_")[:10]
    assert main(["why", prefix, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert result.trace_id in text
    assert "succeeded_with_errors" in text
    assert "Recovered errors" in text and "fetch_exchange_rate ×2" in text
    assert "Turns:" in text


def test_why_prints_the_jaeger_link_when_configured(
    demo: tuple[Path, Summary], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, summary = demo
    monkeypatch.setenv("TURNSCOPE_JAEGER_URL", "http://localhost:16686/")
    trace_id = summary.results[0].trace_id
    assert main(["why", trace_id, "--db", str(db)]) == 0
    hex_id = trace_id.removeprefix("trace_")
    assert f"http://localhost:16686/trace/{hex_id}" in capsys.readouterr().out
