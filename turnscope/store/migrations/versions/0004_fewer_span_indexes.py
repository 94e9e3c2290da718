"""Drop two spans indexes no query uses: every span write paid for them.

- ``spans(trace_id, started_at)``: the primary key ``(trace_id, span_id)`` already finds a
  trace's spans, and they are ordered in Python.
- ``spans(kind, status)``: no query filters on it (the agent filter has its own partial
  index, the text search scans).

Measured at 100,000 runs / 2,000,000 spans (``benchmarks/viewer_scale.py``): no viewer query
slower; SQLite's own cost per span write 13.2 -> ~10 us.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop the unused indexes."""
    op.drop_index("ix_spans_kind_status", table_name="spans")
    op.drop_index("ix_spans_trace_started", table_name="spans")


def downgrade() -> None:
    """Recreate them."""
    op.create_index("ix_spans_trace_started", "spans", ["trace_id", "started_at"])
    op.create_index("ix_spans_kind_status", "spans", ["kind", "status"])
