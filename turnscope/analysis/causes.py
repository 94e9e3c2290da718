"""Where an exception came from, read from its class, its API codes and its traceback frames.

The SpanErrors say *what* failed; these say *why* when the spans cannot: the finer reason of a
model error, and whether an exception came out of MCP, a session store, a run hook, a
guardrail function, another trace processor or the run's set-up. Each rule reads evidence the
SDK defines (its exception classes, the HTTP status and error code of an API error, the SDK's
own modules and the method names of its interfaces on the traceback), never names a user chose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from turnscope.records import ExceptionInfo

# --- model errors -----------------------------------------------------------------------------

# error codes (or types) in an API error body -> reason; codes outrank the HTTP status
CODE_REASONS = {
    "insufficient_quota": "quota_exceeded",
    "billing_hard_limit_reached": "quota_exceeded",
    "context_length_exceeded": "context_length_exceeded",
    "string_above_max_length": "context_length_exceeded",
    "rate_limit_exceeded": "rate_limited",
    "rate_limit_error": "rate_limited",
    "tokens_exceeded": "rate_limited",
    "invalid_api_key": "auth",
    "authentication_error": "auth",
    "permission_error": "auth",
    "model_not_found": "not_found",
    "not_found_error": "not_found",
    "server_error": "server_error",
    "overloaded_error": "server_error",
    "api_error": "server_error",
}

# exception classes (the class or a base: providers' errors subclass openai's) -> reason,
# most specific first (APITimeoutError is an APIConnectionError)
CLASS_REASONS = (
    ("APITimeoutError", "timeout"),
    ("ModelTimeoutError", "timeout"),
    ("Timeout", "timeout"),
    ("TimeoutException", "timeout"),
    ("ReadTimeout", "timeout"),
    ("ConnectTimeout", "timeout"),
    ("TimeoutError", "timeout"),
    ("APIConnectionError", "connection"),
    ("ConnectError", "connection"),
    ("RemoteProtocolError", "connection"),
    ("ConnectionError", "connection"),
    ("APIResponseValidationError", "bad_response"),
    ("ValidationError", "bad_response"),
    ("JSONDecodeError", "bad_response"),
    ("RateLimitError", "rate_limited"),
    ("AuthenticationError", "auth"),
    ("PermissionDeniedError", "auth"),
    ("NotFoundError", "not_found"),
    ("BadRequestError", "invalid_request"),
    ("UnprocessableEntityError", "invalid_request"),
    ("ConflictError", "invalid_request"),
    ("InternalServerError", "server_error"),
    ("ServiceUnavailableError", "server_error"),
)

# what some providers say instead of a code
CONTEXT_TEXT = re.compile(
    r"context[ _-]?(length|size|window)|maximum context|too many tokens|prompt is too long"
    r"|reduce the length of the messages|input is too long",
    re.IGNORECASE,
)
QUOTA_TEXT = re.compile(r"insufficient_quota|exceeded your current quota", re.IGNORECASE)
RATE_TEXT = re.compile(r"rate[ _-]?limit", re.IGNORECASE)


def model_reason(
    excs: Iterable[ExceptionInfo | None], texts: Iterable[str | None] = ()
) -> str | None:
    """The reason of a model error, from the exceptions involved (each with its causes) and the
    error texts the spans recorded; None when the evidence does not say."""
    chain = [link for exc in excs if exc is not None for link in exc.chain()]
    words = " ".join(t for t in [*texts, *(link.message for link in chain)] if t)
    for link in chain:
        reason = CODE_REASONS.get((link.code or "").lower())
        if reason is not None:
            return _refine(reason, words)
    for link in chain:
        for name, reason in CLASS_REASONS:
            if link.is_a(name):
                return _refine(reason, words)
    for link in chain:
        if link.status is not None:
            return _refine(_status_reason(link.status), words)
    if CONTEXT_TEXT.search(words):
        return "context_length_exceeded"
    if QUOTA_TEXT.search(words):
        return "quota_exceeded"
    return None


def _refine(reason: str | None, words: str) -> str | None:
    """Some providers send a bare 400 or 429: the text tells context size and quota apart."""
    if reason == "invalid_request" and CONTEXT_TEXT.search(words):
        return "context_length_exceeded"
    if reason == "rate_limited" and QUOTA_TEXT.search(words):
        return "quota_exceeded"
    return reason


def _status_reason(status: int) -> str | None:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (408, 504):
        return "timeout"
    if 400 <= status < 500:
        return "invalid_request"
    if status >= 500:
        return "server_error"
    return None


def status_text(exc: ExceptionInfo | None) -> str:
    """``429 insufficient_quota``-style words for an API error ("" when unknown)."""
    for link in exc.chain() if exc is not None else []:
        if link.status is not None or link.code:
            return " ".join(str(p) for p in (link.status, link.code) if p)
    return ""


# --- where in the SDK an exception came from ---------------------------------------------------

# method names of the SDK's interfaces that the SDK calls into user code
HOOK_METHODS = frozenset(
    {
        "on_agent_start",
        "on_agent_end",
        "on_handoff",
        "on_tool_start",
        "on_tool_end",
        "on_llm_start",
        "on_llm_end",
    }
)
SESSION_METHODS = frozenset({"get_items", "add_items", "pop_item", "clear_session"})
MCP_STAGES = (
    ("connect", "connect"),
    ("list_tools", "list_tools"),
    ("get_function_tools", "list_tools"),
    ("call_tool", "call"),
    ("invoke_mcp_tool", "call"),
)


def _parts(frame: str) -> tuple[str, str]:
    module, _, function = frame.partition(":")
    return module, function.rpartition(".")[2]


def _sdk(module: str) -> bool:
    return module == "agents" or module.startswith("agents.")


def handoffs_to_user(exc: ExceptionInfo) -> list[tuple[str, str]]:
    """Each (SDK frame, user frame) pair where the SDK called into user code on the way to the
    raise, innermost last."""
    frames = exc.frames
    return [
        (frames[i - 1], frames[i])
        for i in range(1, len(frames))
        if not _sdk(_parts(frames[i])[0]) and _sdk(_parts(frames[i - 1])[0])
    ]


def handed_to_user(exc: ExceptionInfo) -> tuple[str, str] | None:
    """(SDK frame, first user frame) where the SDK last called into user code before the
    exception was raised, or None when it was raised inside the SDK (or no frames were kept)."""
    pairs = handoffs_to_user(exc)
    return pairs[-1] if pairs else None


def hook(exc: ExceptionInfo | None) -> str | None:
    """The run/agent hook (``on_tool_end``...) the exception escaped from, if any."""
    for link in exc.chain() if exc is not None else []:
        handed = handed_to_user(link)
        if handed is not None and _parts(handed[1])[1] in HOOK_METHODS:
            return _parts(handed[1])[1]
    return None


def session_method(exc: ExceptionInfo | None) -> str | None:
    """The session-store method (``get_items``...) the exception escaped from, if any."""
    for link in exc.chain() if exc is not None else []:
        frames = [_parts(f) for f in link.frames]
        for i in range(len(frames) - 1, -1, -1):
            module, function = frames[i]
            if function not in SESSION_METHODS:
                continue
            if module.startswith("agents.memory"):
                return function  # one of the SDK's own session stores
            caller = frames[i - 1][0] if i else ""
            # a user's store, called by the SDK's session code (not a tool that happens to
            # have the same name)
            if not _sdk(module) and _sdk(caller) and ("session" in caller or "memory" in caller):
                return function
    return None


def mcp_stage(exc: ExceptionInfo | None) -> str | None:
    """``connect``, ``list_tools`` or ``call`` when an MCP server's client code raised."""
    for link in exc.chain() if exc is not None else []:
        stages = [
            stage
            for frame in link.frames
            if _parts(frame)[0].startswith("agents.mcp")
            for name, stage in MCP_STAGES
            if _parts(frame)[1] == name
        ]
        if not stages:
            continue
        innermost = link.frames[-1] if link.frames else ""
        # the SDK's own "Server not initialized. Make sure you call `connect()` first."
        if link.is_a("UserError") and _parts(innermost)[0].startswith("agents.mcp"):
            return "connect"
        return stages[-1]
    return None


def in_tracing(exc: ExceptionInfo | None) -> bool:
    """True when the exception was raised by code the SDK's tracing called (a processor)."""
    for link in exc.chain() if exc is not None else []:
        if any(_parts(f)[0].startswith("agents.tracing") for f in link.frames):
            handed = handed_to_user(link)
            if handed is None or _parts(handed[0])[0].startswith("agents.tracing"):
                return True
    return False


def in_guardrail(exc: ExceptionInfo | None) -> bool:
    """True when a guardrail's function raised (not a tripwire: those are classes of their own)."""
    for link in exc.chain() if exc is not None else []:
        if any(_parts(sdk)[0] == "agents.guardrail" for sdk, _user in handoffs_to_user(link)):
            return True
    return False


# the SDK's functions that call a model (and the Model interface's own methods)
MODEL_CALLS = frozenset(
    {"get_response", "stream_response", "get_new_response", "_get_new_response"}
)


def in_model_call(exc: ExceptionInfo | None) -> bool:
    """True when the exception came out of a model call: the SDK's model classes, or the
    SDK's code asking a model for its response."""
    for link in exc.chain() if exc is not None else []:
        for frame in link.frames:
            module, function = _parts(frame)
            if _sdk(module) and (
                module.startswith(("agents.models", "agents.extensions.models"))
                or function in MODEL_CALLS
            ):
                return True
    return False


def unreadable_answer(exc: ExceptionInfo | None) -> bool:
    """True when the SDK's own model code raised while reading a provider's answer (not an API
    or transport error: those have classes of their own)."""
    return exc is not None and in_model_call(exc) and raised_by_sdk(exc)


def raised_by_sdk(exc: ExceptionInfo | None) -> bool:
    """True when the innermost frame is the SDK's own code (not a tool, hook or model)."""
    if exc is None or not exc.frames:
        return exc is not None and exc.module.startswith("agents")
    return _sdk(_parts(exc.frames[-1])[0])
