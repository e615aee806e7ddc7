"""The steps of one job, for the runner: create (or remix), reconcile an unanswered
create with the provider's list, poll, download. A mixin of `Runner` (loop.py), which
owns the loop, the leases and the store outage handling. Every step goes through the
job's provider adapter (providers/base.py): nothing here knows a provider's wire.
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
from sora_cli.domain.providers import FIND_CREATED, VARIANTS
from sora_cli.domain.text import clean
from sora_cli.errors import (
    AmbiguousCreate,
    ApiError,
    CannotSend,
    RemoteIdTaken,
    SoraError,
    TransportError,
)
from sora_cli.providers.base import Created, FindsCreated, Polled, RemoteState, capable
from sora_cli.providers.download import download_from
from sora_cli.providers.registry import Adapters
from sora_cli.providers.retry import backoff_delay
from sora_cli.providers.wire import Attempt
from sora_cli.runner.outgoing import create_request, match_request, save_thumbnail
from sora_cli.runner.pacing import PollPace, Rates
from sora_cli.store.repository import Store

MAX_CREATE_ATTEMPTS = 8  # each re-send only after the remote list showed no job
MAX_DOWNLOAD_ROUNDS = 5
RECONCILE_PAUSE = 2.0  # let an unanswered create land before reading the remote list
# Before re-sending, look again once this much more time has passed (at most the request
# timeout): a server that answered late, or not at all, may still make the video.
SETTLE_MAX = 10.0
MAX_RUNNING_SECONDS = 24 * 3600.0  # a remote job unfinished this long after it was sent is lost
CRASH_ENV = "SORA_TEST_CRASH_AT"  # test-only, see runner.py's docstring


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class JobSteps:
    """What `Runner` provides to the steps (see runner.py)."""

    s: Settings
    store: Store
    adapters: Adapters
    runner_id: str
    host: str
    rates: Rates
    _adopting: asyncio.Lock

    def _recorder(self, job_id: str) -> Callable[[Attempt], None]:
        raise NotImplementedError

    def _fail(self, job_id: str, error: JobError, *, status: JobStatus = JobStatus.FAILED,
              **fields: Any) -> None:
        raise NotImplementedError

    async def _create(self, job: Job) -> None:
        adapter = self.adapters.get(job.provider)
        await self.rates.acquire(job.provider)
        started = time.time()
        attempt = job.create_attempts + 1
        self.store.transition(job.id, JobStatus.SUBMITTING, runner_id=self.runner_id,
                              attempt=attempt, create_started_at=started, create_attempts=attempt)
        crash_point("before_create")
        try:
            created = await adapter.create(create_request(self.store, job),
                                           on_attempt=self._recorder(job.id))
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
        crash_point("after_create")
        self._adopt(job, created, event="created", note=f"remote id {created.remote_id}")
        state = created.polled.state if created.polled else RemoteState.QUEUED
        if state in (RemoteState.QUEUED, RemoteState.RUNNING):
            # The create's answer was a status read: the first poll is one interval later.
            pace = PollPace(self.s.poll_min_seconds, self.s.poll_max_seconds)
            await asyncio.sleep(pace.next(_hint_ms(created.polled)))

    async def _reconcile(self, job: Job) -> None:
        """Adopt the video an unanswered create made, or decide that it made none.

        A create is sent again only when the remote list, read at least
        RECONCILE_PAUSE + min(request_timeout, SETTLE_MAX) after the attempt began (so
        a server still working on it has had time to), shows no matching video; and
        never when the server answered the attempt with a success we could not read.
        """
        assert job.create_started_at is not None
        adapter = self.adapters.get(job.provider)
        if not capable(adapter, FIND_CREATED) or not isinstance(adapter, FindsCreated):
            self._fail(job.id, JobError("create_unconfirmed", _unlistable(job, adapter.where(job))))
            return
        wait = job.create_started_at + RECONCILE_PAUSE - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        looked_at = time.time()
        async with self._adopting:
            try:
                found = await adapter.find_created(
                    match_request(self.store, job), taken=self.store.remote_id_taken,
                    on_attempt=self._recorder(job.id))
            except (ApiError, TransportError) as exc:
                self.store.log(job.id, "reconcile_failed", runner_id=self.runner_id,
                               message=f"cannot read the remote list, the job waits: {exc}")
                found = None
            if found is not None and found.created is not None:
                note = f"found {found.created.remote_id}, created by the unanswered request"
                if found.others:
                    note += ("; also matching, not adopted (check them): "
                             f"{', '.join(found.others)}")
                try:
                    self._adopt(job, found.created, event="reconciled", note=note)
                except RemoteIdTaken:  # another runner adopted it first: look again
                    self.store.log(job.id, "reconcile_raced", runner_id=self.runner_id, message=(
                        f"{found.created.remote_id} was adopted by another job"))
                return
        if found is None or found.later:
            if found is not None:
                self.store.log(job.id, "reconcile_wait", runner_id=self.runner_id, message=(
                    f"{job.provider} does not list the request yet; looking again"))
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        settled = (job.create_started_at + RECONCILE_PAUSE
                   + min(self.s.request_timeout, SETTLE_MAX))
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

    def _adopt(self, job: Job, created: Created, *, event: str, note: str) -> None:
        """The remote job is this job's: its id and handle, stored in one transition."""
        p = created.polled
        self.store.transition(job.id, JobStatus.RUNNING, runner_id=self.runner_id, event=event,
                              message=note, remote_id=created.remote_id,
                              remote_handle=dict(created.handle) if created.handle else None,
                              remote_status=_status_text(p) if p else None,
                              progress=p.progress or 0 if p else 0, submitted_at=time.time())

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
        adapter = self.adapters.get(job.provider)
        try:
            p = await adapter.poll(job, on_attempt=self._recorder(job.id))
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
        fields: dict[str, Any] = dict(
            remote_status=_status_text(p), progress=p.progress or 0,
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
            self._fail(job.id, JobError(clean(error.code or p.state.value), clean(error.message),
                                        request_id=error.request_id or p.request_id),
                       status=status, **fields)
        else:
            if (fields["remote_status"], fields["progress"]) != (job.remote_status, job.progress):
                self.store.update(job.id, runner_id=self.runner_id, **fields)
            await asyncio.sleep(pace.next(_hint_ms(p)))

    async def _download(self, job: Job) -> None:
        assert job.remote_id is not None
        adapter = self.adapters.get(job.provider)
        dest = self.s.save_dir / f"{job.id}.mp4"
        attempts = job.download_attempts + 1
        self.store.update(job.id, runner_id=self.runner_id, download_attempts=attempts)
        try:
            saved = await download_from(
                lambda offset: adapter.open_result(job, offset=offset), dest,
                name=job.remote_id, path=adapter.result_path(job),
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
        thumbnail = None
        if self.s.save_thumbnails and capable(adapter, VARIANTS):
            thumbnail = await save_thumbnail(adapter, self.store, job, self.s.save_dir,
                                             self._recorder(job.id), self.runner_id)
        crash_point("before_complete")
        self.store.transition(job.id, JobStatus.COMPLETED, runner_id=self.runner_id,
                              thumbnail_path=thumbnail,
                              output_path=str(saved.path), output_host=self.host,
                              bytes=saved.bytes, sha256=saved.sha256, completed_at=time.time(),
                              message=f"saved {saved.bytes} bytes")


def _api_error(exc: ApiError, default_code: str = "api_error") -> JobError:
    return JobError(exc.code or default_code, exc.message, http_status=exc.http_status,
                    request_id=exc.request_id)


def _hint_ms(p: Polled | None) -> int | None:
    return None if p is None or p.poll_after is None else int(p.poll_after * 1000)


def _status_text(p: Polled) -> str:
    """The provider's word for the job, with the queue position when it gave one."""
    text = clean(p.remote_status)[:64]
    return f"{text} (position {p.queue_position})" if p.queue_position is not None else text


def _unlistable(job: Job, where: str) -> str:
    """Why an unanswered create of a provider that cannot list is not sent again."""
    started = job.create_started_at or time.time()
    window = (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))} and "
              f"{time.strftime('%H:%M:%S', time.localtime(time.time()))}")
    return (f"the create request ({where}), sent between {window}, got no usable answer, "
            f"and {job.provider} cannot list what it made: it was not sent again. Check your "
            f"{job.provider} requests of that time before `sora retry {job.id}`")
