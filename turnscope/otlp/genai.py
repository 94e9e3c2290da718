"""The OpenTelemetry GenAI semantic conventions: messages, provider names and ``error.type``.

Pure functions of turnscope's records and the SDK's span data: ``to_messages`` and
``to_output_messages`` give the ``gen_ai.input.messages`` / ``gen_ai.output.messages`` JSON
(``[{role, parts: [...]}]``) from Chat Completions messages or Responses items,
``provider_of`` the ``gen_ai.provider.name``; ``span_failed`` decides a span's status and
``error_type`` its low-cardinality ``error.type``.
"""

from __future__ import annotations

import json
from typing import Any

from turnscope import jsontext
from turnscope.analysis.errors import (
    TRIPWIRE,
    classify_exception,
    classify_message,
    kind_category,
)
from turnscope.records import MODEL_KINDS, SpanRecord, is_captured

# error.type values beyond the verdict categories (records.CATEGORIES) and exception classes
OTHER = "_OTHER"
CATEGORY_FALLBACK_KINDS = frozenset({"agent", "turn", "task", "function", "handoff", "guardrail"})
# exceptions that end a run because a guardrail tripped: not a failure of the guardrail span
TRIPWIRE_EXCEPTIONS = frozenset(
    {
        "InputGuardrailTripwireTriggered",
        "OutputGuardrailTripwireTriggered",
        "ToolInputGuardrailTripwireTriggered",
        "ToolOutputGuardrailTripwireTriggered",
    }
)
PROVIDERS = (  # base_url host fragment -> gen_ai.provider.name
    ("openai.azure.com", "azure.ai.openai"),
    ("anthropic", "anthropic"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("bedrock", "aws.bedrock"),
    ("groq", "groq"),
    ("mistral", "mistral_ai"),
    ("deepseek", "deepseek"),
    ("x.ai", "x_ai"),
    ("perplexity", "perplexity"),
)
MODEL_PREFIXES = {  # LiteLLM / any-llm model prefix -> gen_ai.provider.name
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "groq": "groq",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
}

_dumps = jsontext.dumps_compact


# --- error.type ------------------------------------------------------------------------------


def span_failed(span: SpanRecord) -> bool:
    """True when the span's own operation failed (ERROR), False when it is UNSET."""
    if span.error_message is not None:
        return True
    exc = span.exception
    if exc is None:
        return False
    # a guardrail span that tripped ends normally; the tripwire exception is the run's
    return not (span.kind == "guardrail" and exc.type in TRIPWIRE_EXCEPTIONS)


def error_type(span: SpanRecord) -> str | None:
    """``error.type`` of a failed span, from a fixed table (None when it did not fail).

    1. The exception in flight when the span ended, when its class names a category
       (``MaxTurnsExceeded`` -> ``max_turns_exceeded``, tripwires, ``ToolTimeoutError`` ->
       ``tool_timeout``, cancellation -> ``cancelled``, ``openai.*`` -> ``model_error``).
    2. The SpanError message, as the verdict classifies it (``Error running tool`` and its
       non-fatal variant -> ``tool_error``, ``Tool not found`` -> ``tool_not_found``,
       ``Invalid JSON`` -> ``invalid_final_output``, model span errors -> ``model_error``,
       handoff span errors -> ``handoff_error``, ``Guardrail tripwire triggered`` ->
       ``input_guardrail_tripwire`` / ``output_guardrail_tripwire``, ``Error in agent run``
       -> ``agent_error``); on custom, MCP and unknown span types an unrecognised message
       gives ``_OTHER``.
    3. No SpanError: model spans -> ``model_error``, tools -> ``tool_error``, handoffs ->
       ``handoff_error``; otherwise the exception class name (``KeyError``).
    """
    if not span_failed(span):
        return None
    by_exception = classify_exception(span.exception)
    if by_exception is not None:
        return by_exception
    message = span.error_message
    if message is not None:
        if message == TRIPWIRE:
            data = span.error_data or {}
            if data.get("type") == "input_guardrail" or span.kind == "turn":
                return "input_guardrail_tripwire"
            return "output_guardrail_tripwire"
        category = classify_message(span, message)
        if (
            category == "agent_error"
            and span.kind not in CATEGORY_FALLBACK_KINDS
            and span.kind not in MODEL_KINDS
        ):
            return OTHER
        return category
    category = kind_category(span.kind)
    if category in ("model_error", "tool_error", "handoff_error"):
        return category
    return span.exception.type if span.exception is not None else OTHER


# --- messages in the GenAI semantic-convention shape -----------------------------------------


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return _dumps(value)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if not isinstance(content, list):
        return [{"type": "text", "content": _text_of(content)}]
    parts: list[dict[str, Any]] = []
    for item in content:
        if isinstance(item, str):
            parts.append({"type": "text", "content": item})
        elif isinstance(item, dict):
            kind = item.get("type")
            if kind in ("text", "input_text", "output_text") or (kind is None and "text" in item):
                parts.append({"type": "text", "content": _text_of(item.get("text", ""))})
            elif kind == "refusal":
                parts.append({"type": "refusal", "content": _text_of(item.get("refusal", ""))})
            else:  # images, files, audio: the kind only, never the (often base64) payload
                parts.append({"type": str(kind or "unknown")})
    return parts


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def to_messages(value: Any, default_role: str) -> list[dict[str, Any]] | None:
    """Chat messages or Responses items -> ``[{role, parts: [...]}]`` (semconv message JSON)."""
    if not is_captured(value):
        return None
    if isinstance(value, str):
        return [{"role": default_role, "parts": [{"type": "text", "content": value}]}]
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        return [{"role": default_role, "parts": [{"type": "text", "content": _text_of(value)}]}]
    messages: list[dict[str, Any]] = []

    def add(role: str, part: dict[str, Any], merge: bool) -> None:
        if merge and messages and messages[-1]["role"] == role and messages[-1].get("_merge"):
            messages[-1]["parts"].append(part)
        else:
            messages.append({"role": role, "parts": [part], "_merge": merge})

    for item in items:
        if not isinstance(item, dict):
            add(default_role, {"type": "text", "content": _text_of(item)}, False)
            continue
        kind = item.get("type")
        if kind == "function_call":
            part = {
                "type": "tool_call",
                "id": item.get("call_id") or item.get("id"),
                "name": item.get("name"),
                "arguments": _arguments(item.get("arguments")),
            }
            add("assistant", part, True)
        elif kind == "function_call_output":
            part = {
                "type": "tool_call_response",
                "id": item.get("call_id"),
                "response": item.get("output"),
            }
            add("tool", part, False)
        elif kind == "reasoning":
            summary = item.get("summary") or []
            text = " ".join(
                s.get("text", "") if isinstance(s, dict) else str(s) for s in summary
            ).strip()
            add("assistant", {"type": "reasoning", "content": text}, True)
        elif "role" in item or kind == "message":
            role = str(item.get("role") or default_role)
            parts = _parts(item.get("content"))
            if role == "tool" and item.get("tool_call_id"):
                response = item.get("content")
                parts = [
                    {"type": "tool_call_response", "id": item["tool_call_id"], "response": response}
                ]
            for call in item.get("tool_calls") or []:
                if isinstance(call, dict):
                    function = call.get("function") or {}
                    parts.append(
                        {
                            "type": "tool_call",
                            "id": call.get("id"),
                            "name": function.get("name"),
                            "arguments": _arguments(function.get("arguments")),
                        }
                    )
            messages.append({"role": role, "parts": parts, "_merge": False})
        else:
            add(default_role, {"type": str(kind or "unknown")}, False)
    for message in messages:
        message.pop("_merge", None)
    return messages


def to_output_messages(value: Any) -> list[dict[str, Any]] | None:
    """Model output -> semconv output messages (each with the finish reason it implies)."""
    messages = to_messages(value, "assistant")
    if messages is None:
        return None
    for message in messages:
        calls = any(p.get("type") == "tool_call" for p in message["parts"])
        message["finish_reason"] = "tool_call" if calls else "stop"
    return messages


def provider_of(data: dict[str, Any]) -> str:
    """``gen_ai.provider.name`` from a model span's base URL or model prefix (default openai)."""
    config = data.get("model_config")
    base = config.get("base_url") if isinstance(config, dict) else None
    if isinstance(base, str):
        for fragment, provider in PROVIDERS:
            if fragment in base:
                return provider
    model = data.get("model")
    if isinstance(model, str) and "/" in model:  # LiteLLM / any-llm: "anthropic/claude-..."
        return MODEL_PREFIXES.get(model.split("/", 1)[0].lower(), "openai")
    return "openai"
