"""The runners' side of the job store: leases on jobs and the registry of runners.

A runner works a job only while it holds the job's lease (its id and an expiry);
a dead runner's jobs are taken over when the lease runs out. `Store` mixes this
in: callers import `Store` from `sora_cli.store`, never this module.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from .jobs import Job
from .store_sql import ACTIVE_SQL, SELECT_JOB, fetch_job, insert_event, row_to_job, write

_CLEAR_LEASE: Final = "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL"
_RUNNER_COLUMNS: Final = ("id", "host", "pid", "started_at", "heartbeat_at", "jobs_in_flight")
# Above every code point: `x >= p AND x < p || _TOP` selects the strings starting with p.
_TOP: Final = "\U0010ffff"


class LeaseMixin:
    _conn: sqlite3.Connection
    path: Path

    def claim(self, owner: str, limit: int, lease_seconds: float,
              now: float | None = None) -> list[Job]:
        """Lease up to `limit` unfinished jobs that nobody (alive) holds, oldest first."""
        now = time.time() if now is None else now
        if limit <= 0:
            return []
        with write(self._conn, self.path) as conn:
            rows = conn.execute(
                f"{SELECT_JOB} WHERE status IN ({ACTIVE_SQL}) AND (lease_owner IS NULL "
                "OR lease_expires_at < ?) ORDER BY created_at LIMIT ?", (now, limit),
            ).fetchall()
            jobs = [row_to_job(r) for r in rows]
            for job in jobs:
                conn.execute("UPDATE jobs SET lease_owner = ?, lease_expires_at = ? WHERE id = ?",
                             (owner, now + lease_seconds, job.id))
                insert_event(conn, job.id, "claimed", now, runner_id=owner,
                             message=f"taken over from {job.lease_owner}" if job.lease_owner
                             else None)
        return [fetch_job(self._conn, j.id) or j for j in jobs]

    def renew(self, owner: str, lease_seconds: float, now: float | None = None) -> set[str]:
        """Extend every lease `owner` holds; return the ids it still holds."""
        now = time.time() if now is None else now
        with write(self._conn, self.path) as conn:
            conn.execute("UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ?",
                         (now + lease_seconds, owner))
            rows = conn.execute("SELECT id FROM jobs WHERE lease_owner = ?", (owner,)).fetchall()
        return {r[0] for r in rows}

    def release(self, owner: str, job_ids: Sequence[str] | None = None) -> None:
        """Give up `owner`'s leases: all of them, or those on `job_ids`."""
        with write(self._conn, self.path) as conn:
            if job_ids is None:
                conn.execute(f"{_CLEAR_LEASE} WHERE lease_owner = ?", (owner,))
            for job_id in job_ids or ():
                conn.execute(f"{_CLEAR_LEASE} WHERE id = ? AND lease_owner = ?", (job_id, owner))

    def release_host(self, prefix: str, *, keep: str) -> None:
        """Free leases held by other runner ids of this host (known dead: we hold its lock)."""
        with write(self._conn, self.path) as conn:
            conn.execute(f"{_CLEAR_LEASE} WHERE lease_owner >= ? AND lease_owner < ? "
                         "AND lease_owner != ?", (prefix, prefix + _TOP, keep))
            conn.execute("DELETE FROM runners WHERE id >= ? AND id < ? AND id != ?",
                         (prefix, prefix + _TOP, keep))

    # --- runners ----------------------------------------------------------------

    def runner_beat(self, runner_id: str, *, host: str, pid: int, started_at: float,
                    jobs_in_flight: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with write(self._conn, self.path) as conn:
            conn.execute(
                "INSERT INTO runners (id, host, pid, started_at, heartbeat_at, jobs_in_flight) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "heartbeat_at = excluded.heartbeat_at, jobs_in_flight = excluded.jobs_in_flight",
                (runner_id, host, pid, started_at, now, jobs_in_flight),
            )

    def runner_gone(self, runner_id: str) -> None:
        with write(self._conn, self.path) as conn:
            conn.execute("DELETE FROM runners WHERE id = ?", (runner_id,))

    def runners(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            f"SELECT {', '.join(_RUNNER_COLUMNS)} FROM runners ORDER BY started_at DESC")
        return [dict(zip(_RUNNER_COLUMNS, r, strict=True)) for r in rows]
