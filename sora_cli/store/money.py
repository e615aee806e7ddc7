"""The job store's money queries: jobs counted by what sets their price.

Portable SQL (`?` placeholders, no dialect functions), grouped in the database;
money.py turns the counts into estimated dollars. `Store` mixes this in (like
leases.py); callers import `Store` from `sora_cli.store.repository`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sora_cli.domain.jobs import JobStatus
from sora_cli.domain.money import PriceCount
from sora_cli.store.db import DB


class MoneyMixin:
    _conn: DB

    def spend_counts(self, since: float) -> list[PriceCount]:
        """Jobs created since `since` that did not fail and were not cancelled."""
        return self._price_counts("created_at >= ? AND status NOT IN (?, ?)",
                                  [since, JobStatus.FAILED.value, JobStatus.CANCELLED.value])

    def completed_counts(self, since: float | None, *, by_label: bool = False,
                         day_starts: Sequence[float] = ()) -> list[PriceCount]:
        """Completed jobs (by completion time, since `since`), optionally per label and per
        day, `day_starts` being the days' first instants, newest first."""
        when = "COALESCE(completed_at, updated_at)"
        cond, params = "status = ?", [JobStatus.COMPLETED.value]  # type: tuple[str, list[Any]]
        if since is not None:
            cond += f" AND {when} >= ?"
            params.append(since)
        day = None
        if day_starts:  # bucket numbers are literals: placeholders only for values
            whens = " ".join(f"WHEN {when} >= ? THEN {n}" for n in range(len(day_starts)))
            day = f"CASE {whens} ELSE {len(day_starts)} END"
        return self._price_counts(cond, params, label=by_label, day=day, day_params=day_starts)

    def first_completed_at(self) -> float | None:
        row = self._conn.execute("SELECT min(COALESCE(completed_at, updated_at)) FROM jobs "
                                 "WHERE status = ?", (JobStatus.COMPLETED.value,)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def _price_counts(self, cond: str, params: Sequence[Any], *, label: bool = False,
                      day: str | None = None,
                      day_params: Sequence[float] = ()) -> list[PriceCount]:
        keys = ["model", "size", "seconds", "provider"] + (["label"] if label else []) + (
            [day] if day else [])
        sql = (f"SELECT {', '.join(keys)}, count(*) FROM jobs WHERE {cond} "
               f"GROUP BY {', '.join(str(n + 1) for n in range(len(keys)))}")
        rows = self._conn.execute(sql, (*day_params, *params)).fetchall()
        return [PriceCount(model=r[0], size=r[1], seconds=int(r[2]), count=int(r[-1]),
                           provider=r[3], label=r[4] if label else None,
                           day=int(r[len(keys) - 1]) if day else None) for r in rows]
