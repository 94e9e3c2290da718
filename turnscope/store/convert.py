"""Records <-> table rows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from turnscope.records import (
    Evidence,
    ExceptionInfo,
    RunRecord,
    RunWarning,
    SpanRecord,
    TraceInfo,
    Verdict,
)


def to_db_time(value: datetime | None) -> datetime | None:
    """Aware datetime -> naive UTC (what both SQLite and PostgreSQL columns store)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def from_db_time(value: datetime | str | None) -> datetime | None:
    """Stored naive UTC -> aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso_time(value: datetime | str | None) -> str | None:
    """A stored time as ISO 8601 text in UTC, or None."""
    parsed = from_db_time(value)
    return parsed.isoformat() if parsed else None


def span_row(span: SpanRecord) -> dict[str, Any]:
    """SpanRecord -> ``spans`` row."""
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_id": span.parent_id,
        "kind": span.kind,
        "name": span.name,
        "agent": span.agent,
        "turn": span.turn,
        "started_at": to_db_time(span.started_at),
        "ended_at": to_db_time(span.ended_at),
        "duration_ms": span.duration_ms,
        "status": span.status,
        "error_message": span.error_message,
        "error_data": span.error_data,
        "data": span.data,
        "exception": span.exception.to_dict() if span.exception else None,
        "model": span.model,
        "tool_name": span.tool_name,
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "seq": span.seq,
        "truncated": span.truncated,
    }


def span_from_row(row: Any) -> SpanRecord:
    """``spans`` row (mapping) -> SpanRecord."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return SpanRecord(
        trace_id=m["trace_id"],
        span_id=m["span_id"],
        parent_id=m["parent_id"],
        kind=m["kind"],
        name=m["name"] or m["kind"],
        started_at=from_db_time(m["started_at"]),
        ended_at=from_db_time(m["ended_at"]),
        error_message=m["error_message"],
        error_data=m["error_data"],
        data=m["data"] or {},
        exception=ExceptionInfo.from_dict(m["exception"]),
        seq=m["seq"] or 0,
        truncated=bool(m["truncated"]),
        model=m["model"],
        tool_name=m["tool_name"],
        input_tokens=m["input_tokens"],
        output_tokens=m["output_tokens"],
        agent=m["agent"],
        turn=m["turn"],
    )


def run_row(run: RunRecord, now: datetime) -> dict[str, Any]:
    """RunRecord -> ``runs`` row."""
    v = run.verdict
    return {
        "trace_id": run.trace_id,
        "workflow": run.workflow,
        "group_id": run.group_id,
        "metadata": run.metadata,
        "sdk_version": run.sdk_version,
        "process_id": run.process_id,
        "pid": run.pid,
        "host": run.host,
        "status": run.status,
        "category": v.category,
        "reason": v.reason,
        "message": v.message,
        "exception": v.exception,
        "failing_agent": v.agent,
        "failing_turn": v.turn,
        "max_turns": v.max_turns,
        "failing_span_id": v.span_id,
        "failing_tool": v.tool,
        "explanation": v.explanation,
        "evidence": [e.to_dict() for e in v.evidence],
        "recovered_errors": v.recovered_errors,
        "exception_detail": run.exception.to_dict() if run.exception else None,
        "warnings": [w.to_dict() for w in v.warnings],
        "warning_count": len(v.warnings),
        "agent_path": run.agent_path,
        "agents": run.agents,
        "turns": run.turns,
        "span_count": run.span_count,
        "error_count": run.error_count,
        "fatal_error_count": run.fatal_error_count,
        "recovered_error_count": run.recovered_error_count,
        "tool_calls": run.tool_calls,
        "model_calls": run.model_calls,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "started_at": to_db_time(run.started_at),
        "ended_at": to_db_time(run.ended_at),
        "duration_ms": run.duration_ms,
        "trace_ended": run.trace_ended,
        "streamed": run.streamed,
        "ending": run.ending,
        "updated_at": to_db_time(now),
        "first_input": run.first_input,
        "final_output": run.final_output,
        "first_error": run.first_error,
        "truncated": run.truncated,
        "dropped_spans": run.dropped_spans,
        "conversation_id": run.conversation_id,
        "previous_response_id": run.previous_response_id,
        "last_response_id": run.last_response_id,
    }


def trace_info_from_row(row: Any) -> TraceInfo:
    """``runs`` row -> the TraceInfo the analysis needs to recompute it."""
    m = row._mapping if hasattr(row, "_mapping") else row
    info = TraceInfo(
        trace_id=m["trace_id"],
        workflow=m["workflow"],
        group_id=m["group_id"],
        metadata=m["metadata"],
        sdk_version=m["sdk_version"],
        process_id=m["process_id"],
        pid=m["pid"],
        host=m["host"],
        started_at=from_db_time(m["started_at"]),
        dropped_spans=m["dropped_spans"] or 0,
        streamed=m["streamed"],
        previous_response_id=m["previous_response_id"],
    )
    # a stored key other than the run's own trace id was stated (or resolved from a chain):
    # kept as stated, so rewriting the run keeps its conversation
    if m["conversation_id"] and m["conversation_id"] != m["trace_id"]:
        info.conversation_id = m["conversation_id"]
    if m["trace_ended"]:
        info.ending = m["ending"]
        info.ended_at = from_db_time(m["ended_at"]) or info.started_at
        info.exception = ExceptionInfo.from_dict(m["exception_detail"])
    return info


def verdict_from_row(row: Any) -> Verdict:
    """The stored verdict of a ``runs`` row."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return Verdict(
        status=m["status"],
        category=m["category"],
        reason=m["reason"],
        message=m["message"],
        exception=m["exception"],
        agent=m["failing_agent"],
        turn=m["failing_turn"],
        max_turns=m["max_turns"],
        span_id=m["failing_span_id"],
        tool=m["failing_tool"],
        explanation=m["explanation"] or "",
        evidence=[
            Evidence(e.get("span_id"), e.get("kind", ""), e.get("message", ""))
            for e in (m["evidence"] or [])
        ],
        recovered_errors=list(m["recovered_errors"] or []),
        warnings=warnings_from_row(m["warnings"]),
    )


def warnings_from_row(value: Any) -> list[RunWarning]:
    """A ``runs.warnings`` value -> RunWarning records (NULL, from before 0005, is none)."""
    return [RunWarning.from_dict(w) for w in (value or []) if isinstance(w, dict)]
