"""A verdict's reason and warnings wherever a user looks: ``runs`` (table, --json, --reason,
--warnings), ``why`` (words and --json) and the viewer's Markdown incident report.

The runs are written through the real writer (``diagnosed.py``). ``why`` and the viewer
recompute the verdict from the spans; those runs have none, so the tests hand the stored
verdict to the rendering through ``Store.analysis``. Needs no streamlit: runs on both SDKs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from diagnosed import BY_ID, REFUSAL, RUNS, write_diagnosed

from turnscope.cli import main
from turnscope.store.queries import Store

WHY_ORDER = [
    "trace_id",
    "workflow",
    "status",
    "category",
    "reason",
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
    "warnings",
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding ``diagnosed.RUNS``."""
    path = tmp_path_factory.mktemp("diagnosed") / "diagnosed.db"
    write_diagnosed(f"sqlite:///{path}")
    return path


@pytest.fixture
def stored_verdicts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``Store.analysis`` gives the stored verdict (these runs have no spans to analyse)."""
    original = Store.analysis

    def analysis(self: Store, trace_id: str) -> Any:
        found = original(self, trace_id)
        if found is not None and trace_id in BY_ID:
            found.verdict = BY_ID[trace_id].verdict
        return found

    monkeypatch.setattr(Store, "analysis", analysis)
    yield


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def _ends(runs: list[dict[str, Any]]) -> set[str]:
    return {r["trace_id"][-2:] for r in runs}


# --- turnscope runs --------------------------------------------------------------------------


def test_runs_json_rows_carry_reason_and_warning_count(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _json(capsys, "runs", "--db", str(db), "--json", "--limit", "100")
    assert len(runs) == len(RUNS)
    for run in runs:
        verdict = BY_ID[run["trace_id"]].verdict
        assert run["reason"] == verdict.reason
        assert run["warning_count"] == len(verdict.warnings)
        assert "warnings" not in run  # the list carries the count; `why` has the warnings
    keys = list(runs[0])
    assert keys.index("reason") == keys.index("category") + 1


def test_runs_filters_by_reason_and_warnings(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["runs", "--db", str(db), "--json"]
    assert _ends(_json(capsys, *base, "--reason", "rate_limited")) == {"01", "02"}
    assert _ends(_json(capsys, *base, "--reason", "connect")) == {"05"}
    assert _ends(_json(capsys, *base, "--warnings")) == {"06", "07"}
    assert _ends(_json(capsys, *base, "--warnings", "--status", "succeeded")) == {"06"}
    assert _json(capsys, *base, "--warnings", "--reason", "rate_limited") == []
    assert _ends(
        _json(capsys, *base, "--category", "model_error", "--reason", "quota_exceeded")
    ) == {"03"}


def test_runs_rejects_an_unknown_reason(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["runs", "--db", str(db), "--reason", "bogus"])
    assert exit_.value.code == 2
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_runs_table_shows_reason_beside_category_and_marks_warnings(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["STARTED", "STATUS", "CHECK", "CATEGORY"]
    by_trace = {line.split()[-1]: line for line in lines[1:] if line.startswith("2026")}
    assert "model_error (rate_limited)" in by_trace[RUNS[0].trace_id]
    assert "mcp_error (connect)" in by_trace[RUNS[4].trace_id]
    assert "model_error  " in by_trace[RUNS[3].trace_id]  # no reason: the category alone
    assert "check ×2" in by_trace[RUNS[5].trace_id]
    assert " check " in by_trace[RUNS[6].trace_id]
    assert "check" not in by_trace[RUNS[7].trace_id]


def test_the_real_command_filters_by_reason(db: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "turnscope.cli", "runs", "--db", str(db), "--reason", "connect"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mcp_error (connect)" in proc.stdout and "1 runs in" in proc.stdout


def test_help_texts_say_reason_and_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    for command, words in (
        ("runs", ("--reason", "--warnings", "reason and warning_count", "CHECK")),
        ("why", ("reason", "warnings")),
    ):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for word in words:
            assert word in text, (command, word)


# --- turnscope why ---------------------------------------------------------------------------


@pytest.mark.usefixtures("stored_verdicts")
def test_why_json_puts_reason_after_category_and_warnings_after_evidence(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _json(capsys, "why", RUNS[0].trace_id, "--db", str(db), "--json")
    assert list(report)[: len(WHY_ORDER)] == WHY_ORDER
    assert (report["category"], report["reason"], report["warnings"]) == (
        "model_error",
        "rate_limited",
        [],
    )
    report = _json(capsys, "why", RUNS[5].trace_id, "--db", str(db), "--json")
    assert report["reason"] is None
    assert report["warnings"] == [w.to_dict() for w in RUNS[5].verdict.warnings]


@pytest.mark.usefixtures("stored_verdicts")
def test_why_in_words_shows_reason_and_lists_warnings(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["why", RUNS[0].trace_id, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "failed · model_error (rate_limited)" in text
    assert "Warnings" not in text
    assert main(["why", RUNS[5].trace_id, "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "Warnings (worth a look):" in text
    assert "  - tool_reported_error [agent Helper, turn 1]: lookup said: not found" in text
    assert f"  - refusal [agent Helper, turn 2, span {REFUSAL.span_id}]: {REFUSAL.message}" in text


# --- the viewer's incident report ------------------------------------------------------------


@pytest.mark.usefixtures("stored_verdicts")
def test_incident_report_has_reason_and_warnings(db: Path) -> None:
    from turnscope.viewer.format import incident_report, run_export

    store = Store(str(db))
    try:
        run = store.get_run(RUNS[6].trace_id)
        analysis = store.analysis(RUNS[6].trace_id)
        report = incident_report(run, analysis)
        assert "- **Status:** failed · tool_error" in report
        assert "## Warnings" in report
        assert "- **nested_run_failed** (agent Inner · turn 1 · span `span_x`): " in report
        assert run_export(run, analysis)["run"]["warnings"] == [
            RUNS[6].verdict.warnings[0].to_dict()
        ]
        run = store.get_run(RUNS[2].trace_id)
        report = incident_report(run, store.analysis(RUNS[2].trace_id))
        assert "- **Status:** failed · model_error (quota_exceeded)" in report
        assert "- **Reason:** quota_exceeded" in report
        assert "## Warnings" not in report
    finally:
        store.close()
