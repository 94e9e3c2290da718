"""turnscope: see and debug OpenAI Agents SDK runs — a local store, OTLP export, and a
verdict for every run that says why it failed.

    import turnscope
    turnscope.instrument()          # records every run into ./turnscope.db
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TurnscopeProcessor", "__version__", "instrument"]

if TYPE_CHECKING:
    from turnscope.exporter.processor import TurnscopeProcessor

_instrumented: Any = None


def instrument(
    db: Any = None,
    *,
    replace_default: bool = False,
    capture_content: bool | None = None,
    max_field_bytes: int | None = None,
    **options: Any,
) -> TurnscopeProcessor:
    """Register a TurnscopeProcessor with the Agents SDK and return it.

    ``db``: file path or SQLAlchemy URL (default ``$TURNSCOPE_DB``, else ``./turnscope.db``;
    ``False`` for no database). ``replace_default=True`` drops the SDK's OpenAI exporter
    (``set_trace_processors``); otherwise it keeps running (``add_trace_processor``).
    Calling ``instrument()`` again replaces the processor it registered before.
    """
    global _instrumented
    from agents import add_trace_processor, set_trace_processors

    from turnscope.exporter.processor import TurnscopeProcessor

    processor = TurnscopeProcessor(
        db, capture_content=capture_content, max_field_bytes=max_field_bytes, **options
    )
    previous, _instrumented = _instrumented, processor
    if replace_default:
        set_trace_processors([processor])
    else:
        current = _registered_processors()
        if previous is not None and current is not None and previous in current:
            set_trace_processors([p for p in current if p is not previous] + [processor])
        else:
            add_trace_processor(processor)
    if previous is not None:
        previous.shutdown(5.0)
    return processor


def _registered_processors() -> list[Any] | None:
    """The SDK's current processor list (private attributes differ between versions)."""
    try:
        from agents.tracing import setup

        provider = (
            setup.get_trace_provider()
            if hasattr(setup, "get_trace_provider")
            else setup.GLOBAL_TRACE_PROVIDER
        )
        return list(provider._multi_processor._processors)
    except Exception:
        return None


def __getattr__(name: str) -> Any:
    # lazy: the CLI and the viewer must not import the Agents SDK
    if name == "TurnscopeProcessor":
        from turnscope.exporter.processor import TurnscopeProcessor

        return TurnscopeProcessor
    raise AttributeError(name)
