"""Bad user input gets one clear line on stderr and exit status 2 — never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def turnscope(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "turnscope.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("turnscope: ")
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    assert_one_line_error(
        turnscope("runs", "--db", str(missing)), "no turnscope database", "nope.db"
    )
    assert not missing.exists(), "a reader must not create the database"


def test_unknown_trace_id(tmp_path: Path) -> None:
    from turnscope.store.engine import make_writer_engine, upgrade

    db = tmp_path / "t.db"
    upgrade(make_writer_engine(f"sqlite:///{db}"))
    assert_one_line_error(turnscope("why", "trace_doesnotexist", "--db", str(db)), "no run")


@pytest.mark.parametrize(
    "url, needle",
    [
        ("nosuchdb://user@host/db", "unsupported database URL"),
        ("postgresql+psycopg://user:secret@[::1:5432/db", "invalid database URL"),
        ("mysql+nosuchdriver://u@h/d", "unsupported database URL"),
    ],
)
def test_bad_url(url: str, needle: str) -> None:
    proc = turnscope("runs", "--db", url)
    assert_one_line_error(proc, needle)
    assert "secret" not in proc.stderr


def test_unreachable_postgres_is_one_line() -> None:
    proc = turnscope("runs", "--db", "postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    assert_one_line_error(proc, "cannot read")
    assert "pw@" not in proc.stderr


def test_corrupt_database(tmp_path: Path) -> None:
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"this is not an sqlite file at all" * 200)
    assert_one_line_error(turnscope("runs", "--db", str(db)), "cannot read")


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table customers (id integer primary key)")
    assert_one_line_error(turnscope("runs", "--db", str(db)), "not a turnscope database")


def test_bad_option_values(tmp_path: Path) -> None:
    from turnscope.store.engine import make_writer_engine, upgrade

    db = tmp_path / "t.db"
    upgrade(make_writer_engine(f"sqlite:///{db}"))
    assert_one_line_error(
        turnscope("runs", "--db", str(db), "--since", "yesterday-ish"), "yesterday-ish"
    )
    proc = turnscope("runs", "--db", str(db), "--status", "exploded")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_help_is_the_manual() -> None:
    proc = turnscope("--help")
    assert proc.returncode == 0
    for command in ("demo", "runs", "why", "view"):
        assert command in proc.stdout
    proc = turnscope("why", "--help")
    assert "--json" in proc.stdout and "TRACE_ID" in proc.stdout
