"""Cost: model calls priced from their stored tokens with genai-prices' own data, summed per
turn, agent and run, honest about unknown models, changed by a price file after the fact, and
the money a failed run spent after it went wrong. Real Runner, fake model, real SQLite, the
real CLI; on both SDK versions."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from agents.exceptions import MaxTurnsExceeded
from genai_prices import Usage, calc_price

from turnscope.analysis.cost import run_cost
from turnscope.cli import main
from turnscope.demo.model import DemoModel, call, text
from turnscope.prices import load_book, money
from turnscope.store.costs import conversation_cost
from turnscope.store.queries import Store
from turnscope.viewer.format import incident_report


@function_tool
def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id}: shipped"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def _record(db_url: str, make_recorder: Any, agent: Agent, name: str, **kw: Any) -> None:
    with make_recorder(db_url) as processor:
        try:
            Runner.run_sync(
                agent, "Where is order A-1?", run_config=RunConfig(workflow_name=name), **kw
            )
        except MaxTurnsExceeded:
            pass
        processor.flush()


def _library(model: str, inp: int, cached: int, out: int, reasoning: int) -> Decimal:
    usage = Usage(
        input_tokens=inp,
        cache_read_tokens=cached,
        output_tokens=out,
        output_reasoning_tokens=reasoning,
    )
    return calc_price(usage, model).total_price


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_a_known_model_is_priced_as_the_library_says(
    api: str, db_url: str, db_path: Path, make_recorder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    model = DemoModel(
        [[call("lookup", {"order_id": "A-1"})], [text("Shipped.")]],
        name="gpt-4o-mini",
        api=api,
        tokens=(120_000, 3_000),
        cached_tokens=80_000,
        reasoning_tokens=1_000,
    )
    _record(db_url, make_recorder, Agent(name="Helper", tools=[lookup], model=model), "priced")
    one = _library("gpt-4o-mini", 120_000, 80_000, 3_000, 1_000)
    # the same figure from the library's documented per-million prices: cached input is cheaper
    rates = calc_price(Usage(input_tokens=1), "gpt-4o-mini").model_price
    by_hand = (
        40_000 * rates.input_mtok + 80_000 * rates.cache_read_mtok + 3_000 * rates.output_mtok
    ) / 1_000_000
    assert one == by_hand and rates.cache_read_mtok < rates.input_mtok

    row = _cli(capsys, "runs", "--db", str(db_path), "--json")[0]
    assert row["cost_usd"] == float(2 * one) and row["cost_partial"] is False
    report = _cli(capsys, "why", row["trace_id"], "--db", str(db_path), "--json")
    cost = report["cost"]
    assert cost["total_usd"] == float(2 * one) and cost["partial"] is False
    assert cost["unpriced_models"] == [] and cost["by_agent"] == {"Helper": float(2 * one)}
    assert cost["by_turn"] == [{"turn": 1, "usd": float(one)}, {"turn": 2, "usd": float(one)}]
    assert cost["after_failure_usd"] is None  # it did not fail


def test_an_unknown_model_is_unknown_and_the_total_partial(
    db_url: str, db_path: Path, make_recorder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    finetune = Agent(name="Specialist", model=DemoModel([[text("Done.")]], name="my-finetune"))
    triage = Agent(
        name="Triage",
        handoffs=[finetune],
        model=DemoModel([[call("transfer_to_specialist")]], name="gpt-4o-mini"),
    )
    _record(db_url, make_recorder, triage, "partial")
    alone = Agent(name="Solo", model=DemoModel([[text("Hi.")]], name="my-finetune"))
    _record(db_url, make_recorder, alone, "unpriced")

    rows = {r["workflow"]: r for r in _cli(capsys, "runs", "--db", str(db_path), "--json")}
    known = float(_library("gpt-4o-mini", 120, 0, 40, 0))
    assert rows["partial"]["cost_usd"] == known and rows["partial"]["cost_partial"] is True
    assert rows["unpriced"]["cost_usd"] is None and rows["unpriced"]["cost_partial"] is True
    cost = _cli(capsys, "why", rows["partial"]["trace_id"], "--db", str(db_path), "--json")["cost"]
    assert cost["partial"] is True and cost["unpriced_models"] == ["my-finetune"]
    assert cost["by_agent"] == {"Triage": known, "Specialist": None}  # never a fallback price

    assert main(["why", rows["unpriced"]["trace_id"], "--db", str(db_path)]) == 0
    assert "price unknown (my-finetune)" in capsys.readouterr().out
    assert main(["runs", "--db", str(db_path)]) == 0
    table = capsys.readouterr().out
    assert "≥ $" in table  # the partial run's total is a lower bound


def test_a_price_file_changes_runs_already_recorded(
    db_url: str,
    db_path: Path,
    tmp_path: Path,
    make_recorder: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = DemoModel([[text("Hi.")]], name="my-finetune", tokens=(1_000_000, 500_000))
    model.cached_tokens = 400_000
    _record(db_url, make_recorder, Agent(name="Solo", model=model), "finetuned")
    before = _cli(capsys, "runs", "--db", str(db_path), "--json")[0]
    assert before["cost_usd"] is None and before["cost_partial"] is True

    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[models."my-finetune"]\ninput = 2.0\ncached_input = 0.5\noutput = 8.0\n', "utf-8"
    )
    expected = 0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0  # per million tokens
    after = _cli(capsys, "runs", "--db", str(db_path), "--json", "--prices", str(prices))[0]
    assert after["trace_id"] == before["trace_id"]
    assert after["cost_usd"] == pytest.approx(expected) and after["cost_partial"] is False
    monkeypatch.setenv("TURNSCOPE_PRICES", str(prices))  # the same from the environment
    report = _cli(capsys, "why", before["trace_id"], "--db", str(db_path), "--json")
    assert report["cost"]["total_usd"] == pytest.approx(expected)
    assert main(["runs", "--db", str(db_path)]) == 0
    assert "$5.40" in capsys.readouterr().out

    for bad, says in (
        ('[models."x"]\ninput = "cheap"\noutput = 1\n', "input must be a number"),
        ('[models."x"]\ninput = 1\n', "output is missing"),
        ('[models."x"]\ninput = 1\noutput = 1\nwrite = 2\n', "unknown key 'write'"),
        ("not toml [", "not valid TOML"),
    ):
        prices.write_text(bad, "utf-8")
        assert main(["runs", "--db", str(db_path), "--prices", str(prices)]) == 2
        err = capsys.readouterr().err
        assert says in err and str(prices) in err and len(err.strip().splitlines()) == 1


def test_per_agent_costs_of_a_handoff_run_sum_to_its_total(db_url: str, make_recorder: Any) -> None:
    billing = Agent(
        name="Billing",
        tools=[lookup],
        model=DemoModel(
            [[call("lookup", {"order_id": "A-1"})], [text("Shipped.")]],
            name="gpt-4.1-mini",
            tokens=(5_000, 700),
            cached_tokens=2_048,
        ),
    )
    triage = Agent(
        name="Triage",
        handoffs=[billing],
        model=DemoModel([[call("transfer_to_billing")]], name="gpt-4o-mini", tokens=(900, 30)),
    )
    _record(db_url, make_recorder, triage, "handoff")
    store = Store(db_url)
    try:
        trace_id = store.list_runs(limit=1)[0]["trace_id"]
        cost = run_cost(store.analysis(trace_id), load_book())
        together = conversation_cost(store, [trace_id], load_book())
    finally:
        store.close()
    assert set(cost.by_agent) == {"Triage", "Billing"}
    assert sum(t.usd for t in cost.by_agent.values()) == cost.total.usd
    assert sum(t.usd for _, t in cost.by_turn) == cost.total.usd
    assert cost.total.usd == _library("gpt-4o-mini", 900, 0, 30, 0) + 2 * _library(
        "gpt-4.1-mini", 5_000, 2_048, 700, 0
    )
    assert together.usd == cost.total.usd  # what a conversation page sums


def test_money_spent_after_a_max_turns_loop_began(
    db_url: str, db_path: Path, make_recorder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = Agent(
        name="Researcher",
        tools=[lookup],
        model=DemoModel(
            [[call("lookup", {"order_id": "A-1"})] for _ in range(6)],
            name="gpt-4o-mini",
            tokens=(20_000, 400),
        ),
    )
    _record(db_url, make_recorder, agent, "loop", max_turns=4)
    row = _cli(capsys, "runs", "--db", str(db_path), "--json")[0]
    assert row["category"] == "max_turns_exceeded"
    one = float(_library("gpt-4o-mini", 20_000, 0, 400, 0))
    cost = _cli(capsys, "why", row["trace_id"], "--db", str(db_path), "--json")["cost"]
    assert cost["total_usd"] == pytest.approx(4 * one)
    # the same lookup from turn 1 on: turns 2-4 are the loop
    assert cost["after_failure_usd"] == pytest.approx(3 * one)
    assert main(["why", row["trace_id"], "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    sentence = f"{money(3 * one)} of {money(4 * one)} spent after turn 1, in the loop"
    assert sentence in out
    store = Store(str(db_path))  # the incident report says it too
    try:
        analysis = store.analysis(row["trace_id"])
        run = store.get_run(row["trace_id"])
    finally:
        store.close()
    report = incident_report(run, analysis, cost=run_cost(analysis, load_book()))
    assert "## Cost" in report and f"**After the failure:** {sentence}" in report


@pytest.mark.postgres
def test_cost_on_postgresql_reads_the_cached_tokens_inside_the_usage_json(
    pg_url: str, make_recorder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    model = DemoModel(
        [[text("Hi.")]], name="gpt-4o-mini", tokens=(50_000, 1_000), cached_tokens=30_000
    )
    _record(pg_url, make_recorder, Agent(name="Solo", model=model), "on postgres")
    row = _cli(capsys, "runs", "--db", pg_url, "--json")[0]
    assert row["cost_usd"] == float(_library("gpt-4o-mini", 50_000, 30_000, 1_000, 0))
