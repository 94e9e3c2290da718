"""OTLP export: turnscope's records as OpenTelemetry spans, for Jaeger or any OTLP backend.

- ``sink``: ``OtlpSink``, the pipeline's sink (a private ``TracerProvider`` whose
  ``BatchSpanProcessor`` exports on its own thread; bounded queue, export counters).
- ``mapper``: ``SpanMapper``, records to ``ReadableSpan``s, one method per span kind, and the
  decisions behind the mapping.
- ``genai``: GenAI semantic-convention message shapes, provider names, ``error.type``.
- ``attributes``: span attributes within a byte budget.
- ``backfill``: ``turnscope export-otlp``, stored runs replayed through the same sink.

Import from the submodules. OpenTelemetry itself is imported only when a sink opens or a
span is made.
"""
