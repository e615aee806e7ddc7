"""The plumbing under the job store: the SQLite connection, transactions, rows.

Plain `sqlite3` on purpose: this is on the path of every command, so it must not
import SQLAlchemy (see schema.py for the tables and migrations.py for how a store
is created or upgraded). `SqliteDB` is the SQLite side of db.DB (pg.py is the
PostgreSQL side); the row helpers below take either. Every write is one short
`BEGIN IMMEDIATE` transaction; with WAL and a busy timeout, many CLI processes and
the runner share the file without "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sora_cli.domain.jobs import ACTIVE_STATUSES, Job, JobError, JobStatus
from sora_cli.errors import StoreError
from sora_cli.store.db import DB, for_update
from sora_cli.store.migrations import check_openable, migrate

JOB_COLUMNS: Final = (
    "id", "prompt", "model", "size", "seconds", "status", "remote_id", "remote_status",
    "progress", "created_at", "updated_at", "submitted_at", "completed_at", "expires_at",
    "error_code", "error_message", "error_http_status", "error_request_id", "output_path",
    "bytes", "sha256", "create_attempts", "poll_count", "download_attempts",
    "create_started_at", "runner_id", "lease_expires_at",
    # schema 2
    "label", "image", "remix_of", "retry_of", "thumbnail_path",
    # schema 3
    "output_host",
)
EVENT_COLUMNS: Final = (
    "id", "job_id", "at", "kind", "from_status", "to_status", "attempt", "http_status",
    "request_id", "retry_in", "message", "runner_id",
)
SELECT_JOB: Final = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
ACTIVE_SQL: Final = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATUSES))
BUSY_TIMEOUT_MS: Final = 30_000
_EVENT_FIELDS: Final = frozenset(EVENT_COLUMNS) - {"id", "job_id", "kind", "at"}


@dataclass(frozen=True)
class Event:
    id: int
    job_id: str
    at: float
    kind: str
    from_status: str | None
    to_status: str | None
    attempt: int | None
    http_status: int | None
    request_id: str | None
    retry_in: float | None
    message: str | None
    runner_id: str | None


def row_to_job(row: Sequence[Any]) -> Job:
    d = dict(zip(JOB_COLUMNS, row, strict=True))
    error = None
    if d["error_message"] is not None or d["error_code"] is not None:
        error = JobError(
            code=d["error_code"], message=d["error_message"] or "",
            http_status=d["error_http_status"], request_id=d["error_request_id"],
        )
    for key in ("error_code", "error_message", "error_http_status", "error_request_id"):
        del d[key]
    d["status"] = JobStatus(d["status"])
    return Job(error=error, **d)


def fetch_job(conn: DB, job_id: str, *, lock: bool = False) -> Job | None:
    """A job by id; with `lock` (inside `write()`), its row stays ours until commit."""
    sql = f"{SELECT_JOB} WHERE id = ?{for_update(conn) if lock else ''}"
    row = conn.execute(sql, (job_id,)).fetchone()
    return row_to_job(row) if row else None


def insert_event(conn: DB, job_id: str, kind: str, at: float,
                 **fields: Any) -> None:
    unknown = set(fields) - _EVENT_FIELDS
    if unknown:  # the names go into the SQL text: only known columns
        raise ValueError(f"not event columns: {sorted(unknown)}")
    cols = ["job_id", "kind", "at", *fields]
    conn.execute(
        f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        (job_id, kind, at, *fields.values()),
    )


def write(conn: DB, path: object = None) -> AbstractContextManager[DB]:
    """One short write transaction on `conn` (`path` is unused: kept for callers)."""
    return conn.write()


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
