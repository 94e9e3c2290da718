"""Deterministic OpenTelemetry ids from Agents SDK ids (docs/design/otel-mapping.md §6.1 rule 1).

The same SDK trace always maps to the same OTel trace id, so a run in the local store links
straight to its trace in Jaeger, resumed runs stay in one trace, and backfills are idempotent.
"""

from __future__ import annotations

import hashlib
import re

_TRACE_HEX = re.compile(r"trace_([0-9a-f]{32})")


def otel_trace_id(trace_id: str) -> int:
    """128-bit OTel trace id: the hex of ``trace_<32 hex>``, else SHA-256 of the string."""
    match = _TRACE_HEX.fullmatch(trace_id)
    if match:
        value = int(match.group(1), 16)
        if value:
            return value
    value = int.from_bytes(
        hashlib.sha256(trace_id.encode("utf-8", "surrogatepass")).digest()[:16], "big"
    )
    return value or 1


def otel_span_id(span_id: str) -> int:
    """64-bit OTel span id: the first 8 bytes of SHA-256 of the SDK span id (never zero)."""
    digest = hashlib.sha256(span_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") or 1


def otel_root_span_id(trace_id: str) -> int:
    """Span id of the synthetic root span (``invoke_workflow``) of a trace."""
    return otel_span_id(f"{trace_id}:root")


def otel_trace_id_hex(trace_id: str) -> str:
    """The OTel trace id as 32 lowercase hex digits (what Jaeger URLs use)."""
    return f"{otel_trace_id(trace_id):032x}"
