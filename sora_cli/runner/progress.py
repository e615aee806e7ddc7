"""The steps of a job once its provider has it, for the runner: poll it, save its
video. A mixin of `Runner` (loop.py; steps.py adds the create). Only the provider's
own word fails a paid job: it failed, was cancelled, or is gone (404/410). Any other
trouble (an outage, a rate limit, an answer that cannot be read) is tried again,
backing off, within the job's own deadline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError, JobStatus
from sora_cli.domain.providers import VARIANTS
from sora_cli.domain.text import clean
from sora_cli.errors import ApiError, JobNotFound, LeaseLost, SoraError, TransportError
from sora_cli.files import remove_stale_temps
from sora_cli.providers.base import Polled, RemoteState, capable
from sora_cli.providers.download import download_from
from sora_cli.providers.registry import Adapters
from sora_cli.providers.wire import Attempt
from sora_cli.runner import crash
from sora_cli.runner.outgoing import save_thumbnail
from sora_cli.runner.pacing import TROUBLE_FACTOR, PollPace
from sora_cli.store.repository import Store

MAX_RUNNING_SECONDS = 24 * 3600.0  # a remote job unfinished this long after it was sent is lost
GONE = (404, 410)  # the only HTTP answers to a poll that fail a job: no such job or result


class ProgressSteps:
    """What `Runner` provides to the steps (see loop.py)."""

    s: Settings
    store: Store
    adapters: Adapters
    runner_id: str
    host: str

    def _recorder(self, job_id: str) -> Callable[[Attempt], None]:
        raise NotImplementedError

    def _fail(self, job_id: str, error: JobError, *, status: JobStatus = JobStatus.FAILED,
              **fields: Any) -> None:
        raise NotImplementedError

    async def _poll(self, job: Job, pace: PollPace) -> None:
        assert job.remote_id is not None
        now = time.time()
        if job.expires_at is not None and now > job.expires_at:
            self._fail(job.id, JobError("expired", f"{job.remote_id} expired on the server "
                                        "before it finished; it was not polled any more"),
                       status=JobStatus.EXPIRED)
            return
        if job.submitted_at is not None and now - job.submitted_at > MAX_RUNNING_SECONDS:
            self._fail(job.id, JobError("expired", (
                f"{job.remote_id} was still unfinished {MAX_RUNNING_SECONDS / 3600:g} h after "
                "it was sent; its assets would have expired: not polling it any more")),
                status=JobStatus.EXPIRED)
            return
        adapter = self.adapters.get(job.provider)
        try:
            p = await adapter.poll(job, on_attempt=self._recorder(job.id))
        except ApiError as exc:
            if exc.http_status in GONE:  # the provider says it has no such job
                self._fail(job.id, api_error(exc))
                return
            await self._trouble(job, pace, exc, exc.retry_after)
            return
        except TransportError as exc:
            await self._trouble(job, pace, exc, None)
            return
        fields: dict[str, Any] = dict(
            remote_status=status_text(p), progress=p.progress or 0,
            poll_count=job.poll_count + 1, expires_at=p.expires_at)  # kept on our clock
        if p.result is not None:  # where the result is: kept with the job's handle
            fields["remote_handle"] = {**(job.remote_handle or {}), "result": p.result}
        if p.state is RemoteState.COMPLETED:
            self.store.transition(job.id, JobStatus.DOWNLOADING, runner_id=self.runner_id,
                                  **{**fields, "progress": 100})
        elif p.state in (RemoteState.FAILED, RemoteState.CANCELLED, RemoteState.GONE):
            error = p.error or JobError(p.state.value, f"the {job.provider} job {p.state.value}")
            status = {RemoteState.CANCELLED: JobStatus.CANCELLED,
                      RemoteState.GONE: JobStatus.EXPIRED}.get(p.state, JobStatus.FAILED)
            self._fail(job.id, JobError(error.code or p.state.value, error.message,
                                        request_id=error.request_id or p.request_id),
                       status=status, **fields)  # the store scrubs what it is given
        else:
            if (fields["remote_status"], fields["progress"]) != (job.remote_status, job.progress):
                self.store.update(job.id, runner_id=self.runner_id, **fields)
            await asyncio.sleep(pace.next(hint_ms(p)))

    async def _trouble(self, job: Job, pace: PollPace, exc: SoraError,
                       hint: float | None) -> None:
        """A poll that failed for a reason other than the provider saying the job failed
        or is gone (an outage, a rate limit, an answer we could not read): the video may
        be paid for, so it is polled again, backing off, until its own cap."""
        left = (None if job.submitted_at is None
                else job.submitted_at + MAX_RUNNING_SECONDS - time.time())
        delay = pace.after_trouble(hint, left)
        status, request_id = (exc.http_status, exc.request_id) if isinstance(
            exc, ApiError) else (None, None)
        self.store.log(job.id, "poll_failed", runner_id=self.runner_id, http_status=status,
                       request_id=request_id, retry_in=delay,
                       message=f"{exc}; polling again in {delay:.1f} s")
        await asyncio.sleep(delay)

    async def _download_later(self, job: Job, exc: SoraError, attempts: int) -> None:
        """A download that failed for a reason other than the result being gone (an
        outage, a rate limit, a body that is no video): the video is paid for, so it is
        tried again, backing off, while the provider may still have it (its `expires_at`,
        else 24 h after it was sent); then the job fails `download_failed`, and `sora
        download` can still fetch it while the provider has it."""
        now = time.time()
        until = job.expires_at or ((job.submitted_at or now) + MAX_RUNNING_SECONDS)
        if now >= until:
            self._fail(job.id, JobError("download_failed", str(exc)))
            return
        delay = min(self.s.poll_max_seconds * 1.5 ** min(attempts - 1, 60),
                    self.s.poll_max_seconds * TROUBLE_FACTOR, max(until - now, 0.0))
        self.store.log(job.id, "download_retry", runner_id=self.runner_id, retry_in=delay,
                       message=f"{exc}; trying again in {delay:.1f} s")
        await asyncio.sleep(delay)

    async def _download(self, job: Job) -> None:
        assert job.remote_id is not None
        adapter = self.adapters.get(job.provider)
        dest = self.s.save_dir / f"{job.id}.mp4"
        attempts = job.download_attempts + 1
        self.store.update(job.id, runner_id=self.runner_id, download_attempts=attempts)
        remove_stale_temps(dest)  # a killed runner's temp file for this job (we hold it)
        try:
            saved = await download_from(
                lambda offset: adapter.open_result(job, offset=offset), dest,
                name=job.remote_id, path=adapter.result_path(job),
                on_attempt=self._recorder(job.id), timeout=self.s.request_timeout)
        except (TransportError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.http_status in GONE:
                self._fail(job.id, JobError(
                    "expired", f"{job.remote_id} is no longer on the server (its assets "
                    "expired or were deleted); the video was not saved",
                    http_status=exc.http_status, request_id=exc.request_id),
                    status=JobStatus.EXPIRED)
                return
            await self._download_later(job, exc, attempts)
            return
        except SoraError as exc:
            self._fail(job.id, JobError("download_failed", str(exc)))
            return
        thumbnail = None
        if self.s.save_thumbnails and capable(adapter, VARIANTS):
            thumbnail = await save_thumbnail(adapter, self.store, job, self.s.save_dir,
                                             self._recorder(job.id), self.runner_id,
                                             timeout=self.s.request_timeout)
        crash.crash_point("before_complete")
        try:
            self.store.transition(job.id, JobStatus.COMPLETED, runner_id=self.runner_id,
                                  thumbnail_path=thumbnail, output_path=str(saved.path),
                                  output_host=self.host, bytes=saved.bytes,
                                  sha256=saved.sha256, completed_at=time.time(),
                                  message=f"saved {saved.bytes} bytes")
        except (JobNotFound, LeaseLost):
            if self.store.get(job.id) is not None:
                raise
            for path in (saved.path, Path(thumbnail) if thumbnail else None):
                if path is not None:  # deleted meanwhile: its files go with it
                    path.unlink(missing_ok=True)


def api_error(exc: ApiError, default_code: str = "api_error") -> JobError:
    return JobError(exc.code or default_code, exc.message, http_status=exc.http_status,
                    request_id=exc.request_id)


def hint_ms(p: Polled | None) -> int | None:
    """The provider's poll hint in ms; one no clock can wait (inf, 1e300 s) is absent."""
    if p is None or p.poll_after is None or not math.isfinite(p.poll_after):
        return None
    return int(min(max(p.poll_after, 0.0), 1e7) * 1000)


def status_text(p: Polled) -> str:
    """The provider's word for the job, with the queue position when it gave one."""
    text = clean(p.remote_status)[:64]
    return f"{text} (position {p.queue_position})" if p.queue_position is not None else text
