"""OTLP configuration as OpenTelemetry users expect it: arguments win over the standard
``OTEL_*`` variables, which win over defaults; headers, service name and resource
attributes reach a real receiver; content is exported only when asked for.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, set_trace_processors
from support.otlp_receiver import Receiver, check_traces, root_of
from support.tools import lookup_tool

from turnscope.config import ConfigError, Settings, resolve_otlp
from turnscope.demo.model import DemoModel, call, text
from turnscope.exporter.processor import TurnscopeProcessor

OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "TURNSCOPE_OTLP_MAX_SPAN_BYTES",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without OTel settings."""
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


def test_export_is_off_without_an_endpoint() -> None:
    assert resolve_otlp() is None
    assert Settings.resolve(db=False).otlp is None


def test_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    grpc = resolve_otlp("http://collector:4317")
    assert grpc is not None and (grpc.endpoint, grpc.protocol) == ("http://collector:4317", "grpc")
    http = resolve_otlp("http://collector:4318")  # the OTLP/HTTP port implies the protocol
    assert http is not None and (http.endpoint, http.protocol) == (
        "http://collector:4318/v1/traces",
        "http/protobuf",
    )
    bare = resolve_otlp("localhost:4317")  # no scheme: plain text, as for a local collector
    assert bare is not None and bare.endpoint == "http://localhost:4317"
    custom = resolve_otlp("https://otel.example/ingest/traces", "http/protobuf")
    assert custom is not None and custom.endpoint == "https://otel.example/ingest/traces"

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    env = resolve_otlp()
    assert env is not None and env.endpoint == "http://base:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom")
    env = resolve_otlp()
    assert env is not None and env.endpoint == "http://traces:9999/custom"  # used verbatim
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    env = resolve_otlp()
    assert env is not None and env.protocol == "grpc"
    arg = resolve_otlp("http://arg:4317", "grpc")
    assert arg is not None and arg.endpoint == "http://arg:4317"  # arguments win
    assert resolve_otlp(False) is None  # off whatever the environment says
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert resolve_otlp() is None
    assert resolve_otlp("http://arg:4317") is not None


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="not supported"):
        resolve_otlp("http://x:4317", "http/json")
    with pytest.raises(ConfigError, match="expected http"):
        resolve_otlp("ftp://x:21")
    with pytest.raises(ConfigError, match="not key=value"):
        resolve_otlp("http://x:4317", headers="novalue")
    with pytest.raises(ConfigError, match="unknown settings: otlp_endpont"):
        TurnscopeProcessor(db=False, otlp_endpont="http://x:4317")


def test_content_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (
        ("true", True),
        ("SPAN_ONLY", True),
        ("span_and_event", True),
        ("false", False),
        ("NO_CONTENT", False),
        ("EVENT_ONLY", False),
    ):
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
        settings = resolve_otlp("http://x:4317")
        assert settings is not None and settings.capture_content is expected, value
    settings = resolve_otlp("http://x:4317", capture_content=False)
    assert settings is not None and not settings.capture_content  # the argument wins


lookup = lookup_tool("secret result for {q}")


def run_once(trace_id: str) -> None:
    """One small run: a tool call and an answer."""
    agent = Agent(
        name="Configured",
        tools=[lookup],
        model=DemoModel([[call("lookup", {"q": "x"})], [text("the answer")]]),
    )
    Runner.run_sync(agent, "the question", run_config=RunConfig(trace_id=trace_id))


def finish(processor: TurnscopeProcessor) -> None:
    """Flush, unregister, shut down (by hand: instrument() registered the processor itself)."""
    assert processor.flush(10)
    set_trace_processors([])
    processor.shutdown(10)


def test_environment_alone_turns_export_on(
    receiver: Receiver, db_url: str, monkeypatch: pytest.MonkeyPatch, make_recorder: Any
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", receiver.protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t0ken,x-team=agents")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-bot")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.version=1.2.3"
    )
    with make_recorder(db_url) as processor:
        run_once(f"trace_{1:032x}")
        assert processor.flush(10)
    spans = receiver.snapshot()
    check_traces(spans)
    assert spans
    resource = spans[0].resource
    assert resource["service.name"] == "billing-bot"
    assert resource["deployment.environment"] == "test"
    assert resource["service.version"] == "1.2.3"
    headers = receiver.headers[0]
    assert headers["authorization"] == "Bearer t0ken" and headers["x-team"] == "agents"
    blob = json.dumps([s.attrs for s in spans])
    assert "secret result" not in blob and "the question" not in blob  # no content by default


def test_arguments_win_over_the_environment(
    receiver: Receiver, db_url: str, monkeypatch: pytest.MonkeyPatch, make_recorder: Any
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing there
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-team=env")
    with make_recorder(
        db_url,
        otlp_endpoint=receiver.endpoint,
        otlp_protocol=receiver.protocol,
        otlp_headers={"X-Team": "arg"},
        service_name="from-arg",
        otlp_capture_content=True,
    ) as processor:
        run_once(f"trace_{2:032x}")
        assert processor.flush(10)
    spans = receiver.snapshot()
    check_traces(spans)
    assert {s.resource["service.name"] for s in spans} == {"from-arg"}
    assert receiver.headers[0]["x-team"] == "arg"
    (tool,) = [s for s in spans if s.name == "execute_tool lookup"]
    assert json.loads(tool.attrs["gen_ai.tool.call.result"]) == "secret result for x"
    assert json.loads(tool.attrs["gen_ai.tool.call.arguments"]) == {"q": "x"}
    chats = [s for s in spans if s.name.startswith("chat")]
    inputs = json.loads(chats[0].attrs["gen_ai.input.messages"])
    assert inputs[-1] == {"role": "user", "parts": [{"type": "text", "content": "the question"}]}
    outputs = json.loads(chats[-1].attrs["gen_ai.output.messages"])
    assert outputs == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "the answer"}],
            "finish_reason": "stop",
        }
    ]


def test_content_variable_reaches_the_spans(
    receiver: Receiver, db_url: str, monkeypatch: pytest.MonkeyPatch, make_recorder: Any
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    options = {"otlp_endpoint": receiver.endpoint, "otlp_protocol": receiver.protocol}
    with make_recorder(db_url, **options) as processor:
        run_once(f"trace_{3:032x}")
        assert processor.flush(10)
    spans = receiver.snapshot()
    assert any("gen_ai.input.messages" in s.attrs for s in spans)
    assert root_of(spans).attrs["turnscope.explanation"].startswith("Agent 'Configured'")


def test_instrument_takes_the_otlp_options(receiver: Receiver, db_url: str) -> None:
    import turnscope

    processor = turnscope.instrument(
        db_url,
        replace_default=True,
        otlp_endpoint=receiver.endpoint,
        otlp_protocol=receiver.protocol,
        service_name="instrumented",
    )
    try:
        run_once(f"trace_{4:032x}")
    finally:
        finish(processor)
    spans = receiver.snapshot()
    check_traces(spans)
    assert {s.resource["service.name"] for s in spans} == {"instrumented"}
    assert processor.stats()["sinks"]["otlp"]["exported"] == len(spans)
