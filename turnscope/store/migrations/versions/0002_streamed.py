"""runs.streamed: whether the run was started with Runner.run_streamed (None: unknown).

A streamed run raises its exception from ``stream_events()`` after the trace has ended, so the
processor never sees it; the verdict needs to know the run was streamed to read an unhandled
"Max turns exceeded" as a failure rather than as a max-turns handler's recovered error.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add runs.streamed."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("streamed", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Drop runs.streamed."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("streamed")
