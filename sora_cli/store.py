"""The job store: a SQLite file (WAL) and the repository over it.

Plain `sqlite3` on purpose: this module is on the path of every command, so it
must not import SQLAlchemy (see schema.py for the tables and migrations.py for
how a store is created or upgraded). Every write is one short `BEGIN IMMEDIATE`
transaction that also appends to `events`; with WAL and a busy timeout, many CLI
processes and the runner share the file without "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .errors import InvalidInput, JobNotFound, StoreError
from .jobs import (
    ACTIVE_STATUSES,
    MIN_PREFIX,
    Job,
    JobError,
    JobStatus,
    VideoRequest,
    check_transition,
    looks_like_remote_id,
    new_job_id,
)
from .migrations import migrate

JOB_COLUMNS: Final = (
    "id", "prompt", "model", "size", "seconds", "status", "remote_id", "remote_status",
    "progress", "created_at", "updated_at", "submitted_at", "completed_at", "expires_at",
    "error_code", "error_message", "error_http_status", "error_request_id", "output_path",
    "bytes", "sha256", "create_attempts", "poll_count", "download_attempts",
    "create_started_at", "lease_owner", "lease_expires_at",
)
EVENT_COLUMNS: Final = (
    "id", "job_id", "at", "kind", "from_status", "to_status", "attempt", "http_status",
    "request_id", "retry_in", "message", "runner_id",
)
_SELECT_JOB: Final = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
_ACTIVE_SQL: Final = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATUSES))
_UPDATABLE: Final = frozenset(JOB_COLUMNS) - {"id", "status", "created_at"}
BUSY_TIMEOUT_MS: Final = 30_000


class LeaseLost(StoreError):
    """The job is no longer this runner's to work (cancelled, or taken over)."""


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


def _row_to_job(row: Sequence[Any]) -> Job:
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


def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the job store {path}: {exc.strerror}") from None
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, path=str(path))
    except sqlite3.DatabaseError as exc:
        raise StoreError(_explain(path, exc)) from None
    return conn


def _explain(path: Path, exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"{path} is not a sora job store (not a SQLite database); move it away"
    if "readonly" in text or "unable to open" in text:
        return f"cannot write the job store {path} (read-only file or directory?)"
    return f"job store {path}: {text}"


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        return cls(_connect(path), path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(_explain(self.path, exc)) from None
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._conn.execute("ROLLBACK")
            raise StoreError(_explain(self.path, exc)) from None

    def _event(self, conn: sqlite3.Connection, job_id: str, kind: str, at: float,
               **fields: Any) -> None:
        cols = ["job_id", "kind", "at", *fields]
        conn.execute(
            f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            (job_id, kind, at, *fields.values()),
        )

    # --- writes -------------------------------------------------------------

    def add_jobs(self, requests: Sequence[VideoRequest], now: float | None = None) -> list[Job]:
        """Record new queued jobs in one transaction; ids are fresh and never reused."""
        now = time.time() if now is None else now
        jobs: list[Job] = []
        with self._write() as conn:
            for n, req in enumerate(requests):
                at = now + n * 1e-6  # keeps input order in newest-first listings
                job = Job(id=self._fresh_id(conn), prompt=req.prompt, model=req.model,
                          size=req.size, seconds=req.seconds, status=JobStatus.QUEUED,
                          created_at=at, updated_at=at)
                conn.execute(
                    "INSERT INTO jobs (id, prompt, model, size, seconds, status, progress, "
                    "created_at, updated_at, create_attempts, poll_count, download_attempts) "
                    "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, 0, 0, 0)",
                    (job.id, job.prompt, job.model, job.size, job.seconds, job.status.value,
                     at, at),
                )
                self._event(conn, job.id, "created", at, to_status=job.status.value)
                jobs.append(job)
        return jobs

    def _fresh_id(self, conn: sqlite3.Connection) -> str:
        while True:
            job_id = new_job_id()
            used = conn.execute(
                "SELECT 1 FROM jobs WHERE id = ? UNION ALL SELECT 1 FROM events WHERE job_id = ?",
                (job_id, job_id),
            ).fetchone()
            if used is None:
                return job_id

    def transition(self, job_id: str, to: JobStatus, *, owner: str | None = None,
                   error: JobError | None = None, event: str | None = None,
                   message: str | None = None, now: float | None = None,
                   attempt: int | None = None, **fields: Any) -> Job:
        """Move a job to `to` (a legal move only) and log it, in one transaction.

        With `owner`, the job must still be leased to that runner, else LeaseLost.
        """
        now = time.time() if now is None else now
        with self._write() as conn:
            job = self._locked_job(conn, job_id, owner)
            check_transition(job.id, job.status, to)
            if error is not None:
                fields.update(error_code=error.code, error_message=error.message,
                              error_http_status=error.http_status,
                              error_request_id=error.request_id)
            self._set(conn, job_id, now, status=to.value, **fields)
            self._event(conn, job_id, event or to.value, now, from_status=job.status.value,
                        to_status=to.value, attempt=attempt,
                        message=message or (error.message if error else None),
                        http_status=error.http_status if error else None,
                        request_id=error.request_id if error else None, runner_id=owner)
        return self.get(job_id) or job

    def update(self, job_id: str, *, owner: str | None = None, now: float | None = None,
               **fields: Any) -> None:
        """Change non-status fields (progress, remote status...) of a job."""
        now = time.time() if now is None else now
        with self._write() as conn:
            self._locked_job(conn, job_id, owner)
            self._set(conn, job_id, now, **fields)

    def log(self, job_id: str, kind: str, *, now: float | None = None, **fields: Any) -> None:
        """Append an event (an HTTP attempt, a retry, a note) without changing the job."""
        now = time.time() if now is None else now
        with self._write() as conn:
            self._event(conn, job_id, kind, now, **fields)

    def _locked_job(self, conn: sqlite3.Connection, job_id: str, owner: str | None) -> Job:
        row = conn.execute(f"{_SELECT_JOB} WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(f"no such job: {job_id}")
        job = _row_to_job(row)
        if owner is not None and job.lease_owner != owner:
            raise LeaseLost(f"job {job_id} is no longer leased to this runner")
        return job

    def _set(self, conn: sqlite3.Connection, job_id: str, now: float, **fields: Any) -> None:
        unknown = set(fields) - _UPDATABLE - {"status"}
        if unknown:
            raise ValueError(f"not job columns: {sorted(unknown)}")
        fields["updated_at"] = now
        sets = ", ".join(f"{k} = ?" for k in fields)
        conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    # --- leases ---------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_seconds: float,
              now: float | None = None) -> list[Job]:
        """Lease up to `limit` unfinished jobs that nobody (alive) holds, oldest first."""
        now = time.time() if now is None else now
        if limit <= 0:
            return []
        with self._write() as conn:
            rows = conn.execute(
                f"{_SELECT_JOB} WHERE status IN ({_ACTIVE_SQL}) AND (lease_owner IS NULL "
                "OR lease_expires_at < ?) ORDER BY created_at LIMIT ?", (now, limit),
            ).fetchall()
            jobs = [_row_to_job(r) for r in rows]
            for job in jobs:
                conn.execute("UPDATE jobs SET lease_owner = ?, lease_expires_at = ? WHERE id = ?",
                             (owner, now + lease_seconds, job.id))
                self._event(conn, job.id, "claimed", now, runner_id=owner,
                            message=f"taken over from {job.lease_owner}" if job.lease_owner
                            else None)
        return [self.get(j.id) or j for j in jobs]

    def renew(self, owner: str, lease_seconds: float, now: float | None = None) -> set[str]:
        """Extend every lease `owner` holds; return the ids it still holds."""
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute("UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ?",
                         (now + lease_seconds, owner))
            rows = conn.execute("SELECT id FROM jobs WHERE lease_owner = ?", (owner,)).fetchall()
        return {r[0] for r in rows}

    def release(self, owner: str, job_ids: Sequence[str] | None = None) -> None:
        with self._write() as conn:
            if job_ids is None:
                conn.execute("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL "
                             "WHERE lease_owner = ?", (owner,))
            for job_id in job_ids or ():
                conn.execute("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL "
                             "WHERE id = ? AND lease_owner = ?", (job_id, owner))

    def release_host(self, prefix: str, *, keep: str) -> None:
        """Free leases held by other runner ids of this host (known dead: we hold its lock)."""
        with self._write() as conn:
            conn.execute("UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL "
                         "WHERE lease_owner >= ? AND lease_owner < ? AND lease_owner != ?",
                         (prefix, prefix + "\uffff", keep))
            conn.execute("DELETE FROM runners WHERE id >= ? AND id < ? AND id != ?",
                         (prefix, prefix + "\uffff", keep))

    # --- reads ----------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        row = self._conn.execute(f"{_SELECT_JOB} WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def resolve(self, ref: str) -> Job:
        """A job by exact id, unique id prefix (4+), remote `video_...` id, or `@last`."""
        ref = ref.strip()
        if ref == "@last":
            row = self._conn.execute(
                f"{_SELECT_JOB} ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
            if row is None:
                raise JobNotFound("no jobs yet: @last names nothing")
            return _row_to_job(row)
        if looks_like_remote_id(ref):
            row = self._conn.execute(f"{_SELECT_JOB} WHERE remote_id = ?", (ref,)).fetchone()
            if row is None:
                raise JobNotFound(f"no job has remote id {ref}")
            return _row_to_job(row)
        ref = ref.lower()
        exact = self.get(ref)
        if exact is not None:
            return exact
        if len(ref) < MIN_PREFIX:
            raise JobNotFound(f"no such job: {ref!r} (an id prefix needs {MIN_PREFIX}+ chars)")
        hi = ref[:-1] + chr(ord(ref[-1]) + 1)
        rows = self._conn.execute(
            f"{_SELECT_JOB} WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", (ref, hi)
        ).fetchall()
        if not rows:
            raise JobNotFound(f"no such job: {ref}")
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise JobNotFound(f"id prefix {ref!r} is ambiguous: {ids}")
        return _row_to_job(rows[0])

    def list_jobs(self, *, statuses: Sequence[JobStatus] = (), limit: int | None = 20) -> list[Job]:
        where, params = "", []
        if statuses:
            where = f" WHERE status IN ({', '.join('?' * len(statuses))})"
            params = [s.value for s in statuses]
        sql = f"{_SELECT_JOB}{where} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            if limit < 0:
                raise InvalidInput("-n must be 0 or more")
            sql += f" LIMIT {int(limit)}"
        return [_row_to_job(r) for r in self._conn.execute(sql, params)]

    def has_active(self) -> bool:
        row = self._conn.execute(
            f"SELECT 1 FROM jobs WHERE status IN ({_ACTIVE_SQL}) LIMIT 1").fetchone()
        return row is not None

    def count_active(self) -> int:
        row = self._conn.execute(f"SELECT count(*) FROM jobs WHERE status IN ({_ACTIVE_SQL})")
        return int(row.fetchone()[0])

    def remote_id_taken(self, remote_id: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM jobs WHERE remote_id = ?", (remote_id,))
        return row.fetchone() is not None

    def events(self, job_id: str) -> list[Event]:
        rows = self._conn.execute(
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE job_id = ? ORDER BY id",
            (job_id,),
        )
        return [Event(*r) for r in rows]

    # --- runners ----------------------------------------------------------------

    def runner_beat(self, runner_id: str, *, host: str, pid: int, started_at: float,
                    jobs_in_flight: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runners (id, host, pid, started_at, heartbeat_at, jobs_in_flight) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "heartbeat_at = excluded.heartbeat_at, jobs_in_flight = excluded.jobs_in_flight",
                (runner_id, host, pid, started_at, now, jobs_in_flight),
            )

    def runner_gone(self, runner_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM runners WHERE id = ?", (runner_id,))

    def runners(self) -> list[dict[str, Any]]:
        cols = ("id", "host", "pid", "started_at", "heartbeat_at", "jobs_in_flight")
        rows = self._conn.execute(
            f"SELECT {', '.join(cols)} FROM runners ORDER BY started_at DESC")
        return [dict(zip(cols, r, strict=True)) for r in rows]
