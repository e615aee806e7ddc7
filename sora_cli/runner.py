"""The runner's loop: claim jobs, then create, poll and download each one.

One asyncio task per job in flight, all in one process. Every state change goes
through the store (a lease-checked transition), so a runner killed at any point
leaves jobs that the next runner resumes: `queued` is sent, `submitting` is
reconciled with the remote list before anything is sent again, `running` is
polled, `downloading` is downloaded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .api import Attempt, VideosClient
from .config import Settings
from .download import download_to
from .errors import AmbiguousCreate, ApiError, SoraError, TransportError
from .jobs import Job, JobError, JobStatus
from .reconcile import find_created
from .retry import backoff_delay
from .store import LeaseLost, Store

log = logging.getLogger("sora.runner")
HEARTBEAT = 2.0  # seconds between runner heartbeats in the store
TICK = 0.5  # how often the loop looks for new work when it has spare capacity
MAX_CREATE_ATTEMPTS = 8  # each re-send only after the remote list showed no job
MAX_DOWNLOAD_ROUNDS = 5
RECONCILE_PAUSE = 2.0  # let an unanswered create land before reading the remote list


class RateLimit:
    """At most `per_minute` creates in any 60 s window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._per_minute = per_minute
        self._sent: deque[float] = deque()
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= 60:
                    self._sent.popleft()
                if len(self._sent) < self._per_minute:
                    self._sent.append(now)
                    return
                await self._sleep(60 - (now - self._sent[0]))


@dataclass
class PollPace:
    """Delay before the next poll: the server's hint, else a growing backoff, clamped."""

    low: float
    high: float
    current: float = 0.0

    def next(self, hint_ms: int | None) -> float:
        if hint_ms is not None:
            return min(max(hint_ms / 1000, self.low), self.high)
        self.current = self.low if not self.current else min(self.current * 1.5, self.high)
        return self.current


class Runner:
    def __init__(self, settings: Settings, store: Store, client: VideosClient, *,
                 runner_id: str, started_at: float | None = None) -> None:
        self.s = settings
        self.started_at = time.time() if started_at is None else started_at
        self.store = store
        self.client = client
        self.id = runner_id
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.rate = RateLimit(settings.creates_per_minute)

    # --- the loop -----------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        idle_since = time.monotonic()
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            while not stop.is_set():
                free = self.s.max_in_flight - len(self.tasks)
                for job in self.store.claim(self.id, free, self.s.lease_seconds) if free else []:
                    log.info("job %s claimed (%s)", job.id, job.status)
                    self.tasks[job.id] = asyncio.create_task(self._work(job.id))
                if self.tasks:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= self.s.idle_exit_seconds:
                    if not self.store.has_active():
                        log.info("idle for %.0f s: exiting", self.s.idle_exit_seconds)
                        return
                    idle_since = time.monotonic()
                await self._wait(stop)
        finally:
            renewer.cancel()
            await self._shutdown()

    async def _wait(self, stop: asyncio.Event) -> None:
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(stop.wait())}
        waiters |= set(self.tasks.values())  # type: ignore[arg-type]
        await asyncio.wait(waiters, timeout=TICK, return_when=asyncio.FIRST_COMPLETED)
        for fut in waiters:
            if fut not in self.tasks.values() and not fut.done():
                fut.cancel()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]

    async def _shutdown(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        self.store.release(self.id)

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        """Keep our leases alive and tell `sora runner status` what we are doing."""
        host, pid = self.id.split(":")[0], os.getpid()
        renew_every = max(self.s.lease_seconds / 3, 0.05)
        last_renew = 0.0
        while not stop.is_set():
            self.store.runner_beat(self.id, host=host, pid=pid, started_at=self.started_at,
                                   jobs_in_flight=len(self.tasks))
            if time.monotonic() - last_renew >= renew_every:
                last_renew = time.monotonic()
                self._drop_lost(self.store.renew(self.id, self.s.lease_seconds))
            await asyncio.sleep(min(HEARTBEAT, renew_every))

    def _drop_lost(self, held: set[str]) -> None:
        for job_id, task in list(self.tasks.items()):
            if job_id not in held:
                log.info("job %s is no longer ours (cancelled or taken over)", job_id)
                task.cancel()

    # --- one job --------------------------------------------------------------

    async def _work(self, job_id: str) -> None:
        pace = PollPace(self.s.poll_min_seconds, self.s.poll_max_seconds)
        try:
            while (job := self.store.get(job_id)) is not None and job.status.is_active:
                if job.lease_owner != self.id:
                    return
                if job.status is JobStatus.QUEUED:
                    await self._create(job)
                elif job.status is JobStatus.SUBMITTING:
                    await self._reconcile(job)
                elif job.status is JobStatus.RUNNING:
                    await self._poll(job, pace)
                else:
                    await self._download(job)
        except LeaseLost:
            log.info("job %s: lease lost", job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the job stuck in flight
            log.exception("job %s: unexpected error", job_id)
            self._fail(job_id, JobError("internal_error", f"sora runner error: {exc!r}"))
        finally:
            self.store.release(self.id, [job_id])

    def _recorder(self, job_id: str) -> Callable[[Attempt], None]:
        def record(a: Attempt) -> None:
            if a.error is None and a.attempt == 1 and a.method == "GET":
                return  # routine successful polls are not worth a row each
            self.store.log(job_id, "http", attempt=a.attempt, http_status=a.http_status,
                           request_id=a.request_id, retry_in=a.retry_in,
                           message=f"{a.method} {a.path}" + (f": {a.error}" if a.error else ""),
                           runner_id=self.id)
        return record

    def _fail(self, job_id: str, error: JobError, **fields: Any) -> None:
        try:
            self.store.transition(job_id, JobStatus.FAILED, owner=self.id, error=error, **fields)
        except (LeaseLost, SoraError) as exc:
            log.warning("job %s: could not record failure: %s", job_id, exc)

    async def _create(self, job: Job) -> None:
        await self.rate.acquire()
        started = time.time()
        attempt = job.create_attempts + 1
        self.store.transition(job.id, JobStatus.SUBMITTING, owner=self.id, attempt=attempt,
                              create_started_at=started, create_attempts=attempt)
        try:
            answer = await self.client.create(prompt=job.prompt, model=job.model, size=job.size,
                                              seconds=job.seconds,
                                              on_attempt=self._recorder(job.id))
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
        video = answer.value
        self.store.transition(job.id, JobStatus.RUNNING, owner=self.id, event="created",
                              message=f"remote id {video.id}", remote_id=video.id,
                              remote_status=video.status, progress=video.progress,
                              submitted_at=time.time())

    async def _reconcile(self, job: Job) -> None:
        assert job.create_started_at is not None
        wait = job.create_started_at + RECONCILE_PAUSE - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            found = await find_created(self.client, job, taken=self.store.remote_id_taken,
                                       on_attempt=self._recorder(job.id))
        except SoraError as exc:
            self.store.log(job.id, "reconcile_failed", message=str(exc), runner_id=self.id)
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        if found.video is not None:
            v = found.video
            self.store.transition(job.id, JobStatus.RUNNING, owner=self.id, event="reconciled",
                                  message=f"found {v.id}, created by the unanswered request",
                                  remote_id=v.id, remote_status=v.status, progress=v.progress,
                                  submitted_at=time.time())
        elif found.undecided:
            self._fail(job.id, JobError("create_unconfirmed", found.undecided))
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

    async def _poll(self, job: Job, pace: PollPace) -> None:
        assert job.remote_id is not None
        if job.expires_at is not None and time.time() > job.expires_at:
            self._fail(job.id, JobError("expired", f"{job.remote_id} expired on the server"))
            return
        try:
            answer = await self.client.retrieve(job.remote_id, on_attempt=self._recorder(job.id))
        except TransportError as exc:
            self.store.log(job.id, "poll_failed", message=str(exc), runner_id=self.id)
            await asyncio.sleep(self.s.poll_max_seconds)
            return
        except ApiError as exc:
            self._fail(job.id, _api_error(exc))
            return
        v = answer.value
        fields: dict[str, Any] = dict(remote_status=v.status, progress=v.progress,
                                      poll_count=job.poll_count + 1, expires_at=v.expires_at)
        if v.status == "completed":
            self.store.transition(job.id, JobStatus.DOWNLOADING, owner=self.id,
                                  **{**fields, "progress": 100})
        elif v.status == "failed":
            self._fail(job.id, JobError(v.error_code or "failed",
                                        v.error_message or "the video generation failed",
                                        request_id=answer.request_id), **fields)
        else:
            if (v.status, v.progress) != (job.remote_status, job.progress):
                self.store.update(job.id, owner=self.id, **fields)
            await asyncio.sleep(pace.next(answer.poll_after_ms))

    async def _download(self, job: Job) -> None:
        assert job.remote_id is not None
        dest = self.s.videos_dir / f"{job.id}.mp4"
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
            self._fail(job.id, _api_error(exc, default_code="download_failed"))
            return
        except SoraError as exc:
            self._fail(job.id, JobError("download_failed", str(exc)))
            return
        self.store.transition(job.id, JobStatus.COMPLETED, owner=self.id,
                              output_path=str(saved.path), bytes=saved.bytes,
                              sha256=saved.sha256, completed_at=time.time(),
                              message=f"saved {saved.bytes} bytes")


def _api_error(exc: ApiError, default_code: str = "api_error") -> JobError:
    return JobError(exc.code or default_code, exc.message, http_status=exc.http_status,
                    request_id=exc.request_id)
