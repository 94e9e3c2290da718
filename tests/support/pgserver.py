"""A real, throwaway PostgreSQL server for the tests: initdb + pg_ctl on 127.0.0.1.

Needs Debian's PostgreSQL server binaries (``.ci/run`` installs them). As root, the server
runs as the ``postgres`` system user, because PostgreSQL refuses to run as root. Set
``TURNSCOPE_SKIP_POSTGRES=1`` to skip these tests on a machine without PostgreSQL; CI never
sets it, so a missing server fails loudly there.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .net import free_port


def find_bin(name: str) -> str | None:
    """A PostgreSQL server binary from PATH or Debian's versioned directories."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PgServer:
    """One PostgreSQL cluster in a temporary directory."""

    def __init__(self) -> None:
        self.initdb = find_bin("initdb")
        self.pg_ctl = find_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.root = Path(tempfile.mkdtemp(prefix="turnscope-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_root:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)

    def start(self) -> None:
        """initdb (first time) and start, listening on 127.0.0.1 only."""
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        if not self.data.exists():
            self._run(
                self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"
            )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` simulates a crash)."""
        self._run(self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL for a database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def cleanup(self) -> None:
        """Stop (if running) and delete the cluster."""
        try:
            self.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def pg_server() -> Iterator[PgServer]:
    """A started server, removed afterwards."""
    server = PgServer()
    try:
        server.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield server
    finally:
        server.cleanup()
