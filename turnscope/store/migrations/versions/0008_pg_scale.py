"""PostgreSQL at scale: the failure-group message stored by the database (PostgreSQL only).

The failures page groups failed runs by a normalised message (ids and numbers masked by three
``regexp_replace``). Computed at read time it cost ~50 us a run in each of the page's four
queries: 20 s for the 150,000 failed runs of a 1,000,000-run database
(``benchmarks/pg_viewer_scale.py``). ``runs.message_key`` is a stored generated column: the
database computes it once when a run is written (no writer code involved), readers group by
it. SQLite computes the key with a Python function, fast enough at its scale: no change there.

The expression is ``Aggregates._message_key``'s PostgreSQL form as of this revision
(``MESSAGE_RULES``, 160 characters); ``tests/test_viewer_queries.py`` checks the two agree. The
models leave the column out (``models.POSTGRES_ONLY``): no writer sets it.

Adding the column rewrites the runs table once (about a minute per million runs).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MESSAGE_KEY = (
    "substr(btrim(regexp_replace(regexp_replace(regexp_replace("
    "COALESCE(first_error, message, exception::text, ''), "
    "'[0-9a-fA-F]{8,}(-[0-9a-fA-F]{4,})*', '<id>', 'g'), "
    "'(^|[^A-Za-z0-9_.-])[0-9]+([.,:][0-9]+)*', '\\1#', 'g'), "
    "E'[ \\t\\r\\n]+', ' ', 'g'), ' '), 1, 160)"
)


def upgrade() -> None:
    """Add runs.message_key on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"ALTER TABLE runs ADD COLUMN message_key text GENERATED ALWAYS AS ({MESSAGE_KEY}) STORED"
    )


def downgrade() -> None:
    """Drop it."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE runs DROP COLUMN message_key")
