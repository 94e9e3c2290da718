"""OTLP export: turnscope's records as OpenTelemetry spans, for Jaeger or any OTLP backend."""
