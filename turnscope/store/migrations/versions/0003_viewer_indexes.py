"""Indexes for the viewer's filters at scale.

- ``spans(tool_name, trace_id)`` replaces ``spans(tool_name)``: "runs that called tool X" is
  answered from the index alone (the old index had to read every matching span row).
- ``spans(name, trace_id) WHERE kind = 'agent'``: "runs in which agent X ran", and the agent
  menu, from a small partial index (agent spans only, so writes barely pay for it).
- ``runs(updated_at)``: the viewer's data version (latest write) without a table scan.
- ``runs(duration_ms)``: p50/p95 durations read in index order instead of sorting every run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AGENT_ONLY = sa.text("kind = 'agent'")


def upgrade() -> None:
    """Create the viewer's indexes."""
    op.drop_index("ix_spans_tool_name", table_name="spans")
    op.create_index("ix_spans_tool_trace", "spans", ["tool_name", "trace_id"])
    op.create_index(
        "ix_spans_agent_trace",
        "spans",
        ["name", "trace_id"],
        sqlite_where=AGENT_ONLY,
        postgresql_where=AGENT_ONLY,
    )
    op.create_index("ix_runs_updated_at", "runs", ["updated_at"])
    op.create_index("ix_runs_duration", "runs", ["duration_ms"])


def downgrade() -> None:
    """Back to the 0002 indexes."""
    op.drop_index("ix_runs_duration", table_name="runs")
    op.drop_index("ix_runs_updated_at", table_name="runs")
    op.drop_index("ix_spans_agent_trace", table_name="spans")
    op.drop_index("ix_spans_tool_trace", table_name="spans")
    op.create_index("ix_spans_tool_name", "spans", ["tool_name"])
