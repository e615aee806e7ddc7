"""The job store's reads for browsing: pages of jobs by filters, and the newest jobs.

Portable SQL (`?` placeholders, LIKE with an explicit escape), newest first on the
`created_at` indexes, so a page of a 200,000-job store reads one page of rows.
`Store` mixes this in (like leases.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.errors import InvalidInput
from sora_cli.store.db import DB
from sora_cli.store.rows import SELECT_JOB, row_to_job

DEFAULT_PROVIDER: Final = "openai"  # a model reference without a "PROVIDER:" prefix


def like_escape(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\' (its % and _ are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class BrowseMixin:
    _conn: DB

    def browse(self, *, statuses: Sequence[JobStatus] = (), label: str | None = None,
               provider: str | None = None, search: str | None = None,
               before: str | None = None, limit: int = 50) -> list[Job]:
        """Jobs newest first, filtered, at most `limit`; `before` (a job id) starts the
        page after that job. `provider` is the job's provider (`openai`, `fal`...);
        `search` is a case-insensitive substring of the prompt."""
        wanted = list(dict.fromkeys(JobStatus(s) for s in statuses))
        if len(wanted) > 1:  # one indexed walk per status, merged (IN would sort them all)
            pages = [self.browse(statuses=[s], label=label, provider=provider, search=search,
                                 before=before, limit=limit) for s in wanted]
            jobs = sorted((j for page in pages for j in page), reverse=True,
                          key=lambda j: (j.created_at, j.id))
            return jobs[:limit]
        conds: list[str] = []
        params: list[Any] = []
        if wanted:
            conds.append("status = ?")
            params.append(wanted[0].value)
        if label is not None:
            conds.append("label = ?")
            params.append(label)
        if provider is not None:  # schema 5: each job's own column
            conds.append("provider = ?")
            params.append(provider)
        if search:
            conds.append("lower(prompt) LIKE ? ESCAPE '\\'")
            params.append(f"%{like_escape(search.lower())}%")
        if before is not None:
            row = self._conn.execute("SELECT created_at FROM jobs WHERE id = ?",
                                     (before,)).fetchone()
            if row is None:
                raise InvalidInput(f"before: no such job {before!r}")
            conds.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params += [row[0], row[0], before]
        where = f" WHERE {' AND '.join(conds)}" if conds else ""
        sql = f"{SELECT_JOB}{where} ORDER BY created_at DESC, id DESC LIMIT {int(limit)}"
        return [row_to_job(r) for r in self._conn.execute(sql, params)]

    def created_after(self, created_at: float, *, limit: int = 1000) -> list[Job]:
        """Jobs created after `created_at` (a value read from the store), oldest first."""
        rows = self._conn.execute(
            f"{SELECT_JOB} WHERE created_at > ? ORDER BY created_at, id LIMIT {int(limit)}",
            (created_at,))
        return [row_to_job(r) for r in rows]

    def newest_created_at(self) -> float | None:
        row = self._conn.execute("SELECT max(created_at) FROM jobs").fetchone()
        return None if row is None or row[0] is None else float(row[0])
