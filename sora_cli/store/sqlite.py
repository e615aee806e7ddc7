"""The SQLite side of the job store: the connection, transactions, WAL.

Plain `sqlite3` on purpose: this is on the path of every command, so it must not
import SQLAlchemy (see schema.py for the tables and migrations.py for how a store
is created or upgraded). `SqliteDB` is the SQLite side of db.DB (pg.py is the
PostgreSQL side). Every write is one short `BEGIN IMMEDIATE` transaction; with WAL
and a busy timeout, many CLI processes and the runner share the file without
"database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from sora_cli.errors import StoreError
from sora_cli.store.db import DB
from sora_cli.store.migrations import check_openable, migrate

BUSY_TIMEOUT_MS: Final = 30_000


class SqliteDB(sqlite3.Connection):
    """The SQLite side of db.DB: a plain `sqlite3.Connection` plus `write()`."""

    dialect: Final = "sqlite"
    where: Path

    @contextmanager
    def write(self) -> Iterator[DB]:
        """One short write transaction, taken at once (`BEGIN IMMEDIATE`)."""
        try:
            self.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(explain(self.where, exc)) from None
        try:
            yield self
        except BaseException:
            rollback(self)
            raise
        try:
            self.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            rollback(self)
            raise StoreError(explain(self.where, exc)) from None


def rollback(conn: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (a full disk, say): a second ROLLBACK would
    # raise and hide the error that matters.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def connect(path: Path) -> SqliteDB:
    """Open (creating 0600, or upgrading) the store at `path`; StoreError if it cannot be.

    A file that is not a sora store, or one written by a newer sora, is refused
    before anything is written to it.
    """
    if not path.exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the job store {path}: {exc.strerror}") from None
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False,
            factory=SqliteDB,
        )
    except sqlite3.Error as exc:
        raise StoreError(explain(path, exc)) from None
    conn.where = path
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        check_openable(conn, path=str(path))  # reads only
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, path=str(path))
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise StoreError(explain(path, exc)) from None
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (the mode is kept in the file, so this happens once).

    The switch needs the file to itself and SQLite answers "locked" at once instead
    of waiting, so when several processes open a new store together, retry until
    the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return  # "wal", or the old mode on a file system without WAL support
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def explain(path: Path, exc: sqlite3.Error) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"{path} is not a sora job store (not a SQLite database); move it away"
    if "readonly" in text or "unable to open" in text:
        return f"cannot write the job store {path} (read-only file or directory?)"
    return f"job store {path}: {text}"
