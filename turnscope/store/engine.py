"""Database URLs, engines and schema migrations (SQLite by default, PostgreSQL for teams)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

DEFAULT_DB = "turnscope.db"
ENV_DB = "TURNSCOPE_DB"
MIGRATIONS = Path(__file__).with_name("migrations")
# execution option for a writer engine's connection that only reads (a deferred transaction)
READ_ONLY = "turnscope_read_only"
# the schema revision the read side (queries.py) selects from; a test keeps it at the head
READER_REVISION = "0008"
# the newest migration's revision (a test keeps it equal to Alembic's head): read without
# loading Alembic, which a writer then needs only when there is something to migrate
HEAD_REVISION = "0008"


class StoreError(ValueError):
    """A database problem worth one clear line to the user (bad URL, missing or foreign DB)."""


def resolve_url(db: str | os.PathLike[str] | None = None) -> str:
    """A file path or SQLAlchemy URL; default ``$TURNSCOPE_DB``, else ``./turnscope.db``."""
    value = os.fspath(db) if db is not None else os.environ.get(ENV_DB) or DEFAULT_DB
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def parse_url(url: str) -> URL:
    """Validate a URL and its driver; raises StoreError with a one-line reason."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"invalid database URL {redact_text(url)!r}: {exc}") from None
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise StoreError(
            f"unsupported database URL {redact(url)!r}: use a file path, sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DB"
        ) from None
    except ImportError as exc:
        raise StoreError(
            f"the driver for {parsed.drivername} is not installed ({exc.name}); "
            "for PostgreSQL: pip install 'turnscope[postgres]'"
        ) from None
    return parsed


def redact_text(url: str) -> str:
    """Hide a password in a URL-like string that may not even parse."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def redact(url: str) -> str:
    """How to show a database to a user: an SQLite file as its path, other URLs with the
    password hidden."""
    try:
        parsed = make_url(url)
        path = sqlite_path(parsed)
        if path is not None:
            return str(path)
        return parsed.render_as_string(hide_password=True)
    except Exception:
        return redact_text(url)


def is_sqlite(url: str | URL) -> bool:
    """True for SQLite URLs."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str | URL) -> Path | None:
    """The file behind an SQLite URL (None for in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)


def make_writer_engine(url: str) -> Engine:
    """Engine for the exporter: SQLite in WAL mode with a busy timeout and immediate
    transactions, so several processes can write one file."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"timeout": 30.0, "check_same_thread": False},
            json_serializer=_json_dumps,
        )
        _sqlite_pragmas(engine, readonly=False)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=2, json_serializer=_json_dumps)


def make_reader_engine(url: str) -> Engine:
    """Read-only engine for the CLI and the viewer (they never write)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None:
            if not path.exists():
                raise StoreError(f"no turnscope database at {path} (record runs first)")
            # sqlite URI filename: mode=ro makes the driver itself refuse writes
            uri = f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true"
            engine = create_engine(uri, connect_args={"timeout": 10.0, "check_same_thread": False})
        else:
            engine = create_engine(parsed)
        _sqlite_pragmas(engine, readonly=True)
        return engine
    return create_engine(
        parsed,
        pool_pre_ping=True,
        # no JIT: it compiled each aggregate over a million runs for 0.15-0.36 s, more than
        # it saved (benchmarks/pg_viewer_scale.py)
        connect_args={"options": "-c default_transaction_read_only=on -c jit=off"},
    )


def _json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)


def _sqlite_pragmas(engine: Engine, readonly: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # autocommit at the driver level; SQLAlchemy's "begin" event issues our own BEGIN
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=30000")
            if not readonly:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: no deadlocked read->write upgrades between
        # processes sharing the file, and busy_timeout applies. A writer's reads (READ_ONLY)
        # must not take it: they would wait for the commit running on another thread.
        reading = readonly or conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")


def _alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest schema revision this turnscope knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision a database is at (None when it has no turnscope schema)."""
    with engine.connect() as conn:
        return _stored_revision(conn)


_UPGRADE_LOCK = threading.Lock()
# pg_advisory_xact_lock key of schema migrations ("turnscop" in ASCII): one database-wide
# number every turnscope process agrees on
PG_MIGRATION_LOCK = 0x7475726E73636F70
MIGRATION_LOCK_TIMEOUT = 600.0  # seconds a process waits for another one's migration


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema (Alembic), refusing databases that are not turnscope's.

    Safe when several processes open a fresh database at once: on PostgreSQL the check and
    the migration run under a transaction-level advisory lock, on SQLite under an exclusive
    lock on a file beside the database (``migration_lock``); the others wait, then find the
    schema at its head."""
    # Alembic's ``context`` is a process-wide proxy: two threads migrating at once (two
    # processors opening their databases together) would run on each other's connections.
    with _UPGRADE_LOCK:
        if revision == "head" and _at_head(engine):
            return  # the usual case: no lock to wait for, no lock file to create
        with migration_lock(engine):
            _upgrade(engine, revision)


def _at_head(engine: Engine) -> bool:
    """Whether the schema is already at the head revision (read without any write lock)."""
    with engine.connect().execution_options(**{READ_ONLY: True}) as conn:
        return _stored_revision(conn) == HEAD_REVISION


def _stored_revision(conn: Any) -> str | None:
    """The revision in ``alembic_version`` (None without one), read with plain SQL."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if version is None else str(version)


@contextmanager
def migration_lock(engine: Engine, timeout: float = MIGRATION_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``DB.migrate-lock`` (beside an SQLite file) exclusively while migrating.

    SQLite's own write lock (``BEGIN IMMEDIATE``) already serialises the migrations, but a
    process waits for it only ``busy_timeout`` (30 s), and rebuilding a large table can take
    longer; a file lock waits as long as the migration takes. POSIX only (``fcntl``);
    elsewhere, and for PostgreSQL (its advisory lock is taken in the migration's own
    transaction), nothing to do."""
    path = sqlite_path(engine.url) if engine.dialect.name == "sqlite" else None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".migrate-lock")
    with open(lock_path, "a+b") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another process has been migrating {path} for over {timeout:.0f} s "
                        f"(it holds {lock_path})"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _upgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # held until this transaction ends: a second process waits here, then sees the
            # first one's schema (concurrent CREATE TABLEs fail on PostgreSQL's catalogs)
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
        tables = set(inspect(conn).get_table_names())
        current = _stored_revision(conn)
        if current is None and tables - {"alembic_version"}:
            raise StoreError("the database has other tables and no turnscope schema; refusing")
        if revision == "head" and current == HEAD_REVISION:
            return
        if revision == "head" and not tables and conn.dialect.name == "sqlite":
            _create_at_head(conn)
            return
        from alembic import command
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(_alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise StoreError(
                f"the database schema ({current}) is newer than this turnscope; upgrade turnscope"
            )
        command.upgrade(_alembic_config(conn), revision)


def _create_at_head(conn: Any) -> None:
    """A new SQLite file: the head schema made from the models and stamped, as the migrations
    would leave it (a test compares the two), without loading Alembic and running every
    migration. PostgreSQL always migrates: its schema has a column the models leave out."""
    from turnscope.store.models import Base

    Base.metadata.create_all(conn)
    conn.exec_driver_sql(
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
    )
    conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (HEAD_REVISION,))


def check_schema(engine: Engine, label: str) -> None:
    """Raise StoreError unless ``engine`` points at a turnscope database."""
    from sqlalchemy.exc import DatabaseError, OperationalError

    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            current = _stored_revision(conn)
    except (OperationalError, DatabaseError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StoreError(f"cannot read {label}: {reason}") from None
    if "runs" not in tables or "spans" not in tables:
        raise StoreError(f"{label} is not a turnscope database (no runs/spans tables)")
    # readers never migrate (read-only): an older schema lacks columns they select
    if current is not None and current < READER_REVISION:
        raise StoreError(
            f"{label} has an older turnscope schema ({current}, this turnscope reads "
            f"{READER_REVISION}): open it once for writing (turnscope.instrument() or "
            "TurnscopeProcessor on it) to upgrade it"
        )
