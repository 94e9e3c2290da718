"""``turnscope repro``: each failure the demo records becomes a pytest file that replays it offline.

One demo run per failure category the installed SDK produces (both max-turns runs, one model
error) and a success are recorded once; ``turnscope repro`` writes a file for each into one
folder, and ONE pytest subprocess on the same interpreter runs them all: each file must pass,
i.e. turnscope gives the replay the recorded verdict. The same module runs on openai-agents
0.24 and 0.0.17. Refusals (no content, incomplete, unknown id) exit 2 with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner
from support.otlp_receiver import HttpReceiver

from turnscope.cli import main
from turnscope.demo.failures import search_docs
from turnscope.demo.model import DemoModel, call, text
from turnscope.demo.runner import CASES, Case, Summary, has_feature, run_demo
from turnscope.demo.scenarios import config, lookup_order
from turnscope.store.queries import Store
from turnscope.store.runfilter import RunFilter

ROOT = Path(__file__).resolve().parents[1]

# an incomplete run (the killed worker) is refused: the refusal test records it
NOT_REPLAYED = {"incomplete"}


def _replayed_cases() -> list[Any]:
    """The first demo case of each failure category, every max-turns case, a success and a
    run paused for approval (new SDKs)."""
    chosen: list[Any] = []
    seen: set[str] = set()
    for case in CASES:
        if not has_feature(case.needs) or case.category in NOT_REPLAYED:
            continue
        first = case.category is not None and case.category not in seen
        if first or case.category == "max_turns_exceeded":
            chosen.append(case)
            seen.add(case.category)
    successes = ("handoff, tool call, answer", "tool awaits a human's approval")
    chosen += [c for c in CASES if c.title in successes and has_feature(c.needs)]
    return chosen


async def _loop_sdk_kept_no_content(trace_id: str) -> Any:
    """The search loop with the SDK's own content switch off: the model spans keep no output
    (a Responses span holds no response), the function spans no arguments or output."""
    steps = [[call("search_docs", {"query": "refunds"})] for _ in range(4)]
    agent = Agent(name="Researcher", tools=[search_docs], model=DemoModel(steps, api="responses"))
    run_config = config(trace_id, "Research", trace_include_sensitive_data=False)
    return await Runner.run(agent, "Refunds?", max_turns=3, run_config=run_config)


async def _handoff_sdk_kept_no_content(trace_id: str) -> Any:
    """Triage hands off to Billing, which looks an order up and answers; no content kept."""
    steps = [[call("lookup_order", {"order_id": "A-1"})], [text("Shipped.")]]
    billing = Agent(name="Billing", tools=[lookup_order], model=DemoModel(steps, api="responses"))
    triage = Agent(
        name="Triage",
        handoffs=[billing],
        model=DemoModel([[call("transfer_to_billing")]], api="responses"),
    )
    run_config = config(trace_id, "Support", trace_include_sensitive_data=False)
    return await Runner.run(triage, "Where is A-1?", run_config=run_config)


# runs whose model outputs were not stored: the replay rebuilds them from the spans that follow
REBUILT = [
    Case(
        "loop, SDK kept no content",
        "Research",
        "failed",
        "max_turns_exceeded",
        _loop_sdk_kept_no_content,
        expect={"agent": "Researcher", "turn": 3},
    ),
    Case(
        "handoff, SDK kept no content",
        "Support",
        "succeeded",
        None,
        _handoff_sdk_kept_no_content,
        expect={"agent": "Billing", "turn": 3},
    ),
]
REPLAYED = _replayed_cases() + REBUILT


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    """The chosen demo runs recorded once."""
    db = tmp_path_factory.mktemp("repro") / "demo.db"
    return db, run_demo(str(db), progress=False, cases=REPLAYED)


@pytest.fixture(scope="module")
def replays(
    demo: tuple[Path, Summary], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str]]:
    """``turnscope repro`` for every recorded run, then one pytest run over all the files:
    {file name: {test name: outcome}}."""
    db, summary = demo
    folder = tmp_path_factory.mktemp("replays")
    for result in summary.results:
        out = folder / f"test_repro_{result.trace_id[-12:]}.py"
        assert main(["repro", result.trace_id, "--db", str(db), "-o", str(out)]) == 0
    report = folder / "report.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TURNSCOPE_DB")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's turnscope
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    outcomes: dict[str, dict[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("classname", "").rpartition(".")[2] + ".py"
        failed = case.find("failure") is not None or case.find("error") is not None
        outcome = (
            "skipped" if case.find("skipped") is not None else "failed" if failed else "passed"
        )
        outcomes.setdefault(name, {})[case.get("name", "")] = outcome
    assert outcomes, proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes["_output"] = {"stdout": proc.stdout}
    outcomes["_folder"] = {"path": str(folder)}
    return outcomes


@pytest.mark.parametrize("case", REPLAYED, ids=[c.title for c in REPLAYED])
def test_the_replay_of_each_recorded_run_gets_its_verdict(
    case: Any, demo: tuple[Path, Summary], replays: dict[str, dict[str, str]]
) -> None:
    _db, summary = demo
    result = next(r for r in summary.results if r.case is case)
    assert result.ok, result.mismatches()  # the recorded verdict is the demo's own
    tests = replays.get(f"test_repro_{result.trace_id[-12:]}.py")
    assert tests, replays["_output"]["stdout"][-3000:]
    assert tests["test_replay_gives_the_recorded_verdict"] == "passed", replays["_output"][
        "stdout"
    ][-5000:]
    if case in REBUILT:
        text = replays["_folder"]["path"] + f"/test_repro_{result.trace_id[-12:]}.py"
        assert "was not stored: rebuilt from the tool calls" in " ".join(
            Path(text).read_text().split()
        )
    if case.category == "max_turns_exceeded":
        # the changed setting the file shows: one more turn and a final answer succeed
        assert tests["test_more_turns_let_the_run_answer"] == "passed"


def test_every_failure_category_the_demo_replays_is_covered() -> None:
    categories = {c.category for c in REPLAYED if c.category and c not in REBUILT}
    expected = {c.category for c in CASES if has_feature(c.needs) and c.category} - NOT_REPLAYED
    assert categories == expected


def test_the_command_writes_the_file_and_prints_how_to_run_it(
    demo: tuple[Path, Summary],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, summary = demo
    result = next(r for r in summary.results if r.case.title == "search loop hits max_turns")
    monkeypatch.chdir(tmp_path)
    prefix = result.trace_id.removeprefix("trace_")[:10]
    assert main(["repro", prefix, "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    path = tmp_path / f"test_repro_{result.trace_id.removeprefix('trace_')[:12]}.py"
    assert out[0] == f"Wrote {path.name} (replays {result.trace_id}: failed · max_turns_exceeded)"
    assert out[1] == f"Run it:  {sys.executable} -m pytest -q {path.name}"
    text = path.read_text()
    # the comment block: what was recorded, what is stubbed, where a fix goes
    head = " ".join(text.split('"""')[1].split())
    assert "Recorded verdict: failed · max_turns_exceeded, agent 'Researcher', turn 3." in head
    assert "max_turns=3 (recorded)" in head
    assert "tools search_docs: stubs that return" in head
    assert "put your real tool in place of stub_tool(...)" in head
    assert "raised and one more scripted answer the same run succeeds" in head
    assert "MAX_TURNS = 3  # recorded" in text
    compile(text, str(path), "exec")
    # a second run refuses to overwrite it, --force does
    assert main(["repro", prefix, "--db", str(db)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["repro", prefix, "--db", str(db), "--force"]) == 0


def test_replay_db_stores_the_replay_with_the_verdict_the_test_checked(
    demo: tuple[Path, Summary], tmp_path: Path
) -> None:
    """REPLAY_DB: the replay also lands in a database, with the verdict the file asserted on
    (taken from the processor, the same as the one stored). The replay stays offline when
    the environment asks for OTLP export."""
    db, summary = demo
    result = next(r for r in summary.results if r.case.category == "input_guardrail_tripwire")
    path = tmp_path / "test_repro_stored.py"
    assert main(["repro", result.trace_id, "--db", str(db), "-o", str(path)]) == 0
    replay_db = tmp_path / "replay.db"
    text = path.read_text()
    assert "REPLAY_DB = None" in text
    path.write_text(text.replace("REPLAY_DB = None", f"REPLAY_DB = {str(replay_db)!r}"))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "TURNSCOPE_DB")}
    env["PYTHONPATH"] = str(ROOT)
    with HttpReceiver() as receiver:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert receiver.requests == 0
    stores = Store(str(replay_db)), Store(str(db))
    try:
        (run,) = stores[0].list_runs(RunFilter(), limit=10)
        recorded = stores[1].get_run(result.trace_id)
    finally:
        for store in stores:
            store.close()
    assert recorded is not None
    fields = ("status", "category", "reason", "failing_agent", "failing_turn")
    assert [run[f] for f in fields] == [recorded[f] for f in fields]


def _one_line_refusal(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("turnscope: "), err
    for needle in needles:
        assert needle in err[0]


def test_a_run_recorded_without_content_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "no-content.db"
    loop = [c for c in CASES if c.title == "search loop hits max_turns"]
    summary = run_demo(str(db), progress=False, cases=loop, capture_content=False)
    trace_id = summary.results[0].trace_id
    assert main(["repro", trace_id, "--db", str(db), "-o", str(tmp_path / "t.py")]) == 2
    _one_line_refusal(capsys, "capture_content=False", "cannot be replayed")
    assert not (tmp_path / "t.py").exists()


def test_an_incomplete_run_and_an_unknown_id_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "killed.db"
    killed = [c for c in CASES if c.title == "worker process killed"]
    summary = run_demo(str(db), progress=False, cases=killed)
    trace_id = summary.results[0].trace_id
    assert summary.results[0].status == "incomplete"
    assert main(["repro", trace_id, "--db", str(db), "-o", str(tmp_path / "t.py")]) == 2
    _one_line_refusal(capsys, "incomplete", "refusing")
    assert main(["repro", "trace_nope", "--db", str(db)]) == 2
    _one_line_refusal(capsys, "no run with trace id")


def test_a_run_that_lost_spans_is_refused(demo: tuple[Path, Summary]) -> None:
    from turnscope.repro.script import ReproError, build_script
    from turnscope.store.queries import Store

    db, summary = demo
    trace_id = summary.results[0].trace_id
    store = Store(str(db))
    try:
        run, spans = store.get_run(trace_id), store.spans(trace_id)
    finally:
        store.close()
    assert build_script(run, spans).trace_id == trace_id
    with pytest.raises(ReproError, match=r"lost 3 span\(s\) to a full buffer"):
        build_script({**run, "dropped_spans": 3}, spans)
