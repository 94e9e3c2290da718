"""Shared helpers of the viewer tests: one demo database per test session (the real SDK
recording every outcome) and the turnscope view server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .net import free_port

_DEMO: dict[str, Path] = {}


def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's runs recorded into a fresh SQLite file, once per session."""
    if "db" not in _DEMO:
        from turnscope.demo.runner import run_demo

        path = tmp_path_factory.mktemp("viewer") / "demo.db"
        summary = run_demo(db=str(path), progress=False)
        assert summary.ok, [r.mismatches() for r in summary.results if not r.ok]
        _DEMO["db"] = path
    return _DEMO["db"]


class ViewerServer:
    """``turnscope view`` as a real subprocess on a free 127.0.0.1 port."""

    def __init__(
        self,
        db: Path | str,
        jaeger: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "turnscope.cli", "view", "--db", str(db)]
        command += ["--port", str(self.port), *args]
        if jaeger:
            command += ["--jaeger-url", jaeger]
        environ = dict(os.environ)
        environ.pop("TURNSCOPE_JAEGER_URL", None)
        environ.pop("TURNSCOPE_VIEW_TOKEN", None)
        environ.update(env or {})
        log_dir = log_dir or Path(db).parent
        self.log = log_dir / f"viewer-{self.port}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            command, env=environ, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def wait(self, timeout: float = 60.0) -> None:
        """Until the server answers its health check (or fail with its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"turnscope view exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as reply:
                    if reply.read() == b"ok":
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"turnscope view did not start: {self.log.read_text()}")

    def stop(self) -> None:
        """Stop the server (it replaced the launcher process, so this is streamlit)."""
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log_file.close()
