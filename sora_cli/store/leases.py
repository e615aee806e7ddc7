"""The runners' side of the job store: leases on jobs and the registry of runners.

A runner works a job only while it holds the job's lease (its id and an expiry);
a dead runner's jobs are taken over when the lease runs out. Several runners (on
several machines, sharing a PostgreSQL store) claim side by side: on PostgreSQL a
claim locks the rows it takes and skips rows another claim holds (`FOR UPDATE
SKIP LOCKED`); on SQLite the write transaction excludes every other writer. An
optional fleet-wide limit on jobs in flight lives in the `meta` table, so every
runner honours the same number. `Store` mixes this in: callers import `Store`
from `sora_cli.store.repository`, never this module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sora_cli.domain.jobs import Job
from sora_cli.store.db import DB, for_update
from sora_cli.store.rows import ACTIVE_SQL, SELECT_JOB, fetch_job, insert_event, row_to_job

_CLEAR_LEASE: Final = "UPDATE jobs SET runner_id = NULL, lease_expires_at = NULL"
_RUNNER_COLUMNS: Final = ("runner_id", "host", "pid", "started_at", "heartbeat_at",
                          "jobs_in_flight")
# Above every code point: `x >= p AND x < p || _TOP` selects the strings starting with p.
_TOP: Final = "\U0010ffff"
FLEET_LIMIT_KEY: Final = "fleet_max_in_flight"  # a `meta` row; absent: no fleet limit
LEARNED_PREFIX: Final = "learned:"  # `meta` rows of facts adapters learned (see recall)
_HELD: Final = f"runner_id IS NOT NULL AND lease_expires_at >= ? AND status IN ({ACTIVE_SQL})"


@dataclass(frozen=True)
class RunnerRecord:
    """A runner's row in `runners` (its heartbeat), with the live leases it holds when
    read through `fleet`."""

    runner_id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    jobs_in_flight: int
    leases: int | None = None


class LeaseMixin:
    _conn: DB
    path: Path | str

    def claim(self, runner_id: str, limit: int, lease_seconds: float,
              now: float | None = None, *, rooms: Mapping[str, int] | None = None,
              exclude: Sequence[str] = ()) -> list[Job]:
        """Lease up to `limit` unfinished jobs that nobody (alive) holds, oldest first,
        and no more than the fleet limit leaves room for; with `rooms`, only jobs of
        those providers, at most that many of each; never those in `exclude` (jobs this
        runner cannot work just now)."""
        now = time.time() if now is None else now
        if limit <= 0:
            return []
        with self._conn.write() as conn:
            room = _fleet_room(conn, now)
            limit = limit if room is None else min(limit, room)
            if limit <= 0:
                return []
            jobs: list[Job] = []
            left = None if rooms is None else {p: n for p, n in rooms.items() if n > 0}
            for _ in range(len(left or ()) + 1):  # each round fills a provider, or is the last
                if left == {} or len(jobs) >= limit:
                    break
                rows = _claimable(conn, runner_id, now, limit - len(jobs), left, exclude)
                filled = False
                for job in (row_to_job(r) for r in rows):
                    if left is not None:
                        if left.get(job.provider, 0) <= 0:
                            continue  # its provider filled up in this round
                        left[job.provider] -= 1
                        if not left[job.provider]:
                            del left[job.provider]
                            filled = True
                    jobs.append(job)
                    conn.execute("UPDATE jobs SET runner_id = ?, lease_expires_at = ? "
                                 "WHERE id = ?", (runner_id, now + lease_seconds, job.id))
                    insert_event(conn, job.id, "claimed", now, runner_id=runner_id,
                                 message=_takeover(job))
                if not filled:
                    break
        return [fetch_job(self._conn, j.id) or j for j in jobs]

    def renew(self, runner_id: str, lease_seconds: float, now: float | None = None) -> set[str]:
        """Extend every lease `runner_id` holds; return the ids it still holds."""
        now = time.time() if now is None else now
        with self._conn.write() as conn:
            conn.execute("UPDATE jobs SET lease_expires_at = ? WHERE runner_id = ?",
                         (now + lease_seconds, runner_id))
            rows = conn.execute("SELECT id FROM jobs WHERE runner_id = ?", (runner_id,)).fetchall()
        return {r[0] for r in rows}

    def release(self, runner_id: str, job_ids: Sequence[str] | None = None) -> None:
        """Give up `runner_id`'s leases: all of them, or those on `job_ids`."""
        with self._conn.write() as conn:
            if job_ids is None:
                conn.execute(f"{_CLEAR_LEASE} WHERE runner_id = ?", (runner_id,))
            for job_id in job_ids or ():
                conn.execute(f"{_CLEAR_LEASE} WHERE id = ? AND runner_id = ?", (job_id, runner_id))

    def release_host(self, prefix: str, *, keep: str) -> None:
        """Free leases held by other runner ids of this host (known dead: we hold its lock)."""
        with self._conn.write() as conn:
            conn.execute(f"{_CLEAR_LEASE} WHERE runner_id >= ? AND runner_id < ? "
                         "AND runner_id != ?", (prefix, prefix + _TOP, keep))
            conn.execute("DELETE FROM runners WHERE runner_id >= ? AND runner_id < ? "
                         "AND runner_id != ?",
                         (prefix, prefix + _TOP, keep))

    # --- runners ----------------------------------------------------------------

    def runner_beat(self, runner_id: str, *, host: str, pid: int, started_at: float,
                    jobs_in_flight: int, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._conn.write() as conn:
            conn.execute(
                "INSERT INTO runners (runner_id, host, pid, started_at, heartbeat_at, "
                "jobs_in_flight) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (runner_id) DO UPDATE SET "
                "heartbeat_at = excluded.heartbeat_at, jobs_in_flight = excluded.jobs_in_flight",
                (runner_id, host, pid, started_at, now, jobs_in_flight),
            )

    def runner_gone(self, runner_id: str) -> None:
        with self._conn.write() as conn:
            conn.execute("DELETE FROM runners WHERE runner_id = ?", (runner_id,))

    def runners(self) -> list[RunnerRecord]:
        rows = self._conn.execute(
            f"SELECT {', '.join(_RUNNER_COLUMNS)} FROM runners ORDER BY started_at DESC")
        return [RunnerRecord(**dict(zip(_RUNNER_COLUMNS, r, strict=True))) for r in rows]

    def fleet(self, *, stale_after: float, now: float | None = None) -> list[RunnerRecord]:
        """Every live runner of the store (a heartbeat within `stale_after` seconds),
        with the number of live leases it holds, by host."""
        now = time.time() if now is None else now
        rows = self._conn.execute(
            f"SELECT {', '.join('r.' + c for c in _RUNNER_COLUMNS)}, (SELECT count(*) FROM "
            f"jobs WHERE runner_id = r.runner_id AND {_HELD}) FROM runners r "
            "WHERE r.heartbeat_at >= ? ORDER BY r.host, r.started_at, r.runner_id",
            (now, now - stale_after))
        return [RunnerRecord(**dict(zip(_RUNNER_COLUMNS, r, strict=False)), leases=int(r[-1]))
                for r in rows]

    def prune_runners(self, before: float) -> None:
        """Forget runners whose last heartbeat is older than `before` (killed ones)."""
        with self._conn.write() as conn:
            conn.execute("DELETE FROM runners WHERE heartbeat_at < ?", (before,))

    # --- the fleet-wide limit ----------------------------------------------------------

    def fleet_limit(self) -> int | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                 (FLEET_LIMIT_KEY,)).fetchone()
        return None if row is None else int(row[0])

    def set_fleet_limit(self, limit: int | None) -> None:
        """Bound the jobs in flight across every runner of the store; None: no bound."""
        with self._conn.write() as conn:
            if limit is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (FLEET_LIMIT_KEY,))
                return
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (FLEET_LIMIT_KEY, str(limit)))

    # --- what adapters learned about their servers (providers/base.py's Memory) --------

    def recall(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                 (LEARNED_PREFIX + key,)).fetchone()
        return None if row is None else str(row[0])

    def remember(self, key: str, value: str) -> None:
        """Keep a fact for every runner of the store (a named endpoint takes only
        multipart creates, or has no list): learned once, by whichever runner hit it."""
        with self._conn.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET value = excluded.value", (LEARNED_PREFIX + key, value))


def _claimable(conn: DB, runner_id: str, now: float, limit: int,
               providers: Mapping[str, int] | None, exclude: Sequence[str] = ()) -> list[Any]:
    """Rows of unfinished jobs nobody alive holds (of `providers`, when given; never those
    in `exclude`), oldest first. Never our own jobs, even with a lapsed lease: we are
    working them already (a second task on one job could send its create twice)."""
    only = "" if providers is None else f" AND provider IN ({', '.join('?' * len(providers))})"
    skip = list(exclude)[:500]  # a few at most, as parameters
    besides = f" AND id NOT IN ({', '.join('?' * len(skip))})" if skip else ""
    return conn.execute(
        f"{SELECT_JOB} WHERE status IN ({ACTIVE_SQL}){only}{besides} AND (runner_id IS NULL "
        "OR (lease_expires_at < ? AND runner_id <> ?)) ORDER BY created_at LIMIT ?"
        f"{for_update(conn, skip_locked=True)}",
        (*(providers or ()), *skip, now, runner_id, limit),
    ).fetchall()


def _fleet_room(conn: DB, now: float) -> int | None:
    """How many more jobs the fleet limit allows in flight now; None without a limit.

    On PostgreSQL the limit's row is locked until the claim commits, so claims under
    a limit run one at a time and each counts the leases the one before it took
    (READ COMMITTED: every statement sees what committed before it began)."""
    row = conn.execute(f"SELECT value FROM meta WHERE key = ?{for_update(conn)}",
                       (FLEET_LIMIT_KEY,)).fetchone()
    if row is None:
        return None
    held = conn.execute(f"SELECT count(*) FROM jobs WHERE {_HELD}", (now,)).fetchone()[0]
    return int(row[0]) - int(held)


def _takeover(job: Job) -> str | None:
    if job.runner_id is None:
        return None
    return f"taken over from {job.runner_id} (its lease expired at {job.lease_expires_at})"
