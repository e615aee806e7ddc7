"""The steps of one job, for the runner: create (or remix), reconcile an unanswered
create with the remote list, poll, download. A mixin of `Runner` (runner.py), which
owns the loop, the leases and the store outage handling.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError, JobStatus
from sora_cli.domain.text import clean
from sora_cli.errors import (
    AmbiguousCreate,
    ApiError,
    CannotSend,
    RemoteIdTaken,
    SoraError,
    TransportError,
)
from sora_cli.providers.client import Attempt, Video, VideosClient
from sora_cli.providers.download import download_to
from sora_cli.providers.reconcile import find_created
from sora_cli.providers.retry import backoff_delay
from sora_cli.providers.types import to_local
from sora_cli.runner.outgoing import remixed_from, save_thumbnail, send_create
from sora_cli.runner.pacing import PollPace, RateLimit
from sora_cli.store.repository import Store

MAX_CREATE_ATTEMPTS = 8  # each re-send only after the remote list showed no job
MAX_DOWNLOAD_ROUNDS = 5
MAX_RUNNING_SECONDS = 24 * 3600.0  # a remote job unfinished this long after it was sent is lost
CRASH_ENV = "SORA_TEST_CRASH_AT"  # test-only, see runner.py's docstring


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class JobSteps:
    """What `Runner` provides to the steps (see runner.py)."""

    s: Settings
    store: Store
    client: VideosClient
    runner_id: str
    host: str
    rate: RateLimit
    _adopting: asyncio.Lock

    def _recorder(self, job_id: str) -> Callable[[Attempt], None]:
        raise NotImplementedError

    def _fail(self, job_id: str, error: JobError, *, status: JobStatus = JobStatus.FAILED,
              **fields: Any) -> None:
        raise NotImplementedError

    async def _create(self, job: Job) -> None:
        await self.rate.acquire()
        started = time.time()
        attempt = job.create_attempts + 1
        self.store.transition(job.id, JobStatus.SUBMITTING, runner_id=self.runner_id,
                              attempt=attempt, create_started_at=started, create_attempts=attempt)
        crash_point("before_create")
        try:
            answer = await send_create(self.client, self.store, job, self._recorder(job.id))
        except AmbiguousCreate as exc:
            self.store.log(job.id, "create_unknown", message=str(exc), runner_id=self.runner_id,
                           http_status=exc.http_status, request_id=exc.request_id)
            return  # still `submitting`: the next round reconciles
        except TransportError as exc:
            self._fail(job.id, JobError("unreachable", str(exc)))
            return
        except ApiError as exc:
            self._fail(job.id, _api_error(exc))
            return
        except CannotSend as exc:  # nothing was sent
            self._fail(job.id, JobError(exc.code, str(exc)))
            return
        video = answer.value
        crash_point("after_create")
        self.store.transition(job.id, JobStatus.RUNNING, runner_id=self.runner_id, event="created",
                              message=f"remote id {video.id}", remote_id=video.id,
                              remote_status=video.status, progress=video.progress,
                              submitted_at=time.time())
        if video.status in ("queued", "in_progress"):
            # The create's answer was a status read: the first poll is one interval later.
            pace = PollPace(self.s.poll_min_seconds, self.s.poll_max_seconds)
            await asyncio.sleep(pace.next(answer.poll_after_ms))

    async def _reconcile(self, job: Job) -> None:
        """Adopt the video an unanswered create made, or decide that it made none.

        The first look waits `reconcile_pause_seconds` after the attempt began, to let
        an unanswered create land. A create is sent again only when the remote list,
        read at least reconcile_pause_seconds + min(request_timeout, settle_max_seconds)
        after the attempt began (so a server still working on it has had time to),
        shows no matching video; and never when the server answered the attempt with a
        success we could not read.
        """
        assert job.create_started_at is not None
        pause = self.s.reconcile_pause_seconds
        wait = job.create_started_at + pause - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        looked_at = time.time()
        async with self._adopting:
            try:
                found = await find_created(self.client, job, taken=self.store.remote_id_taken,
                                           on_attempt=self._recorder(job.id),
                                           remixed_from=remixed_from(self.store, job))
            except (ApiError, TransportError) as exc:
                self.store.log(job.id, "reconcile_failed", runner_id=self.runner_id,
                               message=f"cannot read the remote list, the job waits: {exc}")
                found = None
            if found is not None and found.video is not None:
                try:
                    self._adopt(job, found.video, found.others)
                except RemoteIdTaken:  # another runner adopted it first: look again
                    self.store.log(job.id, "reconcile_raced", runner_id=self.runner_id,
                                   message=f"{found.video.id} was adopted by another job")
                return
        if found is None:
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        settled = (job.create_started_at + pause
                   + min(self.s.request_timeout, self.s.settle_max_seconds))
        if found.undecided:
            self._fail(job.id, JobError("create_unconfirmed", found.undecided))
        elif looked_at < settled:
            self.store.log(job.id, "reconcile_wait", runner_id=self.runner_id,
                           message="no matching remote video yet; looking again at "
                           f"{time.strftime('%H:%M:%S', time.localtime(settled))}")
            await asyncio.sleep(max(settled - time.time(), 0.0))
        elif (answered := self._answered_create(job)) is not None:
            self._fail(job.id, JobError("create_unconfirmed", (
                f"the server accepted create attempt {job.create_attempts} ({answered}) "
                "but its answer was unusable, and no matching video is listed; not "
                "sending again: check the remote list before submitting again")))
        elif job.create_attempts >= MAX_CREATE_ATTEMPTS:
            self._fail(job.id, JobError(
                "create_failed", f"no answer to {job.create_attempts} create attempts and no "
                "matching remote video; not sending again"))
        else:
            delay = backoff_delay(job.create_attempts)
            self.store.transition(job.id, JobStatus.QUEUED, runner_id=self.runner_id,
                                  event="requeued",
                                  message="the unanswered create made no remote video; "
                                  f"sending again in {delay:.1f} s")
            await asyncio.sleep(delay)

    def _adopt(self, job: Job, video: Video, others: tuple[str, ...]) -> None:
        note = f"found {video.id}, created by the unanswered request"
        if others:
            note += f"; also matching, not adopted (check them): {', '.join(others)}"
        self.store.transition(job.id, JobStatus.RUNNING, runner_id=self.runner_id,
                              event="reconciled",
                              message=note, remote_id=video.id, remote_status=video.status,
                              progress=video.progress, submitted_at=time.time())

    def _answered_create(self, job: Job) -> str | None:
        """How the server answered the last create with an unreadable success, if it did."""
        for event in reversed(self.store.events(job.id)):
            if event.kind == "submitting":
                return None
            if event.kind == "create_unknown" and 200 <= (event.http_status or 0) < 300:
                return f"HTTP {event.http_status}, request {event.request_id or 'unknown'}"
        return None

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
        try:
            answer = await self.client.retrieve(job.remote_id, on_attempt=self._recorder(job.id))
        except TransportError as exc:
            self.store.log(job.id, "poll_failed", message=str(exc), runner_id=self.runner_id)
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        except ApiError as exc:
            if exc.http_status is None or exc.http_status >= 300:
                self._fail(job.id, _api_error(exc))
                return
            # a success we could not read (too large, not JSON): the job is fine, ask again
            self.store.log(job.id, "poll_failed", message=str(exc), runner_id=self.runner_id,
                           http_status=exc.http_status, request_id=exc.request_id)
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        v = answer.value
        fields: dict[str, Any] = dict(
            remote_status=v.status, progress=v.progress, poll_count=job.poll_count + 1,
            expires_at=to_local(v.expires_at, answer.server_skew))  # kept on our clock
        if v.status == "completed":
            self.store.transition(job.id, JobStatus.DOWNLOADING, runner_id=self.runner_id,
                                  **{**fields, "progress": 100})
        elif v.status == "failed":
            self._fail(job.id, JobError(clean(v.error_code or "failed"),
                                        clean(v.error_message or "the video generation failed"),
                                        request_id=answer.request_id), **fields)
        else:
            if (v.status, v.progress) != (job.remote_status, job.progress):
                self.store.update(job.id, runner_id=self.runner_id, **fields)
            await asyncio.sleep(pace.next(answer.poll_after_ms))

    async def _download(self, job: Job) -> None:
        assert job.remote_id is not None
        dest = self.s.save_dir / f"{job.id}.mp4"
        attempts = job.download_attempts + 1
        self.store.update(job.id, runner_id=self.runner_id, download_attempts=attempts)
        try:
            saved = await download_to(self.client, job.remote_id, dest,
                                      on_attempt=self._recorder(job.id))
        except TransportError as exc:
            if attempts < MAX_DOWNLOAD_ROUNDS:
                self.store.log(job.id, "download_retry", message=str(exc), runner_id=self.runner_id)
                await asyncio.sleep(self.s.poll_max_seconds)
                return
            self._fail(job.id, JobError("download_failed", str(exc)))
            return
        except ApiError as exc:
            error = _api_error(exc, default_code="download_failed")
            if exc.http_status == 404:
                error = JobError("expired", f"{job.remote_id} is no longer on the server "
                                 "(its assets expired or were deleted); the video was not saved",
                                 http_status=404, request_id=exc.request_id)
                self._fail(job.id, error, status=JobStatus.EXPIRED)
                return
            self._fail(job.id, error)
            return
        except SoraError as exc:
            self._fail(job.id, JobError("download_failed", str(exc)))
            return
        thumbnail = None if not self.s.save_thumbnails else await save_thumbnail(
            self.client, self.store, job, self.s.save_dir, self._recorder(job.id), self.runner_id)
        crash_point("before_complete")
        self.store.transition(job.id, JobStatus.COMPLETED, runner_id=self.runner_id,
                              thumbnail_path=thumbnail,
                              output_path=str(saved.path), output_host=self.host,
                              bytes=saved.bytes, sha256=saved.sha256, completed_at=time.time(),
                              message=f"saved {saved.bytes} bytes")


def _api_error(exc: ApiError, default_code: str = "api_error") -> JobError:
    return JobError(exc.code or default_code, exc.message, http_status=exc.http_status,
                    request_id=exc.request_id)
