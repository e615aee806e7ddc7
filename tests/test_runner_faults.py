"""The runner in-process against the fake server, for the fault cases the end-to-end
tests cannot stage cheaply: undecidable reconciliations, unusable create answers, and
jobs that must stop being polled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from inproc import run_runner, settings_for

from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.fake.content import CreateRequest
from sora_cli.fake.server import FakeOptions, FakeServer, Fault
from sora_cli.runner import progress as runner_progress
from sora_cli.store.repository import Store

# Requests time out quickly here; the first look for an unanswered create, 0.5 s after it
# began, leaves the test's own thread (`when`) time to act before it.
FAULTY = dict(request_timeout=0.5, reconcile_pause_seconds=0.5)


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
    run_runner(settings_for(tmp_path, server, **FAULTY), store)
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
    run_runner(settings_for(tmp_path, server, **FAULTY), store)
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
        run_runner(settings_for(tmp_path, server, **FAULTY), store)
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
    run_runner(settings_for(tmp_path, server, **FAULTY), store)
    done = final(store, job)
    assert done.status is JobStatus.EXPIRED and done.error is not None
    assert done.error.code == "expired"
    assert not [p for _, p, _ in server.request_log() if remote.id in p]
