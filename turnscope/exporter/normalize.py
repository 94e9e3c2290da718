"""SDK objects -> neutral records. The only module that knows Agents SDK classes and versions.

Runs on the worker thread, never in an SDK callback. Reads live ``Span``/``Trace`` objects
defensively: every attribute may be missing (old or future SDKs) or hostile (user data).
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timezone
from typing import Any

from turnscope.exporter.redact import Redactor, redact_data
from turnscope.exporter.safe import (
    MARKER,
    clean_text,
    jsonable,
    plain_json_text,
    truncate_text,
)
from turnscope.records import NOT_CAPTURED, ExceptionInfo, SpanRecord, TraceInfo

# Keys of span data that carry prompts, outputs, tool arguments or tool results.
CONTENT_KEYS = frozenset(
    {"input", "output", "response", "instructions", "data", "first_content_at", "text"}
)
# SpanError data keys that are identifiers, not content: kept when content capture is off.
SAFE_ERROR_KEYS = frozenset(
    {
        "tool_name",
        "max_turns",
        "guardrail",
        "type",
        "requested_agents",
        "server_label",
        "name",
        "call_id",
        "status",
        "operation",
        "error_code",
        "exit_code",
    }
)
# span-data fields worth keeping when a span starts (names, not content)
LIGHT_KEYS = frozenset(
    {"name", "turn", "agent_name", "from_agent", "to_agent", "model", "server", "output_type"}
)
_seq = itertools.count(1)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def parse_time(value: Any, fallback: float | None = None) -> datetime | None:
    """SDK ISO timestamp -> aware UTC datetime; falls back to our own wall clock."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is timezone.utc:
                return parsed  # what the SDK writes
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=timezone.utc)
            return parsed.astimezone(timezone.utc)
        except ValueError:
            lenient = _lenient_time(value)
            if lenient is not None:
                return lenient
    if fallback is not None:
        return datetime.fromtimestamp(fallback, tz=timezone.utc)
    return None


def _sdk_time(value: Any) -> datetime | None:
    """The SDK's own timestamp (``datetime.now(timezone.utc).isoformat()``: exactly
    ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``) parsed; None for any other value or shape. Its text
    then goes to SQLite as is (see ``SpanRecord.iso_times``)."""
    if (
        type(value) is str
        and len(value) == 32
        and value[10] == "T"
        and value[19] == "."
        and value.endswith("+00:00")
        and value[11:13] != "24"
    ):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


_FRACTION = re.compile(r"\.(\d+)")


def _lenient_time(value: str) -> datetime | None:
    """ISO forms Python 3.10's fromisoformat rejects: ``Z``, 1-9 fraction digits."""
    text = value.strip().replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def exception_info(
    exc: BaseException | None, capture_content: bool = True, _depth: int = 0
) -> ExceptionInfo | None:
    """Summarise an exception (class, bases, message, API status and code, traceback frames,
    cause) without keeping the object alive. Frames and codes are identifiers, not content:
    kept when content capture is off."""
    if exc is None:
        return None
    cls = type(exc)
    message = ""
    if capture_content:
        try:
            message, _, _ = truncate_text(str(exc), 4096)
        except Exception:
            message = f"<unprintable {cls.__name__}>"
    cause = None
    if _depth < 3:
        try:
            inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
            if inner is not None and inner is not exc:
                cause = exception_info(inner, capture_content, _depth + 1)
        except Exception:
            cause = None
    return ExceptionInfo(
        type=clean_text(cls.__name__),
        module=clean_text(cls.__module__ or ""),
        message=message,
        bases=_bases(cls),
        status=_http_status(exc),
        code=_error_code(exc),
        frames=_frames(exc),
        cause=cause,
    )


def _redact_exception(info: ExceptionInfo, redact: Redactor) -> None:
    """Mask secrets in the messages of an exception and the ones it came from."""
    for link in info.chain():
        if link.message:
            link.message = redact(link.message)


_PLAIN_BASES = (object, BaseException, Exception)
MAX_FRAMES = 40  # innermost frames kept: where it was raised and the SDK code around it


def _bases(cls: type) -> tuple[str, ...]:
    try:
        return tuple(
            clean_text(f"{c.__module__}.{c.__qualname__}")
            for c in cls.__mro__[1:9]
            if c not in _PLAIN_BASES
        )
    except Exception:
        return ()


def _http_status(exc: BaseException) -> int | None:
    try:
        for value in (
            getattr(exc, "status_code", None),
            getattr(getattr(exc, "response", None), "status_code", None),
        ):
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    except Exception:
        pass
    return None


def _error_code(exc: BaseException) -> str | None:
    """The API's error code (``insufficient_quota``), else its error type: attributes of
    openai's errors and the usual places in an error body."""
    try:
        body = getattr(exc, "body", None)
        error = body.get("error") if isinstance(body, dict) else None
        places = [getattr(exc, "code", None)]
        if isinstance(body, dict):
            places.append(body.get("code"))
        if isinstance(error, dict):
            places.append(error.get("code"))
        places.append(getattr(exc, "type", None))
        if isinstance(body, dict):
            places.append(body.get("type"))
        if isinstance(error, dict):
            places.append(error.get("type"))
        for value in places:
            if isinstance(value, str) and value and len(value) <= 64:
                return clean_text(value)
    except Exception:
        pass
    return None


def _frames(exc: BaseException) -> tuple[str, ...]:
    try:
        out: list[str] = []
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            module = tb.tb_frame.f_globals.get("__name__", "?")
            out.append(f"{module}:{getattr(code, 'co_qualname', code.co_name)}")
            tb = tb.tb_next
        return tuple(clean_text(f) for f in out[-MAX_FRAMES:])
    except Exception:
        return ()


class Normalizer:
    """Converts SDK traces and spans into records, honouring content and size settings."""

    def __init__(
        self,
        capture_content: bool = True,
        max_field_bytes: int = 64 * 1024,
        redactor: Redactor | None = None,
    ) -> None:
        self.capture_content = capture_content
        self.max_field_bytes = max_field_bytes
        self.redactor = _guarded(redactor) if redactor is not None else None

    # -- traces --------------------------------------------------------------------------

    def trace(self, trace: Any) -> TraceInfo:
        """Workflow name, group id and metadata of an SDK trace."""
        info = TraceInfo(trace_id=_text_attr(trace, "trace_id") or "unknown")
        info.workflow = _text_attr(trace, "name")
        info.group_id = _text_attr(trace, "group_id")
        metadata = _attr(trace, "metadata")
        if metadata:
            value, _ = jsonable(metadata, 8192)
            info.metadata = value if isinstance(value, dict) else {"value": value}
        if self.redactor is not None:
            redact = self.redactor
            info.workflow = redact(info.workflow) if info.workflow else info.workflow
            info.group_id = redact(info.group_id) if info.group_id else info.group_id
            info.metadata = redact_data(info.metadata, redact) if info.metadata else None
        return info

    def run_keys(self, info: TraceInfo, keys: dict[str, str]) -> None:
        """Set the conversation keys the runner was given (``processor._run_keys``) on a
        trace, redacted like its group id (a kept key stays as recorded: a resumed run)."""
        redact = self.redactor
        for name in ("conversation_id", "session_id", "previous_response_id"):
            value = keys.get(name)
            if isinstance(value, str) and value:
                setattr(info, name, redact(value) if redact is not None else value)

    def exception(self, exc: BaseException) -> ExceptionInfo | None:
        """An exception in flight, summarised (and redacted)."""
        info = exception_info(exc, self.capture_content)
        if info is not None and self.redactor is not None:
            _redact_exception(info, self.redactor)
        return info

    # -- spans ---------------------------------------------------------------------------

    def started(self, span: Any, wall: float | None = None) -> SpanRecord:
        """A span that has just started: ids, kind, start time and its name-like fields only
        (the end event brings the data; a running span needs no more to be shown)."""
        span_data = _attr(span, "span_data")
        kind = span_kind(span_data)
        data = {
            k: v
            for k, v in _fields(span_data).items()
            if k in LIGHT_KEYS and (v is None or type(v) in (str, int, bool))
        }
        for key, value in data.items():
            if type(value) is str:
                data[key], _, _ = truncate_text(value, 512)
        record = SpanRecord(
            trace_id=_text_attr(span, "trace_id") or "unknown",
            span_id=_text_attr(span, "span_id") or "unknown",
            parent_id=_text_attr(span, "parent_id"),
            kind=kind,
            name=display_name(kind, data),
            started_at=parse_time(_attr(span, "started_at"), wall),
            data=data,
            tool_name=data.get("name") if kind == "function" else None,
        )
        if self.redactor is not None:
            self._redact(record)
        return record

    def span(
        self, span: Any, wall: float | None = None, exc: BaseException | None = None
    ) -> SpanRecord:
        """One SDK span -> SpanRecord (running if it has not ended yet)."""
        parts = _sdk_span_parts(span)
        if parts is None:
            parts = (
                _attr(span, "span_data"),
                _text_attr(span, "trace_id") or "unknown",
                _text_attr(span, "span_id") or "unknown",
                _text_attr(span, "parent_id"),
                _attr(span, "started_at"),
                _attr(span, "ended_at"),
                _attr(span, "error"),
            )
        span_data, trace_id, span_id, parent_id, started, ended, error = parts
        kind = span_kind(span_data)
        started_at, ended_at = _sdk_time(started), _sdk_time(ended)
        if started_at is None or ended_at is None:
            started_at, ended_at = parse_time(started, wall), parse_time(ended)
            iso_times = None
        else:
            iso_times = (started_at, started, ended_at, ended)
        record = SpanRecord(trace_id, span_id, parent_id, kind, kind, started_at, ended_at)
        record.iso_times = iso_times
        if error:
            self._error(record, error)
        self._fill(record, kind, _fields(span_data, private=kind == "response"))
        if exc is not None:
            record.exception = exception_info(exc, self.capture_content)
        if self.redactor is not None:
            self._redact(record)
        return record

    def _redact(self, record: SpanRecord) -> None:
        """Mask secrets everywhere a span can carry text."""
        redact = self.redactor
        assert redact is not None
        record.name = redact(record.name)
        record.data = redact_data(record.data, redact)
        record.data_json = None  # the text was made before redaction
        if record.error_message is not None:
            record.error_message = redact(record.error_message)
        if record.error_data is not None:
            record.error_data = redact_data(record.error_data, redact)
        if record.exception is not None:
            _redact_exception(record.exception, redact)

    def _error(self, record: SpanRecord, error: Any) -> None:
        message = error.get("message") if isinstance(error, dict) else _attr(error, "message")
        data = error.get("data") if isinstance(error, dict) else _attr(error, "data")
        text, _, _ = truncate_text(str(message) if message is not None else "Error", 4096)
        record.error_message = text
        if data is not None:
            if not self.capture_content and isinstance(data, dict):
                data = {k: (v if k in SAFE_ERROR_KEYS else NOT_CAPTURED) for k, v in data.items()}
            value, budget = jsonable(data, self.max_field_bytes)
            record.error_data = value if isinstance(value, dict) else {"value": value}
            if budget.truncated:
                record.truncated = True

    def _fill(self, record: SpanRecord, kind: str, raw: dict[str, Any]) -> None:
        if kind == "response":
            raw = _response_fields(raw)
        fields = raw
        if not self.capture_content or kind == "response":  # else _fields left out "_" keys
            fields = {}
            for key, value in raw.items():
                if key.startswith("_"):
                    continue
                if not self.capture_content and key in CONTENT_KEYS:
                    if value is not None:
                        fields[key] = NOT_CAPTURED
                    continue
                fields[key] = value
        # the common case, all of it plain JSON and small: one encode in C for the whole span
        # instead of one per field; the text is what the database stores and what ``data``
        # decodes from if it is ever read (see SpanRecord)
        text = plain_json_text(fields, self.max_field_bytes)
        if text is not None:
            # tool calls and the like hold only strings: their dict needs no decoded copy
            flat = _SCALARS.issuperset(map(type, fields.values()))
            record.set_data_text(text, fields if flat else None)
            data = fields  # plain JSON values: read the columns below straight from them
        else:
            data = record.data = self._convert_fields(record, fields)
        record.name = _plain(display_name(kind, data))
        if kind == "function":
            name = data.get("name")
            record.tool_name = _plain(name) if isinstance(name, str) else None
        model = data.get("model")
        if model is not None and isinstance(model, str):
            record.model = _plain(model)
        usage = data.get("usage")
        if usage is not None and isinstance(usage, dict):
            tokens = usage.get("input_tokens")
            record.input_tokens = count_of(usage.get("prompt_tokens") if tokens is None else tokens)
            tokens = usage.get("output_tokens")
            record.output_tokens = count_of(
                usage.get("completion_tokens") if tokens is None else tokens
            )

    def _convert_fields(self, record: SpanRecord, fields: dict[str, Any]) -> dict[str, Any]:
        """Field by field, each within the byte budget, cuts marked (hostile or large data)."""
        data: dict[str, Any] = {}
        cut: dict[str, int] = {}
        for key, value in fields.items():
            converted, budget = jsonable(value, self.max_field_bytes)
            data[key] = converted
            if budget.truncated:
                cut[key] = budget.original
        if cut:
            record.truncated = True
            data[MARKER] = {"truncated": cut, "max_field_bytes": self.max_field_bytes}
        return data


def span_kind(span_data: Any) -> str:
    """The span's own type: task/turn stay distinct from custom; unknown types pass through."""
    if span_data is None:
        return "unknown"
    cls = type(span_data)
    kind = _KINDS.get(cls)
    if kind is not None:
        return kind
    try:
        kind = span_data.type
    except Exception:
        kind = None
    if not isinstance(kind, str) or not kind:
        kind = cls.__name__.removesuffix("SpanData").lower() or "unknown"
    kind = clean_text(kind)[:64]
    if cls.__module__.startswith("agents."):
        _KINDS[cls] = kind  # the SDK's classes name their type as a constant
    return kind


_KINDS: dict[type, str] = {}


def display_name(kind: str, data: dict[str, Any]) -> str:
    """A short human label for a span (agent name, tool name, model, guardrail, ...)."""
    if kind == "turn":
        number = data.get("turn")
        return f"turn {number}" if number is not None else "turn"
    if kind == "handoff":
        return f"{data.get('from_agent') or '?'} → {data.get('to_agent') or '?'}"
    if kind in ("generation", "response"):
        model = data.get("model")
        return model if isinstance(model, str) and model else kind
    if kind == "mcp_tools":
        return f"list tools {data.get('server') or ''}".strip()
    name = data.get("name")
    if isinstance(name, str) and name:
        return name[:256]
    return kind


_SLOTS: dict[type, tuple[str, ...]] = {}


def _slot_names(cls: type) -> tuple[str, ...]:
    names = _SLOTS.get(cls)
    if names is None:
        found: list[str] = []
        for klass in reversed(cls.__mro__):
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if not name.startswith("__") and name not in found:
                    found.append(name)
        names = _SLOTS[cls] = tuple(found)
    return names


def _fields(span_data: Any, private: bool = True) -> dict[str, Any]:
    """All fields of a span-data object (``__slots__`` on new SDKs, ``__dict__`` on old ones):
    ``export()`` drops some (response output and input), so it is only the last resort.
    ``private=False`` leaves out ``_``-prefixed names (only response spans read one)."""
    if span_data is None:
        return {}
    fields: dict[str, Any] = {}
    try:
        cls = type(span_data)
        for name in _slot_names(cls) if private else _public_slot_names(cls):
            try:
                fields[name] = getattr(span_data, name)
            except AttributeError:
                continue
        extra = getattr(span_data, "__dict__", None)
        if extra:
            fields.update(extra if private else _public(extra))
    except Exception:
        fields = {}
    if not fields:
        fields = _exported(span_data) if private else _public(_exported(span_data))
    return fields


def _public(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if type(k) is not str or not k.startswith("_")}


def _exported(span_data: Any) -> dict[str, Any]:
    try:
        exported = span_data.export()
        if isinstance(exported, dict):
            return {k: v for k, v in exported.items() if k != "type"}
    except Exception:
        pass
    return {}


_PUBLIC: dict[type, tuple[str, ...]] = {}


def _public_slot_names(cls: type) -> tuple[str, ...]:
    names = _PUBLIC.get(cls)
    if names is None:
        names = _PUBLIC[cls] = tuple(n for n in _slot_names(cls) if not n.startswith("_"))
    return names


def _response_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """Lift what a local viewer needs out of the openai ``Response`` object on the span."""
    out = {k: v for k, v in raw.items() if k != "response"}
    response = raw.get("response")
    if response is None:
        if raw.get("_response_id"):  # kept by new SDKs when content is not included
            out["response_id"] = raw["_response_id"]
        return out
    out["response_id"] = _attr(response, "id")
    out["model"] = _attr(response, "model")
    out["output"] = _attr(response, "output")
    out["instructions"] = _attr(response, "instructions")
    status = _attr(response, "status")
    if status is not None:
        out["status"] = status
    for key in ("error", "incomplete_details"):
        value = _attr(response, key)
        if value is not None:
            out[key] = value
    if out.get("usage") is None:
        out["usage"] = _attr(response, "usage")
    return out


def _sdk_span_parts(span: Any) -> tuple[Any, ...] | None:
    """The SDK's own span class, read through the attributes behind its properties (a call
    each, seven per span): (span_data, trace_id, span_id, parent_id, started_at, ended_at,
    error). None for any other class, or when an id is not what ``_text_attr`` passes as is:
    the caller then takes the general path."""
    cls = type(span)
    direct = _DIRECT.get(cls)
    if direct is None:
        direct = _DIRECT[cls] = (
            cls.__name__ == "SpanImpl" and cls.__module__ == "agents.tracing.spans"
        )
    if not direct:
        return None
    try:
        trace_id, span_id, parent_id = span._trace_id, span._span_id, span._parent_id
        if not (
            type(trace_id) is str
            and type(span_id) is str
            and 0 < len(trace_id) <= 512
            and 0 < len(span_id) <= 512
            and trace_id.isascii()
            and span_id.isascii()
            and (
                parent_id is None
                or (type(parent_id) is str and 0 < len(parent_id) <= 512 and parent_id.isascii())
            )
        ):
            return None
        return (
            span._span_data,
            trace_id,
            span_id,
            parent_id,
            span._started_at,
            span._ended_at,
            span._error,
        )
    except AttributeError:  # another SDK version's internals: the properties will do
        _DIRECT[cls] = False
        return None


_DIRECT: dict[type, bool] = {}


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _text_attr(obj: Any, name: str) -> str | None:
    value = _attr(obj, name)
    if value is None:
        return None
    if type(value) is str and len(value) <= 512 and value.isascii():
        return value  # the common case: SDK ids and names
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:
            return None
    text, _, _ = truncate_text(value, 512)
    return text


def _plain(text: str) -> str:
    """A ``str`` subclass (a str enum, say) as the plain string JSON would have stored."""
    return text if type(text) is str else str.__str__(text)


def count_of(value: Any) -> int | None:
    """A count (tokens, turns) as an int, or None: booleans and NaN are not counts (one rule
    for the normaliser and the OTLP mapping)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value:
        return int(value)
    return None


def _guarded(redactor: Redactor) -> Redactor:
    """A redactor that cannot crash the worker: if it fails, the text is dropped, not kept."""

    def run(text: str) -> str:
        try:
            result = redactor(text)
            return result if isinstance(result, str) else "[redacted]"
        except Exception:
            return "[redacted: redactor failed]"

    return run


def next_seq() -> int:
    """Process-wide arrival counter used to order spans whose timestamps tie."""
    return next(_seq)
