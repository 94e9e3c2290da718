"""The SDK's error vocabulary: SpanError messages and exception classes -> verdict categories.

Sources: docs/design/sdk-tracing.md §4 (every place a SpanError is attached, old and new SDKs) and
docs/design/viewer-anchors.md Appendix A.
"""

from __future__ import annotations

from dataclasses import dataclass

from turnscope.content import clip
from turnscope.records import MODEL_KINDS, ExceptionInfo, SpanRecord

MAX_TURNS = "Max turns exceeded"
TRIPWIRE = "Guardrail tripwire triggered"
AGENT_RUN = "Error in agent run"
TOOL_FATAL = "Error running tool"

# Errors the SDK records and then carries on from.
RECOVERED_MESSAGES = frozenset(
    {
        "Error running tool (non-fatal)",
        "Error running Codex tool (non-fatal)",
        "Multiple handoffs requested",
        "Tool execution cancelled",
        "Tool execution rejected",
        "Codex command execution failed.",
    }
)

TOOL_NOT_FOUND_MESSAGES = frozenset(
    {
        "Tool not found",
        "Custom tool not found",
        "Computer tool not found",
        "Local shell tool not found",
        "Shell tool not found",
        "Local shell executor not found",
        "Apply patch tool not found",
        "MCP server label not found",
        "Programmatic tool not found",
    }
)

HANDOFF_MESSAGES = frozenset(
    {
        "Multiple handoffs requested",
        "Invalid input filter",
        "Invalid input filter result",
        "Handoff function expected non-null input, but got None",
    }
)

MODEL_MESSAGES = frozenset({"Error getting response", "Error streaming response", "Error"})

EXCEPTION_CATEGORIES = {
    "MaxTurnsExceeded": "max_turns_exceeded",
    "InputGuardrailTripwireTriggered": "input_guardrail_tripwire",
    "OutputGuardrailTripwireTriggered": "output_guardrail_tripwire",
    "ToolInputGuardrailTripwireTriggered": "tool_guardrail_tripwire",
    "ToolOutputGuardrailTripwireTriggered": "tool_guardrail_tripwire",
    "ToolTimeoutError": "tool_timeout",
    "ModelTimeoutError": "model_error",
    "ModelRefusalError": "model_behavior_error",
    "CancelledError": "cancelled",
    "KeyboardInterrupt": "cancelled",
    "MCPToolCancellationError": "cancelled",
    "GeneratorExit": "cancelled",
}

# Exceptions whose category depends on the span evidence.
EVIDENCE_EXCEPTIONS = frozenset({"ModelBehaviorError", "UserError", "AgentsException"})

# category -> the exception the runner raises for it (used when none was seen: streamed runs)
INFERRED_EXCEPTIONS = {
    "max_turns_exceeded": "MaxTurnsExceeded",
    "input_guardrail_tripwire": "InputGuardrailTripwireTriggered",
    "output_guardrail_tripwire": "OutputGuardrailTripwireTriggered",
    "tool_guardrail_tripwire": "ToolInputGuardrailTripwireTriggered",
    "tool_timeout": "ToolTimeoutError",
    "tool_not_found": "ModelBehaviorError",
    "invalid_final_output": "ModelBehaviorError",
    "model_behavior_error": "ModelBehaviorError",
    "tool_error": "UserError",
}


@dataclass(slots=True)
class SpanFailure:
    """A SpanError (or an exception seen ending a span), classified."""

    span: SpanRecord
    message: str
    category: str
    recovered: bool = False
    echo: bool = False  # "Error in agent run": a consequence, not a cause
    contained: bool = False  # inside an agent-as-tool run whose failure the outer run absorbed

    @property
    def detail(self) -> str | None:
        """The human-readable detail of the error (error text, tool name, ...)."""
        data = self.span.error_data or {}
        for key in ("error", "details", "message"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value
        if self.span.exception is not None and self.span.exception.message:
            return f"{self.span.exception.type}: {self.span.exception.message}"
        if self.span.error_message is None and isinstance(self.span.data.get("output"), str):
            return self.span.data["output"]  # trouble reported as the tool's output
        return None

    @property
    def tool(self) -> str | None:
        """The tool involved, if any."""
        data = self.span.error_data or {}
        name = data.get("tool_name")
        if isinstance(name, str):
            return name
        return self.span.tool_name if self.span.kind == "function" else None

    def line(self) -> str:
        """One line for evidence lists: the message, the tool, the detail."""
        detail = self.detail
        where = f" ({self.tool})" if self.tool and self.span.kind == "function" else ""
        text = f"{self.message}{where}"
        return f"{text}: {clip(detail, 200)}" if detail else text


def classify_message(span: SpanRecord, message: str) -> str:
    """Category suggested by one SpanError message on a given kind of span."""
    if message == MAX_TURNS:
        return "max_turns_exceeded"
    if message == TRIPWIRE:
        data = span.error_data or {}
        return "input_guardrail_tripwire" if data.get("type") == "input_guardrail" else "guardrail"
    if message in TOOL_NOT_FOUND_MESSAGES:
        return "tool_not_found"
    if message in HANDOFF_MESSAGES or span.kind == "handoff":
        return "handoff_error"
    if message in ("Invalid JSON", "Invalid JSON provided"):
        return "invalid_final_output"
    if span.kind in MODEL_KINDS:
        return "model_error"
    if span.kind == "function":
        if "cancelled" in message.lower():
            return "cancelled"
        return "tool_error"
    if message.startswith("Model invoked tool"):
        return "model_behavior_error"
    if message.startswith("Program"):
        return "model_behavior_error"
    return "agent_error"


def kind_category(kind: str) -> str | None:
    """The category of a failure that escaped from a span of this kind, with no SpanError."""
    if kind in MODEL_KINDS:
        return "model_error"
    if kind == "function":
        return "tool_error"
    if kind == "handoff":
        return "handoff_error"
    if kind in ("agent", "turn", "guardrail", "custom"):
        return "agent_error"
    return None


def classify_exception(exc: ExceptionInfo | None) -> str | None:
    """Category decided by the exception class alone, or None when evidence must decide."""
    if exc is None:
        return None
    if exc.type in EXCEPTION_CATEGORIES:
        return EXCEPTION_CATEGORIES[exc.type]
    if exc.type in EVIDENCE_EXCEPTIONS:
        return None
    if exc.module.startswith("openai") or exc.module.startswith("httpx"):
        return "model_error"
    return None


def is_cancellation(exc: ExceptionInfo | None) -> bool:
    """True for asyncio cancellation, Ctrl-C and friends."""
    return exc is not None and EXCEPTION_CATEGORIES.get(exc.type) == "cancelled"
