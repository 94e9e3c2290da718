"""The viewer through Streamlit's AppTest (the real app script, no browser): one way to open
it on a database, configured as ``turnscope view`` runs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import turnscope.viewer.app as _app

APP = str(Path(_app.__file__))  # the script Streamlit runs
TIMEOUT = 60


@contextmanager
def viewer_app(db: Path | str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The viewer on ``db``, not yet run: no Jaeger URL, no price file, static serving on
    (the timeline's plotly.js comes from the viewer's static folder)."""
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TURNSCOPE_DB", str(db))
    for name in ("TURNSCOPE_JAEGER_URL", "TURNSCOPE_PRICES"):
        monkeypatch.delenv(name, raising=False)
    before = config.get_option("server.enableStaticServing")
    config.set_option("server.enableStaticServing", True)
    try:
        yield AppTest.from_file(APP, default_timeout=TIMEOUT)
    finally:
        config.set_option("server.enableStaticServing", before)


def run_app(at: Any) -> Any:
    """Run the script (again) and fail on any exception box."""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
