"""runs.ending: how a streamed run ended, read from its result object at trace end.

A streamed run raises from ``stream_events()`` after its trace ended, and a soft
``cancel(mode="after_turn")`` or a ``RunConfig`` error handler leaves spans that look like a
success or a failure: only the result object knows whether the run produced a final output.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add runs.ending."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("ending", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop runs.ending."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("ending")
