"""The conversation page in a real browser: ``turnscope view`` as a subprocess on a chat of
four exchanges (the second failed), driven by Playwright in Debian's headless Chromium.

The exchanges show in order with the failing one marked; a run page says "Exchange k of n"
and links its conversation and its neighbours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit")

from agents import Agent, RunConfig, Runner
from conftest import recording
from support.browser import WAIT_MS, Page, skip_browser
from support.viewer import ViewerServer

from turnscope.demo.model import DemoModel, text

pytestmark = pytest.mark.browser

KEY = "chat-browser"
MESSAGES = ["Where is my order?", "Cancel it", "Then refund me", "Thanks"]


@pytest.fixture(scope="module")
def chat_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A database holding one chat of four exchanges, the second failed."""
    db = tmp_path_factory.mktemp("conversation") / "chat.db"
    steps: list[Any] = [[text("It shipped.")], RuntimeError("upstream 503")]
    steps += [[text("Refunded.")], [text("You're welcome.")]]
    agent = Agent(name="Support", model=DemoModel(steps))
    ids = [f"trace_{n + 1:032x}" for n in range(len(MESSAGES))]
    with recording(f"sqlite:///{db}") as processor:
        for message, trace_id in zip(MESSAGES, ids, strict=True):
            try:
                Runner.run_sync(
                    agent, message, run_config=RunConfig(group_id=KEY, trace_id=trace_id)
                )
            except RuntimeError:
                pass
        assert processor.flush(10)
    return db, ids


@pytest.fixture(scope="module")
def server(chat_db: tuple[Path, list[str]]) -> Iterator[ViewerServer]:
    """The viewer on the chat database."""
    if skip_browser():
        pytest.skip("TURNSCOPE_SKIP_BROWSER is set")
    viewer = ViewerServer(chat_db[0])
    try:
        viewer.wait()
        yield viewer
    finally:
        viewer.stop()


def test_the_conversation_page_shows_the_exchanges_in_order_and_marks_the_failure(
    server: ViewerServer, page: Page, chat_db: tuple[Path, list[str]]
) -> None:
    ids = chat_db[1]
    page.goto(f"{server.url}/conversation?id={KEY}")
    exchanges = page.tab.locator(".ts-ex")
    exchanges.first.wait_for(timeout=WAIT_MS)
    page.check("conversation")
    assert [exchanges.nth(i).get_attribute("data-trace-id") for i in range(4)] == ids
    for i, message in enumerate(MESSAGES):
        assert message in exchanges.nth(i).inner_text()
    failing = page.tab.locator(".ts-ex.ts-bad")
    assert failing.count() == 1
    assert failing.get_attribute("data-exchange") == "2"
    assert "upstream 503" in failing.inner_text()
    assert "Refunded." in exchanges.nth(2).inner_text()

    # each exchange opens its run, which says where it stands and links its neighbours
    exchanges.nth(2).get_by_role("link", name="open run").click()
    page.tab.wait_for_url(re.compile(rf"/run\?trace_id={ids[2]}"), timeout=WAIT_MS)
    where = page.tab.get_by_role("link", name=f"Exchange 3 of 4 in conversation {KEY}")
    where.wait_for(timeout=WAIT_MS)
    assert where.get_attribute("href") == f"conversation?id={KEY}"
    previous = page.tab.get_by_role("link", name="previous exchange")
    following = page.tab.get_by_role("link", name="next exchange")
    assert previous.get_attribute("href") == f"run?trace_id={ids[1]}"
    assert following.get_attribute("href") == f"run?trace_id={ids[3]}"
    page.check("run-in-conversation")
