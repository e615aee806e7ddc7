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

from sora_cli.config import Settings, ensure_home
from sora_cli.domain.jobs import Job, JobStatus, VideoRequest, validate_request
from sora_cli.errors import AuthError, InvalidInput, SoraError
from sora_cli.runner.spawn import ensure_runner
from sora_cli.services.spending import enforce_budget, spent_today
from sora_cli.store.repository import Store


@dataclass
class Context:
    settings: Settings
    warnings: list[str] = field(default_factory=list)
    _store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            ensure_home(self.settings.home)
            self._store = Store.open(self.settings.store_location)
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


def submit(ctx: Context, requests: Sequence[VideoRequest], *, force: bool = False,
           origins: Sequence[str] | None = None) -> list[Job]:
    """Validate every request, then record them all (one transaction) and wake a runner.

    A submit that would cross the budget (`max_job_cost`, `max_daily_cost`) is refused
    (exit 2, nothing recorded) unless `force`; the check runs inside the recording
    transaction, so parallel submits cannot together overshoot. `origins` say where each
    request came from (a batch's "FILE line N"), for the messages."""
    for req in requests:
        validate_request(req)  # bad input (exit 2) is reported before a missing key (exit 4)
    require_key(ctx.settings)
    s = ctx.settings
    check = None
    if not force and (s.max_job_cost is not None or s.max_daily_cost is not None):
        def check(store: Store) -> None:
            enforce_budget(s, requests, spent=spent_today(store), origins=origins)
    jobs = ctx.store.add_jobs(requests, check=check)
    ctx.kick_runner()
    return jobs


def preview(ctx: Context, requests: Sequence[VideoRequest], *, force: bool = False,
            origins: Sequence[str] | None = None) -> None:
    """What `submit --dry-run` checks (the requests, the budget): records nothing, needs
    no key, and creates no store."""
    for req in requests:
        validate_request(req)
    s = ctx.settings
    if force or (s.max_job_cost is None and s.max_daily_cost is None):
        return
    spent = spent_today(ctx.store) if s.db_path.exists() else 0.0
    enforce_budget(s, requests, spent=spent, origins=origins)


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
        updated = ctx.store.transition(job.id, JobStatus.CANCELLED, release=True,
                                       message=note)
        out.append((updated, note))
    return out


# --- waiting -------------------------------------------------------------------


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


def watch_active(ctx: Context, *, label: str | None, timeout: float | None,
                 interval: float = 0.25,
                 runner_check: float = 2.0) -> Iterator[tuple[list[Job], list[Job]]]:
    """For `sora watch`: yield (the jobs that changed, the jobs still active) at the start
    and whenever one changes, until no job (with `label`) is active or `timeout` runs out.

    A job that finishes is reported once, in its final state, then dropped; jobs
    submitted meanwhile join. Reads only the store; restarts a dead runner."""
    deadline = None if timeout is None else time.monotonic() + timeout
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
        now = time.monotonic()
        if not active or (deadline is not None and now >= deadline):
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
        # lexists: a dangling symlink is "something there" too, never written through
        if path.is_dir() or (os.path.lexists(path) and not force):
            what = ("is a directory" if path.is_dir() else
                    "exists (a symbolic link); use --force to replace the link itself"
                    if path.is_symlink() else "exists; use --force to overwrite it")
            raise InvalidInput(f"{path} {what}")


def export(ctx: Context, job: Job, dest: Path, *, force: bool) -> Path:
    """Put the job's video at `dest`: a copy of the saved file (where the runner saved
    it, or in the shared videos dir as mounted here), or fetched from the API while it
    has not expired. Never overwrites without `force`."""
    refuse_existing([dest], force=force)
    saved = _readable_copy(ctx.settings, job)
    if saved is not None:
        _copy_into_place(saved, dest, force=force)
        return dest
    if job.remote_id is None or job.remote_status != "completed":
        raise SoraError(f"job {job.id} has no video to download (status {job.status})")
    if job.expires_at is not None and time.time() > job.expires_at:
        raise SoraError(_expired_note(job))
    from sora_cli.services.fetch import fetch_video

    fetch_video(ctx.settings, job.remote_id, dest)
    return dest


def _readable_copy(settings: Settings, job: Job) -> Path | None:
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
