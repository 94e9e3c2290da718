"""The mapping: turnscope's records as OpenTelemetry ``ReadableSpan``s.

``SpanMapper`` turns each ``SpanRecord`` into an OTel span with ids derived from the SDK ids
(``turnscope.ids``), the SDK's own start and end times (integer nanoseconds from the parsed ISO
strings, exact to the microsecond) and an explicit parent; each span kind is one method
(``SpanMapper._KIND``). The live sink and the backfill both use it.

Over 650 lines on purpose: one class whose bulk is the table's per-kind methods; each kind's
mapping sits in one place, and splitting the table across files would scatter exactly that.

Decisions (docs/design/otel-mapping.md §6):

* **One span per SDK span, sent when it ends** (``Batch.ended_spans``: each exactly once).
  The agent and turn it carries are the ones known at its end.
* **The root** (``invoke_workflow {workflow}``, id ``otel_root_span_id(trace_id)``) is sent
  once per trace, when the run first has a verdict: its trace ended, no run span is open and at
  least one span was seen (a streamed run whose ``with trace()`` block closed before the
  stream was consumed has no spans yet; its root waits for them). It spans the trace's
  callbacks widened to cover every span seen so far, and carries the verdict. Late spans
  and later legs of the same trace (a human-in-the-loop resume, a second run under the same
  trace id) nest under that root by id; the root is not sent again (a bounded memory of
  sent roots), so their own task and agent spans carry their errors. A run still open when
  turnscope shuts down gets its root (``incomplete``) and its open spans, marked
  ``turnscope.span.incomplete=true`` and ending at the run's last activity.
* **Status** ERROR only for an operation that failed (a SpanError, or an exception in flight
  when the span ended), UNSET otherwise; never OK. A tripped guardrail is UNSET: the
  guardrail worked; the run's failure is on the turn/agent/root spans.
* **error.type** (low cardinality, see ``genai.error_type``): the verdict category where one
  applies, else the exception class name, else ``_OTHER``.
* **Content** (messages, tool arguments and results, custom span data, error details)
  only when ``OtlpSettings.capture_content`` is on (``otlp_capture_content``, else
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``), and only what turnscope itself
  captured. JSON values are cut per string so they stay valid JSON, and each span's
  attributes stay within ``max_span_bytes`` (``attributes.Attributes``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from turnscope.config import OtlpSettings
from turnscope.content import canonical_args, tool_calls_in
from turnscope.exporter.normalize import CONTENT_KEYS, count_of
from turnscope.exporter.safe import MARKER
from turnscope.ids import otel_root_span_id, otel_span_id, otel_trace_id
from turnscope.otlp.attributes import (
    SMALL_TEXT,
    Attributes,
    json_value,
    small_text,
    utf8_len,
)
from turnscope.otlp.genai import (
    error_type,
    provider_of,
    span_failed,
    to_messages,
    to_output_messages,
)
from turnscope.records import (
    FAILED,
    INCOMPLETE,
    MODEL_KINDS,
    RUNNING,
    RunRecord,
    SpanRecord,
    is_captured,
)
from turnscope.sinks import Batch

if TYPE_CHECKING:  # OpenTelemetry is imported when the first span is made, not with turnscope
    from collections.abc import Callable

    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link

log = logging.getLogger("turnscope")

SCOPE_NAME = "turnscope"
SPAN_OVERHEAD = 160  # ids, times, kind, status: bytes a span costs besides its attributes
DESCRIPTION_BYTES = 1024
MAX_REMEMBERED_ROOTS = 50_000
MAX_TRACES = 5_000  # traces in progress whose structure is kept
MAX_OPEN_SPANS = 20_000
MAX_PENDING_PER_TRACE = 1_000
INCOMPLETE_ATTR = "turnscope.span.incomplete"

CLIENT_KINDS = frozenset({"generation", "response", "mcp_tools", "transcription", "speech"})
MODEL_CONFIG_ATTRS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_input_tokens",
    "total_tokens",
    "requests",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def to_ns(value: datetime) -> int:
    """Aware datetime -> integer nanoseconds since the epoch, exact (no float)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return ((value - _EPOCH) // _MICRO) * 1000


def _usage(data: dict[str, Any]) -> dict[str, Any]:
    usage = data.get("usage")
    return usage if isinstance(usage, dict) else {}


def conversation_id(run: RunRecord) -> str | None:
    """``gen_ai.conversation.id``: the conversation the run was given (the Responses
    ``conversation_id``, its session's id, or the trace's ``group_id``; see
    analysis/conversation.py). A run keyed only by its own trace id, until the store follows
    its ``previous_response_id`` chain, has none to send."""
    key = run.conversation_id
    return key if key and key != run.trace_id else None


@dataclass(slots=True)
class _TraceState:
    """What the mapper remembers about one trace while it is being exported."""

    trace_id: str
    workflow: str | None = None
    conversation: str | None = None  # gen_ai.conversation.id (conversation_id below)
    run: RunRecord | None = None
    first_start: datetime | None = None
    last_time: datetime | None = None
    tree: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # id -> kind, parent
    calls: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # by parent
    handoffs: dict[str, list[tuple[str, datetime | None]]] = field(default_factory=dict)
    first_model_end: dict[str, datetime] = field(default_factory=dict)  # by agent span id
    agent_models: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    agent_turns: dict[str, set[int]] = field(default_factory=dict)

    def saw(self, start: datetime | None, end: datetime | None) -> None:
        """Widen the trace's known time range."""
        if start is not None and (self.first_start is None or start < self.first_start):
            self.first_start = start
        for moment in (start, end):
            if moment is not None and (self.last_time is None or moment > self.last_time):
                self.last_time = moment


class SpanMapper:
    """Records -> OTel ``ReadableSpan``s (pure apart from its per-trace memory).

    The live sink and the backfill both feed it ``Batch``es, so a replayed run comes out with
    the same ids, names, times and attributes as when it was exported live."""

    def __init__(self, settings: OtlpSettings, resource: Any) -> None:
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from turnscope import __version__

        self.settings = settings
        self.content = settings.capture_content
        self.budget = settings.max_span_bytes
        self.resource = resource
        self.scope = InstrumentationScope(SCOPE_NAME, __version__)
        self.traces: OrderedDict[str, _TraceState] = OrderedDict()
        # sent roots: trace id -> conversation id
        self.roots: OrderedDict[str, str | None] = OrderedDict()
        self.open: OrderedDict[tuple[str, str], SpanRecord] = OrderedDict()
        self.errors = 0

    # -- batches -------------------------------------------------------------------------------

    def consume(self, batch: Batch) -> list[ReadableSpan]:
        """The OTel spans a batch completes: ended spans, then roots of runs with a verdict."""
        out: list[ReadableSpan] = []
        for run in batch.runs:
            state = self._trace(run.trace_id)
            state.run = run
            state.workflow = run.workflow or state.workflow
            state.conversation = conversation_id(run) or state.conversation
        for span in batch.spans:
            self._see(span)
        for span in batch.ended_spans:
            self._see(span)
            self._guard(out, self.span, span)
        for run in batch.runs:
            if self._ready(run):
                self._guard(out, self.root, run)
        return out

    def finish(self) -> list[ReadableSpan]:
        """At shutdown: roots not sent yet, then spans that never ended (marked incomplete)."""
        out: list[ReadableSpan] = []
        for state in list(self.traces.values()):
            if state.run is not None and state.trace_id not in self.roots:
                self._guard(out, self.root, state.run)
        for span in list(self.open.values()):
            self._guard(out, self.span, span)
        self.open.clear()
        return out

    def _guard(
        self,
        out: list[ReadableSpan],
        convert: Callable[[Any], ReadableSpan | list[ReadableSpan]],
        record: Any,
    ) -> None:
        try:
            result = convert(record)
        except Exception:  # one odd record must not cost the batch (nor be retried forever)
            self.errors += 1
            log.debug("turnscope: could not convert a record to an OTel span", exc_info=True)
            return
        if isinstance(result, list):
            out.extend(result)
        elif result is not None:
            out.append(result)

    def _ready(self, run: RunRecord) -> bool:
        return run.status != RUNNING and run.span_count > 0 and run.trace_id not in self.roots

    def _trace(self, trace_id: str) -> _TraceState:
        state = self.traces.get(trace_id)
        if state is None:
            state = self.traces[trace_id] = _TraceState(trace_id)
            if len(self.traces) > MAX_TRACES:
                self.traces.popitem(last=False)
        else:
            self.traces.move_to_end(trace_id)
        return state

    def _see(self, span: SpanRecord) -> None:
        state = self._trace(span.trace_id)
        if len(state.tree) < 100_000:
            state.tree[span.span_id] = (span.kind, span.parent_id)
        state.saw(span.started_at, span.ended_at)
        key = (span.trace_id, span.span_id)
        if span.ended_at is None:
            self.open[key] = span
            if len(self.open) > MAX_OPEN_SPANS:
                self.open.popitem(last=False)
        else:
            self.open.pop(key, None)

    def _ancestor(self, state: _TraceState, span_id: str | None, kind: str) -> str | None:
        for _ in range(64):
            if span_id is None:
                return None
            node = state.tree.get(span_id)
            if node is None:
                return None
            if node[0] == kind:
                return span_id
            span_id = node[1]
        return None

    # -- ids and the span object -----------------------------------------------------------------

    def _make(
        self,
        name: str,
        trace_id: str,
        span_id: int,
        parent_id: int | None,
        kind: str,
        start: int,
        end: int,
        attrs: Attributes,
        error: tuple[str, str] | None,
        events: Sequence[Event] = (),
        links: Sequence[Link] = (),
    ) -> ReadableSpan:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, TraceFlags
        from opentelemetry.trace.status import Status, StatusCode

        tid = otel_trace_id(trace_id)
        flags = TraceFlags(TraceFlags.SAMPLED)  # unsampled spans are silently dropped
        context = SpanContext(tid, span_id, is_remote=False, trace_flags=flags)
        parent = SpanContext(tid, parent_id, False, flags) if parent_id is not None else None
        description = ""
        if error is not None:
            attrs.put("error.type", error[0])
            description = small_text(error[1], DESCRIPTION_BYTES)
            status = Status(StatusCode.ERROR, description)
        else:
            status = Status(StatusCode.UNSET)
        name = small_text(name, 256)
        fixed = SPAN_OVERHEAD + utf8_len(name) + utf8_len(description) + 200 * len(events)
        fixed += 120 * len(links)
        attributes = attrs.finish(self.budget - fixed)
        span = ReadableSpan(
            name=name,
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            events=tuple(events),
            links=tuple(links),
            kind=SpanKind.CLIENT if kind == "client" else SpanKind.INTERNAL,
            status=status,
            start_time=start,
            end_time=max(end, start),
            instrumentation_scope=self.scope,
        )
        span._turnscope_size = attrs.size + fixed  # type: ignore[attr-defined]
        return span

    def _common(self, attrs: Attributes, span: SpanRecord, state: _TraceState) -> None:
        attrs.put("openai_agents.span_type", span.kind)
        attrs.put("openai_agents.trace_id", span.trace_id)
        attrs.put("openai_agents.span_id", span.span_id)
        attrs.put("openai_agents.parent_id", span.parent_id)
        conversation = state.conversation or self.roots.get(span.trace_id)
        attrs.put("gen_ai.conversation.id", conversation)
        attrs.put("gen_ai.agent.name", span.agent)  # the agent it ran in (kinds may refine)
        if span.turn is not None:
            attrs.put("turnscope.turn", span.turn)

    # -- one SDK span ------------------------------------------------------------------------------

    def span(self, span: SpanRecord) -> ReadableSpan:
        """One SDK span as an OTel span (an open span is sent as incomplete)."""
        state = self._trace(span.trace_id)
        data = span.data if isinstance(span.data, dict) else {}
        attrs = Attributes()
        self._common(attrs, span, state)
        events: list[Event] = []
        links: list[Link] = []
        by_kind = self._KIND.get(span.kind, SpanMapper._other)
        name = by_kind(self, attrs, span, data, state, events, links)
        otel_kind = "client" if span.kind in CLIENT_KINDS else "internal"
        if span.exception is not None:
            attrs.put("turnscope.exception.type", span.exception.type)
            if self.content and span.exception.message:
                attrs.put("turnscope.exception.message", span.exception.message)
        ended = span.ended_at
        if ended is None:
            attrs.put(INCOMPLETE_ATTR, True)
            ended = self._incomplete_end(span, state)
        start = span.started_at or ended
        if span.truncated:
            attrs.put("turnscope.truncated", True)
        parent = (
            otel_span_id(span.parent_id) if span.parent_id else otel_root_span_id(span.trace_id)
        )
        return self._make(
            name,
            span.trace_id,
            otel_span_id(span.span_id),
            parent,
            otel_kind,
            to_ns(start),
            to_ns(ended),
            attrs,
            self._error(span),
            events,
            links,
        )

    def _incomplete_end(self, span: SpanRecord, state: _TraceState) -> datetime:
        """Where an unfinished span stops: the run's last activity (deterministic, so a
        backfill sends the same span)."""
        candidates = [t for t in (span.started_at, state.last_time) if t is not None]
        if state.run is not None and state.run.ended_at is not None:
            candidates.append(state.run.ended_at)
        return max(candidates) if candidates else datetime.now(timezone.utc)

    def _error(self, span: SpanRecord) -> tuple[str, str] | None:
        etype = error_type(span)
        if etype is None:
            return None
        description = span.error_message or (span.exception.type if span.exception else etype)
        if self.content:
            detail = (span.error_data or {}).get("error")
            if isinstance(detail, str) and detail and is_captured(detail):
                description = f"{description}: {detail}"
            elif span.error_message is None and span.exception and span.exception.message:
                description = f"{description}: {span.exception.message}"
        return etype, description

    def _usage_attrs(self, attrs: Attributes, data: dict[str, Any], prefix: str) -> None:
        usage = _usage(data)
        for key in USAGE_KEYS:
            value = count_of(usage.get(key))
            if value is not None:
                attrs.put(prefix + key, value)

    # -- one method per span kind (_KIND): (attrs, span, data, state, events, links) -> name;
    # each adds the kind's attributes (and events and links) and returns the span's name

    def _task(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """The SDK's run (new SDKs): ``run {workflow}`` with the run's token usage."""
        self._usage_attrs(attrs, data, "openai_agents.usage.")
        return f"run {span.name}" if span.name and span.name != "task" else "run"

    def _turn(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """One turn of the agent loop (new SDKs): ``turn {n} {agent}`` with its usage."""
        number = count_of(data.get("turn"))
        agent = data.get("agent_name") or span.agent
        attrs.put("gen_ai.agent.name", agent)
        if number is not None:
            attrs.put("turnscope.turn", number)
        self._usage_attrs(attrs, data, "openai_agents.usage.")
        return " ".join(str(x) for x in ("turn", number, agent) if x is not None)

    def _agent(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """``invoke_agent {name}``, linked to the handoff that brought the run to it."""
        from opentelemetry.trace import Link, SpanContext, TraceFlags

        name = data.get("name") if isinstance(data.get("name"), str) else span.name
        attrs.put("gen_ai.operation.name", "invoke_agent")
        attrs.put("gen_ai.agent.name", name)
        model, provider = state.agent_models.get(span.span_id, (None, "openai"))
        attrs.put("gen_ai.provider.name", provider)
        attrs.put("gen_ai.request.model", model)
        for key in ("tools", "handoffs"):
            value = data.get(key)
            if isinstance(value, list):
                attrs.put(f"openai_agents.agent.{key}", [str(v) for v in value])
        attrs.put("openai_agents.agent.output_type", data.get("output_type"))
        turns = state.agent_turns.get(span.span_id)
        if turns:
            attrs.put("turnscope.agent.turns", len(turns))
        max_turns = count_of((span.error_data or {}).get("max_turns"))
        if max_turns is not None:
            attrs.put("turnscope.max_turns", max_turns)
        pending = state.handoffs.get(name or "")
        if pending:
            # the handoff that brought the run to this agent: the latest one that ended before
            # this agent started
            chosen = None
            for index in range(len(pending) - 1, -1, -1):
                ended = pending[index][1]
                if ended is None or span.started_at is None or ended <= span.started_at:
                    chosen = pending.pop(index)
                    break
            if chosen is not None:
                tid = otel_trace_id(span.trace_id)
                context = SpanContext(
                    tid, otel_span_id(chosen[0]), False, TraceFlags(TraceFlags.SAMPLED)
                )
                links.append(
                    Link(
                        context,
                        {
                            "openai_agents.link.type": "handoff",
                            "openai_agents.span_id": chosen[0],
                        },
                    )
                )
        return f"invoke_agent {name}" if name else "invoke_agent"

    def _model(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """``chat {model}``: a generation or response span, with the tool calls it asks for."""
        model = span.model or (data.get("model") if isinstance(data.get("model"), str) else None)
        provider = provider_of(data)
        attrs.put("gen_ai.operation.name", "chat")
        attrs.put("gen_ai.provider.name", provider)
        attrs.put("gen_ai.request.model", model)
        attrs.put("gen_ai.agent.name", span.agent)
        if span.kind == "response":
            attrs.put("gen_ai.response.model", model)
        response_id = data.get("response_id")
        if isinstance(response_id, str):
            attrs.put("gen_ai.response.id", response_id)
        config = data.get("model_config")
        if isinstance(config, dict):
            for key, attr in MODEL_CONFIG_ATTRS.items():
                value = config.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    attrs.put(attr, value)
        usage = _usage(data)
        if span.input_tokens is not None:
            attrs.put("gen_ai.usage.input_tokens", span.input_tokens)
        if span.output_tokens is not None:
            attrs.put("gen_ai.usage.output_tokens", span.output_tokens)
        details = usage.get("input_tokens_details")
        if isinstance(details, dict) and count_of(details.get("cached_tokens")):
            attrs.put("gen_ai.usage.cache_read.input_tokens", count_of(details["cached_tokens"]))
        details = usage.get("output_tokens_details")
        if isinstance(details, dict) and count_of(details.get("reasoning_tokens")):
            attrs.put("gen_ai.usage.reasoning.output_tokens", count_of(details["reasoning_tokens"]))
        output = data.get("output")
        # tool calls this response asks for, so the tool spans can carry their call ids
        calls = tool_calls_in(output)
        if calls and span.parent_id:
            queue = state.calls.setdefault(span.parent_id, [])
            queue.extend((cid, tool, canonical_args(args)) for cid, tool, args in calls)
            del queue[:-MAX_PENDING_PER_TRACE]
        agent_id = self._ancestor(state, span.parent_id, "agent")
        if agent_id is not None:
            if span.ended_at is not None:
                first = state.first_model_end.get(agent_id)
                if first is None or span.ended_at < first:
                    state.first_model_end[agent_id] = span.ended_at
            state.agent_models.setdefault(agent_id, (model, provider))
            if span.turn is not None:
                state.agent_turns.setdefault(agent_id, set()).add(span.turn)
        if self.content:
            attrs.content("gen_ai.input.messages", to_messages(data.get("input"), "user"))
            attrs.content("gen_ai.output.messages", to_output_messages(output))
            instructions = data.get("instructions")
            if isinstance(instructions, str) and is_captured(instructions):
                attrs.content(
                    "gen_ai.system_instructions", [{"type": "text", "content": instructions}]
                )
        return f"chat {model}" if model else "chat"

    def _function(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """``execute_tool {tool}``, with the call id of the model output that asked for it."""
        tool = span.tool_name or (data.get("name") if isinstance(data.get("name"), str) else None)
        attrs.put("gen_ai.operation.name", "execute_tool")
        attrs.put("gen_ai.tool.name", tool)
        attrs.put("gen_ai.agent.name", span.agent)
        mcp = data.get("mcp_data")
        if isinstance(mcp, dict):
            attrs.put("gen_ai.tool.type", "extension")
            attrs.put("mcp.method.name", "tools/call")
            attrs.put("openai_agents.mcp.server", mcp.get("server"))
        else:
            attrs.put("gen_ai.tool.type", "function")
        call_id = self._call_id(state, span, tool, data.get("input"))
        attrs.put("gen_ai.tool.call.id", call_id)
        if self.content:
            arguments = data.get("input")
            if isinstance(arguments, str) and is_captured(arguments):
                attrs.content("gen_ai.tool.call.arguments", json_value(arguments))
            result = data.get("output")
            if span.error_message is None and isinstance(result, str) and is_captured(result):
                attrs.content("gen_ai.tool.call.result", json_value(result))
        return f"execute_tool {tool}" if tool else "execute_tool"

    def _call_id(
        self, state: _TraceState, span: SpanRecord, tool: str | None, arguments: Any
    ) -> str | None:
        queue = state.calls.get(span.parent_id or "")
        if not queue or not tool:
            return None
        wanted = canonical_args(arguments) if is_captured(arguments) else None
        match = None
        for index, (_cid, name, args) in enumerate(queue):
            if name != tool:
                continue
            if wanted is None or args == wanted:
                match = index
                break
            if match is None:
                match = index  # same tool, other arguments: first come, first served
        if match is None:
            return None
        return queue.pop(match)[0]

    def _handoff(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """``handoff {from} -> {to}``; the target agent's span links back to it."""
        source, target = data.get("from_agent"), data.get("to_agent")
        attrs.put("gen_ai.agent.name", source)
        attrs.put("openai_agents.handoff.from_agent", source)
        attrs.put("openai_agents.handoff.to_agent", target)
        if isinstance(target, str) and target:
            pending = state.handoffs.setdefault(target, [])
            pending.append((span.span_id, span.ended_at))
            del pending[:-MAX_PENDING_PER_TRACE]
        return f"handoff {source or '?'} -> {target or '?'}"

    def _guardrail(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """``guardrail {name}``, with its result as attributes and a ``gen_ai.guardrail.result``
        event."""
        from opentelemetry.sdk.trace import Event

        name = data.get("name") if isinstance(data.get("name"), str) else span.name
        triggered = data.get("triggered")
        attrs.put("gen_ai.agent.name", span.agent)
        attrs.put("openai_agents.guardrail.triggered", triggered is True)
        if span_failed(span):  # the guardrail function raised: there is no result to report
            return f"guardrail {name}" if name else "guardrail"
        result: dict[str, Any] = {"gen_ai.guardrail.component.name": small_text(name or "", 256)}
        result["gen_ai.guardrail.result.type"] = "tripwire_triggered"
        result["gen_ai.guardrail.result.value"] = "true" if triggered is True else "false"
        source = self._guardrail_source(span, state)
        if source is not None:
            result["gen_ai.guardrail.source"] = source
        for key, value in result.items():
            attrs.put(key, value)
        when = span.ended_at or span.started_at
        if when is not None:
            events.append(Event("gen_ai.guardrail.result", dict(result), to_ns(when)))
        return f"guardrail {name}" if name else "guardrail"

    def _guardrail_source(self, span: SpanRecord, state: _TraceState) -> str | None:
        """input or output: input guardrails run in turn 1 (new SDKs) or alongside the first
        model call; output guardrails run after the agent's final model call."""
        parent = state.tree.get(span.parent_id or "")
        if parent is None:
            return None
        if parent[0] == "turn":
            return "input"
        if parent[0] != "agent":
            return None
        first = state.first_model_end.get(span.parent_id or "")
        if first is None or span.started_at is None or span.started_at < first:
            return "input"
        return "output"

    def _custom(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """A ``custom_span``: its data as attributes, only when content is captured."""
        if self.content:
            self._custom_data(attrs, data.get("data"))
        return span.name or "custom"

    def _custom_data(self, attrs: Attributes, value: Any) -> None:
        if not isinstance(value, dict) or not is_captured(value):
            return
        for key, item in list(value.items())[:32]:
            if key == MARKER:
                continue
            attr = f"openai_agents.custom.{small_text(str(key), 64)}"
            if isinstance(item, (int, float, bool)) or (
                isinstance(item, str) and utf8_len(item) <= SMALL_TEXT
            ):
                attrs.put(attr, item)
            else:
                attrs.content(attr, item)

    def _mcp_tools(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """``tools/list {server}``: an MCP server listing its tools."""
        server = data.get("server")
        attrs.put("mcp.method.name", "tools/list")
        attrs.put("openai_agents.mcp.server", server)
        result = data.get("result")
        if isinstance(result, list):
            attrs.put("openai_agents.mcp.tools", [str(r) for r in result])
        return f"tools/list {server}" if server else "tools/list"

    def _audio(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """``transcription {model}`` or ``speech {model}`` (voice pipelines)."""
        kind, model = span.kind, data.get("model")
        attrs.put("gen_ai.operation.name", kind)
        attrs.put("gen_ai.request.model", model)
        for key in ("input_format", "output_format"):
            attrs.put(f"openai_agents.{kind}.{key}", data.get(key))
        return f"{kind} {model}" if model else kind

    def _other(
        self,
        attrs: Attributes,
        span: SpanRecord,
        data: dict[str, Any],
        state: _TraceState,
        events: list[Event],
        links: list[Link],
    ) -> str:
        """speech_group and span types newer than this code: their scalar, non-content fields."""
        kind = span.kind
        for key, value in data.items():
            if key == MARKER or key in CONTENT_KEYS:
                continue
            if isinstance(value, (str, int, float, bool)):
                attrs.put(f"openai_agents.{kind}.{key}", value, 256)
        return span.name or kind

    # span kind -> its method; kinds not in the table (speech_group, span types newer than
    # this code) go to _other
    _KIND: ClassVar[dict[str, Callable[..., str]]] = {
        "task": _task,
        "turn": _turn,
        "agent": _agent,
        **dict.fromkeys(MODEL_KINDS, _model),
        "function": _function,
        "handoff": _handoff,
        "guardrail": _guardrail,
        "custom": _custom,
        "mcp_tools": _mcp_tools,
        "transcription": _audio,
        "speech": _audio,
    }

    # -- the root -------------------------------------------------------------------------------

    def root(self, run: RunRecord) -> list[ReadableSpan]:
        """The trace's root span with the run's verdict (and the spans of a run that will
        never finish, marked incomplete)."""
        state = self._trace(run.trace_id)
        conversation = conversation_id(run) or state.conversation
        self.roots[run.trace_id] = conversation
        if len(self.roots) > MAX_REMEMBERED_ROOTS:
            self.roots.popitem(last=False)
        out: list[ReadableSpan] = []
        if run.status == INCOMPLETE:
            for key in [k for k in self.open if k[0] == run.trace_id]:
                out.append(self.span(self.open.pop(key)))
        verdict = run.verdict
        attrs = Attributes()
        workflow = run.workflow or state.workflow
        attrs.put("gen_ai.operation.name", "invoke_workflow")
        attrs.put("gen_ai.workflow.name", workflow)
        attrs.put("gen_ai.conversation.id", conversation)
        attrs.put("openai_agents.span_type", "trace")
        attrs.put("openai_agents.trace_id", run.trace_id)
        attrs.put("openai_agents.group_id", run.group_id)
        for key, value in list((run.metadata or {}).items())[:32]:
            attrs.put(f"openai_agents.metadata.{small_text(str(key), 64)}", value, 256)
        attrs.put("turnscope.status", run.status)
        attrs.put("turnscope.turns", run.turns)
        attrs.put("turnscope.agents", list(run.agents))
        attrs.put("turnscope.span_count", run.span_count)
        attrs.put("turnscope.error_count", run.error_count)
        attrs.put("turnscope.recovered_error_count", run.recovered_error_count)
        attrs.put("turnscope.tool_calls", run.tool_calls)
        attrs.put("turnscope.model_calls", run.model_calls)
        attrs.put("turnscope.usage.input_tokens", run.input_tokens)
        attrs.put("turnscope.usage.output_tokens", run.output_tokens)
        if run.streamed is not None:
            attrs.put("turnscope.streamed", run.streamed)
        if run.dropped_spans:
            attrs.put("turnscope.dropped_spans", run.dropped_spans)
        if run.truncated:
            attrs.put("turnscope.truncated", True)
        if verdict.recovered_errors:
            attrs.put(
                "turnscope.recovered_errors",
                [
                    " ".join(
                        str(x)
                        for x in (g.get("category"), g.get("tool"), f"x{g.get('count')}")
                        if x is not None
                    )
                    for g in verdict.recovered_errors
                ],
            )
        if verdict.warnings:
            attrs.put("turnscope.warnings", [w.kind for w in verdict.warnings])
        error: tuple[str, str] | None = None
        if run.status in (FAILED, INCOMPLETE):
            category = verdict.category or "unknown"
            message = verdict.message
            if not self.content and run.exception is not None and message == run.exception.message:
                message = None  # the exception's own text is content, not an SDK error message
            attrs.put("turnscope.failure.category", category)
            attrs.put("turnscope.failure.reason", verdict.reason)
            attrs.put("turnscope.failure.message", message)
            attrs.put("turnscope.failure.exception", verdict.exception)
            attrs.put("turnscope.failure.agent", verdict.agent)
            attrs.put("turnscope.failure.turn", verdict.turn)
            attrs.put("turnscope.failure.tool", verdict.tool)
            if verdict.span_id:
                attrs.put("turnscope.failure.span_id", verdict.span_id)
                attrs.put("turnscope.failure.otel_span_id", f"{otel_span_id(verdict.span_id):016x}")
            attrs.put("turnscope.max_turns", verdict.max_turns)
            description = category + (f": {message}" if message else "")
            if self.content and verdict.explanation:
                description = f"{category}: {verdict.explanation}"
            error = (category, description)
        if self.content and verdict.explanation:
            attrs.put("turnscope.explanation", verdict.explanation)
        times = [t for t in (run.started_at, state.first_start) if t is not None]
        start = min(times) if times else datetime.now(timezone.utc)
        ends = [t for t in (run.ended_at, state.last_time, start) if t is not None]
        end = max(ends)
        out.append(
            self._make(
                f"invoke_workflow {workflow}" if workflow else "invoke_workflow",
                run.trace_id,
                otel_root_span_id(run.trace_id),
                None,
                "internal",
                to_ns(start),
                to_ns(end),
                attrs,
                error,
            )
        )
        # the trace is done: forget it (bounded memory); a late span starts a small new state,
        # and its conversation id is kept with the sent roots
        self.traces.pop(run.trace_id, None)
        return out
