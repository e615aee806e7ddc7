"""What `sora serve` means, as plain functions over a `Context` (no HTTP here): finding
and browsing jobs, the spend figures, the saved files a job may serve, and a feed of
the jobs that changed.

The feed reads only indexed rows: the active jobs (`ix_jobs_status_created`) and the
jobs created since the last look (`ix_jobs_created`). Every change the runner, `submit`,
`cancel`, `retry` or `import` makes is to a job that is active, or just was, or is new.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sora_cli.domain.jobs import ACTIVE_STATUSES, Job, JobStatus
from sora_cli.errors import InvalidInput
from sora_cli.services.context import Context
from sora_cli.services.export import readable_copy
from sora_cli.services.housekeeping import retry, retry_targets
from sora_cli.services.jobs import cancel
from sora_cli.services.spending import cost, spent_today
from sora_cli.store.browse import DEFAULT_PROVIDER

MAX_PAGE: Final = 500
MEDIA: Final = ("video", "thumbnail")


def provider_of(model: str) -> str:
    """The provider of a model reference `PROVIDER:MODEL`; no prefix is the default one."""
    head, sep, _ = model.partition(":")
    return head if sep else DEFAULT_PROVIDER


def find_job(ctx: Context, ref: str) -> Job:
    """A job by id, unique prefix, remote id or `@last` (JobNotFound, exit 3, if none)."""
    return ctx.store.resolve(ref)


def browse(ctx: Context, *, statuses: Sequence[str] = (), label: str | None = None,
           provider: str | None = None, search: str | None = None,
           before: str | None = None, limit: int = 50) -> list[Job]:
    """A page of jobs, newest first (see Store.browse); `limit` is 1 to MAX_PAGE."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} (got {limit})")
    try:
        wanted = [JobStatus(s.strip().lower()) for s in statuses]
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise InvalidInput(f"status must be one of {names}") from None
    return ctx.store.browse(statuses=wanted, label=label or None, provider=provider or None,
                            search=search or None, before=before or None, limit=limit)


def cancel_job(ctx: Context, ref: str) -> tuple[Job, str]:
    """Cancel one job (see services.cancel): the job and the note on what it means."""
    ((job, note),) = cancel(ctx, [ref])
    return job, note


def retry_job(ctx: Context, ref: str) -> Job:
    """Submit a failed or cancelled job again as a new job (see admin.retry)."""
    (new,) = retry(ctx, retry_targets(ctx, [ref], failed=False))
    return new


@dataclass(frozen=True)
class Spend:
    today_usd: float  # the budget rule's figure: created today, not failed or cancelled
    total_usd: float  # every completed job
    completed_jobs: int
    unpriced_jobs: int  # completed jobs of a model or size with no known price
    max_daily_cost: float | None
    max_job_cost: float | None


def spend(ctx: Context, now: float | None = None) -> Spend:
    """Today's estimated spend (what `max_daily_cost` counts) and the estimated cost of
    every completed job."""
    now = time.time() if now is None else now
    total = cost(ctx.store, since=None, by=None, now=now).total
    s = ctx.settings
    return Spend(today_usd=round(spent_today(ctx.store, now), 4),
                 total_usd=total.estimated_cost_usd, completed_jobs=total.jobs,
                 unpriced_jobs=total.unpriced_jobs, max_daily_cost=s.max_daily_cost,
                 max_job_cost=s.max_job_cost)


def saved_file(ctx: Context, job: Job, variant: str) -> Path | None:
    """The file the runner saved for a job's `variant` (video or thumbnail), if this
    machine can read it. Only paths the store recorded are ever returned."""
    if variant not in MEDIA:
        raise InvalidInput(f"variant must be one of {', '.join(MEDIA)} (got {variant!r})")
    if variant == "video":
        return readable_copy(ctx.settings, job)
    if job.thumbnail_path and Path(job.thumbnail_path).is_file():
        return Path(job.thumbnail_path)
    return None


@dataclass(frozen=True)
class Changes:
    jobs: list[Job]  # each changed job as it is now, oldest change first
    gone: list[str]  # ids of jobs that were active and are no longer in the store
    active: int  # jobs active now


@dataclass
class ChangeFeed:
    """The jobs that changed since the previous `poll()`; the first poll only looks."""

    ctx: Context
    _seen: dict[str, float] = field(default_factory=dict)  # active job id -> updated_at
    _newest: float | None = None  # the newest created_at seen
    _primed: bool = False

    def poll(self) -> Changes:
        store = self.ctx.store
        if not self._primed:
            self._primed = True
            self._newest = store.newest_created_at() or 0.0
            active = store.list_jobs(statuses=sorted(ACTIVE_STATUSES), limit=None)
            self._seen = {j.id: j.updated_at for j in active}
            return Changes([], [], len(active))
        fresh = store.created_after(self._newest or 0.0)
        active = store.list_jobs(statuses=sorted(ACTIVE_STATUSES), limit=None)
        now_ids = {j.id for j in active}
        left = [i for i in self._seen if i not in now_ids]
        finished = {i: j for i in left if (j := store.get(i)) is not None}
        changed = {j.id: j for j in [*finished.values(), *fresh, *active]
                   if self._seen.get(j.id) != j.updated_at}
        self._seen = {j.id: j.updated_at for j in active}
        self._newest = max([self._newest or 0.0, *(j.created_at for j in fresh)])
        jobs = sorted(changed.values(), key=lambda j: (j.updated_at, j.id))
        return Changes(jobs, [i for i in left if i not in finished], len(active))
