"""The runner in-process against the fake server, for the fault cases the end-to-end
tests cannot stage cheaply: undecidable reconciliations, unusable create answers, and
jobs that must stop being polled."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.fake.content import CreateRequest
from sora_cli.fake.server import FakeOptions, FakeServer, Fault
from sora_cli.providers.openai.client import ApiSettings, VideosClient
from sora_cli.runner import progress as runner_progress
from sora_cli.runner.loop import Runner
from sora_cli.store.repository import Store


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeOptions(job_seconds=0.3, poll_after_ms=50, video_bytes=20_000)) as s:
        yield s


def settings_for(tmp_path: Path, server: FakeServer, **kw: object) -> Settings:
    base: dict[str, object] = dict(
        home=tmp_path, api_key="sk-test", base_url=server.base_url, poll_min_seconds=0.05,
        poll_max_seconds=0.3, idle_exit_seconds=0.3, lease_seconds=5.0, request_timeout=0.5,
        max_retries=1)
    base.update(kw)
    (tmp_path / "videos").mkdir(exist_ok=True)
    return Settings(**base)  # type: ignore[arg-type]


def run_runner(settings: Settings, store: Store, timeout: float = 30.0) -> None:
    async def go() -> None:
        api = ApiSettings(base_url=settings.base_url, api_key="sk-test",
                          timeout=settings.request_timeout, max_retries=settings.max_retries)
        async with VideosClient(api) as client:
            runner = Runner(settings, store, client, runner_id="host:1:a")
            await asyncio.wait_for(runner.run(asyncio.Event()), timeout)

    asyncio.run(go())


def when(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Thread:
    """Run `then` in a thread as soon as `condition` holds (within 20 s)."""
    def watch() -> None:
        deadline = time.monotonic() + 20
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.005)
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def final(store: Store, job: Job) -> Job:
    done = store.get(job.id)
    assert done is not None and done.status.is_final, done
    return done


def test_unusable_success_to_a_create_is_never_sent_again(tmp_path: Path,
                                                         server: FakeServer) -> None:
    """The server answered 200 with a hostile id, and the video is not in the list: it
    made something we cannot find, so the job fails saying so instead of paying twice."""
    server.add_faults(Fault("bad_id", route="create", text="video_\x1b[2J../../x"))

    def hide() -> None:
        for video in server.backend._order:
            video.deleted = True

    watcher = when(lambda: server.create_count() == 1, hide)
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("made but unreadable")])
    run_runner(settings_for(tmp_path, server), store)
    watcher.join()
    done = final(store, job)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert done.error.code == "create_unconfirmed"
    assert "not sending again" in done.error.message and "HTTP 200" in done.error.message
    assert server.create_count() == 1 and done.create_attempts == 1


def test_too_many_new_videos_to_tell_fails_without_resending(tmp_path: Path,
                                                             server: FakeServer) -> None:
    server.add_faults(Fault("create_then_drop", route="create", prompt="lost in a crowd"))

    def crowd() -> None:
        for n in range(1001):  # other clients' videos, created since our attempt
            server.backend.create(CreateRequest(f"someone else {n}", "sora-2", "4",
                                                 "720x1280"))

    watcher = when(lambda: server.create_count("lost in a crowd") == 1, crowd)
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("lost in a crowd")])
    run_runner(settings_for(tmp_path, server), store)
    watcher.join()
    done = final(store, job)
    assert done.status is JobStatus.FAILED and done.error is not None
    assert done.error.code == "create_unconfirmed"
    assert "cannot tell" in done.error.message and "not sent again" in done.error.message
    assert server.create_count("lost in a crowd") == 1


def test_a_job_unfinished_for_too_long_is_not_polled_forever(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_progress, "MAX_RUNNING_SECONDS", 1.0)
    with FakeServer(FakeOptions(job_seconds=3600, poll_after_ms=50)) as server:
        store = Store.open(tmp_path / "sora.db")
        (job,) = store.add_jobs([VideoRequest("never ends")])
        run_runner(settings_for(tmp_path, server), store)
        polls = sum(1 for method, path, _ in server.request_log()
                    if method == "GET" and path.startswith("/v1/videos/video_"))
    done = final(store, job)
    assert done.status is JobStatus.EXPIRED and done.error is not None
    assert done.error.code == "expired" and "not polling it any more" in done.error.message
    assert 1 <= polls <= 1.0 / 0.05 + 5


def test_a_job_past_its_expiry_is_not_polled(tmp_path: Path, server: FakeServer) -> None:
    remote = server.backend.create(CreateRequest("old news", "sora-2", "4", "720x1280"))
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("old news")])
    store.transition(job.id, JobStatus.SUBMITTING, create_started_at=time.time() - 90000)
    store.transition(job.id, JobStatus.RUNNING, remote_id=remote.id,
                     submitted_at=time.time() - 90000, expires_at=time.time() - 3600)
    run_runner(settings_for(tmp_path, server), store)
    done = final(store, job)
    assert done.status is JobStatus.EXPIRED and done.error is not None
    assert done.error.code == "expired"
    assert not [p for _, p, _ in server.request_log() if remote.id in p]
