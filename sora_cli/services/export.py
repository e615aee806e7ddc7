"""Saving a job's video where the user asked: the runner's copy, or fetched from the
provider while it has not expired. Never overwrites without `force`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job
from sora_cli.errors import ContentMismatch, InvalidInput, SoraError
from sora_cli.services.context import Context, require_key


def output_targets(ids: Sequence[str], out: str | None, cwd: Path) -> dict[str, Path]:
    """Where each job's video goes: `-o` is a directory when it is one, ends in `/`,
    or more than one job is written; otherwise the file name for the single job."""
    if out is None:
        return {i: cwd / f"{i}.mp4" for i in ids}
    path, is_dir = output_path(out, cwd, count=len(ids))
    if is_dir:
        return {i: path / f"{i}.mp4" for i in ids}
    return {ids[0]: path} if ids else {}


def output_path(out: str, cwd: Path, *, count: int) -> tuple[Path, bool]:
    """`-o` made absolute, and whether it names a directory (see `output_targets`)."""
    path = Path(out).expanduser()
    if not path.is_absolute():
        path = cwd / path
    return path, path.is_dir() or out.endswith(("/", os.sep)) or count > 1


def refuse_existing(paths: Iterable[Path], *, force: bool) -> None:
    """Fail (exit 2) before any waiting when a file would be overwritten without `force`."""
    for path in paths:
        # lexists: a dangling symlink is "something there" too, never written through
        if path.is_dir() or (os.path.lexists(path) and not force):
            what = ("is a directory" if path.is_dir() else
                    "exists (a symbolic link); use --force to replace the link itself"
                    if path.is_symlink() else "exists; use --force to overwrite it")
            raise InvalidInput(f"{path} {what}")


def export(ctx: Context, job: Job, dest: Path, *, force: bool,
           note: Callable[[str], None] | None = None) -> Path:
    """Put the job's video at `dest`: a copy of the saved file (where the runner saved
    it, or in the shared videos dir as mounted here) whose sha256 is the recorded one,
    or fetched from the API while it has not expired. Never overwrites without `force`."""
    refuse_existing([dest], force=force)
    saved = readable_copy(ctx.settings, job)
    if saved is not None:
        try:
            copy_into_place(saved, dest, force=force, sha256=job.sha256)
            return dest
        except ContentMismatch as exc:  # changed since it was saved: not handed out
            if note is not None:
                note(f"{exc}; fetching the video from the server instead")
    if not job.has_result:
        raise SoraError(f"job {job.id} has no video to download (status {job.status})")
    if job.expires_at is not None and ctx.hooks.clock() > job.expires_at:
        raise SoraError(_expired_note(job))
    fetch_result(ctx.settings, job, dest, replace=force)
    return dest


def readable_copy(settings: Settings, job: Job) -> Path | None:
    """The saved video, if this machine can read it: at the path the runner recorded,
    or under this machine's `shared_videos_dir` (the same share, mounted elsewhere);
    a file of another size is not it."""
    if not job.output_path:
        return None
    recorded = Path(job.output_path)
    candidates = [recorded]
    if settings.shared_videos_dir:
        candidates.append(settings.save_dir / recorded.name)
    for path in candidates:
        if path.is_file() and (job.bytes is None or path.stat().st_size == job.bytes):
            return path
    return None


def _expired_note(job: Job) -> str:
    if not job.output_path:
        return f"job {job.id}: the video expired on the server and was not saved"
    where = f"{job.output_path} on {job.output_host}" if job.output_host else job.output_path
    return (f"job {job.id}: the video expired on the server, and the saved copy ({where}) "
            "cannot be read from this machine: copy it from there, or set shared_videos_dir "
            "to a directory the runners and this machine share")


def copy_into_place(src: Path, dest: Path, *, force: bool, sha256: str | None = None) -> None:
    """Copy through a private temp file (random name, O_EXCL|O_NOFOLLOW: never through a
    link planted in a shared dir), checked against `sha256`, published exclusively
    unless `force` (see sora_cli.files)."""
    from sora_cli.files import copy_checked

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SoraError(f"cannot create {dest.parent}: {exc.strerror}") from None
    try:
        copy_checked(src, dest, replace=force, sha256=sha256)
    except OSError as exc:
        raise SoraError(f"cannot write {dest}: {exc.strerror}") from None


def fetch_result(settings: Settings, job: Job, dest: Path, *, variant: str = "video",
                 replace: bool = False) -> None:
    """A one-off fetch of a job's result through its provider's adapter, as the runner
    would (for `sora download` when the runner did not save it). `dest` is created
    exclusively unless `replace`: a file that appears there meanwhile is never
    overwritten."""
    assert job.remote_id is not None
    require_key(settings, job.provider)
    if dest.is_symlink():  # never write through a link, nor replace one unasked
        raise InvalidInput(f"{dest} is a symbolic link; remove it or choose another path")

    import asyncio

    from sora_cli.providers.download import download_from
    from sora_cli.providers.registry import Adapters

    remote_id = job.remote_id

    async def go() -> None:
        async with Adapters(settings) as adapters:
            adapter = adapters.get(job.provider)
            await download_from(
                lambda offset: adapter.open_result(job, variant=variant, offset=offset),
                dest, name=remote_id, path=adapter.result_path(job, variant), variant=variant,
                timeout=settings.request_timeout, replace=replace)

    asyncio.run(go())
