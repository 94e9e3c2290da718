"""Shared fixtures: a real SQLite file, a real processor registered with the real SDK, real
OTLP receivers and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.otlp_receiver import PROTOCOLS, Receiver, receiver_for

if TYPE_CHECKING:
    from turnscope.exporter.processor import TurnscopeProcessor

NEW_SDK = importlib.util.find_spec("agents.testing") is not None  # ScriptedModel, task/turn spans


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests that need the new SDK when running the openai-agents 0.0.17 suite."""
    skip_new = pytest.mark.skip(reason="needs openai-agents >= 0.21 (installed SDK is older)")
    for item in items:
        if "new_sdk" in item.keywords and not NEW_SDK:
            item.add_marker(skip_new)


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[None]:
    # openai-agents 0.0.17's Runner.run_sync uses asyncio.get_event_loop(), which fails once an
    # earlier asyncio.run() has cleared the loop; give every test a fresh one, as a new process
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture(autouse=True)
def _no_openai_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests never reach OpenAI: no key, and the default exporter is replaced per test
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("TURNSCOPE_DB", raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a fresh SQLite database file."""
    return tmp_path / "turnscope.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    """SQLAlchemy URL of a fresh SQLite database file."""
    return f"sqlite:///{db_path}"


@contextmanager
def recording(
    db: Any, *, shutdown_timeout: float = 10, **options: Any
) -> Iterator[TurnscopeProcessor]:
    """A TurnscopeProcessor on ``db`` (``options`` as for it; flushing every 50 ms unless
    given), the only processor the SDK calls inside the block; unregistered and shut down
    on leaving it, so what follows reads a database the processor is done with."""
    from agents import set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor

    processor = TurnscopeProcessor(db, **{"flush_interval": 0.05, **options})
    set_trace_processors([processor])
    try:
        yield processor
    finally:
        set_trace_processors([])
        processor.shutdown(shutdown_timeout)


@pytest.fixture
def make_recorder() -> Callable[..., AbstractContextManager[TurnscopeProcessor]]:
    """``recording``: ``with make_recorder(db, **options) as processor: ...``."""
    return recording


@pytest.fixture
def recorder(db_url: str, make_recorder: Any) -> Iterator[TurnscopeProcessor]:
    """A TurnscopeProcessor on ``db_url``, the only processor the SDK calls during the test."""
    with make_recorder(db_url) as processor:
        yield processor


@pytest.fixture
def store(db_url: str, recorder: object) -> Iterator[object]:
    """Read side of ``db_url``: call ``recorder.flush()`` before reading."""
    from turnscope.store.queries import Store

    recorder.flush()  # type: ignore[attr-defined]
    opened = Store(db_url)
    try:
        yield opened
    finally:
        opened.close()


def env_flag(name: str) -> bool:
    """True when an environment variable is set to a truthy value."""
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


@pytest.fixture(params=PROTOCOLS)
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """A live OTLP receiver, once for each protocol."""
    with receiver_for(request.param) as rx:
        yield rx


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright, for one test module."""
    from support.browser import chromium as launch

    with launch() as browser:
        yield browser


@pytest.fixture
def page(chromium: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh tab (``support.browser.Page``); screenshots in the test's temporary folder."""
    from support.browser import Page

    tab = Page(chromium, tmp_path)
    try:
        yield tab
    finally:
        tab.tab.close()


@pytest.fixture(scope="session")
def pg() -> Iterator[object]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session."""
    if env_flag("TURNSCOPE_SKIP_POSTGRES"):
        pytest.skip("TURNSCOPE_SKIP_POSTGRES is set")
    from support.pgserver import pg_server

    with pg_server() as server:
        yield server


@pytest.fixture
def pg_url(pg: object, request: pytest.FixtureRequest) -> str:
    """A fresh database on the session's PostgreSQL server."""
    import re

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return pg.create_database(f"{name}_{os.getpid()}")  # type: ignore[attr-defined]
