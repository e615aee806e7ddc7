"""The runner's loop: claim jobs, then create, poll and download each one.

One asyncio task per job in flight, all in one process; each provider has its own
slots (`max_in_flight`, or `[providers.NAME] max_in_flight`) and its own create rate,
so a slow provider never starves another, and a provider this runner has no key for
is left alone (its jobs wait for a runner that has it). Every state change goes
through the store (a lease-checked transition), so a runner killed at any point
leaves jobs that the next runner resumes: `queued` is sent, `submitting` is
reconciled with the remote list before anything is sent again, `running` is
polled, `downloading` is downloaded.

The test-only crash seam is in crash.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobError, JobStatus
from sora_cli.errors import LeaseLost, SoraError, StoreError, StoreUnavailable
from sora_cli.providers.registry import Adapters
from sora_cli.providers.wire import Attempt
from sora_cli.runner.crash import crash_point
from sora_cli.runner.pacing import PollPace, RateLimit, Rates
from sora_cli.runner.steps import JobSteps
from sora_cli.store.repository import Store

if TYPE_CHECKING:
    from sora_cli.providers.openai.client import VideosClient

__all__ = ["PollPace", "RateLimit", "Runner"]

log = logging.getLogger("sora.runner")
HEARTBEAT = 2.0  # seconds between runner heartbeats in the store
TICK = 0.5  # how often the loop looks for new work when it has spare capacity
STORE_RETRY_MAX = 5.0  # seconds between tries while the job store is unreachable
NOT_HERE_FOR = 60.0  # seconds a job this host cannot send is left to the other runners
MAX_SURPRISES = 10  # unexpected errors in a row before a paid job is given up


class Runner(JobSteps):
    def __init__(self, settings: Settings, store: Store, adapters: Adapters | VideosClient, *,
                 runner_id: str, started_at: float | None = None, tick: float = TICK) -> None:
        self.s = settings
        self.tick = tick  # TICK, or less where idling out sooner matters (tests)
        self.started_at = time.time() if started_at is None else started_at
        self.store = store
        if not isinstance(adapters, Adapters):  # a ready client: the openai provider over it
            from sora_cli.providers.openai.adapter import OpenAIProvider

            adapters = Adapters(settings, made={"openai": OpenAIProvider(adapters)})
        self.adapters = adapters
        self.runner_id = runner_id
        self.host = runner_id.split(":")[0]
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._provider_of: dict[str, str] = {}  # job id -> provider, for the tasks
        self._renewed_at = time.monotonic()  # when the store last confirmed our leases
        self._slot_free = asyncio.Event()  # set when a job's task ends
        self.rates = Rates(self._creates_per_minute)
        self._left_alone: set[str] = set()
        # One search-and-adopt at a time: two jobs with the same request must not both
        # adopt the same remote video.
        self._adopting = asyncio.Lock()
        self._elsewhere: dict[str, float] = {}  # jobs left to other hosts, until when

    # --- the loop -----------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        idle_since = time.monotonic()
        renewer = asyncio.create_task(self._renew_leases(stop))
        try:
            outage = 0
            while not stop.is_set():
                rooms = self._rooms()
                try:
                    claimed = self.store.claim(
                        self.runner_id, sum(rooms.values()), self.s.lease_seconds,
                        rooms=rooms, exclude=self._left_elsewhere()) if rooms else []
                except StoreUnavailable as exc:  # back off; the jobs in the store wait for us
                    outage += 1
                    await _store_away(exc, outage, stop)
                    continue
                outage = 0
                if claimed:
                    crash_point("after_claim")
                for job in claimed:
                    if job.id in self.tasks:  # one task per job, whatever the store says
                        continue
                    log.info("job %s claimed (%s, %s)", job.id, job.provider, job.status)
                    task = asyncio.create_task(self._work(job.id))
                    task.add_done_callback(functools.partial(self._task_done, job.id))
                    self.tasks[job.id] = task
                    self._provider_of[job.id] = job.provider
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
            self._provider_of.pop(job_id, None)
        self._slot_free.set()

    def _rooms(self) -> dict[str, int]:
        """Free slots per provider this runner can work (it has the key)."""
        busy = Counter(self._provider_of.values())
        rooms: dict[str, int] = {}
        workable = self.adapters.workable()
        for name in workable:
            free = self._max_in_flight(name) - busy[name]
            if free > 0:
                rooms[name] = free
        missing = set(self.s.provider_names()) - set(workable) - self._left_alone
        for name in sorted(missing):  # once per runner: its jobs wait for one with the key
            self._left_alone.add(name)
            p = self.s.provider(name)
            hint = p.key_hint() if p is not None else "?"
            what = "API key" if p is None or hint == p.key_env else "credentials"
            log.info("no %s for %s (%s): its jobs are left untouched, for a runner that "
                     "has them (a sora command run with them hands the jobs over)", what,
                     name, hint)
        return rooms

    def _max_in_flight(self, provider: str) -> int:
        p = self.s.provider(provider)
        return p.max_in_flight if p is not None and p.max_in_flight else self.s.max_in_flight

    def _creates_per_minute(self, provider: str) -> int:
        p = self.s.provider(provider)
        if p is not None and p.creates_per_minute:
            return p.creates_per_minute
        return self.s.creates_per_minute

    async def _wait(self, stop: asyncio.Event) -> None:
        """Until `stop`, a job finishing, or a tick, whichever comes first."""
        if not self._slot_free.is_set():
            waiters = {asyncio.ensure_future(stop.wait()),
                       asyncio.ensure_future(self._slot_free.wait())}
            await asyncio.wait(waiters, timeout=self.tick, return_when=asyncio.FIRST_COMPLETED)
            for fut in waiters:
                fut.cancel()
        self._slot_free.clear()

    def _any_active(self) -> bool:
        try:  # only jobs it can work keep a runner alive: a keyless one makes way
            return self.store.has_active(providers=self.adapters.workable())
        except StoreUnavailable:
            return True  # cannot tell: stay

    def _left_elsewhere(self) -> list[str]:
        now = time.monotonic()
        for job_id in [j for j, until in self._elsewhere.items() if until <= now]:
            del self._elsewhere[job_id]
        return list(self._elsewhere)

    def _not_here(self, job: Job, why: str) -> None:
        """A job this host cannot send (its kept image is on another host of a shared
        store): left, untouched, for a runner that can; said once in its history."""
        if job.id not in self._elsewhere:
            self.store.log(job.id, "image_elsewhere", runner_id=self.runner_id, message=(
                f"{why}: not on this host ({self.host}); left for the runner of the host "
                "that kept it (a job with a local --image is sent from there)"))
        self._elsewhere[job.id] = time.monotonic() + NOT_HERE_FOR
        self._release([job.id])

    async def _shutdown(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()
        self._release()

    def _release(self, job_ids: list[str] | None = None) -> None:
        try:
            self.store.release(self.runner_id, job_ids)
        except StoreError as exc:  # unreachable: the leases run out by themselves
            log.warning("could not release leases: %s", exc)

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        """Keep our leases alive and tell `sora runner status` what we are doing."""
        pid = os.getpid()
        renew_every = max(self.s.lease_seconds / 3, 0.05)
        last_renew = 0.0
        while not stop.is_set():
            try:
                self.store.runner_beat(self.runner_id, host=self.host, pid=pid,
                                       started_at=self.started_at, jobs_in_flight=len(self.tasks))
                if time.monotonic() - last_renew >= renew_every:
                    renewing = time.monotonic()
                    held = self.store.renew(self.runner_id, self.s.lease_seconds)
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
        outage = surprises = 0
        try:
            while True:
                job: Job | None = None
                try:
                    job = self.store.get(job_id)
                    if job is None or not job.status.is_active or job.runner_id != self.runner_id:
                        return
                    await self._step(job, pace)
                    outage = surprises = 0
                except StoreUnavailable as exc:  # once back, resume from what the store says
                    outage += 1
                    await _store_away(exc, outage)
                except (LeaseLost, asyncio.CancelledError):
                    raise
                except Exception as exc:  # a bug must not leave the job stuck in flight
                    surprises += 1
                    if not await self._surprise(job_id, job, exc, surprises):
                        return
        except LeaseLost:
            log.info("job %s: lease lost", job_id)
        finally:
            self._release([job_id])

    async def _surprise(self, job_id: str, job: Job | None, exc: Exception, count: int) -> bool:
        """An unexpected error. A job that may be paid for (sent, or being sent) is
        worked again after a pause, up to MAX_SURPRISES in a row; any other fails with
        `internal_error`. True when the job is worked again."""
        log.exception("job %s: unexpected error", job_id)
        what = f"sora runner error: {type(exc).__name__}: {exc}"
        paid = job is not None and (job.remote_id is not None
                                    or job.status is JobStatus.SUBMITTING)
        if paid and count < MAX_SURPRISES:
            delay = min(self.s.poll_max_seconds * count, 300.0)
            with contextlib.suppress(StoreError):
                self.store.log(job_id, "internal_error", runner_id=self.runner_id,
                               message=f"{what}; trying again in {delay:.0f} s")
            await asyncio.sleep(delay)
            return True
        self._fail(job_id, JobError("internal_error", what))
        return False

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
                               + (f": {a.error}" if a.error else ""), runner_id=self.runner_id)
            except StoreError as exc:  # a note only: never break the request it describes
                log.warning("job %s: could not log an HTTP attempt: %s", job_id, exc)
        return record

    def _fail(self, job_id: str, error: JobError, *, status: JobStatus = JobStatus.FAILED,
              **fields: Any) -> None:
        try:
            self.store.transition(job_id, status, runner_id=self.runner_id, error=error, **fields)
        except (LeaseLost, SoraError) as exc:
            log.warning("job %s: could not record failure: %s", job_id, exc)



async def _store_away(exc: StoreError, outage: int, stop: asyncio.Event | None = None) -> None:
    """Wait before trying the job store again: 0.25 s, doubling to STORE_RETRY_MAX."""
    delay = min(0.25 * 2 ** min(outage - 1, 10), STORE_RETRY_MAX)
    log.warning("job store unreachable (%s); trying again in %.2f s", exc, delay)
    if stop is None:
        await asyncio.sleep(delay)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
