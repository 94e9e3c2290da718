"""`turnscope diff`: pairs of runs of one workflow, recorded through the real Runner with a
fake model, name the first turn where they part and its kind; identical runs do not part;
runs of different workflows are refused; runs recorded without content are compared on
their structure only. Runs on both SDK versions (the demo's fake model plays both)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunConfig,
    Runner,
    function_tool,
    input_guardrail,
)
from conftest import recording

from turnscope.analysis.diff import DifferentWorkflows, check_workflows, diff_runs
from turnscope.cli import main
from turnscope.demo.model import DemoModel, call, text
from turnscope.store.queries import Store

STOCK = {"widget": "3 left"}  # what the stock tool answers (changed between two runs)


@function_tool
def lookup_order(order_id: str) -> str:
    """Look up an order."""
    return f"Order {order_id}: shipped"


@function_tool
def search_orders(order_id: str) -> str:
    """Search orders."""
    return f"1 order matches {order_id}"


@function_tool
def stock(item: str) -> str:
    """How many are left."""
    return STOCK[item]


def _loop(max_turns: int, loops: int) -> Callable[[], Any]:
    steps = [[call("lookup_order", {"order_id": "A12"})] for _ in range(loops)]
    steps.append([text("Shipped.")])
    agent = Agent(name="Looper", tools=[lookup_order], model=DemoModel(steps))
    return lambda: (agent, "Where is A12?", max_turns)


def _orders(tool: str, order_id: str) -> Callable[[], Any]:
    def build() -> Any:
        steps = [[call(tool, {"order_id": order_id})], [text("Here it is.")]]
        agent = Agent(name="Orders", tools=[lookup_order, search_orders], model=DemoModel(steps))
        return agent, "Find my order", 5

    return build


def _stock(answer: str) -> Callable[[], Any]:
    def build() -> Any:
        STOCK["widget"] = answer
        steps = [[call("stock", {"item": "widget"})], [text("Checked.")]]
        return Agent(name="Stock", tools=[stock], model=DemoModel(steps)), "Any widgets?", 5

    return build


def _triage(hand_off: bool) -> Callable[[], Any]:
    def build() -> Any:
        billing = Agent(name="Billing", model=DemoModel([[text("Billing: refunded.")]]))
        first = [call("transfer_to_billing")] if hand_off else [text("I can do that myself.")]
        triage = Agent(name="Triage", handoffs=[billing], model=DemoModel([first]))
        return triage, "Refund me", 5

    return build


def _guarded(trip: bool) -> Callable[[], Any]:
    def build() -> Any:
        @input_guardrail
        async def policy(ctx: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
            """Trips when told to."""
            return GuardrailFunctionOutput(output_info={"trip": trip}, tripwire_triggered=trip)

        agent = Agent(
            name="Tutor", input_guardrails=[policy], model=DemoModel([[text("Here is help.")]])
        )
        return agent, "Do my homework", 5

    return build


# pair name -> (workflow, A, B)
PAIRS: dict[str, tuple[str, Callable[[], Any], Callable[[], Any]]] = {
    "identical": ("Identical", _loop(5, 1), _loop(5, 1)),
    "extra_loop": ("Loop", _loop(5, 2), _loop(5, 3)),
    "looped_out": ("Looped out", _loop(2, 5), _loop(4, 5)),
    "tool": ("Tools", _orders("lookup_order", "A12"), _orders("search_orders", "A12")),
    "arguments": ("Arguments", _orders("lookup_order", "A12"), _orders("lookup_order", "A13")),
    "tool_output": ("Stock", _stock("3 left"), _stock("sold out")),
    "handoff": ("Triage", _triage(True), _triage(False)),
    "guardrail": ("Guarded", _guarded(False), _guarded(True)),
}


def _trace_id(pair: str, side: str, content: bool = True) -> str:
    number = list(PAIRS).index(pair) * 4 + (1 if side == "b" else 0) + (0 if content else 2)
    return f"trace_{number + 1:02x}{'0' * 30}"  # the first two digits tell runs apart


def _record(db: str, content: bool, pairs: list[str]) -> None:
    async def play(build: Callable[[], Any], workflow: str, trace_id: str) -> None:
        agent, prompt, max_turns = build()
        config = RunConfig(workflow_name=workflow, trace_id=trace_id)
        try:
            await Runner.run(agent, prompt, max_turns=max_turns, run_config=config)
        except Exception:  # the failing side of a pair (max turns, a tripwire)
            pass

    with recording(db, capture_content=content):
        for pair in pairs:
            workflow, a, b = PAIRS[pair]
            asyncio.run(play(a, workflow, _trace_id(pair, "a", content)))
            asyncio.run(play(b, workflow, _trace_id(pair, "b", content)))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Every pair recorded once into one SQLite file; two pairs also without content."""
    url = f"sqlite:///{tmp_path_factory.mktemp('diff') / 'pairs.db'}"
    _record(url, True, list(PAIRS))
    _record(url, False, ["arguments", "tool"])
    return url


def _diff(db: str, pair: str, content: bool = True) -> Any:
    store = Store(db)
    sides = []
    for side in ("a", "b"):
        trace_id = _trace_id(pair, side, content)
        run = store.get_run(trace_id)
        assert run is not None, (pair, side)
        sides.append((run, store.analysis(trace_id)))
    (run_a, an_a), (run_b, an_b) = sides
    return diff_runs(run_a, an_a, run_b, an_b)


LOOKUP_A12 = '`lookup_order` `{"order_id": "A12"}`'
EXPECTED = {  # pair -> (first divergent turn, kind, words the sentence says)
    "extra_loop": (
        3,
        "extra_turns",
        "Identical for turns 1–2. Turn 3: B made 1 more turn with identical calls "
        f"({LOOKUP_A12}), then the runs meet again.",
    ),
    "looped_out": (
        3,
        "extra_turns",
        "Identical for turns 1–2. From turn 3, B made 2 more turns with identical calls "
        f"({LOOKUP_A12}).",
    ),
    "tool": (1, "tool", "Turn 1: A called `lookup_order`, B called `search_orders`."),
    "arguments": (
        1,
        "arguments",
        "Turn 1: both called `lookup_order`; arguments differ: "
        '`{"order_id": "A12"}` vs `{"order_id": "A13"}`.',
    ),
    "tool_output": (
        1,
        "tool_output",
        "Turn 1: same call `stock` with the same arguments, different tool output: "
        "`3 left` vs `sold out`.",
    ),
    "handoff": (1, "handoff", "Turn 1: A handed off to Billing, B answered."),
    "guardrail": (1, "guardrail", "Turn 1: B's input guardrail `policy` tripped."),
}


@pytest.mark.parametrize("pair", list(EXPECTED))
def test_the_first_divergent_turn_and_its_kind(db: str, pair: str) -> None:
    turn, kind, sentence = EXPECTED[pair]
    diff = _diff(db, pair)
    assert (diff.first_divergent_turn, diff.kind) == (turn, kind), diff.summary
    assert diff.summary == sentence
    rows = diff.rows
    assert all(r.same for r in rows[: turn - 1])  # every turn before it is alike
    assert not rows[turn - 1].same


def test_the_rows_of_an_extra_loop_line_up(db: str) -> None:
    """A looped three times, B four: the extra turn is B's alone, the answers pair up."""
    rows = _diff(db, "extra_loop").rows
    assert [(r.a and r.a.index, r.b and r.b.index) for r in rows] == [
        (1, 1),
        (2, 2),
        (None, 3),
        (3, 4),
    ]
    assert rows[3].same  # both answered "Shipped." after their loops


def test_identical_runs_do_not_part(db: str) -> None:
    diff = _diff(db, "identical")
    assert diff.first_divergent_turn is None and diff.kind is None
    assert diff.summary.startswith("No divergence")
    assert all(r.same for r in diff.rows) and len(diff.rows) == 2


def test_a_tripped_guardrail_shows_both_verdicts(db: str) -> None:
    diff = _diff(db, "guardrail")
    assert diff.a["status"] == "succeeded"
    assert (diff.b["status"], diff.b["category"]) == ("failed", "input_guardrail_tripwire")


def test_without_content_only_the_structure_is_compared(db: str) -> None:
    """Recorded with capture_content=False: different arguments cannot be seen (and the diff
    says so), a different tool still can."""
    same = _diff(db, "arguments", content=False)
    assert same.first_divergent_turn is None and not same.content_compared
    assert any("capture_content=False" in n and "structure only" in n for n in same.notes)
    tools = _diff(db, "tool", content=False)
    assert (tools.first_divergent_turn, tools.kind) == (1, "tool")


def test_runs_of_different_workflows_are_refused(db: str) -> None:
    store = Store(db)
    a = store.get_run(_trace_id("tool", "a"))
    b = store.get_run(_trace_id("handoff", "a"))
    with pytest.raises(DifferentWorkflows, match="different workflows"):
        check_workflows(a, b)  # type: ignore[arg-type]


# --- the command ------------------------------------------------------------------------------


def test_cli_text_names_the_divergence_and_both_verdicts(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _trace_id("guardrail", "a"), _trace_id("guardrail", "b")
    assert main(["diff", a[:8], b, "--db", db]) == 0  # a unique prefix is enough
    out = capsys.readouterr().out
    assert EXPECTED["guardrail"][2] in out
    assert "A  succeeded" in out and "B  failed · input_guardrail_tripwire" in out
    assert f"A  {a}  Guarded" in out


def test_cli_json(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _trace_id("arguments", "a"), _trace_id("arguments", "b")
    assert main(["diff", a, b, "--db", db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["first_divergent_turn"], report["kind"]) == (1, "arguments")
    assert report["a"]["trace_id"] == a and report["b"]["trace_id"] == b
    first = report["aligned"][0]
    assert first["changes"][0] == {
        "field": "arguments",
        "a": {
            "name": "lookup_order",
            "arguments": '{"order_id": "A12"}',
            "output": "Order A12: shipped",
            "error": None,
        },
        "b": {
            "name": "lookup_order",
            "arguments": '{"order_id": "A13"}',
            "output": "Order A13: shipped",
            "error": None,
        },
    }
    a, b = _trace_id("identical", "a"), _trace_id("identical", "b")
    assert main(["diff", a, b, "--db", db, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["first_divergent_turn"] is None and report["kind"] is None
    assert "no divergence" in report["summary"].lower()


def test_cli_refuses_different_workflows_unless_forced(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _trace_id("tool", "a"), _trace_id("handoff", "a")
    assert main(["diff", a, b, "--db", db]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different workflows ('Tools' vs 'Triage')" in err[0]
    assert "--force" in err[0]
    assert main(["diff", a, b, "--db", db, "--force"]) == 0
    assert "Turn 1:" in capsys.readouterr().out


def test_cli_unknown_trace_id(db: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["diff", _trace_id("tool", "a"), "trace_nope", "--db", db]) == 2
    assert "no run with trace id 'trace_nope'" in capsys.readouterr().err


def test_every_kind_is_documented() -> None:
    """The closed vocabulary of kinds (analysis/diff.py) and docs/debug-loop.md agree."""
    from turnscope.analysis.diff import ALL_KINDS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "debug-loop.md").read_text()
    table = {line.split("`")[1] for line in doc.splitlines() if line.startswith("| `")}
    assert set(ALL_KINDS) | {"null"} <= table, set(ALL_KINDS) - table
