"""Conversations: the runs one chat made, driven through the real ``Runner`` (a fake model).

A conversation is keyed by the Responses ``conversation_id`` the runner got, else its
session's id, else the trace's ``group_id``, else a ``previous_response_id`` chain
(turnscope/analysis/conversation.py). Both SDKs: group_id conversations with a failing
exchange in the middle and response chains (SQLite and PostgreSQL); new SDKs: sessions
(plain and streamed runs) and the order of the keys.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner

from turnscope import cli
from turnscope.demo.model import DemoModel, text
from turnscope.store import conversations
from turnscope.store.engine import make_writer_engine, upgrade
from turnscope.store.queries import Store
from turnscope.viewer.conversation_view import exchanges_html


def chat(
    messages: list[str], steps: list[Any], *, group_id: str, api: str = "chat"
) -> list[str | None]:
    """One chat: a run per message on one agent, all with ``group_id``; the trace ids (None
    for an exchange whose run raised)."""
    agent = Agent(name="Support", model=DemoModel(steps, api=api))
    ids: list[str | None] = []
    for n, message in enumerate(messages):
        trace_id = f"trace_{zlib.crc32(group_id.encode()):08x}{n:024x}"
        config = RunConfig(group_id=group_id, trace_id=trace_id)
        try:
            Runner.run_sync(agent, message, run_config=config)
        except RuntimeError:
            pass
        ids.append(trace_id)
    return ids


def test_a_group_id_chat_is_one_conversation_with_its_failing_exchange_in_the_middle(
    recorder: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [[text("Your order shipped.")], RuntimeError("upstream 503"), [text("Refunded.")]]
    ids = chat(["Where is my order?", "Cancel it", "Refund me"], steps, group_id="chat-7")
    Runner.run_sync(Agent(name="Other", model=DemoModel([[text("hi")]])), "hello")
    assert recorder.flush(10)
    store = Store(db_url)

    rows = conversations.exchanges(store, "chat-7")
    assert [r["trace_id"] for r in rows] == ids
    assert [r["status"] for r in rows] == ["succeeded", "failed", "succeeded"]
    assert [r["first_input"] for r in rows] == ["Where is my order?", "Cancel it", "Refund me"]
    assert (rows[0]["final_output"], rows[1]["category"]) == ("Your order shipped.", "model_error")
    assert "upstream 503" in rows[1]["explanation"]

    (listed,) = conversations.list_conversations(store)
    assert listed["conversation_id"] == "chat-7"
    assert (listed["exchanges"], listed["status"], listed["trace_ids"]) == (3, "failed", ids)
    assert listed["cost_usd"] is None

    where = conversations.position(store, ids[1], "chat-7")
    assert where is not None
    assert (where.index, where.count, where.previous, where.next) == (2, 3, ids[0], ids[2])
    other = [r for r in store.list_runs() if r["trace_id"] not in ids]
    assert other[0]["conversation_id"] is None
    assert conversations.position(store, other[0]["trace_id"], None) is None

    # the CLI: the JSON contract, and a prefix of the key
    assert cli.main(["conversations", "--db", db_url, "--json"]) == 0
    (printed,) = json.loads(capsys.readouterr().out)
    assert list(printed) == [
        "conversation_id",
        "exchanges",
        "status",
        "started_at",
        "last_at",
        "cost_usd",
        "cost_partial",
        "trace_ids",
    ]
    assert (printed["status"], printed["trace_ids"]) == ("failed", ids)
    # the fake model's name is in no price list: no price, and never a guessed one
    assert (printed["cost_usd"], printed["cost_partial"]) == (None, True)
    assert cli.main(["runs", "--db", db_url, "--conversation", "chat", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [(r["trace_id"], r["conversation_id"]) for r in runs] == [(i, "chat-7") for i in ids]
    assert cli.main(["conversations", "--db", db_url]) == 0
    table = capsys.readouterr().out
    assert re.search(r"failed\s+3\s.*price unknown.*chat-7", table)
    assert cli.main(["runs", "--db", db_url, "--conversation", "nope"]) == 2
    assert capsys.readouterr().err.strip() == f"turnscope: no conversation 'nope' in {store.label}"

    # the page's block: in order, the failing exchange marked, its failure instead of an answer
    page = exchanges_html(rows)
    assert [page.index(f'data-trace-id="{i}"') for i in ids] == sorted(
        page.index(f'data-trace-id="{i}"') for i in ids
    )
    assert page.count("ts-bad") == 2  # the style rule and the failing exchange
    assert 'class="ts-ex ts-bad"' in page.split('data-exchange="2"')[0].rsplit("<div", 1)[1]


def test_the_runs_page_lists_one_row_per_conversation(
    recorder: Any, db_url: str, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs page's toggle, through Streamlit's AppTest (real app, real SQLite)."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    import turnscope.viewer.app as viewer_app

    chat(["hi", "cancel"], [[text("Hello.")], RuntimeError("503")], group_id="chat-1")
    chat(["hello"], [[text("Hi.")]], group_id="chat-2")
    assert recorder.flush(10)
    monkeypatch.setenv("TURNSCOPE_DB", str(db_path))
    at = AppTest.from_file(viewer_app.__file__, default_timeout=60).run()
    at.toggle(key="by_conversation").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    (table,) = [d.value for d in at.dataframe]  # the runs table is not drawn
    assert list(table["Conversation"]) == ["chat-2", "chat-1"]
    assert list(table["Exchanges"]) == [1, 2]
    assert "failed" in table["Status"][1]


def chained(recorder: Any, messages: list[str]) -> list[str]:
    """A chat on the Responses API that passes each answer's response id to the next run."""
    agent = Agent(
        name="Chain", model=DemoModel([[text(f"a{i}")] for i in messages], api="responses")
    )
    previous = None
    ids = []
    for n, message in enumerate(messages):
        trace_id = f"trace_{n + 1:032x}"
        result = Runner.run_sync(
            agent, message, previous_response_id=previous, run_config=RunConfig(trace_id=trace_id)
        )
        previous = result.last_response_id
        ids.append(trace_id)
    assert recorder.flush(10)
    return ids


def test_a_previous_response_id_chain_is_one_conversation(recorder: Any, db_url: str) -> None:
    ids = chained(recorder, ["one", "two", "three"])
    Runner.run_sync(Agent(name="Alone", model=DemoModel([[text("x")]], api="responses")), "x")
    assert recorder.flush(10)
    store = Store(db_url)
    assert [r["trace_id"] for r in conversations.exchanges(store, ids[0])] == ids
    # a Responses run nobody continued keys itself, but is a run, not a conversation
    (listed,) = conversations.list_conversations(store)
    assert (listed["conversation_id"], listed["trace_ids"]) == (ids[0], ids)
    assert conversations.count_conversations(store) == 1


def test_a_chain_resolves_on_postgresql(pg_url: str, make_recorder: Any) -> None:
    with make_recorder(pg_url) as recorder:
        ids = chained(recorder, ["one", "two"])
    store = Store(pg_url)
    try:
        assert [r["trace_id"] for r in conversations.exchanges(store, ids[0])] == ids
    finally:
        store.close()


def test_older_databases_key_their_runs_by_group_id(db_url: str) -> None:
    from sqlalchemy import text as sql

    engine = make_writer_engine(db_url)
    upgrade(engine, "0006")
    with engine.begin() as conn:
        conn.execute(
            sql(
                "INSERT INTO runs (trace_id, group_id, status, turns, span_count, error_count,"
                " fatal_error_count, recovered_error_count, tool_calls, model_calls,"
                " input_tokens, output_tokens, trace_ended, truncated, dropped_spans)"
                " VALUES ('trace_old', 'chat-9', 'succeeded', 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0)"
            )
        )
    upgrade(engine)
    store = Store(db_url)
    assert [r["trace_id"] for r in conversations.exchanges(store, "chat-9")] == ["trace_old"]


def test_content_not_captured_says_so(make_recorder: Any, db_url: str) -> None:
    with make_recorder(db_url, capture_content=False) as recorder:
        chat(["secret question"], [[text("secret answer")]], group_id="quiet")
        assert recorder.flush(10)
    rows = conversations.exchanges(Store(db_url), "quiet")
    page = exchanges_html(rows)
    assert "secret" not in page
    assert page.count("not captured") == 2  # the user's message and the answer


# --- new SDKs: sessions, streamed runs, and which key wins -----------------------------------


@pytest.mark.new_sdk
def test_a_session_is_one_conversation_streamed_or_not(
    recorder: Any, db_url: str, tmp_path: Path
) -> None:
    import asyncio

    from agents import SQLiteSession

    session = SQLiteSession("user-42", str(tmp_path / "sessions.sqlite"))
    # the project's fake model records the model input as real models do (ScriptedModel
    # records none): what the user said is read from it
    model = DemoModel([[text("Hello!")], [text("Sure.")], [text("Bye.")]])
    agent = Agent(name="Concierge", model=model)
    Runner.run_sync(
        agent, "hi", session=session, run_config=RunConfig(trace_id="trace_" + "1" * 32)
    )
    Runner.run_sync(
        agent, "book a table", session=session, run_config=RunConfig(trace_id="trace_" + "2" * 32)
    )

    async def streamed() -> None:
        result = Runner.run_streamed(
            agent, "thanks", session=session, run_config=RunConfig(trace_id="trace_" + "3" * 32)
        )
        async for _event in result.stream_events():
            pass

    asyncio.run(streamed())
    assert recorder.flush(10)
    rows = conversations.exchanges(Store(db_url), "user-42")
    assert [r["trace_id"] for r in rows] == ["trace_" + c * 32 for c in "123"]
    # the session puts earlier exchanges before each message: the exchange's own is the last
    assert [r["first_input"] for r in rows] == ["hi", "book a table", "thanks"]
    assert [r["final_output"] for r in rows] == ["Hello!", "Sure.", "Bye."]


@pytest.mark.new_sdk
def test_the_keys_go_conversation_then_session_then_group(
    recorder: Any, db_url: str, tmp_path: Path
) -> None:
    from agents import SQLiteSession
    from agents.testing import ScriptedModel, assistant_message

    def run(n: int, **options: Any) -> str:
        agent = Agent(name="A", model=ScriptedModel([[assistant_message("ok")]], emit_traces=True))
        trace_id = f"trace_{n:032x}"
        Runner.run_sync(
            agent, "hi", run_config=RunConfig(trace_id=trace_id, group_id="g"), **options
        )
        return trace_id

    session = SQLiteSession("s-1", str(tmp_path / "s.sqlite"))
    by_conversation = run(1, conversation_id="conv_1")
    by_session = run(2, session=session)
    by_group = run(3)
    assert recorder.flush(10)
    store = Store(db_url)
    keys = {r["trace_id"]: r["conversation_id"] for r in store.list_runs()}
    assert keys == {by_conversation: "conv_1", by_session: "s-1", by_group: "g"}
