"""What remix, retry, delete, prune, logs and variant downloads mean (no printing here).

Every check runs before anything changes: a refused command (exit 2) records and
deletes nothing. The network parts (remote deletes, import) are in remote.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from sora_cli.config import Settings
from sora_cli.domain.durations import parse_duration
from sora_cli.domain.images import is_url
from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.domain.providers import BUILTIN, DELETE, REMIX
from sora_cli.errors import InvalidInput, SoraError
from sora_cli.files import remove_stale_temps
from sora_cli.services.context import Context
from sora_cli.services.export import copy_into_place, output_path
from sora_cli.services.jobs import resolve_all
from sora_cli.services.providers import can
from sora_cli.services.submit import submit
from sora_cli.store.rows import Event

VARIANTS: Final = {"video": "mp4", "thumbnail": "webp", "spritesheet": "jpg"}
FINAL: Final = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)
RETRYABLE: Final = (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)


def remote_completed(job: Job) -> bool:
    return job.has_result


def expired(job: Job, now: float | None = None) -> bool:
    return job.expires_at is not None and (time.time() if now is None else now) > job.expires_at


# --- remix and retry ----------------------------------------------------------------


def remix(ctx: Context, ref: str, prompt: str, *, label: str | None = None) -> Job:
    """Record a job remixing a completed job's remote video with a new prompt."""
    source = ctx.store.resolve(ref)
    _require(source, REMIX, "remix a video", ctx.settings)
    if not remote_completed(source):
        raise InvalidInput(f"job {source.id} is {source.status}: only a completed job can "
                           "be remixed")
    if expired(source):
        raise InvalidInput(f"job {source.id}: its video expired on the server, so it cannot "
                           "be remixed")
    req = VideoRequest(prompt=prompt, model=source.model, size=source.size,
                       seconds=source.seconds, label=label, remix_of=source.id,
                       provider=source.provider)
    (job,) = submit(ctx, [req])
    return job


def retry_targets(ctx: Context, refs: Sequence[str], *, failed: bool) -> list[Job]:
    """The jobs to retry: the named ones (each failed or cancelled), or with `failed`
    every failed job that no other job retries yet."""
    if failed:
        if refs:
            raise InvalidInput("give job ids or --failed, not both")
        done = ctx.store.retried()
        jobs = ctx.store.list_jobs(statuses=[JobStatus.FAILED], limit=None)
        return [j for j in reversed(jobs) if j.id not in done]  # oldest first
    if not refs:
        raise InvalidInput("name the jobs to retry (ids, -, or --failed)")
    jobs = resolve_all(ctx, refs)
    for job in jobs:
        if job.status not in RETRYABLE:
            raise InvalidInput(f"job {job.id} is {job.status}: only failed or cancelled jobs "
                               "can be retried")
    return jobs


def retry(ctx: Context, jobs: Sequence[Job]) -> list[Job]:
    """Submit each job again as a new job (`retry_of` = the old id), in one transaction."""
    requests = []
    for job in jobs:
        if job.image is not None and not is_url(job.image) and not Path(job.image).is_file():
            raise InvalidInput(f"job {job.id}: its image {job.image} is gone")
        if job.remix_of is not None:
            source = ctx.store.get(job.remix_of)
            if source is None or not remote_completed(source) or expired(source):
                raise InvalidInput(f"job {job.id} remixes {job.remix_of}, whose video is no "
                                   "longer available")
        requests.append(VideoRequest(
            prompt=job.prompt, model=job.model, size=job.size, seconds=job.seconds,
            label=job.label, image=job.image, remix_of=job.remix_of, retry_of=job.id,
            provider=job.provider, params=job.params))
    return submit(ctx, requests) if requests else []


# --- delete and prune -------------------------------------------------------------------


def check_remote_delete(jobs: Sequence[Job]) -> None:
    """The API deletes only completed or failed videos: refuse (exit 2) up front. An
    unfinished job without a remote id yet is refused too: its create may be in flight."""
    for job in jobs:
        if job.remote_id is not None:
            _require(job, DELETE, "delete its remote video (delete it without --remote)")
        if job.status.is_active:
            raise InvalidInput(
                f"job {job.id} is {job.status}: the API deletes only completed or failed "
                "videos (cancel it, or delete it without --remote); nothing was deleted")


def _require(job: Job, capability: str, what: str, settings: Settings | None = None) -> None:
    """InvalidInput (exit 2) when the job's provider cannot do `capability` (a plug-in's
    is known only with the settings)."""
    info = BUILTIN.get(job.provider)
    able = (capability in info.capabilities if info is not None
            else can(settings, job.provider, capability) if settings is not None else None)
    if able is False:
        raise InvalidInput(f"job {job.id} is a {job.provider} job: {job.provider} cannot "
                           f"{what}; nothing was changed")


def remove_local(ctx: Context, jobs: Sequence[Job], *, message: str | None = None) -> None:
    """Delete jobs, their events and their files (those under SORA_HOME only)."""
    if not jobs:
        return
    ctx.store.delete_jobs([j.id for j in jobs], message=message)
    gone = {j.id for j in jobs}
    home = ctx.settings.home
    for job in jobs:
        # Also what a runner saved but had not recorded yet (it was killed, or is about
        # to find the job gone): the runner's file names, and its temp files.
        saved = ctx.settings.videos_dir / f"{job.id}.mp4"
        for name in (job.output_path, job.thumbnail_path, saved,
                     ctx.settings.videos_dir / f"{job.id}.webp"):
            if name:
                _unlink_under(Path(name), home)
        remove_stale_temps(saved)
        if job.image and not is_url(job.image) and not set(ctx.store.image_users(job.image)) - gone:
            _unlink_under(Path(job.image), home / "inputs")


def _unlink_under(path: Path, root: Path) -> None:
    """Remove `path` if it is a file inside `root` (never anything the user put elsewhere)."""
    try:
        if path.resolve().is_relative_to(root.resolve()) and path.is_file():
            path.unlink()
    except OSError:
        pass  # the job is gone from the store; a file that cannot go is left


def prune_targets(ctx: Context, older_than: str, statuses: Sequence[str]) -> list[Job]:
    age = parse_duration(older_than, "--older-than")
    try:
        wanted = [JobStatus(s.strip().lower()) for s in statuses] or list(FINAL)
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise InvalidInput(f"--status must be one of {names}") from None
    return ctx.store.jobs_before(time.time() - age, wanted)


# --- logs ---------------------------------------------------------------------------------


def job_events(ctx: Context, ref: str) -> tuple[Job, list[Event]]:
    job = ctx.store.resolve(ref)
    return job, ctx.store.events(job.id)


# --- variants -------------------------------------------------------------------------------


def check_variant(variant: str) -> str:
    name = variant.strip().lower()
    if name not in VARIANTS:
        raise InvalidInput(f"--variant must be one of {', '.join(VARIANTS)} (got {variant!r})")
    return name


def variant_target(job_id: str, out: str | None, variant: str, cwd: Path) -> Path:
    """`<id>.mp4|webp|jpg` in the current dir, in `-o` when it is a directory, or `-o`."""
    name = f"{job_id}.{VARIANTS[variant]}"
    if out is None:
        return cwd / name
    path, is_dir = output_path(out, cwd, count=1)
    return path / name if is_dir else path


def export_variant(ctx: Context, job: Job, dest: Path, variant: str, *, force: bool) -> Path:
    """Save the thumbnail or spritesheet of a finished job at `dest`: the runner's copy
    of the thumbnail when it kept one, else fetched while the video has not expired."""
    from sora_cli.domain.providers import BUILTIN
    from sora_cli.domain.providers import VARIANTS as HAS_VARIANTS

    info = BUILTIN.get(job.provider)
    if (HAS_VARIANTS not in info.capabilities if info is not None
            else can(ctx.settings, job.provider, HAS_VARIANTS) is False):
        raise InvalidInput(f"{job.provider} jobs have only the video: no {variant}")
    if dest.is_dir():
        raise InvalidInput(f"{dest} is a directory")
    if dest.exists() and not force:
        raise InvalidInput(f"{dest} exists; use --force to overwrite it")
    kept = Path(job.thumbnail_path) if variant == "thumbnail" and job.thumbnail_path else None
    if kept is not None and kept.is_file():
        copy_into_place(kept, dest, force=force)
        return dest
    if not remote_completed(job):
        raise SoraError(f"job {job.id} has no {variant} to download (status {job.status})")
    if expired(job):
        raise SoraError(f"job {job.id}: the video expired on the server; its {variant} "
                        "was not saved")
    from sora_cli.services.export import fetch_result

    fetch_result(ctx.settings, job, dest, variant=variant, replace=force)
    return dest
