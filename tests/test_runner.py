"""The runner loop in-process: a real store file, the real client, the fake server on
loopback. Covers what the end-to-end tests can't reach precisely: reconciliation
choices, leases, cancellation, pacing and graceful stop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from inproc import run_runner, settings_for

from sora_cli.domain.jobs import JobStatus, VideoRequest
from sora_cli.fake.server import FakeOptions, FakeServer, Fault
from sora_cli.providers.openai.client import ApiSettings, VideosClient
from sora_cli.runner.loop import PollPace, RateLimit, Runner
from sora_cli.store.repository import Store


def test_runs_jobs_to_completion_and_exits_when_idle(tmp_path: Path, server: FakeServer) -> None:
    s = settings_for(tmp_path, server)
    store = Store.open(tmp_path / "sora.db")
    jobs = store.add_jobs([VideoRequest(f"clip {n}") for n in range(5)])
    run_runner(s, store)
    for job in jobs:
        done = store.get(job.id)
        assert done is not None and done.status is JobStatus.COMPLETED, done
        assert done.sha256 == server.expected_sha256(done.remote_id or "")
        assert Path(done.output_path or "").stat().st_size == done.bytes
        assert done.runner_id is None
        kinds = [e.kind for e in store.events(job.id) if e.kind != "http"]
        assert kinds == ["created", "claimed", "submitting", "created", "downloading",
                         "completed"]
        posts = [e for e in store.events(job.id) if e.kind == "http"]
        assert posts and (posts[0].http_status, posts[0].message) == (200, "POST /videos")
    assert server.create_count() == 5


def test_moderation_failure_keeps_the_servers_code(tmp_path: Path) -> None:
    opts = FakeOptions(job_seconds=0.2, poll_after_ms=50, fail_prompt="forbidden")
    with FakeServer(opts) as server:
        store = Store.open(tmp_path / "sora.db")
        (job,) = store.add_jobs([VideoRequest("something forbidden")])
        run_runner(settings_for(tmp_path, server), store)
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "moderation_blocked"
    assert failed.remote_status == "failed"


@pytest.mark.parametrize("action", ["create_then_drop", "create_then_error", "create_then_stall"])
def test_ambiguous_create_is_found_not_resent(tmp_path: Path, server: FakeServer,
                                              action: str) -> None:
    server.add_faults(Fault(action, route="create", status=502, retry_after_ms=3000))
    s = settings_for(tmp_path, server, request_timeout=1.0)
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("maybe made")])
    run_runner(s, store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert server.create_count("maybe made") == 1
    assert done.create_attempts == 1
    assert "reconciled" in [e.kind for e in store.events(job.id)]


def test_unsent_create_is_sent_again_after_checking(tmp_path: Path, server: FakeServer) -> None:
    server.add_faults(Fault("drop", route="create"))  # dropped before anything was created
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("try twice")])
    run_runner(settings_for(tmp_path, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.create_attempts == 2 and server.create_count("try twice") == 1
    assert "requeued" in [e.kind for e in store.events(job.id)]


def test_reconcile_skips_videos_owned_by_other_jobs(tmp_path: Path, server: FakeServer) -> None:
    """Two identical prompts, both creates unanswered: each job gets its own video."""
    server.add_faults(Fault("create_then_drop", route="create", times=2))
    store = Store.open(tmp_path / "sora.db")
    jobs = store.add_jobs([VideoRequest("twin"), VideoRequest("twin")])
    run_runner(settings_for(tmp_path, server), store)
    done = [store.get(j.id) for j in jobs]
    assert all(d is not None and d.status is JobStatus.COMPLETED for d in done)
    assert len({d.remote_id for d in done if d}) == 2
    assert server.create_count("twin") == 2


def test_cancelled_job_stops_being_worked(tmp_path: Path) -> None:
    with FakeServer(FakeOptions(job_seconds=30, poll_after_ms=50)) as server:
        store = Store.open(tmp_path / "sora.db")
        (job,) = store.add_jobs([VideoRequest("long one")])

        async def cancel_when_running() -> None:
            other = Store.open(tmp_path / "sora.db")
            deadline = time.monotonic() + 20
            while (j := other.get(job.id)) and j.status is not JobStatus.RUNNING:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            other.transition(job.id, JobStatus.CANCELLED, release=True)

        async def go() -> None:
            s = settings_for(tmp_path, server, lease_seconds=0.3)
            async with VideosClient(ApiSettings(base_url=server.base_url, api_key="k")) as c:
                runner = Runner(s, store, c, runner_id="host:1:a")
                await asyncio.wait_for(
                    asyncio.gather(runner.run(asyncio.Event()), cancel_when_running()), 30)

        asyncio.run(go())
    cancelled = store.get(job.id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    assert server.create_count() == 1


def test_graceful_stop_leaves_work_resumable(tmp_path: Path) -> None:
    with FakeServer(FakeOptions(job_seconds=1.5, poll_after_ms=50)) as server:
        s = settings_for(tmp_path, server)
        store = Store.open(tmp_path / "sora.db")
        (job,) = store.add_jobs([VideoRequest("interrupted")])
        def running() -> bool:  # paid for, its video still being made (1.5 s)
            now = store.get(job.id)
            return now is not None and now.status is JobStatus.RUNNING

        run_runner(s, store, stop_when=running)
        mid = store.get(job.id)
        assert mid is not None and mid.status is JobStatus.RUNNING
        assert mid.runner_id is None  # released at once, not left to expire
        run_runner(s, store, runner_id="host:2:b")
        done = store.get(job.id)
        assert done is not None and done.status is JobStatus.COMPLETED
        assert server.create_count() == 1


def test_expired_lease_of_a_dead_runner_is_taken_over(tmp_path: Path, server: FakeServer) -> None:
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("orphan")])
    store.claim("otherhost:9:z", 1, lease_seconds=0.2)
    run_runner(settings_for(tmp_path, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    claims = [e for e in store.events(job.id) if e.kind == "claimed"]
    assert "taken over from otherhost:9:z" in (claims[-1].message or "")


def test_poll_pace_honours_and_clamps_hints() -> None:
    pace = PollPace(low=1.0, high=20.0)
    assert pace.next(0) == 1.0
    assert pace.next(3_600_000) == 20.0
    assert pace.next(5000) == 5.0
    grown = [pace.next(None) for _ in range(12)]
    assert grown[0] == 1.0 and grown == sorted(grown) and grown[-1] == 20.0


def test_rate_limit_holds_creates_within_the_window() -> None:
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    limit = RateLimit(2, clock=lambda: now[0], sleep=fake_sleep)

    async def go() -> list[float]:
        times = []
        for _ in range(5):
            await limit.acquire()
            times.append(now[0])
        return times

    assert asyncio.run(go()) == [0.0, 0.0, 60.0, 60.0, 120.0]
