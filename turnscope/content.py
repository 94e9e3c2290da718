"""Reading what the SDK recorded as content: message items, output text, tool arguments.

One place for everyone (analysis, OTLP export, viewer): Chat-Completions messages and Responses
input/output items arrive as plain JSON (dicts, lists, strings) in span data.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from turnscope import jsontext


def clip(text: Any, limit: int = 240) -> str:
    """One line of at most ``limit`` characters ("" for None or empty)."""
    if text is None or text == "":
        return ""
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def content_text(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts) if parts else None
    return None


def last_user_text(value: Any) -> str | None:
    """What the user said in a model input: the input string, or the last user message (a
    chat's earlier exchanges, from a session or passed back in, come before it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in reversed(value):
            if isinstance(item, dict) and item.get("role") == "user":
                return content_text(item.get("content"))
        return content_text(value)
    return None


def output_text(value: Any) -> str | None:
    """Assistant text in a model output (chat messages or Responses output items)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for item in value:
            if isinstance(item, dict) and item.get("type") in (None, "message"):
                text = content_text(item.get("content"))
                if text:
                    texts.append(text)
        return "\n".join(texts) if texts else None
    return None


def message_text(item: Any) -> str:
    """One input/output item of a model call, as a line a person reads."""
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return _json_text(item)
    kind = item.get("type")
    if kind == "function_call" or ("name" in item and "arguments" in item):
        return f"call {item.get('name')}({item.get('arguments', '')})"
    if kind == "function_call_output":
        return f"tool result: {_any_content(item.get('output'))}"
    role = item.get("role") or kind or "item"
    content = item.get("content")
    if content is None and "text" in item:
        content = item["text"]
    if item.get("tool_calls"):
        calls = ", ".join(
            f"{c.get('function', {}).get('name')}({c.get('function', {}).get('arguments', '')})"
            for c in item["tool_calls"]
            if isinstance(c, dict)
        )
        return f"{role}: {_any_content(content)} → {calls}".strip()
    return f"{role}: {_any_content(content)}"


def _any_content(content: Any) -> str:
    """Content of any shape as text: text and refusal parts, anything else as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                text = part.get("text") or part.get("refusal")
                parts.append(str(text) if text is not None else _json_text(part))
        return " ".join(parts)
    return _json_text(content)


def tool_calls_in(output: Any) -> list[tuple[str, str, Any]]:
    """(call id, tool name, arguments) of the tool calls a model output asks for."""
    calls: list[tuple[str, str, Any]] = []
    if not isinstance(output, list):
        return calls
    for item in output:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call" and item.get("name"):
            call_id = item.get("call_id") or item.get("id")
            if isinstance(call_id, str):
                calls.append((call_id, str(item["name"]), item.get("arguments")))
        for call in item.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                function = call.get("function") or {}
                if function.get("name"):
                    calls.append((call["id"], str(function["name"]), function.get("arguments")))
    return calls


def canonical_args(args: Any) -> str:
    """Tool arguments compared by meaning: JSON with sorted keys (else the stripped text)."""
    if not isinstance(args, str):
        return json.dumps(args, sort_keys=True, default=str)
    # a run is re-analysed as it grows: small arguments are parsed once, not every time
    return _canonical_small(args) if len(args) <= 1024 else _canonicalize(args)


def _canonicalize(args: str) -> str:
    try:
        return jsontext.dumps_sorted(jsontext.loads(args))
    except (ValueError, TypeError, RecursionError):
        return args.strip()


# bounded: at most 4,096 arguments of at most 1,024 characters each
_canonical_small = functools.lru_cache(maxsize=4096)(_canonicalize)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def refusal_text(value: Any) -> str | None:
    """A model refusal in a model output (a Responses ``refusal`` part, or a chat message's
    ``refusal`` field), or None."""
    if not isinstance(value, list):
        return None
    for item in value:
        if not isinstance(item, dict):
            continue
        refusal = item.get("refusal")
        if isinstance(refusal, str) and refusal:
            return refusal
        parts = item.get("content")
        if isinstance(parts, list):
            for part in parts:
                if isinstance(part, dict) and part.get("type") == "refusal":
                    text = part.get("refusal")
                    return text if isinstance(text, str) and text else "(refused)"
    return None


def asks_for_tools(value: Any) -> bool:
    """True when a model output asks for tool calls or a handoff (it is not a final answer)."""
    if not isinstance(value, list):
        return False
    for item in value:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if item.get("tool_calls") or (isinstance(kind, str) and kind.endswith("_call")):
            return True
    return False
