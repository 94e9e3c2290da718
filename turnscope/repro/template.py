"""The replay machinery every file ``turnscope repro`` writes carries, as text: the verdict
check, the scripted model (the SDK's ScriptedModel, or a small Model on 0.0.x), the stub tools,
guardrails, handoffs, MCP servers, session and trace processor, and the recorded exceptions
made again. It reads the file's data (MODEL_OUTPUTS, TOOL_CALLS, MCP_SERVERS, HOOK, SESSION,
PROCESSOR) by name; ``render.py`` writes that data above it.
"""

MACHINERY = '''
# --- replay machinery, written by turnscope repro (nothing to change below) ----------------------


def verdict_of(play: Any) -> dict[str, Any]:
    """Run ``play(trace_id)`` under turnscope's processor; the verdict turnscope gives it.
    The verdict is taken from the processor as it would be stored (no database needed: set
    REPLAY_DB to also store the replay, e.g. to open it with ``turnscope view``)."""
    from agents import set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor
    from turnscope.sinks import Sink

    class Verdicts(Sink):
        """Keeps the latest record of each run the processor writes."""

        name = "replay"

        def __init__(self) -> None:
            self.runs: dict[str, Any] = {}

        def write(self, batch: Any) -> None:
            self.runs.update((run.trace_id, run) for run in batch.runs)

    verdicts = Verdicts()
    trace_id = f"trace_{uuid.uuid4().hex}"
    # offline whatever the environment says: no OTLP export, a database only if asked
    processor = TurnscopeProcessor(
        REPLAY_DB or False, sinks=[verdicts], flush_interval=0.05, otlp_endpoint=False
    )
    others = [RaisingProcessor()] if "PROCESSOR" in globals() else []
    set_trace_processors([processor, *others])
    try:
        asyncio.run(play(trace_id))
    except (Exception, asyncio.CancelledError):
        pass  # the recorded run failed: so does its replay; the verdict says how
    finally:
        set_trace_processors([])
        processor.shutdown(10)
    run = verdicts.runs.get(trace_id)
    assert run is not None, "the replay recorded no run"
    return {
        "status": run.status,
        "category": run.verdict.category,
        "reason": run.verdict.reason,
        "agent": run.verdict.agent,
        "turn": run.verdict.turn,
    }


def recorded_error(spec: dict[str, Any]) -> BaseException:
    """The recorded exception, made again: the same class (or a stand-in of the same name and
    module), message, HTTP status and error code."""
    name, module, message = spec["type"], spec["module"], spec.get("message", "")
    if module.split(".")[0] == "openai":
        import openai
        from openai import _base_client

        httpx = getattr(_base_client, "httpx", None) or _base_client.httpx2
        request = httpx.Request("POST", "https://api.openai.com/v1/responses")
        cls = getattr(openai, name, None)
        if cls is not None and spec.get("status"):
            code = spec.get("code")
            body = {"message": message, "type": code, "param": None, "code": code}
            response = httpx.Response(spec["status"], request=request)
            return cls(message, response=response, body=body)
        if cls is openai.APITimeoutError:
            return cls(request=request)
        if cls is openai.APIConnectionError:
            return cls(message=message, request=request)
    if name == "ValidationError" and module.split(".")[0] in ("pydantic", "pydantic_core"):
        from pydantic_core import ValidationError

        return ValidationError.from_exception_data(message.split("\\n")[0][:60] or name, [])
    try:
        cls = getattr(importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls(message)
    except Exception:
        pass
    return type(name, (Exception,), {"__module__": module})(message)


def stub_tool(
    name: str,
    timeout: float | None = None,
    input_guardrail_tripped: bool = False,
    output_guardrail_tripped: bool = False,
    needs_approval: bool = False,
) -> FunctionTool:
    """A tool that gives, call by call, what the recorded tool gave (TOOL_CALLS)."""
    calls = list(TOOL_CALLS.get(name, []))

    async def invoke(ctx: Any, arguments: str) -> Any:
        call = calls.pop(0) if calls else {"output": "(no recorded call of this tool left)"}
        if call.get("hang"):
            await asyncio.Event().wait()  # the recorded call never returned
        if "raise" in call:
            raise recorded_error(call["raise"])
        if "reported" in call:
            _report_tool_error(name, call["reported"])
        return call.get("output")

    options: dict[str, Any] = {"needs_approval": True} if needs_approval else {}
    if timeout is not None:
        options.update(timeout_seconds=timeout, timeout_behavior="raise_exception")
    if input_guardrail_tripped or output_guardrail_tripped:
        from agents import (
            ToolGuardrailFunctionOutput,
            ToolInputGuardrail,
            ToolOutputGuardrail,
        )

        def trip(data: Any) -> Any:
            return ToolGuardrailFunctionOutput.raise_exception(output_info={"replayed": True})

        if input_guardrail_tripped:
            options["tool_input_guardrails"] = [ToolInputGuardrail(guardrail_function=trip)]
        if output_guardrail_tripped:
            options["tool_output_guardrails"] = [ToolOutputGuardrail(guardrail_function=trip)]
    return FunctionTool(
        name=name,
        description=f"Stub of {name}: answers what the recorded calls answered.",
        params_json_schema={"type": "object", "properties": {}, "additionalProperties": True},
        on_invoke_tool=invoke,
        strict_json_schema=False,
        **options,
    )


def _report_tool_error(name: str, text: str) -> None:
    """Mark the tool's span as the SDK does when it turns a failure into the tool's output."""
    try:
        from agents.tracing import SpanError
        from agents.util._error_tracing import attach_error_to_current_span

        data = {"tool_name": name, "error": text}
        attach_error_to_current_span(SpanError(message="Error running tool (non-fatal)", data=data))
    except Exception:
        pass


def stub_guardrail(kind: str, name: str, tripped: bool, error: dict | None = None) -> Any:
    """An input or output guardrail that gives the recorded result (or raises the error)."""

    async def check(ctx: Any, agent: Any, value: Any) -> GuardrailFunctionOutput:
        if error is not None:
            raise recorded_error(error)
        return GuardrailFunctionOutput(output_info={"replayed": True}, tripwire_triggered=tripped)

    cls = InputGuardrail if kind == "input" else OutputGuardrail
    return cls(guardrail_function=check, name=name)


def mcp_server(name: str) -> Any:
    """The recorded MCP server as a stub (MCP_SERVERS); no process, no network."""
    from agents.mcp import MCPServer, MCPServerStdio

    spec = MCP_SERVERS[name]
    if not spec["connected"]:  # the recorded run used it without connecting it
        return MCPServerStdio(params={"command": "python", "args": []}, name=name)

    class ReplayMCPServer(MCPServer):
        def __init__(self) -> None:
            super().__init__()
            self.listings = list(spec["listings"])
            self.calls = list(spec["calls"])

        @property
        def name(self) -> str:
            return name

        async def connect(self) -> None:
            pass

        async def cleanup(self) -> None:
            pass

        async def list_tools(self, *args: Any, **kwargs: Any) -> Any:
            from mcp.types import Tool

            error = self.listings.pop(0) if self.listings else None
            if error is not None:
                raise recorded_error(error)
            schema = {"type": "object", "properties": {}}
            return [Tool(name=t, description="Stub", inputSchema=schema) for t in spec["tools"]]

        async def call_tool(self, tool_name: str, arguments: Any, *args: Any, **kwargs: Any) -> Any:
            from mcp.types import CallToolResult, TextContent

            call = self.calls.pop(0) if self.calls else {"output": "(no recorded call left)"}
            if call.get("hang"):
                await _never()
            if "raise" in call:
                raise recorded_error(call["raise"])
            text = _mcp_text(call["output"])
            return CallToolResult(content=[TextContent(type="text", text=text)])

        async def list_prompts(self, *args: Any, **kwargs: Any) -> Any:
            from mcp.types import ListPromptsResult

            return ListPromptsResult(prompts=[])

        async def get_prompt(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the recorded run used no MCP prompt")

    return ReplayMCPServer()


def _mcp_text(output: Any) -> str:
    """The text of a recorded MCP tool output (the SDK stored its content item as JSON)."""
    import json

    try:
        item = json.loads(output) if isinstance(output, str) else output
    except ValueError:
        return str(output)
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return item["text"]
    return output if isinstance(output, str) else json.dumps(output)


class _RejectedInput(BaseModel):
    """A handoff input that never validates: the recorded handoff's input did not."""

    @model_validator(mode="before")
    @classmethod
    def _as_recorded(cls, value: Any) -> Any:
        raise ValueError("the recorded handoff input did not validate")


def rejecting_handoff(agent: Agent) -> Any:
    """A handoff to ``agent`` whose input fails validation, as it did in the recorded run."""

    async def on_handoff(ctx: Any, data: Any) -> None:
        return None

    return handoff(agent, input_type=_RejectedInput, on_handoff=on_handoff)


def replay_session() -> Any:
    """A session whose recorded method raises the recorded exception (SESSION)."""
    from agents import SQLiteSession

    name, error = SESSION

    class ReplaySession(SQLiteSession):
        async def get_items(self, *args: Any, **kwargs: Any) -> Any:
            if name == "get_items":
                raise recorded_error(error)
            return await super().get_items(*args, **kwargs)

        async def add_items(self, *args: Any, **kwargs: Any) -> Any:
            if name == "add_items":
                raise recorded_error(error)
            return await super().add_items(*args, **kwargs)

    return ReplaySession(f"replay_{uuid.uuid4().hex[:8]}")


class RaisingProcessor:
    """Another trace processor whose recorded callback raises (PROCESSOR)."""

    def _maybe_raise(self, callback: str) -> None:
        name, error = PROCESSOR
        if callback == name:
            raise recorded_error(error)

    def on_trace_start(self, trace: Any) -> None:
        self._maybe_raise("on_trace_start")

    def on_trace_end(self, trace: Any) -> None:
        self._maybe_raise("on_trace_end")

    def on_span_start(self, span: Any) -> None:
        self._maybe_raise("on_span_start")

    def on_span_end(self, span: Any) -> None:
        self._maybe_raise("on_span_end")

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


def _items(step: list[dict[str, Any]]) -> list[Any]:
    from openai.types.responses import ResponseOutputItem
    from pydantic import TypeAdapter

    adapter = TypeAdapter(ResponseOutputItem)
    return [adapter.validate_python(item) for item in step]


async def _never() -> Any:
    await asyncio.Event().wait()


def scripted_model(steps: list[Any]) -> Model:
    """The SDK's ScriptedModel where it has one, else ReplayModel, playing ``steps``."""
    try:
        from agents.testing import ModelStep, ScriptedModel
    except ImportError:
        return ReplayModel(steps)

    async def hang(call: Any) -> Any:
        return await _never()

    script: list[Any] = []
    for step in steps:
        if isinstance(step, dict) and step.get("hang"):
            script.append(ModelStep.respond(hang))
        elif isinstance(step, dict):
            script.append(recorded_error(step["error"]))
        else:
            script.append(_items(step))
    return ScriptedModel(script, emit_traces=True)


class ReplayModel(Model):
    """A scripted model for SDKs without agents.testing (0.0.x): a generation span per call."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = list(steps)

    async def _next(self, tracing: Any, system: Any, input: Any) -> list[Any]:
        from agents.tracing import SpanError, generation_span

        with generation_span(model="replay", disabled=tracing.is_disabled()) as span:
            if not self.steps:
                raise RuntimeError("the replay's model script is exhausted")
            step = self.steps.pop(0)
            if isinstance(step, dict) and step.get("hang"):
                await _never()
            if isinstance(step, dict):
                error = recorded_error(step["error"])
                data = {"error": str(error)}
                span.set_error(SpanError(message="Error getting response", data=data))
                raise error
            if tracing.include_data():
                span.span_data.output = step
            return _items(step)

    async def get_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
        output_schema: Any, handoffs: Any, tracing: Any, *args: Any, **kwargs: Any,
    ) -> Any:
        from agents import ModelResponse, Usage

        items = await self._next(tracing, system_instructions, input)
        return ModelResponse(output=items, usage=Usage(), response_id=None)

    async def stream_response(
        self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
        output_schema: Any, handoffs: Any, tracing: Any, *args: Any, **kwargs: Any,
    ) -> Any:
        import time

        from openai.types.responses import Response, ResponseCompletedEvent

        items = await self._next(tracing, system_instructions, input)
        response = Response(
            id="resp_replayed",
            created_at=time.time(),
            model="replay",
            object="response",
            output=items,
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=True,
            top_p=None,
            status="completed",
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )
'''
