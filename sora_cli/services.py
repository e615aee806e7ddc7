"""What each command means, as plain functions over a `Context`: no printing here.

`Context` is the one composition point: the settings and a store opened on first
use. Commands that find unfinished work and no live runner start one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings, ensure_home
from .errors import AuthError, InvalidInput, SoraError
from .jobs import Job, JobStatus, VideoRequest, validate_request
from .spawn import ensure_runner
from .store import Store


@dataclass
class Context:
    settings: Settings
    warnings: list[str] = field(default_factory=list)
    _store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            ensure_home(self.settings.home)
            self._store = Store.open(self.settings.db_path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def kick_runner(self) -> bool:
        """Start a runner if there is unfinished work and none is alive."""
        if not self.store.has_active():
            return False
        s = self.settings
        return ensure_runner(s.home, s.lock_path, s.log_path)


def require_key(settings: Settings) -> None:
    if not settings.api_key:
        raise AuthError(
            "no API key: set OPENAI_API_KEY (or api_key in the config file)")


def submit(ctx: Context, requests: Sequence[VideoRequest]) -> list[Job]:
    """Validate every request, then record them all (one transaction) and wake a runner."""
    for req in requests:
        validate_request(req)  # bad input (exit 2) is reported before a missing key (exit 4)
    require_key(ctx.settings)
    jobs = ctx.store.add_jobs(requests)
    ctx.kick_runner()
    return jobs


def resolve_all(ctx: Context, refs: Sequence[str]) -> list[Job]:
    """Every ref to a job, failing (exit 3) on the first unknown one; duplicates dropped."""
    jobs: dict[str, Job] = {}
    for ref in refs:
        job = ctx.store.resolve(ref)
        jobs.setdefault(job.id, job)
    return list(jobs.values())


def read_refs(args: Sequence[str], stdin_text: str | None) -> list[str]:
    """Ids from the arguments, with `-` replaced by whitespace-separated ids from stdin."""
    refs: list[str] = []
    for arg in args:
        if arg == "-":
            refs.extend((stdin_text or "").split())
        else:
            refs.append(arg)
    return refs


def cancel(ctx: Context, refs: Sequence[str]) -> list[tuple[Job, str]]:
    """Cancel jobs; a job already sent may still be billed, and the note says so."""
    out: list[tuple[Job, str]] = []
    for job in resolve_all(ctx, refs):
        if job.status.is_final:
            out.append((job, f"already {job.status}"))
            continue
        note = ("never sent" if job.status is JobStatus.QUEUED else
                "no longer tracked; the remote job may still run and be billed")
        updated = ctx.store.transition(job.id, JobStatus.CANCELLED, lease_owner=None,
                                       lease_expires_at=None, message=note)
        out.append((updated, note))
    return out


# --- waiting -------------------------------------------------------------------


@dataclass(frozen=True)
class WaitResult:
    jobs: list[Job]
    timed_out: bool

    @property
    def any_failed(self) -> bool:
        return any(j.status in (JobStatus.FAILED, JobStatus.CANCELLED) for j in self.jobs)


def watch(ctx: Context, ids: Sequence[str], *, timeout: float | None,
          interval: float = 0.25, runner_check: float = 2.0) -> Iterator[list[Job]]:
    """Yield a snapshot of the jobs each time one of them changes, until all are final.

    Reads only the store. Restarts the runner if it died while work is pending.
    Ends (the caller checks the deadline) when `timeout` runs out.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
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
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        if now >= next_check:
            next_check = now + runner_check
            ctx.kick_runner()
        time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - now)))


# --- saving files ----------------------------------------------------------------


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
        if path.is_dir() or (path.exists() and not force):
            what = "is a directory" if path.is_dir() else "exists; use --force to overwrite it"
            raise InvalidInput(f"{path} {what}")


def export(ctx: Context, job: Job, dest: Path, *, force: bool) -> Path:
    """Put the job's video at `dest`: a copy of the saved file, or fetched from the API
    while it has not expired. Never overwrites without `force`."""
    if dest.exists() and not force:
        raise InvalidInput(f"{dest} exists; use --force to overwrite it")
    if dest.is_dir():
        raise InvalidInput(f"{dest} is a directory")
    saved = Path(job.output_path) if job.output_path else None
    if saved is not None and saved.is_file():
        _copy_into_place(saved, dest, force=force)
        return dest
    if job.remote_id is None or job.remote_status != "completed":
        raise SoraError(f"job {job.id} has no video to download (status {job.status})")
    if job.expires_at is not None and time.time() > job.expires_at:
        raise SoraError(f"job {job.id}: the video expired on the server and was not saved")
    from .fetch import fetch_video

    fetch_video(ctx.settings, job.remote_id, dest)
    return dest


def _copy_into_place(src: Path, dest: Path, *, force: bool) -> None:
    import shutil

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SoraError(f"cannot create {dest.parent}: {exc.strerror}") from None
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(src, tmp)
        if force:
            os.replace(tmp, dest)
        else:
            os.link(tmp, dest)  # fails if dest appeared meanwhile: never overwrite
    except FileExistsError:
        raise InvalidInput(f"{dest} exists; use --force to overwrite it") from None
    except OSError as exc:
        raise SoraError(f"cannot write {dest}: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
