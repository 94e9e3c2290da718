"""The neutral record model every part of turnscope speaks.

Only ``turnscope.exporter.normalize`` knows SDK classes; it turns them into these records.
The store, the analysis, the OTLP sink, the CLI and the viewer all read and write these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from turnscope import jsontext

_loads = jsontext.loads

# --- verdict vocabulary (a contract shared with the CLI JSON, the database and the viewer) ---

RUNNING = "running"
SUCCEEDED = "succeeded"
SUCCEEDED_WITH_ERRORS = "succeeded_with_errors"
FAILED = "failed"
INCOMPLETE = "incomplete"
STATUSES = (RUNNING, SUCCEEDED, SUCCEEDED_WITH_ERRORS, FAILED, INCOMPLETE)

CATEGORIES = (
    "max_turns_exceeded",
    "input_guardrail_tripwire",
    "output_guardrail_tripwire",
    "tool_guardrail_tripwire",
    "guardrail_error",
    "tool_error",
    "tool_timeout",
    "tool_not_found",
    "mcp_error",
    "invalid_final_output",
    "model_error",
    "model_behavior_error",
    "handoff_error",
    "session_error",
    "config_error",
    "tracing_error",
    "agent_error",
    "cancelled",
    "incomplete",
    "unknown",
)

# The finer cause inside a category (``Verdict.reason``), by category.
REASONS: dict[str, tuple[str, ...]] = {
    "model_error": (
        "rate_limited",
        "quota_exceeded",
        "context_length_exceeded",
        "invalid_request",
        "auth",
        "not_found",
        "server_error",
        "connection",
        "timeout",
        "bad_response",
    ),
    "mcp_error": ("connect", "list_tools", "call"),
    "agent_error": ("hook",),
}
ALL_REASONS = tuple(dict.fromkeys(r for rs in REASONS.values() for r in rs))

# What a person should look at in a run whose status looks fine or whose cause lies elsewhere.
WARNING_KINDS = (
    "tool_reported_error",
    "nested_run_failed",
    "guardrail_tripped_unenforced",
    "empty_final_output",
    "refusal",
)

# Span kinds. Task and turn spans export as "custom" but keep their own kind here.
SPAN_KINDS = (
    "task",
    "agent",
    "turn",
    "generation",
    "response",
    "function",
    "handoff",
    "guardrail",
    "custom",
    "mcp_tools",
    "transcription",
    "speech",
    "speech_group",
)
MODEL_KINDS = frozenset({"generation", "response"})

# What the normaliser stores in place of content it did not capture (``capture_content=False``).
NOT_CAPTURED = "[not captured: capture_content=False]"
NOT_CAPTURED_PREFIX = "[not captured"


def is_captured(value: Any) -> bool:
    """False for absent values and for the normaliser's "not captured" markers."""
    if value is None:
        return False
    return not (isinstance(value, str) and value.startswith(NOT_CAPTURED_PREFIX))


# Span status values stored per span.
SPAN_RUNNING = "running"
SPAN_OK = "ok"
SPAN_ERROR = "error"


@dataclass(slots=True)
class ExceptionInfo:
    """An exception seen in flight when a trace, task or agent span ended.

    Besides class and message it keeps the facts a verdict needs when the message is not
    captured or not enough: base classes (a provider's subclass of an openai error), the HTTP
    status and error code of an API error, where it was raised (``module:function`` of each
    traceback frame, innermost last) and the exception it came from (``__cause__``)."""

    type: str
    module: str = ""
    message: str = ""
    bases: tuple[str, ...] = ()
    status: int | None = None
    code: str | None = None
    frames: tuple[str, ...] = ()
    cause: ExceptionInfo | None = None

    @property
    def qualified(self) -> str:
        """Module-qualified class name, e.g. ``agents.exceptions.MaxTurnsExceeded``."""
        return f"{self.module}.{self.type}" if self.module else self.type

    def is_a(self, *names: str) -> bool:
        """True when the class or one of its bases has one of these bare names."""
        if self.type in names:
            return True
        return any(base.rpartition(".")[2] in names for base in self.bases)

    def chain(self) -> list[ExceptionInfo]:
        """This exception and the ones it came from, outermost first."""
        out: list[ExceptionInfo] = []
        current: ExceptionInfo | None = self
        while current is not None and len(out) < 8:
            out.append(current)
            current = current.cause
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON storage (facts beyond class and message only when known)."""
        out: dict[str, Any] = {"type": self.type, "module": self.module, "message": self.message}
        if self.bases:
            out["bases"] = list(self.bases)
        if self.status is not None:
            out["status"] = self.status
        if self.code:
            out["code"] = self.code
        if self.frames:
            out["frames"] = list(self.frames)
        if self.cause is not None:
            out["cause"] = self.cause.to_dict()
        return out

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> ExceptionInfo | None:
        """Inverse of ``to_dict`` (None stays None)."""
        if not value:
            return None
        status = value.get("status")
        code = value.get("code")
        cause = value.get("cause")
        return cls(
            type=str(value.get("type", "")),
            module=str(value.get("module", "")),
            message=str(value.get("message", "")),
            bases=tuple(str(b) for b in value.get("bases") or ()),
            status=status if isinstance(status, int) else None,
            code=code if isinstance(code, str) else None,
            frames=tuple(str(f) for f in value.get("frames") or ()),
            cause=cls.from_dict(cause) if isinstance(cause, dict) else None,
        )


class SpanRecord:
    """One SDK span, normalised. ``data`` holds the type-specific fields, JSON-safe.

    The normaliser hands ``data`` over as JSON text (``data_json``), decoded on first read:
    the database stores the text as is, and most spans' data is never read again. Decoding a
    copy of every span's data up front (and the garbage collector walking those copies) was
    one of the worker's largest costs. Being text, it is also a snapshot: whatever the SDK or
    the user does to the live objects later cannot reach the record."""

    __slots__ = (
        "_data",
        "agent",
        "data_json",
        "ended_at",
        "error_data",
        "error_message",
        "exception",
        "input_tokens",
        "iso_times",
        "kind",
        "model",
        "name",
        "output_tokens",
        "parent_id",
        "seq",
        "span_id",
        "started_at",
        "tool_name",
        "trace_id",
        "truncated",
        "turn",
    )

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        kind: str,
        name: str,
        started_at: datetime | None,
        ended_at: datetime | None = None,
        error_message: str | None = None,
        error_data: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        exception: ExceptionInfo | None = None,
        seq: int = 0,
        truncated: bool = False,
        model: str | None = None,
        tool_name: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        agent: str | None = None,
        turn: int | None = None,
        data_json: str | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.kind = kind
        self.name = name
        self.started_at = started_at
        self.ended_at = ended_at
        self.error_message = error_message
        self.error_data = error_data
        self.exception = exception
        self.seq = seq  # arrival order of on_span_start, breaks timestamp ties
        self.truncated = truncated
        # convenience columns pulled out of ``data`` by the normaliser
        self.model = model
        self.tool_name = tool_name
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        # filled by the analysis (turns.py): the agent and SDK turn each span belongs to
        self.agent = agent
        self.turn = turn
        # ``data`` as JSON text; None whenever ``data`` may differ from it
        self.data_json = data_json
        self._data = data if data is not None or data_json is not None else {}
        # (started_at, its ISO text, ended_at, its ISO text) as the SDK wrote them: the
        # writer reuses the text while the datetimes are still these very objects
        self.iso_times: tuple[Any, ...] | None = None

    @property
    def data(self) -> dict[str, Any]:
        """The type-specific fields (decoded from ``data_json`` on first read)."""
        value = self._data
        if value is None:
            value = self._data = _loads(self.data_json) if self.data_json is not None else {}
        return value

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data = value
        self.data_json = None  # the text no longer says the same

    def set_data_text(self, text: str, flat: dict[str, Any] | None = None) -> None:
        """Hand ``data`` over as JSON text, decoded on first read; ``flat`` is the same data
        when it holds only immutable scalars (then it is its own snapshot: no decoding)."""
        self.data_json = text
        self._data = flat

    _COMPARED = (
        "trace_id",
        "span_id",
        "parent_id",
        "kind",
        "name",
        "started_at",
        "ended_at",
        "error_message",
        "error_data",
        "data",
        "exception",
        "seq",
        "truncated",
        "model",
        "tool_name",
        "input_tokens",
        "output_tokens",
        "agent",
        "turn",
    )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self._COMPARED)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it was

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._COMPARED)
        return f"SpanRecord({fields})"

    def copy(self, **changes: Any) -> SpanRecord:
        """A shallow copy with some fields changed."""
        out = SpanRecord.__new__(SpanRecord)
        for key in self.__slots__:
            setattr(out, key, getattr(self, key))
        for key, value in changes.items():
            setattr(out, key, value)
        return out

    @property
    def status(self) -> str:
        """``running``, ``ok`` or ``error``."""
        if self.error_message is not None:
            return SPAN_ERROR
        return SPAN_OK if self.ended_at is not None else SPAN_RUNNING

    @property
    def duration_ms(self) -> float | None:
        """Wall duration in milliseconds, None while running."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds() * 1000.0


@dataclass(slots=True)
class Evidence:
    """A span that supports a verdict, with a one-line reason."""

    span_id: str | None
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the CLI JSON shape)."""
        return {"span_id": self.span_id, "kind": self.kind, "message": self.message}


@dataclass(slots=True)
class RunWarning:
    """Something to look at in a run that looks fine, or whose cause lies elsewhere."""

    kind: str
    message: str
    agent: str | None = None
    turn: int | None = None
    span_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the CLI JSON shape)."""
        return {
            "kind": self.kind,
            "message": self.message,
            "agent": self.agent,
            "turn": self.turn,
            "span_id": self.span_id,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> RunWarning:
        """Inverse of ``to_dict``."""
        turn = value.get("turn")
        return cls(
            kind=str(value.get("kind", "")),
            message=str(value.get("message", "")),
            agent=value.get("agent"),
            turn=turn if isinstance(turn, int) else None,
            span_id=value.get("span_id"),
        )


@dataclass(slots=True)
class Verdict:
    """Why a run ended the way it did. Field meanings: docs/verdict.md."""

    status: str
    category: str | None = None
    reason: str | None = None
    message: str | None = None
    exception: str | None = None
    agent: str | None = None
    turn: int | None = None
    max_turns: int | None = None
    span_id: str | None = None
    tool: str | None = None
    explanation: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    recovered_errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (without trace id / workflow, which the run adds)."""
        return {
            "status": self.status,
            "category": self.category,
            "reason": self.reason,
            "message": self.message,
            "exception": self.exception,
            "agent": self.agent,
            "turn": self.turn,
            "max_turns": self.max_turns,
            "span_id": self.span_id,
            "tool": self.tool,
            "explanation": self.explanation,
            "recovered_errors": list(self.recovered_errors),
            "evidence": [e.to_dict() for e in self.evidence],
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass(slots=True)
class TraceInfo:
    """What the SDK's Trace object and the processor's own clock told us about a trace."""

    trace_id: str
    workflow: str | None = None
    group_id: str | None = None
    metadata: dict[str, Any] | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exception: ExceptionInfo | None = None
    # how a streamed run ended, read from its result object at trace end:
    # {"final_output": bool, "cancel_mode": "none" | "immediate" | "after_turn"}
    ending: dict[str, Any] | None = None
    sdk_version: str | None = None
    process_id: str | None = None
    pid: int | None = None
    host: str | None = None
    dropped_spans: int = 0
    streamed: bool | None = None  # started with Runner.run_streamed (None: unknown)
    # what the runner that started the trace was given (read at trace start, see
    # analysis/conversation.py): its Responses ``conversation_id``, its session's id and the
    # ``previous_response_id`` it continues; None where not seen (old SDKs, a user's trace())
    conversation_id: str | None = None
    session_id: str | None = None
    previous_response_id: str | None = None


@dataclass(slots=True)
class RunRecord:
    """One row of ``runs``: a trace, summarised, with its verdict."""

    trace_id: str
    workflow: str | None
    status: str
    verdict: Verdict
    group_id: str | None = None
    metadata: dict[str, Any] | None = None
    sdk_version: str | None = None
    process_id: str | None = None
    pid: int | None = None
    host: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    trace_ended: bool = False
    agents: list[str] = field(default_factory=list)
    turns: int = 0
    span_count: int = 0
    error_count: int = 0
    fatal_error_count: int = 0
    recovered_error_count: int = 0
    tool_calls: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    first_input: str | None = None
    final_output: str | None = None
    first_error: str | None = None
    exception: ExceptionInfo | None = None
    truncated: bool = False
    dropped_spans: int = 0
    streamed: bool | None = None
    ending: dict[str, Any] | None = None  # TraceInfo.ending
    # the conversation this run is an exchange of (analysis/conversation.py), the response
    # it continues and the id of its last model response (a later exchange may continue it)
    conversation_id: str | None = None
    previous_response_id: str | None = None
    last_response_id: str | None = None

    @property
    def agent_path(self) -> str:
        """Agents in the order they ran, e.g. ``Triage → Billing``."""
        return " → ".join(self.agents)

    @property
    def duration_ms(self) -> float | None:
        """Trace wall duration (end of trace, or last span end) in milliseconds."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds() * 1000.0)
