"""runs.reason, runs.warnings and runs.warning_count: the verdict's finer cause and the things
a person should look at (DESIGN.md "Verdict vocabulary").

- ``reason``: the finer cause inside the category (``rate_limited``, ``connect``, ...), or NULL.
- ``warnings``: the verdict's warnings as JSON (``[{kind, message, agent, turn, span_id}]``).
- ``warning_count``: their number, so lists and the "only runs with warnings" filter never
  read the JSON. Existing rows get 0 (a run analysed before warnings existed has none known).

Indexes, with 0003's reasoning (a filter the viewer offers is answered from an index at
scale, and writes barely pay for it): both are partial, over the few runs they select, so
the common run (no reason, no warning) adds no index entry.

- ``runs(reason, started_at) WHERE reason IS NOT NULL``: "failures with reason X", newest
  first, like ``ix_runs_category_started`` for categories.
- ``runs(started_at) WHERE warning_count > 0``: "runs with warnings", newest first (the
  reader writes the condition as this literal text, so SQLite's planner matches it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HAS_REASON = sa.text("reason IS NOT NULL")
HAS_WARNINGS = sa.text("warning_count > 0")


def upgrade() -> None:
    """Add the columns and their partial indexes."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("warning_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index(
        "ix_runs_reason_started",
        "runs",
        ["reason", "started_at"],
        sqlite_where=HAS_REASON,
        postgresql_where=HAS_REASON,
    )
    op.create_index(
        "ix_runs_warnings_started",
        "runs",
        ["started_at"],
        sqlite_where=HAS_WARNINGS,
        postgresql_where=HAS_WARNINGS,
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_runs_warnings_started", table_name="runs")
    op.drop_index("ix_runs_reason_started", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("warning_count")
        batch.drop_column("warnings")
        batch.drop_column("reason")
