"""SQLAlchemy 2 typed models: ``runs`` (one row per trace, with its verdict), ``spans`` and
``processes`` (writers and their heartbeats, to tell a running run from a dead one).

Times are naive UTC datetimes (SQLite has no time zones); JSON columns hold data already made
JSON-safe by the exporter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# What migrations add on PostgreSQL only and no writer sets (0008: ``runs.message_key``, a
# generated column): left out of the models, skipped when the schema is compared to them.
POSTGRES_ONLY = frozenset({"message_key"})


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object`` hook: everything but ``POSTGRES_ONLY``."""
    return not (reflected and compare_to is None and name in POSTGRES_ONLY)


class Base(DeclarativeBase):
    """Declarative base for turnscope's tables."""


class Run(Base):
    """One trace: a summary kept up to date as spans arrive, and its verdict."""

    __tablename__ = "runs"

    trace_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workflow: Mapped[str | None] = mapped_column(String(512))
    group_id: Mapped[str | None] = mapped_column(String(512))
    metadata_json: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    sdk_version: Mapped[str | None] = mapped_column(String(64))
    process_id: Mapped[str | None] = mapped_column(String(64))
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))

    status: Mapped[str] = mapped_column(String(32))
    category: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    exception: Mapped[str | None] = mapped_column(String(255))
    failing_agent: Mapped[str | None] = mapped_column(String(512))
    failing_turn: Mapped[int | None] = mapped_column(Integer)
    max_turns: Mapped[int | None] = mapped_column(Integer)
    failing_span_id: Mapped[str | None] = mapped_column(String(255))
    failing_tool: Mapped[str | None] = mapped_column(String(512))
    explanation: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[list[Any] | None] = mapped_column(JSON)
    recovered_errors: Mapped[list[Any] | None] = mapped_column(JSON)
    exception_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    # len(warnings), kept as a column so lists and filters never read the JSON
    warning_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    agent_path: Mapped[str | None] = mapped_column(Text)
    agents: Mapped[list[Any] | None] = mapped_column(JSON)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    span_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    fatal_error_count: Mapped[int] = mapped_column(Integer, default=0)
    recovered_error_count: Mapped[int] = mapped_column(Integer, default=0)
    tool_calls: Mapped[int] = mapped_column(Integer, default=0)
    model_calls: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)

    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    trace_ended: Mapped[bool] = mapped_column(Boolean, default=False)
    streamed: Mapped[bool | None] = mapped_column(Boolean)
    ending: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # a streamed run's result
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)

    first_input: Mapped[str | None] = mapped_column(Text)
    final_output: Mapped[str | None] = mapped_column(Text)
    first_error: Mapped[str | None] = mapped_column(Text)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    dropped_spans: Mapped[int] = mapped_column(Integer, default=0)
    # the conversation this run is an exchange of (analysis/conversation.py, migration 0007)
    conversation_id: Mapped[str | None] = mapped_column(String(512))
    previous_response_id: Mapped[str | None] = mapped_column(String(255))
    last_response_id: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_runs_started_at", "started_at"),
        Index("ix_runs_status_started", "status", "started_at"),
        Index("ix_runs_category_started", "category", "started_at"),
        Index("ix_runs_workflow_started", "workflow", "started_at"),
        Index("ix_runs_group_id", "group_id"),
        Index("ix_runs_conversation_started", "conversation_id", "started_at"),
        Index(
            "ix_runs_last_response_id",
            "last_response_id",
            sqlite_where=text("last_response_id IS NOT NULL"),
            postgresql_where=text("last_response_id IS NOT NULL"),
        ),
        Index("ix_runs_process_status", "process_id", "status"),
        Index("ix_runs_updated_at", "updated_at"),
        Index("ix_runs_duration", "duration_ms"),
        # partial: only the few runs they select get an entry (see migration 0005)
        Index(
            "ix_runs_reason_started",
            "reason",
            "started_at",
            sqlite_where=text("reason IS NOT NULL"),
            postgresql_where=text("reason IS NOT NULL"),
        ),
        Index(
            "ix_runs_warnings_started",
            "started_at",
            sqlite_where=text("warning_count > 0"),
            postgresql_where=text("warning_count > 0"),
        ),
    )


class SpanRow(Base):
    """One SDK span, with the agent and turn the analysis assigned to it."""

    __tablename__ = "spans"

    trace_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    span_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(512))
    agent: Mapped[str | None] = mapped_column(String(512))
    turn: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    exception: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(255))
    tool_name: Mapped[str | None] = mapped_column(String(512))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)

    # every index costs each span write (~1-2 us each on SQLite); the primary key serves
    # "spans of a trace", these serve the viewer's tool and agent filters
    __table_args__ = (
        Index("ix_spans_tool_trace", "tool_name", "trace_id"),
        # agent spans only: "runs in which agent X ran" without touching other spans
        Index(
            "ix_spans_agent_trace",
            "name",
            "trace_id",
            sqlite_where=text("kind = 'agent'"),
            postgresql_where=text("kind = 'agent'"),
        ),
    )


class Process(Base):
    """A process that writes runs; its heartbeat tells live runs from orphaned ones."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    sdk_version: Mapped[str | None] = mapped_column(String(64))
    turnscope_version: Mapped[str | None] = mapped_column(String(64))
    python_version: Mapped[str | None] = mapped_column(String(64))
