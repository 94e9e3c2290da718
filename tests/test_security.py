"""Secrets are masked before storage; every filter is a bound parameter."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool

from turnscope.cli import main
from turnscope.demo.model import DemoModel, call, text
from turnscope.exporter.redact import redact_secrets
from turnscope.store.queries import RunFilter, Store

OPENAI_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"
BEARER = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N"
DB_URL = "postgresql://admin:hunter2-very-secret@db.internal:5432/prod"
AWS = "AKIAIOSFODNN7EXAMPLE"


@pytest.mark.parametrize(
    "raw, hidden",
    [
        (f"key is {OPENAI_KEY} ok", OPENAI_KEY),
        (f"Authorization: {BEARER}", "eyJhbGciOiJIUzI1NiJ9"),
        (f"connect to {DB_URL}", "hunter2-very-secret"),
        (f"aws {AWS} here", AWS),
        ('{"password": "s3cr3t-pass"}', "s3cr3t-pass"),
        ("api_key=abcd1234efgh", "abcd1234efgh"),
        ("ghp_" + "a" * 36, "ghp_" + "a" * 36),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "MIIE"),
    ],
)
def test_builtin_patterns_mask_secrets(raw: str, hidden: str) -> None:
    masked = redact_secrets(raw)
    assert hidden not in masked
    assert "[redacted" in masked


@pytest.mark.parametrize(
    "plain",
    [
        "The refund policy allows 30 days.",
        "Order A-1009 shipped; total $84.10",
        "https://example.com/docs/page?id=3",
        "tokens used: 1200",
    ],
)
def test_ordinary_text_is_left_alone(plain: str) -> None:
    assert redact_secrets(plain) == plain


def test_secrets_never_reach_the_database(tmp_path: Path, make_recorder: Any) -> None:
    db = tmp_path / "secret.db"

    @function_tool
    def connect(url: str) -> str:
        """Connect to a database."""
        return f"connected with {OPENAI_KEY}"

    @function_tool(failure_error_function=None)
    def deploy(token: str) -> str:
        """Deploy (fails, leaking its token in the error)."""
        raise PermissionError(f"denied for {BEARER}")

    with make_recorder(str(db), redact_secrets=True) as processor:
        agent = Agent(
            name="Ops",
            tools=[connect, deploy],
            model=DemoModel(
                [[call("connect", {"url": DB_URL})], [call("deploy", {"token": AWS})]],
                api="responses",
            ),
        )
        config = RunConfig(trace_metadata={"aws": AWS, "note": f"password={DB_URL}"})
        with pytest.raises(Exception, match="denied"):
            Runner.run_sync(agent, f"use {OPENAI_KEY} to deploy", run_config=config)
        assert processor.flush(10)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (OPENAI_KEY, "hunter2-very-secret", AWS, "dozjgNryP4J3jVmNHl0w5N"):
        assert secret.encode() not in raw, secret
    run = Store(str(db)).list_runs()[0]
    assert run["category"] == "tool_error" and run["failing_tool"] == "deploy"
    assert b"[redacted" in raw


def test_a_failing_custom_redactor_drops_text_instead_of_leaking_it(
    tmp_path: Path, make_recorder: Any
) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("bug in user code")

    db = tmp_path / "r.db"
    with make_recorder(str(db), redactor=broken) as processor:
        agent = Agent(name="A", model=DemoModel([[text("the secret answer")]]))
        assert Runner.run_sync(agent, "the secret question").final_output == "the secret answer"
        assert processor.flush(10)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"the secret" not in raw
    assert b"redactor failed" in raw


INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE runs; --",
    '" OR ""="',
    "%",
    "_",
    "\\",
    "1) UNION SELECT sqlite_version() --",
    "trace_%' --",
]


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a few demo runs."""
    from turnscope.demo.runner import CASES, run_demo

    db = tmp_path_factory.mktemp("inj") / "inj.db"
    run_demo(str(db), progress=False, cases=CASES[:4])
    return db


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_through_every_filter(small_db: Path, value: str) -> None:
    store = Store(str(small_db))
    fields = ["status", "category", "workflow", "agent", "tool", "group_id", "search"]
    if value == "_":
        fields.remove("search")  # a literal underscore is in every trace id: it matches
    for field in fields:
        runs = store.list_runs(RunFilter(**{field: value}))
        assert runs == [], (field, value)
        assert store.count_runs(RunFilter(**{field: value})) == 0
    assert store.get_run(value) is None
    assert store.find_trace_ids(value) == [] or value in ("%", "_", "trace_%' --")
    assert store.count_runs() == 4  # the table is intact


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_through_every_cli_option(
    small_db: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--workflow", "--agent", "--tool", "--search"]
    if value == "_":
        options.remove("--search")
    for option in options:
        assert main(["runs", "--db", str(small_db), option, value, "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == []
    assert main(["why", value, "--db", str(small_db)]) == 2
    capsys.readouterr()
    with sqlite3.connect(small_db) as conn:
        assert conn.execute("select count(*) from runs").fetchone()[0] == 4


def test_like_wildcards_are_literal_in_search(small_db: Path) -> None:
    store = Store(str(small_db))
    runs: list[dict[str, Any]] = store.list_runs(RunFilter(search="fetch_exchange_rate"))
    assert len(runs) == 1
    assert store.list_runs(RunFilter(search="fetch%exchange")) == []


@pytest.mark.parametrize("mode", ["capture_content_off", "redact_secrets"])
def test_nothing_private_reaches_sqlite_or_otlp(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_recorder: Any
) -> None:
    """End to end, with OTLP content capture switched on by its standard variable: content
    off leaves no prompt, output, tool argument or tool output anywhere; the redactor masks
    secrets in both destinations."""
    from support.otlp_receiver import GrpcReceiver

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    if mode == "capture_content_off":
        private = ["PROMPT-7f3a", "ARG-91c2", "TOOLOUT-55d0", "ANSWER-0b8e", "ERRMSG-c4a1"]
        prompt, arg, out, answer, err = private
        options: dict[str, Any] = {"capture_content": False}
    else:  # secrets the built-in patterns recognise, in each place content goes
        prompt, arg, out, answer, err = OPENAI_KEY, DB_URL, AWS, BEARER, "api_key=abcd1234efgh"
        private = [OPENAI_KEY, "hunter2-very-secret", AWS, "dozjgNryP4J3jVmNHl0w5N", "abcd1234efgh"]
        options = {"redact_secrets": True}

    @function_tool
    def fetch(key: str) -> str:
        """Fetch a value."""
        return f"value {out}"

    @function_tool(failure_error_function=None)
    def explode(key: str) -> str:
        """Fail with private text in the error."""
        raise PermissionError(f"denied: {err}")

    db = tmp_path / "private.db"
    with GrpcReceiver() as receiver:
        with make_recorder(str(db), otlp_endpoint=receiver.endpoint, **options) as processor:
            ok = Agent(
                name="Keeper",
                tools=[fetch],
                model=DemoModel([[call("fetch", {"key": arg})], [text(f"it is {answer}")]]),
            )
            Runner.run_sync(ok, f"tell me {prompt}")
            bad = Agent(
                name="Leaker",
                tools=[explode],
                model=DemoModel([[call("explode", {"key": arg})]], api="responses"),
            )
            with pytest.raises(Exception, match="denied"):
                Runner.run_sync(bad, f"open {prompt}")
            assert processor.flush(30)
        spans = receiver.snapshot()
    assert len({s.trace_id for s in spans}) == 2  # both runs were exported
    exported = b"".join(s.raw for s in spans)
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("private"))
    for secret in private:
        assert secret.encode() not in stored, (mode, "sqlite", secret)
        assert secret.encode() not in exported, (mode, "otlp", secret)
    if mode == "redact_secrets":  # content did go out, masked
        assert b"[redacted" in exported and b"[redacted" in stored
    assert b"fetch" in exported and b"explode" in exported  # names are not content
    runs = Store(str(db)).list_runs()
    assert {r["status"] for r in runs} == {"succeeded", "failed"}
