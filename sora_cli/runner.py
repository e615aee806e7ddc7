"""The runner's loop: claim jobs, then create, poll and download each one.

One asyncio task per job in flight, all in one process. Every state change goes
through the store (a lease-checked transition), so a runner killed at any point
leaves jobs that the next runner resumes: `queued` is sent, `submitting` is
reconciled with the remote list before anything is sent again, `running` is
polled, `downloading` is downloaded.

Test-only seam: when the environment has ``SORA_TEST_CRASH_AT=<point>``, the runner
SIGKILLs itself at that point (``after_claim``, ``before_create``, ``after_create``,
``before_complete``), so the end-to-end tests can crash it exactly between two steps.
Nothing else reads it; it is not a setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from .api import Attempt, Video, VideosClient
from .api_types import to_local
from .config import Settings
from .db import StoreUnavailable
from .download import download_to
from .errors import AmbiguousCreate, ApiError, SoraError, StoreError, TransportError
from .http_errors import plain
from .jobs import Job, JobError, JobStatus
from .outgoing import CannotSend, remixed_from, save_thumbnail, send_create
from .pacing import PollPace, RateLimit
from .reconcile import find_created
from .retry import backoff_delay
from .store import LeaseLost, RemoteIdTaken, Store

__all__ = ["PollPace", "RateLimit", "Runner"]

log = logging.getLogger("sora.runner")
HEARTBEAT = 2.0  # seconds between runner heartbeats in the store
TICK = 0.5  # how often the loop looks for new work when it has spare capacity
MAX_CREATE_ATTEMPTS = 8  # each re-send only after the remote list showed no job
MAX_DOWNLOAD_ROUNDS = 5
RECONCILE_PAUSE = 2.0  # let an unanswered create land before reading the remote list
# Before re-sending, look again once this much more time has passed (at most the request
# timeout): a server that answered late, or not at all, may still make the video.
SETTLE_MAX = 10.0
MAX_RUNNING_SECONDS = 24 * 3600.0  # a remote job unfinished this long after it was sent is lost
CRASH_ENV = "SORA_TEST_CRASH_AT"  # test-only, see the module docstring
STORE_RETRY_MAX = 5.0  # seconds between tries while the job store is unreachable


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Runner:
    def __init__(self, settings: Settings, store: Store, client: VideosClient, *,
                 runner_id: str, started_at: float | None = None) -> None:
        self.s = settings
        self.started_at = time.time() if started_at is None else started_at
        self.store = store
        self.client = client
        self.id = runner_id
        self.host = runner_id.split(":")[0]
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._renewed_at = time.monotonic()  # when the store last confirmed our leases
        self._slot_free = asyncio.Event()  # set when a job's task ends
        self.rate = RateLimit(settings.creates_per_minute)
        # One search-and-adopt at a time: two jobs with the same request must not both
        # adopt the same remote video.
        self._adopting = asyncio.Lock()

    # --- the loop -----------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        idle_since = time.monotonic()
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            outage = 0
            while not stop.is_set():
                free = self.s.max_in_flight - len(self.tasks)
                try:
                    claimed = self.store.claim(self.id, free, self.s.lease_seconds) if free else []
                except StoreUnavailable as exc:  # back off; the jobs in the store wait for us
                    outage += 1
                    await _store_away(exc, outage, stop)
                    continue
                outage = 0
                if claimed:
                    _crash_point("after_claim")
                for job in claimed:
                    log.info("job %s claimed (%s)", job.id, job.status)
                    task = asyncio.create_task(self._work(job.id))
                    task.add_done_callback(functools.partial(self._task_done, job.id))
                    self.tasks[job.id] = task
                if self.tasks:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= self.s.idle_exit_seconds:
                    if not self._any_active():
                        log.info("idle for %.0f s: exiting", self.s.idle_exit_seconds)
                        return
                    idle_since = time.monotonic()
                await self._wait(stop)
        finally:
            renewer.cancel()
            await self._shutdown()

    def _task_done(self, job_id: str, task: asyncio.Task[None]) -> None:
        # A finished job frees its slot at once (not by scanning hundreds of tasks).
        if self.tasks.get(job_id) is task:
            del self.tasks[job_id]
        self._slot_free.set()

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until `stop`, a job finishing, or TICK, whichever comes first."""
        if not self._slot_free.is_set():
            waiters = {asyncio.ensure_future(stop.wait()),
                       asyncio.ensure_future(self._slot_free.wait())}
            await asyncio.wait(waiters, timeout=TICK, return_when=asyncio.FIRST_COMPLETED)
            for fut in waiters:
                fut.cancel()
        self._slot_free.clear()

    def _any_active(self) -> bool:
        try:
            return self.store.has_active()
        except StoreUnavailable:
            return True  # cannot tell: stay

    async def _shutdown(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        self._release()

    def _release(self, job_ids: list[str] | None = None) -> None:
        try:
            self.store.release(self.id, job_ids)
        except StoreError as exc:  # unreachable: the leases run out by themselves
            log.warning("could not release leases: %s", exc)

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        """Keep our leases alive and tell `sora runner status` what we are doing."""
        pid = os.getpid()
        renew_every = max(self.s.lease_seconds / 3, 0.05)
        last_renew = 0.0
        while not stop.is_set():
            try:
                self.store.runner_beat(self.id, host=self.host, pid=pid,
                                       started_at=self.started_at, jobs_in_flight=len(self.tasks))
                if time.monotonic() - last_renew >= renew_every:
                    renewing = time.monotonic()
                    held = self.store.renew(self.id, self.s.lease_seconds)
                    last_renew = self._renewed_at = renewing
                    self._drop_lost(held)
                    self._release_strays(held)
            except StoreUnavailable as exc:
                self._lapse(exc)
            await asyncio.sleep(min(HEARTBEAT, renew_every))

    def _lapse(self, exc: StoreError) -> None:
        """The store is unreachable: once our leases may have run out (another runner may
        hold them now), stop working those jobs; they resume from the store."""
        if time.monotonic() - self._renewed_at < self.s.lease_seconds * 0.8:
            log.warning("cannot renew leases yet: %s", exc)
            return
        for job_id, task in list(self.tasks.items()):
            log.warning("job %s: lease not renewed in time (%s): stopping", job_id, exc)
            task.cancel()

    def _release_strays(self, held: set[str]) -> None:
        """Leases we hold on jobs no task works: a claim that committed but whose answer
        was lost with the connection. Free them for whoever claims next (us, maybe)."""
        strays = sorted(held - set(self.tasks))
        if strays:
            log.info("releasing %d lease(s) held without a task", len(strays))
            self._release(strays)

    def _drop_lost(self, held: set[str]) -> None:
        for job_id, task in list(self.tasks.items()):
            if job_id not in held:
                log.info("job %s is no longer ours (cancelled or taken over)", job_id)
                task.cancel()

    # --- one job --------------------------------------------------------------

    async def _work(self, job_id: str) -> None:
        pace = PollPace(self.s.poll_min_seconds, self.s.poll_max_seconds)
        outage = 0
        try:
            while True:
                try:
                    job = self.store.get(job_id)
                    if job is None or not job.status.is_active or job.lease_owner != self.id:
                        return
                    await self._step(job, pace)
                    outage = 0
                except StoreUnavailable as exc:  # once back, resume from what the store says
                    outage += 1
                    await _store_away(exc, outage)
        except LeaseLost:
            log.info("job %s: lease lost", job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the job stuck in flight
            log.exception("job %s: unexpected error", job_id)
            self._fail(job_id, JobError("internal_error", f"sora runner error: {exc!r}"))
        finally:
            self._release([job_id])

    async def _step(self, job: Job, pace: PollPace) -> None:
        if job.status is JobStatus.QUEUED:
            await self._create(job)
        elif job.status is JobStatus.SUBMITTING:
            await self._reconcile(job)
        elif job.status is JobStatus.RUNNING:
            await self._poll(job, pace)
        else:
            await self._download(job)

    def _recorder(self, job_id: str) -> Callable[[Attempt], None]:
        def record(a: Attempt) -> None:
            if a.error is None and a.attempt == 1 and a.method == "GET":
                return  # routine successful polls are not worth a row each
            try:
                self.store.log(job_id, "http", attempt=a.attempt, http_status=a.http_status,
                               request_id=a.request_id, retry_in=a.retry_in,
                               message=f"{a.method} {a.path}"
                               + (f": {a.error}" if a.error else ""), runner_id=self.id)
            except StoreError as exc:  # a note only: never break the request it describes
                log.warning("job %s: could not log an HTTP attempt: %s", job_id, exc)
        return record

    def _fail(self, job_id: str, error: JobError, *, status: JobStatus = JobStatus.FAILED,
              **fields: Any) -> None:
        try:
            self.store.transition(job_id, status, owner=self.id, error=error, **fields)
        except (LeaseLost, SoraError) as exc:
            log.warning("job %s: could not record failure: %s", job_id, exc)

    async def _create(self, job: Job) -> None:
        await self.rate.acquire()
        started = time.time()
        attempt = job.create_attempts + 1
        self.store.transition(job.id, JobStatus.SUBMITTING, owner=self.id, attempt=attempt,
                              create_started_at=started, create_attempts=attempt)
        _crash_point("before_create")
        try:
            answer = await send_create(self.client, self.store, job, self._recorder(job.id))
        except AmbiguousCreate as exc:
            self.store.log(job.id, "create_unknown", message=str(exc), runner_id=self.id,
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
        _crash_point("after_create")
        self.store.transition(job.id, JobStatus.RUNNING, owner=self.id, event="created",
                              message=f"remote id {video.id}", remote_id=video.id,
                              remote_status=video.status, progress=video.progress,
                              submitted_at=time.time())
        if video.status in ("queued", "in_progress"):
            # The create's answer was a status read: the first poll is one interval later.
            pace = PollPace(self.s.poll_min_seconds, self.s.poll_max_seconds)
            await asyncio.sleep(pace.next(answer.poll_after_ms))

    async def _reconcile(self, job: Job) -> None:
        """Adopt the video an unanswered create made, or decide that it made none.

        A create is sent again only when the remote list, read at least
        RECONCILE_PAUSE + min(request_timeout, SETTLE_MAX) after the attempt began (so
        a server still working on it has had time to), shows no matching video; and
        never when the server answered the attempt with a success we could not read.
        """
        assert job.create_started_at is not None
        wait = job.create_started_at + RECONCILE_PAUSE - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        looked_at = time.time()
        async with self._adopting:
            try:
                found = await find_created(self.client, job, taken=self.store.remote_id_taken,
                                           on_attempt=self._recorder(job.id),
                                           remixed_from=remixed_from(self.store, job))
            except (ApiError, TransportError) as exc:
                self.store.log(job.id, "reconcile_failed", runner_id=self.id,
                               message=f"cannot read the remote list, the job waits: {exc}")
                found = None
            if found is not None and found.video is not None:
                try:
                    self._adopt(job, found.video, found.others)
                except RemoteIdTaken:  # another runner adopted it first: look again
                    self.store.log(job.id, "reconcile_raced", runner_id=self.id,
                                   message=f"{found.video.id} was adopted by another job")
                return
        if found is None:
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        settled = (job.create_started_at + RECONCILE_PAUSE
                   + min(self.s.request_timeout, SETTLE_MAX))
        if found.undecided:
            self._fail(job.id, JobError("create_unconfirmed", found.undecided))
        elif looked_at < settled:
            self.store.log(job.id, "reconcile_wait", runner_id=self.id,
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
            self.store.transition(job.id, JobStatus.QUEUED, owner=self.id, event="requeued",
                                  message="the unanswered create made no remote video; "
                                  f"sending again in {delay:.1f} s")
            await asyncio.sleep(delay)

    def _adopt(self, job: Job, video: Video, others: tuple[str, ...]) -> None:
        note = f"found {video.id}, created by the unanswered request"
        if others:
            note += f"; also matching, not adopted (check them): {', '.join(others)}"
        self.store.transition(job.id, JobStatus.RUNNING, owner=self.id, event="reconciled",
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
            self.store.log(job.id, "poll_failed", message=str(exc), runner_id=self.id)
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        except ApiError as exc:
            if exc.http_status is None or exc.http_status >= 300:
                self._fail(job.id, _api_error(exc))
                return
            # a success we could not read (too large, not JSON): the job is fine, ask again
            self.store.log(job.id, "poll_failed", message=str(exc), runner_id=self.id,
                           http_status=exc.http_status, request_id=exc.request_id)
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        v = answer.value
        fields: dict[str, Any] = dict(
            remote_status=v.status, progress=v.progress, poll_count=job.poll_count + 1,
            expires_at=to_local(v.expires_at, answer.server_skew))  # kept on our clock
        if v.status == "completed":
            self.store.transition(job.id, JobStatus.DOWNLOADING, owner=self.id,
                                  **{**fields, "progress": 100})
        elif v.status == "failed":
            self._fail(job.id, JobError(plain(v.error_code or "failed"),
                                        plain(v.error_message or "the video generation failed"),
                                        request_id=answer.request_id), **fields)
        else:
            if (v.status, v.progress) != (job.remote_status, job.progress):
                self.store.update(job.id, owner=self.id, **fields)
            await asyncio.sleep(pace.next(answer.poll_after_ms))

    async def _download(self, job: Job) -> None:
        assert job.remote_id is not None
        dest = self.s.save_dir / f"{job.id}.mp4"
        attempts = job.download_attempts + 1
        self.store.update(job.id, owner=self.id, download_attempts=attempts)
        try:
            saved = await download_to(self.client, job.remote_id, dest,
                                      on_attempt=self._recorder(job.id))
        except TransportError as exc:
            if attempts < MAX_DOWNLOAD_ROUNDS:
                self.store.log(job.id, "download_retry", message=str(exc), runner_id=self.id)
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
            self.client, self.store, job, self.s.save_dir, self._recorder(job.id), self.id)
        _crash_point("before_complete")
        self.store.transition(job.id, JobStatus.COMPLETED, owner=self.id, thumbnail_path=thumbnail,
                              output_path=str(saved.path), output_host=self.host,
                              bytes=saved.bytes, sha256=saved.sha256, completed_at=time.time(),
                              message=f"saved {saved.bytes} bytes")


async def _store_away(exc: StoreError, outage: int, stop: asyncio.Event | None = None) -> None:
    """Wait before trying the job store again: 0.25 s, doubling to STORE_RETRY_MAX."""
    delay = min(0.25 * 2 ** min(outage - 1, 10), STORE_RETRY_MAX)
    log.warning("job store unreachable (%s); trying again in %.2f s", exc, delay)
    if stop is None:
        await asyncio.sleep(delay)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


def _api_error(exc: ApiError, default_code: str = "api_error") -> JobError:
    return JobError(exc.code or default_code, exc.message, http_status=exc.http_status,
                    request_id=exc.request_id)
