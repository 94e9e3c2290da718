"""Alembic environment: migrations run on the connection turnscope hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from turnscope.store.models import Base

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic -x` style use from the command line, for developers
    url = config.get_main_option("sqlalchemy.url")
    with create_engine(url).begin() as conn:
        _run(conn)
