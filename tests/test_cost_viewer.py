"""Cost in the viewer (Streamlit's AppTest on the demo's runs, real SQLite): the runs list's
cost column and figures, the cost chart, and the verdict card's spend after a loop began."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest
from support.apptest import run_app, viewer_app
from support.viewer import demo_database

from turnscope.store.queries import RunFilter, Store


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database (gpt-4o-mini, my-finetune and the fake demo model)."""
    return demo_database(tmp_path_factory)


@pytest.fixture
def app(db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """The viewer on the demo database, not yet run."""
    with viewer_app(db, monkeypatch) as at:
        yield at


def test_runs_page_shows_cost_column_figures_and_chart(app: AppTest) -> None:
    at = run_app(app)
    frame = next(d for d in at.dataframe if "runs_table" in d.proto.id).value
    cells = list(frame["Cost"])
    assert any(c.startswith("$") for c in cells)  # gpt-4o-mini runs
    assert "price unknown (my-finetune)" in cells
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Total cost"].startswith("≥ $")  # demo-gpt-4o and my-finetune: unknown
    assert metrics["p50 cost per run"].startswith("$")
    chart = next(e for e in at.get("bidi_component") if e.proto.id.endswith("-cost_chart"))
    bars = json.loads(chart.proto.json)["bars"]
    assert bars and all(b["runs"] > 0 for b in bars)


def test_verdict_card_says_what_was_spent_after_the_loop_began(app: AppTest, db: Path) -> None:
    store = Store(str(db))
    try:
        runs = store.list_runs(RunFilter(category="max_turns_exceeded", workflow="Research"))
    finally:
        store.close()
    loop = next(r for r in runs if r["max_turns"] == 3)  # the demo's gpt-4o-mini loop
    run_app(app)
    app.switch_page("views/run.py")
    app.query_params["trace_id"] = loop["trace_id"]
    at = run_app(app)
    text = " ".join(m.value for m in at.markdown)
    assert "**Cost:** $" in text
    assert "spent after turn 1, in the loop" in text
    assert any(e.label.startswith("Cost: $") for e in at.expander)
