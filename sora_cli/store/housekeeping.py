"""The job store's housekeeping: deleting (with tombstones), pruning, importing, links.

A deleted job's events go with it, but one `deleted` event row stays behind as a
tombstone: the id generator checks the events table too, so a deleted id is never
handed out again. `Store` mixes this in (like leases.py); callers import `Store`.
Plain, portable SQL (`?` placeholders, no SQLite-only functions).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.domain.text import scrub
from sora_cli.store.db import DB
from sora_cli.store.rows import (
    SELECT_JOB,
    fetch_job,
    insert_event,
    json_text,
    row_to_job,
    write,
)
from sora_cli.store.values import sane

TOMBSTONE: Final = "deleted"


@dataclass(frozen=True)
class RemoteVideo:
    """What `sora import` records of a remote video (see `Store.import_videos`)."""

    remote_id: str
    prompt: str
    model: str
    size: str
    seconds: int
    remote_status: str
    progress: int
    submitted_at: float | None
    expires_at: float | None
    remix_of: str | None = None
    provider: str = "openai"
    params: Mapping[str, Any] | None = None
    remote_handle: Mapping[str, Any] | None = None


class AdminMixin:
    _conn: DB
    path: Path | str

    def delete_jobs(self, job_ids: Sequence[str], *, message: str | None = None,
                    now: float | None = None) -> None:
        """Remove jobs and their events in one transaction, leaving a tombstone each."""
        now = time.time() if now is None else now
        with write(self._conn, self.path) as conn:
            for job_id in job_ids:
                conn.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
                insert_event(conn, job_id, TOMBSTONE, now, message=message)

    def was_deleted(self, job_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM events WHERE job_id = ? AND kind = ?", (job_id, TOMBSTONE)
        ).fetchone()
        return row is not None and fetch_job(self._conn, job_id) is None

    def jobs_before(self, cutoff: float, statuses: Sequence[JobStatus]) -> list[Job]:
        """Jobs created before `cutoff` in one of `statuses`, oldest first."""
        marks = ", ".join("?" * len(statuses))
        rows = self._conn.execute(
            f"{SELECT_JOB} WHERE created_at < ? AND status IN ({marks}) "
            "ORDER BY created_at, id", (cutoff, *(JobStatus(s).value for s in statuses)))
        return [row_to_job(r) for r in rows]

    def derived(self, job_id: str) -> dict[str, list[str]]:
        """Ids of the jobs that remix or retry `job_id`, oldest first."""
        # Two indexed lookups (ix_jobs_remix_of, ix_jobs_retry_of): an OR with ORDER BY
        # would walk the whole created_at index on a big store.
        rows = self._conn.execute(
            "SELECT id, remix_of, retry_of, created_at FROM jobs WHERE remix_of = ? "
            "UNION SELECT id, remix_of, retry_of, created_at FROM jobs WHERE retry_of = ? "
            "ORDER BY 4, 1", (job_id, job_id))
        links: dict[str, list[str]] = {"remixes": [], "retries": []}
        for other, remix_of, retry_of, _ in rows:
            if remix_of == job_id:
                links["remixes"].append(other)
            if retry_of == job_id:
                links["retries"].append(other)
        return links

    def retried(self) -> set[str]:
        """Ids of jobs that some other job retries."""
        rows = self._conn.execute("SELECT DISTINCT retry_of FROM jobs WHERE retry_of IS NOT NULL")
        return {r[0] for r in rows}

    def image_users(self, image: str) -> list[str]:
        rows = self._conn.execute("SELECT id FROM jobs WHERE image = ?", (image,))
        return [r[0] for r in rows]

    def job_by_remote_id(self, remote_id: str) -> Job | None:
        row = self._conn.execute(f"{SELECT_JOB} WHERE remote_id = ?", (remote_id,)).fetchone()
        return row_to_job(row) if row else None

    def import_videos(self, videos: Sequence[RemoteVideo],
                      now: float | None = None) -> list[Job | None]:
        """Record remote videos as `running` jobs (one transaction), in order; None for a
        video that some job already has."""
        now = time.time() if now is None else now
        out: list[Job | None] = []
        with write(self._conn, self.path) as conn:
            ids = iter(self._fresh_ids(conn, len(videos)))
            for n, v in enumerate(videos):
                taken = conn.execute("SELECT 1 FROM jobs WHERE remote_id = ?", (v.remote_id,))
                if taken.fetchone() is not None:
                    out.append(None)
                    continue
                job_id, at = next(ids), now + n * 1e-6
                # all of it came from a server: scrubbed and bounded like any server text
                prompt, model = scrub(v.prompt, 32000), scrub(v.model, 200) or "unknown"
                size, status = scrub(v.size, 50) or "unknown", sane("remote_status",
                                                                   v.remote_status)
                conn.execute(
                    "INSERT INTO jobs (id, prompt, model, size, seconds, status, remote_id, "
                    "remote_status, progress, created_at, updated_at, submitted_at, expires_at, "
                    "create_attempts, poll_count, download_attempts, remix_of, provider, "
                    "params, remote_handle) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?)",
                    (job_id, prompt, model, size, v.seconds, JobStatus.RUNNING.value,
                     v.remote_id, status, sane("progress", v.progress), at, at,
                     sane("submitted_at", v.submitted_at), sane("expires_at", v.expires_at),
                     v.remix_of, v.provider, json_text(v.params),
                     json_text(v.remote_handle)))
                insert_event(conn, job_id, "imported", at, to_status=JobStatus.RUNNING.value,
                             message=f"imported remote video {v.remote_id} ({status})")
                out.append(fetch_job(conn, job_id))
        return out

    def _fresh_ids(self, conn: DB, count: int) -> list[str]:
        raise NotImplementedError  # Store's: unused in jobs and in events (tombstones too)
