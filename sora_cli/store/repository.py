"""The job store: the repository over a SQLite file (WAL) or a PostgreSQL database,
one class, `Store`.

Every write is one short transaction (`BEGIN IMMEDIATE` on SQLite) that also
appends to the append-only `events` table. The SQL is written once, with `?`
placeholders, against db.DB (db.py; pg.py for PostgreSQL). The parts: store_sql.py
(opening the file, rows, transactions), leases.py (runner leases and the runner
registry, mixed in here), schema.py and migrations.py (the tables, and creating
or upgrading a store).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sora_cli.domain.jobs import (
    MIN_PREFIX,
    Job,
    JobError,
    JobStatus,
    VideoRequest,
    check_transition,
    looks_like_remote_id,
    new_job_id,
)
from sora_cli.errors import AmbiguousJobRef, InvalidInput, JobNotFound, LeaseLost, RemoteIdTaken
from sora_cli.store.browse import BrowseMixin
from sora_cli.store.connect import open_db
from sora_cli.store.db import DB, one_at_a_time
from sora_cli.store.housekeeping import AdminMixin
from sora_cli.store.leases import LeaseMixin
from sora_cli.store.money import MoneyMixin
from sora_cli.store.rows import (
    ACTIVE_SQL,
    EVENT_COLUMNS,
    JOB_COLUMNS,
    JSON_COLUMNS,
    SELECT_JOB,
    Event,
    fetch_job,
    insert_event,
    json_text,
    row_to_job,
    write,
)
from sora_cli.store.values import sane_fields

__all__ = ["Store"]

_UPDATABLE: Final = frozenset(JOB_COLUMNS) - {"id", "status", "created_at"}
_ID_CHUNK: Final = 400  # ids per collision check (2 x 400 parameters < 999)



def _is_unique_violation(exc: BaseException) -> bool:
    # sqlite3.IntegrityError, psycopg.errors.UniqueViolation: both DB-API IntegrityErrors
    return any(k.__name__ in ("IntegrityError", "UniqueViolation") for k in type(exc).__mro__)



class Store(LeaseMixin, AdminMixin, MoneyMixin, BrowseMixin):
    def __init__(self, conn: DB, path: Path | str) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path | str) -> Store:
        """The store in a SQLite file, or at a `postgresql://` URL (see db.open_db)."""
        conn = open_db(path)
        return cls(conn, getattr(conn, "where", path))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[DB]:
        with write(self._conn, self.path) as conn:
            yield conn

    # --- writes -------------------------------------------------------------

    def add_jobs(self, requests: Sequence[VideoRequest], now: float | None = None, *,
                 check: Callable[[Store], None] | None = None) -> list[Job]:
        """Record new queued jobs in one transaction; ids are fresh and never reused.

        `check` runs first inside the transaction (the write lock is held, so what it
        reads cannot change before the jobs are in): raising refuses the whole lot."""
        now = time.time() if now is None else now
        jobs: list[Job] = []
        with self._write() as conn:
            if check is not None:
                one_at_a_time(conn, "add_jobs check")  # PostgreSQL: no other checks meanwhile
                check(self)
            ids = self._fresh_ids(conn, len(requests))
            for n, (job_id, req) in enumerate(zip(ids, requests, strict=True)):
                at = now + n * 1e-6  # keeps input order in newest-first listings
                params = dict(req.params) if req.params else None
                job = Job(id=job_id, prompt=req.prompt, model=req.model,
                          size=req.size, seconds=req.seconds, status=JobStatus.QUEUED,
                          created_at=at, updated_at=at, label=req.label, image=req.image,
                          remix_of=req.remix_of, retry_of=req.retry_of,
                          provider=req.provider, params=params)
                conn.execute(
                    "INSERT INTO jobs (id, prompt, model, size, seconds, status, progress, "
                    "created_at, updated_at, create_attempts, poll_count, download_attempts, "
                    "label, image, remix_of, retry_of, provider, params) "
                    "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?, ?)",
                    (job.id, job.prompt, job.model, job.size, job.seconds, job.status.value,
                     at, at, job.label, job.image, job.remix_of, job.retry_of, job.provider,
                     json_text(params)),
                )
                insert_event(conn, job.id, "created", at, to_status=job.status.value)
                jobs.append(job)
        return jobs

    def _fresh_ids(self, conn: DB, count: int) -> list[str]:
        """`count` distinct new ids, none ever used by a job or an event (never reused).

        Checked against the store in chunks, not one query per id: a 10,000-line batch
        is recorded in well under a second."""
        fresh: list[str] = []
        drawn: set[str] = set()
        while len(fresh) < count:
            batch: list[str] = []
            while len(fresh) + len(batch) < count:
                job_id = new_job_id()
                if job_id not in drawn:
                    drawn.add(job_id)
                    batch.append(job_id)
            used: set[str] = set()
            for at in range(0, len(batch), _ID_CHUNK):
                chunk = batch[at: at + _ID_CHUNK]
                marks = ", ".join("?" * len(chunk))
                used.update(r[0] for r in conn.execute(
                    f"SELECT id FROM jobs WHERE id IN ({marks}) "
                    f"UNION SELECT job_id FROM events WHERE job_id IN ({marks})",
                    (*chunk, *chunk)))
            fresh.extend(i for i in batch if i not in used)
        return fresh

    def transition(self, job_id: str, to: JobStatus, *, runner_id: str | None = None,
                   error: JobError | None = None, event: str | None = None,
                   message: str | None = None, now: float | None = None,
                   attempt: int | None = None, release: bool = False, **fields: Any) -> Job:
        """Move a job to `to` (a legal move only) and log it, in one transaction.

        With `runner_id`, the job must still be leased to that runner, else LeaseLost.
        With `release`, whoever holds the job's lease loses it (a cancel).
        """
        if release:
            fields.update(lease_expires_at=None, lease_runner=None)
        now = time.time() if now is None else now
        try:
            return self._transition(job_id, to, runner_id=runner_id, error=error, event=event,
                                    message=message, now=now, attempt=attempt, **fields)
        except Exception as exc:
            if "remote_id" in fields and _is_unique_violation(exc):
                raise RemoteIdTaken(f"{fields['remote_id']} belongs to another job") from None
            raise

    def _transition(self, job_id: str, to: JobStatus, *, runner_id: str | None,
                    error: JobError | None, event: str | None, message: str | None,
                    now: float, attempt: int | None, **fields: Any) -> Job:
        with self._write() as conn:
            job = self._locked_job(conn, job_id, runner_id)
            check_transition(job.id, job.status, to)
            if error is not None:
                fields.update(error_code=error.code, error_message=error.message,
                              error_http_status=error.http_status,
                              error_request_id=error.request_id)
            self._set(conn, job_id, now, status=to.value, **fields)
            insert_event(conn, job_id, event or to.value, now, from_status=job.status.value,
                         to_status=to.value, attempt=attempt,
                         message=message or (error.message if error else None),
                         http_status=error.http_status if error else None,
                         request_id=error.request_id if error else None, runner_id=runner_id)
        return self.get(job_id) or job

    def update(self, job_id: str, *, runner_id: str | None = None, now: float | None = None,
               **fields: Any) -> None:
        """Change non-status fields (progress, remote status...) of a job."""
        if "status" in fields:
            raise ValueError("a job's status changes only through transition()")
        now = time.time() if now is None else now
        with self._write() as conn:
            self._locked_job(conn, job_id, runner_id)
            self._set(conn, job_id, now, **fields)

    def log(self, job_id: str, kind: str, *, now: float | None = None, **fields: Any) -> None:
        """Append an event (an HTTP attempt, a retry, a note) without changing the job."""
        now = time.time() if now is None else now
        with self._write() as conn:
            insert_event(conn, job_id, kind, now, **fields)

    def _locked_job(self, conn: DB, job_id: str, runner_id: str | None) -> Job:
        job = fetch_job(conn, job_id, lock=True)  # PostgreSQL: no claim slips in before commit
        if job is None:
            raise JobNotFound(f"no such job: {job_id}")
        if runner_id is not None and job.runner_id != runner_id:
            raise LeaseLost(f"job {job_id} is no longer leased to this runner")
        return job

    def _set(self, conn: DB, job_id: str, now: float, **fields: Any) -> None:
        if "lease_runner" in fields:  # the column, not the acting runner (see transition)
            fields["runner_id"] = fields.pop("lease_runner")
        unknown = set(fields) - _UPDATABLE - {"status"}
        if unknown:
            raise ValueError(f"not job columns: {sorted(unknown)}")
        fields = sane_fields({**fields, "updated_at": now})  # the readers must render it
        for key in JSON_COLUMNS:
            if key in fields:
                fields[key] = json_text(fields[key])
        sets = ", ".join(f"{k} = ?" for k in fields)
        conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    # --- reads ----------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        return fetch_job(self._conn, job_id)

    def resolve(self, ref: str) -> Job:
        """A job by exact id, unique id prefix (4+), remote `video_...` id, or `@last`."""
        ref = ref.strip()
        if not ref.isascii() or not ref.isprintable():  # ids are; this may not even encode
            raise JobNotFound(f"no such job: {ref!r}")
        if ref == "@last":
            row = self._conn.execute(
                f"{SELECT_JOB} ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
            if row is None:
                raise JobNotFound("no jobs yet: @last names nothing")
            return row_to_job(row)
        original = ref
        if looks_like_remote_id(ref):
            row = self._conn.execute(f"{SELECT_JOB} WHERE remote_id = ?", (ref,)).fetchone()
            if row is None:
                raise JobNotFound(f"no job has remote id {ref}")
            return row_to_job(row)
        ref = ref.lower()
        exact = self.get(ref)
        if exact is not None:
            return exact
        if len(ref) < MIN_PREFIX:
            raise JobNotFound(f"no such job: {ref!r} (an id prefix needs {MIN_PREFIX}+ chars)")
        hi = ref[:-1] + chr(ord(ref[-1]) + 1)
        rows = self._conn.execute(
            f"{SELECT_JOB} WHERE id >= ? AND id < ? ORDER BY id LIMIT 6", (ref, hi)
        ).fetchall()
        if not rows:  # another provider's remote id (a uuid, a prediction id...)
            row = self._conn.execute(f"{SELECT_JOB} WHERE remote_id = ?", (original,)
                                     ).fetchone()
            if row is not None:
                return row_to_job(row)
            raise JobNotFound(f"no such job: {ref}")
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise AmbiguousJobRef(f"id prefix {ref!r} is ambiguous: {ids}")
        return row_to_job(rows[0])

    def list_jobs(self, *, statuses: Sequence[JobStatus] = (), limit: int | None = 20,
                  label: str | None = None) -> list[Job]:
        """Jobs newest first, optionally only those in `statuses` and with `label`,
        at most `limit`."""
        conds: list[str] = []
        params: list[str] = []
        if statuses:
            conds.append(f"status IN ({', '.join('?' * len(statuses))})")
            params = [JobStatus(s).value for s in statuses]
        if label is not None:
            conds.append("label = ?")
            params.append(label)
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        sql = f"{SELECT_JOB}{where} ORDER BY created_at DESC, id DESC"
        if limit is not None:
            if limit < 0:
                raise InvalidInput("-n must be 0 or more")
            sql += f" LIMIT {int(limit)}"
        return [row_to_job(r) for r in self._conn.execute(sql, params)]

    def has_active(self, *, providers: Sequence[str] | None = None,
                   others_than: Sequence[str] | None = None) -> bool:
        """Any unfinished job (of one of `providers`, when given; of none of
        `others_than`, when given)?"""
        sql, params = f"SELECT 1 FROM jobs WHERE status IN ({ACTIVE_SQL})", list(providers or ())
        if providers is not None:
            sql += f" AND provider IN ({', '.join('?' * len(params)) or 'NULL'})"
        if others_than:
            sql += f" AND provider NOT IN ({', '.join('?' * len(others_than))})"
            params += list(others_than)
        return self._conn.execute(sql + " LIMIT 1", params).fetchone() is not None

    def count_active(self) -> int:
        row = self._conn.execute(f"SELECT count(*) FROM jobs WHERE status IN ({ACTIVE_SQL})")
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
