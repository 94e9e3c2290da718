"""runs.conversation_id, previous_response_id, last_response_id: the conversation a run is an
exchange of (turnscope/analysis/conversation.py says how the key is chosen).

- ``conversation_id``: the key; existing rows get their ``group_id`` (the only key older
  turnscopes recorded).
- ``previous_response_id``: the Responses API response the run continued (a chain).
- ``last_response_id``: the id of its last response, which a later exchange may continue.

Indexes: ``runs(conversation_id, started_at)`` lists a conversation's exchanges in order and
groups the conversations list; ``runs(last_response_id) WHERE last_response_id IS NOT NULL``
lets the writer find the run a chained exchange continues (partial: Chat Completions runs
have none and add no entry).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

HAS_RESPONSE = sa.text("last_response_id IS NOT NULL")


def upgrade() -> None:
    """Add the columns, fill conversation_id from group_id, index them."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(512), nullable=True))
        batch.add_column(sa.Column("previous_response_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("last_response_id", sa.String(255), nullable=True))
    op.execute("UPDATE runs SET conversation_id = group_id WHERE group_id IS NOT NULL")
    op.create_index("ix_runs_conversation_started", "runs", ["conversation_id", "started_at"])
    op.create_index(
        "ix_runs_last_response_id",
        "runs",
        ["last_response_id"],
        sqlite_where=HAS_RESPONSE,
        postgresql_where=HAS_RESPONSE,
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_runs_last_response_id", table_name="runs")
    op.drop_index("ix_runs_conversation_started", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("last_response_id")
        batch.drop_column("previous_response_id")
        batch.drop_column("conversation_id")
