"""The steps of one job, for the runner: create (or remix), reconcile an unanswered
create with the provider's list; then poll and download (progress.py). A mixin of
`Runner` (loop.py), which owns the loop, the leases and the store outage handling.
Every step goes through the job's provider adapter (providers/base.py): nothing here
knows a provider's wire.
"""

from __future__ import annotations

import asyncio
import time

from sora_cli.domain.jobs import Job, JobError, JobStatus
from sora_cli.domain.providers import FIND_CREATED
from sora_cli.errors import (
    AmbiguousCreate,
    ApiError,
    CannotSend,
    RemoteIdTaken,
    TransportError,
)
from sora_cli.providers.base import (
    Created,
    CreateRequest,
    FindsCreated,
    RemoteState,
    capable,
)
from sora_cli.providers.retry import backoff_delay
from sora_cli.runner import crash
from sora_cli.runner.outgoing import (
    IMAGE_MISSING,
    create_request,
    match_request,
)
from sora_cli.runner.pacing import PollPace, Rates
from sora_cli.runner.progress import ProgressSteps, api_error, hint_ms, status_text

MAX_CREATE_ATTEMPTS = 8  # each re-send only after the remote list showed no job


class JobSteps(ProgressSteps):
    """What `Runner` provides to the steps (see loop.py), beyond ProgressSteps'."""

    rates: Rates
    _adopting: asyncio.Lock

    def _not_here(self, job: Job, why: str) -> None:
        raise NotImplementedError

    async def _create(self, job: Job) -> None:
        try:
            request = create_request(self.store, job)  # read and checked before sending
        except CannotSend as exc:
            if exc.code == IMAGE_MISSING and self.s.database_url:
                self._not_here(job, str(exc))  # the host that kept the image sends it
            else:
                self._fail(job.id, JobError(exc.code, str(exc)))
            return
        await self._send(job, request)

    async def _send(self, job: Job, request: CreateRequest) -> None:
        adapter = self.adapters.get(job.provider)
        await self.rates.acquire(job.provider)
        started = time.time()
        attempt = job.create_attempts + 1
        self.store.transition(job.id, JobStatus.SUBMITTING, runner_id=self.runner_id,
                              attempt=attempt, create_started_at=started, create_attempts=attempt)
        crash.crash_point("before_create")
        try:
            created = await adapter.create(request, on_attempt=self._recorder(job.id))
        except AmbiguousCreate as exc:
            self.store.log(job.id, "create_unknown", message=str(exc), runner_id=self.runner_id,
                           http_status=exc.http_status, request_id=exc.request_id)
            return  # still `submitting`: the next round reconciles
        except TransportError as exc:
            self._fail(job.id, JobError("unreachable", str(exc)))
            return
        except ApiError as exc:
            self._fail(job.id, api_error(exc))
            return
        except CannotSend as exc:  # nothing was sent
            self._fail(job.id, JobError(exc.code, str(exc)))
            return
        except Exception as exc:  # the request went out: whatever broke, never re-send blindly
            self.store.log(job.id, "create_unknown", runner_id=self.runner_id, message=(
                f"the create's outcome is unknown ({type(exc).__name__}: {exc}); "
                "looking for it in the remote list"))
            return
        crash.crash_point("after_create")  # the id was read first: nothing else can lose it
        self._adopt(job, created, event="created", note=f"remote id {created.remote_id}")
        state = created.polled.state if created.polled else RemoteState.QUEUED
        if state in (RemoteState.QUEUED, RemoteState.RUNNING):
            # The create's answer was a status read: the first poll is one interval later.
            pace = PollPace(self.s.poll_min_seconds, self.s.poll_max_seconds)
            await asyncio.sleep(pace.next(hint_ms(created.polled)))

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
        adapter = self.adapters.get(job.provider)
        if not capable(adapter, FIND_CREATED) or not isinstance(adapter, FindsCreated):
            self._fail(job.id, JobError("create_unconfirmed", _unlistable(job, adapter.where(job))))
            return
        pause = self.s.reconcile_pause_seconds
        wait = job.create_started_at + pause - time.time()
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

    def _adopt(self, job: Job, created: Created, *, event: str, note: str) -> None:
        """The remote job is this job's: its id and handle, stored in one transition."""
        p = created.polled
        self.store.transition(job.id, JobStatus.RUNNING, runner_id=self.runner_id, event=event,
                              message=note, remote_id=created.remote_id,
                              remote_handle=dict(created.handle) if created.handle else None,
                              remote_status=status_text(p) if p else None,
                              progress=p.progress or 0 if p else 0, submitted_at=time.time())

    def _answered_create(self, job: Job) -> str | None:
        """How the server answered the last create with an unreadable success, if it did."""
        for event in reversed(self.store.events(job.id)):
            if event.kind == "submitting":
                return None
            if event.kind == "create_unknown" and 200 <= (event.http_status or 0) < 300:
                return f"HTTP {event.http_status}, request {event.request_id or 'unknown'}"
        return None


def _unlistable(job: Job, where: str) -> str:
    """Why an unanswered create of a provider that cannot list is not sent again."""
    started = job.create_started_at or time.time()
    window = (f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))} and "
              f"{time.strftime('%H:%M:%S', time.localtime(time.time()))}")
    return (f"the create request ({where}), sent between {window}, got no usable answer, "
            f"and {job.provider} cannot list what it made: it was not sent again. Check your "
            f"{job.provider} requests of that time before `sora retry {job.id}`")
