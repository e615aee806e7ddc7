"""Waiting on jobs: snapshots of the store each time a job changes, until all are final.

Reads only the store; restarts a runner that died while work is pending.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.errors import JobNotFound
from sora_cli.services.context import Context
from sora_cli.services.jobs import resolve_all


@dataclass(frozen=True)
class WaitResult:
    jobs: list[Job]
    timed_out: bool

    @property
    def any_failed(self) -> bool:
        return any(j.status.is_unsuccessful for j in self.jobs)


def watch(ctx: Context, ids: Sequence[str], *, timeout: float | None,
          interval: float = 0.25, runner_check: float = 2.0) -> Iterator[list[Job]]:
    """Yield a snapshot of the jobs each time one of them changes, until all are final.

    Reads only the store. Restarts the runner if it died while work is pending.
    Ends (the caller checks the deadline) when `timeout` runs out.
    """
    deadline = None if timeout is None else ctx.hooks.monotonic() + timeout
    last: dict[str, tuple[JobStatus, int, float]] = {}
    next_check = 0.0
    while True:
        jobs = [ctx.store.get(i) for i in ids]
        current = [j for j in jobs if j is not None]
        sig = {j.id: (j.status, j.progress, j.updated_at) for j in current}
        if sig != last:
            last = sig
            yield current
        if all(j.status.is_final for j in current):
            return
        now = ctx.hooks.monotonic()
        if deadline is not None and now >= deadline:
            return
        if now >= next_check:
            next_check = now + runner_check
            ctx.kick_runner()
        ctx.hooks.sleep(interval if deadline is None else max(0.0, min(interval, deadline - now)))


def watch_active(ctx: Context, *, label: str | None, timeout: float | None,
                 interval: float = 0.25,
                 runner_check: float = 2.0) -> Iterator[tuple[list[Job], list[Job]]]:
    """For `sora watch`: yield (the jobs that changed, the jobs still active) at the start
    and whenever one changes, until no job (with `label`) is active or `timeout` runs out.

    A job that finishes is reported once, in its final state, then dropped; jobs
    submitted meanwhile join. Reads only the store; restarts a dead runner."""
    deadline = None if timeout is None else ctx.hooks.monotonic() + timeout
    active_states = sorted(s for s in JobStatus if s.is_active)
    known: dict[str, tuple[JobStatus, int]] = {}
    first, next_check = True, 0.0
    while True:
        active = ctx.store.list_jobs(statuses=active_states, label=label, limit=None)
        active.reverse()  # oldest first
        now_ids = {j.id for j in active}
        finished = [j for i in known if i not in now_ids if (j := ctx.store.get(i)) is not None]
        changed = [j for j in finished + active if known.get(j.id) != (j.status, j.progress)]
        known = {j.id: (j.status, j.progress) for j in active}
        if changed or first:
            first = False
            yield sorted(changed, key=lambda j: (j.created_at, j.id)), active
        now = ctx.hooks.monotonic()
        if not active or (deadline is not None and now >= deadline):
            return
        if now >= next_check:
            next_check = now + runner_check
            ctx.kick_runner()
        ctx.hooks.sleep(interval if deadline is None else max(0.0, min(interval, deadline - now)))


def wait_targets(ctx: Context, refs: Sequence[str], *, label: str | None,
                 all_active: bool) -> list[Job]:
    """The jobs `wait` waits for: the named ones, those with `label` and (`all_active`)
    every unfinished one; each once, in the order first named (labelled and active
    jobs oldest first, the order they were submitted in)."""
    jobs = resolve_all(ctx, refs)
    if label is not None:
        labelled = ctx.store.list_jobs(label=label, limit=None)
        if not labelled:
            raise JobNotFound(f"no jobs with label {label!r}")
        jobs.extend(reversed(labelled))
    if all_active:
        active = sorted(s for s in JobStatus if s.is_active)
        jobs.extend(reversed(ctx.store.list_jobs(statuses=active, limit=None)))
    return list({j.id: j for j in jobs}.values())
