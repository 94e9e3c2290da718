"""Initial schema: runs, spans, processes.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the first schema."""
    op.create_table(
        "runs",
        sa.Column("trace_id", sa.String(255), primary_key=True),
        sa.Column("workflow", sa.String(512)),
        sa.Column("group_id", sa.String(512)),
        sa.Column("metadata", sa.JSON()),
        sa.Column("sdk_version", sa.String(64)),
        sa.Column("process_id", sa.String(64)),
        sa.Column("pid", sa.Integer()),
        sa.Column("host", sa.String(255)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64)),
        sa.Column("message", sa.Text()),
        sa.Column("exception", sa.String(255)),
        sa.Column("failing_agent", sa.String(512)),
        sa.Column("failing_turn", sa.Integer()),
        sa.Column("max_turns", sa.Integer()),
        sa.Column("failing_span_id", sa.String(255)),
        sa.Column("failing_tool", sa.String(512)),
        sa.Column("explanation", sa.Text()),
        sa.Column("evidence", sa.JSON()),
        sa.Column("recovered_errors", sa.JSON()),
        sa.Column("exception_detail", sa.JSON()),
        sa.Column("agent_path", sa.Text()),
        sa.Column("agents", sa.JSON()),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("fatal_error_count", sa.Integer(), nullable=False),
        sa.Column("recovered_error_count", sa.Integer(), nullable=False),
        sa.Column("tool_calls", sa.Integer(), nullable=False),
        sa.Column("model_calls", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("ended_at", sa.DateTime()),
        sa.Column("duration_ms", sa.Float()),
        sa.Column("trace_ended", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("first_input", sa.Text()),
        sa.Column("final_output", sa.Text()),
        sa.Column("first_error", sa.Text()),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("dropped_spans", sa.Integer(), nullable=False),
    )
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_status_started", "runs", ["status", "started_at"])
    op.create_index("ix_runs_category_started", "runs", ["category", "started_at"])
    op.create_index("ix_runs_workflow_started", "runs", ["workflow", "started_at"])
    op.create_index("ix_runs_group_id", "runs", ["group_id"])
    op.create_index("ix_runs_process_status", "runs", ["process_id", "status"])

    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(255), primary_key=True),
        sa.Column("span_id", sa.String(255), primary_key=True),
        sa.Column("parent_id", sa.String(255)),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("name", sa.String(512)),
        sa.Column("agent", sa.String(512)),
        sa.Column("turn", sa.Integer()),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("ended_at", sa.DateTime()),
        sa.Column("duration_ms", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_message", sa.Text()),
        sa.Column("error_data", sa.JSON()),
        sa.Column("data", sa.JSON()),
        sa.Column("exception", sa.JSON()),
        sa.Column("model", sa.String(255)),
        sa.Column("tool_name", sa.String(512)),
        sa.Column("input_tokens", sa.Integer()),
        sa.Column("output_tokens", sa.Integer()),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_spans_trace_started", "spans", ["trace_id", "started_at"])
    op.create_index("ix_spans_tool_name", "spans", ["tool_name"])
    op.create_index("ix_spans_kind_status", "spans", ["kind", "status"])

    op.create_table(
        "processes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime()),
        sa.Column("sdk_version", sa.String(64)),
        sa.Column("turnscope_version", sa.String(64)),
        sa.Column("python_version", sa.String(64)),
    )


def downgrade() -> None:
    """Drop everything."""
    op.drop_table("processes")
    op.drop_table("spans")
    op.drop_table("runs")
