"""Recovering a paid video: a job that failed (or expired) here while its provider still
has the video, as an older sora left jobs after an outage.

Only the provider's own word counts: it is asked again, through the job's adapter (every
provider). A video it still makes is tracked again (the job goes back to `running`, for
the runner to finish); a finished one is saved by `sora download` at once; one the
provider says failed, or no longer has, stays as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.errors import ApiError, SoraError
from sora_cli.services.context import Context, require_key

if TYPE_CHECKING:
    from sora_cli.providers.base import Polled
    from sora_cli.providers.registry import Adapters

RECOVERABLE: Final = (JobStatus.FAILED, JobStatus.EXPIRED)
CLEARED: Final[dict[str, Any]] = {"error_code": None, "error_message": None,
                                  "error_http_status": None, "error_request_id": None}
GONE: Final = (404, 410)


def recoverable(job: Job) -> bool:
    return job.status in RECOVERABLE and job.remote_id is not None


def _fields(job: Job, p: Polled) -> dict[str, Any]:
    fields: dict[str, Any] = {"remote_status": p.remote_status, "progress": p.progress or 0,
                              "expires_at": p.expires_at}
    if p.result is not None:  # where the result is: kept with the job's handle
        fields["remote_handle"] = {**(job.remote_handle or {}), "result": p.result}
    return fields


def _ended(p: Polled) -> bool:
    from sora_cli.providers.base import RemoteState

    return p.state in (RemoteState.FAILED, RemoteState.CANCELLED, RemoteState.GONE)


async def _ask(adapters: Adapters, job: Job) -> Polled | None:
    """The provider's word on the job; None when it has no such job any more."""
    try:
        return await adapters.get(job.provider).poll(job, on_attempt=lambda a: None)
    except ApiError as exc:
        if exc.http_status in GONE:
            return None
        raise


def track_again(ctx: Context, job: Job, p: Polled) -> Job | None:
    """Back to `running` when the provider still makes or has the video; None when it
    says the job failed, was cancelled or is gone."""
    if _ended(p):
        return None
    return ctx.store.transition(
        job.id, JobStatus.RUNNING, event="recovered", release=True, **_fields(job, p),
        **CLEARED, message=f"{job.remote_id} is {p.remote_status} at {job.provider}: "
        "tracked again")


def revive(ctx: Context, jobs: Sequence[Job]) -> tuple[list[Job], list[str]]:
    """`sora import` of jobs that failed here: each tracked again when its provider
    still has its video. (the jobs tracked again, notes for the user)"""
    if not jobs:
        return [], []
    from sora_cli.providers.registry import Adapters

    for provider in dict.fromkeys(j.provider for j in jobs):
        require_key(ctx.settings, provider)

    async def go() -> list[Polled | None]:
        async with Adapters(ctx.settings) as adapters:
            return [await _ask(adapters, job) for job in jobs]

    revived: list[Job] = []
    notes: list[str] = []
    for job, p in zip(jobs, asyncio.run(go()), strict=True):
        again = None if p is None else track_again(ctx, job, p)
        if again is None:
            why = "is no longer there" if p is None else f"says {p.remote_status}"
            notes.append(f"{job.remote_id}: {job.provider} {why}; job {job.id} stays "
                         f"{job.status}")
        else:
            revived.append(again)
            notes.append(f"recovered job {job.id}: {job.remote_id} is {p and p.remote_status} "
                         f"at {job.provider}")
    return revived, notes


def recover_video(ctx: Context, job: Job, dest: Path, *, force: bool) -> Path:
    """`sora download` of a job that failed here: ask its provider; save a finished
    video at `dest` (and record the job completed), track an unfinished one again."""
    from sora_cli.providers.base import RemoteState
    from sora_cli.providers.download import Saved, download_from
    from sora_cli.providers.registry import Adapters

    assert job.remote_id is not None
    require_key(ctx.settings, job.provider)
    remote_id = job.remote_id

    async def go() -> tuple[Polled | None, Saved | None]:
        async with Adapters(ctx.settings) as adapters:
            p = await _ask(adapters, job)
            if p is None or p.state is not RemoteState.COMPLETED:
                return p, None
            done = dataclasses.replace(job, **{k: v for k, v in _fields(job, p).items()
                                               if k == "remote_handle"})
            adapter = adapters.get(job.provider)
            return p, await download_from(
                lambda offset: adapter.open_result(done, offset=offset), dest,
                name=remote_id, path=adapter.result_path(done), replace=force,
                timeout=ctx.settings.request_timeout)

    p, saved = asyncio.run(go())
    if p is None:
        raise SoraError(f"job {job.id}: {remote_id} is no longer at {job.provider}; the "
                        "video cannot be recovered")
    if saved is None:
        if track_again(ctx, job, p) is None:
            error = f" ({p.error.code}: {p.error.message})" if p.error else ""
            raise SoraError(f"job {job.id}: {job.provider} says {remote_id} "
                            f"{p.remote_status}{error}")
        ctx.kick_runner()
        raise SoraError(f"job {job.id}: {remote_id} is {p.remote_status} at {job.provider}; "
                        f"it is tracked again (sora wait {job.id} --download saves it)")
    ctx.store.transition(job.id, JobStatus.COMPLETED, event="recovered", release=True,
                         **{**_fields(job, p), "progress": 100}, **CLEARED,
                         output_path=str(saved.path), output_host=socket.gethostname(),
                         bytes=saved.bytes, sha256=saved.sha256, completed_at=time.time(),
                         message=f"recovered: saved {saved.bytes} bytes at {saved.path}")
    return dest


def save_video(ctx: Context, job: Job, dest: Path, *, force: bool,
               note: Callable[[str], None] | None = None) -> Path:
    """What `sora download` does for a video: a job that failed here is recovered from
    its provider; any other is exported (the runner's copy, or fetched)."""
    from sora_cli.services.export import export, refuse_existing

    if recoverable(job):
        refuse_existing([dest], force=force)
        return recover_video(ctx, job, dest, force=force)
    if job.status is not JobStatus.COMPLETED and not job.has_result:
        raise SoraError(f"job {job.id} is {job.status}: nothing to download yet")
    return export(ctx, job, dest, force=force, note=note)
