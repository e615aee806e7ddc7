"""The rows of the job store, portable between SQLite and PostgreSQL: the column lists,
jobs and events read and written with `?` placeholders over a `db.DB`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from sora_cli.domain.jobs import ACTIVE_STATUSES, Job, JobError, JobStatus
from sora_cli.store.db import DB, for_update
from sora_cli.store.values import sane_fields

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
    # schema 5
    "provider", "params", "remote_handle",
)
JSON_COLUMNS: Final = ("params", "remote_handle")
EVENT_COLUMNS: Final = (
    "id", "job_id", "at", "kind", "from_status", "to_status", "attempt", "http_status",
    "request_id", "retry_in", "message", "runner_id",
)
SELECT_JOB: Final = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs"
ACTIVE_SQL: Final = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATUSES))
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
    for key in JSON_COLUMNS:
        d[key] = _json_object(d[key])
    return Job(error=error, **d)


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    import json  # only jobs that have params pay for it

    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def json_text(value: Any) -> Any:
    """A params or remote_handle value as stored: JSON text (None stays NULL)."""
    if value is None or isinstance(value, str):
        return value
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


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
    fields = sane_fields(fields)  # messages and request ids: scrubbed, bounded
    cols = ["job_id", "kind", "at", *fields]
    conn.execute(
        f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        (job_id, kind, at, *fields.values()),
    )


def write(conn: DB, path: object = None) -> AbstractContextManager[DB]:
    """One short write transaction on `conn` (`path` is unused: kept for callers)."""
    return conn.write()
