"""A scripted fake model for openai-agents 0.0.17 through 0.24 (no network, no API key).

It behaves like the SDK's real models from the tracer's point of view: a Chat-Completions-style
model records a ``generation`` span with model, input, output and usage; a Responses-style
model records a ``response`` span with the openai ``Response`` object and its input, and
``Error getting response`` / ``Error streaming response`` on failure.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agents import Model, ModelResponse, Usage
from agents.tracing import SpanError, generation_span, response_span
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_usage import (
    InputTokensDetails,
    OutputTokensDetails,
    ResponseUsage,
)

_ids = itertools.count(1)

Step = list[Any] | BaseException | Callable[[], Awaitable[Any]]


def text(message: str) -> ResponseOutputMessage:
    """An assistant message (a final answer unless the agent wants structured output)."""
    return ResponseOutputMessage(
        id=f"msg_{next(_ids)}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=message, annotations=[])],
    )


def call(name: str, arguments: dict[str, Any] | str | None = None) -> ResponseFunctionToolCall:
    """A tool call (or a handoff: ``call("transfer_to_billing")``) with a unique call id."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    n = next(_ids)
    return ResponseFunctionToolCall(
        id=f"fc_{n}", call_id=f"call_{n}", type="function_call", name=name, arguments=args
    )


def delay(seconds: float, then: list[Any] | BaseException) -> Callable[[], Awaitable[Any]]:
    """A step that takes ``seconds`` (a slow model) before answering ``then``."""

    async def _step() -> Any:
        await asyncio.sleep(seconds)
        return then

    return _step


class DemoModel(Model):
    """Plays ``steps`` in order: each is a list of output items, an exception to raise, or a
    coroutine function returning either (slow models)."""

    def __init__(
        self,
        steps: list[Step],
        *,
        name: str = "demo-gpt-4o",
        api: str = "chat",
        tokens: tuple[int, int] = (120, 40),
        record_errors: bool = True,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None:
        if api not in ("chat", "responses"):
            raise ValueError("api must be 'chat' or 'responses'")
        self.steps = list(steps)
        self.name = name
        self.api = api
        self.tokens = tokens
        # of the input tokens, read from the provider's prompt cache; of the output, reasoning
        self.cached_tokens = cached_tokens
        self.reasoning_tokens = reasoning_tokens
        self.record_errors = record_errors  # False: like old Chat Completions, no SpanError
        self.calls = 0

    async def _next(self) -> list[Any]:
        self.calls += 1
        if not self.steps:
            raise RuntimeError("DemoModel script exhausted: the agent asked for another turn")
        step = self.steps.pop(0)
        if callable(step) and not isinstance(step, BaseException):
            step = await step()
        if isinstance(step, BaseException):
            raise step
        return list(step)

    def _usage(self) -> Usage:
        inp, out = self.tokens
        return Usage(requests=1, input_tokens=inp, output_tokens=out, total_tokens=inp + out)

    def _response(self, items: list[Any]) -> Response:
        inp, out = self.tokens
        return Response(
            id=f"resp_{next(_ids)}",
            created_at=time.time(),
            model=self.name,
            object="response",
            output=items,
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=True,
            top_p=None,
            status="completed",
            usage=ResponseUsage(
                input_tokens=inp,
                output_tokens=out,
                total_tokens=inp + out,
                input_tokens_details=_zeros(InputTokensDetails, cached_tokens=self.cached_tokens),
                output_tokens_details=_zeros(
                    OutputTokensDetails, reasoning_tokens=self.reasoning_tokens
                ),
            ),
        )

    def _span(self, tracing: Any) -> Any:
        disabled = tracing.is_disabled()
        if self.api == "responses":
            return response_span(disabled=disabled)
        return generation_span(
            model=self.name, model_config={"temperature": 0.0}, disabled=disabled
        )

    async def _run(self, system: str | None, input: Any, tracing: Any, streaming: bool) -> Any:
        with self._span(tracing) as span:
            include = tracing.include_data()
            if include and self.api == "chat":
                span.span_data.input = _chat_input(system, input)
            try:
                items = await self._next()
            except Exception as exc:
                if not self.record_errors:
                    raise
                message = "Error streaming response" if streaming else "Error getting response"
                detail = str(exc) if include else type(exc).__name__
                span.set_error(SpanError(message=message, data={"error": detail}))
                raise
            usage = self._usage()
            if self.api == "chat":
                if include:
                    span.span_data.output = [i.model_dump(exclude_none=True) for i in items]
                span.span_data.usage = self._span_usage(usage)
                return items, usage, None
            response = self._response(items)
            if include:
                span.span_data.response = response
                span.span_data.input = input
            if hasattr(span.span_data, "usage"):
                span.span_data.usage = self._span_usage(usage)
            return items, usage, response

    def _span_usage(self, usage: Usage) -> dict[str, Any]:
        """The span's usage as new SDKs record it (token details only when there are any)."""
        out: dict[str, Any] = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
        }
        if self.cached_tokens:
            out["input_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens:
            out["output_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        return out

    async def get_response(
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        *args: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        """Answer one turn (non-streamed runs)."""
        items, usage, response = await self._run(system_instructions, input, tracing, False)
        return ModelResponse(
            output=items, usage=usage, response_id=response.id if response else None
        )

    async def stream_response(  # type: ignore[override]
        self,
        system_instructions: str | None,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        *args: Any,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Answer one turn as a stream ending in ``response.completed``."""
        items, _usage, response = await self._run(system_instructions, input, tracing, True)
        if response is None:
            response = self._response(items)
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )


def _zeros(cls: Any, **counts: int) -> Any:
    """A usage-details object with every required counter at 0 but ``counts`` (fields differ
    by openai version, e.g. ``cache_write_tokens`` is new)."""
    fields = getattr(cls, "model_fields", {})
    values = {name: 0 for name, info in fields.items() if info.is_required()}
    values.update({k: v for k, v in counts.items() if k in fields})
    return cls(**values)


def _chat_input(system: str | None, input: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    if isinstance(input, str):
        messages.append({"role": "user", "content": input})
    else:
        for item in input:
            messages.append(dict(item) if isinstance(item, dict) else {"item": str(item)})
    return messages
