"""`sora remix`: the command (CliRunner), the runner sending it (in-process, the fake
server on loopback) and the reconciliation of an unanswered remix."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from clirun import one_error, sora
from inproc import run_runner, settings_for
from seed import job_at

from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.fake.server import FakeServer, Fault
from sora_cli.providers.openai.client import Video
from sora_cli.providers.openai.reconcile import matches
from sora_cli.store.repository import Store

pytestmark = pytest.mark.usefixtures("home")


def all_jobs(home: Path) -> list[Job]:
    with Store.open(home / "sora.db") as st:
        return st.list_jobs(limit=None)


# --- the command -------------------------------------------------------------------------


def test_remix_records_a_linked_job_with_the_sources_settings(home: Path) -> None:
    src = job_at(home, JobStatus.COMPLETED, model="sora-2-pro", size="1792x1024", seconds=8)
    r = sora("remix", src.id[:5], "the same, at night")
    assert r.exit_code == 0, r.stderr
    new_id = r.stdout.strip()
    (new,) = [j for j in all_jobs(home) if j.id == new_id]
    assert new.remix_of == src.id and new.status is JobStatus.QUEUED
    assert (new.prompt, new.model, new.size, new.seconds) == (
        "the same, at night", "sora-2-pro", "1792x1024", 8)
    assert f"remix_of:       {src.id}" in sora("status", new_id).stdout
    assert f"remixes:        {new_id}" in sora("status", src.id).stdout
    assert sora("status", new_id, "--json").stdout.count(f'"remix_of":"{src.id}"') == 1


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED])
def test_remix_of_a_job_that_is_not_completed_exits_2_and_records_nothing(
        home: Path, status: JobStatus) -> None:
    src = job_at(home, JobStatus.RUNNING if status is JobStatus.FAILED else status)
    if status is JobStatus.FAILED:
        with Store.open(home / "sora.db") as st:
            st.transition(src.id, JobStatus.FAILED)
    line = one_error(sora("remix", src.id, "again"), 2)
    assert src.id in line and "only a completed job can be remixed" in line
    assert len(all_jobs(home)) == 1


def test_remix_of_an_expired_video_exits_2(home: Path) -> None:
    src = job_at(home, JobStatus.COMPLETED)
    with Store.open(home / "sora.db") as st:
        st.update(src.id, expires_at=time.time() - 10)
    assert "expired" in one_error(sora("remix", src.id, "again"), 2)
    assert len(all_jobs(home)) == 1


def test_remix_needs_a_key_and_a_prompt(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = job_at(home, JobStatus.COMPLETED)
    assert "prompt is empty" in one_error(sora("remix", src.id, "  "), 2)
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "no API key" in one_error(sora("remix", src.id, "again"), 4)
    assert one_error(sora("remix", "zzzz", "again"), 3)
    assert len(all_jobs(home)) == 1


# --- the runner sends it -------------------------------------------------------------------


def completed_source(home: Path, server: FakeServer, store: Store) -> Job:
    (src,) = store.add_jobs([VideoRequest("a lighthouse", size="1280x720", seconds=8)])
    run_runner(settings_for(home, server), store)
    done = store.get(src.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    return done


def test_the_runner_sends_a_remix_of_the_sources_remote_video(home: Path,
                                                               server: FakeServer) -> None:
    store = Store.open(home / "sora.db")
    src = completed_source(home, server, store)
    (job,) = store.add_jobs([VideoRequest("at night", size="1280x720", seconds=8,
                                          remix_of=src.id)])
    run_runner(settings_for(home, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert ("POST", f"/v1/videos/{src.remote_id}/remix", 200) in server.request_log()
    assert server.backend.inspect(str(done.remote_id))["remixed_from_video_id"] == src.remote_id
    assert done.output_path is not None and os.path.getsize(done.output_path) == done.bytes


def test_an_unanswered_remix_is_found_in_the_list_not_sent_again(home: Path,
                                                                  server: FakeServer) -> None:
    store = Store.open(home / "sora.db")
    src = completed_source(home, server, store)
    server.add_faults(Fault("create_then_error", route="remix", status=500))
    (job,) = store.add_jobs([VideoRequest("at night", size="1280x720", seconds=8,
                                          remix_of=src.id)])
    run_runner(settings_for(home, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert server.create_count("at night") == 1  # the remix made once, adopted
    assert "reconciled" in [e.kind for e in store.events(job.id)]
    assert server.backend.inspect(str(done.remote_id))["remixed_from_video_id"] == src.remote_id


def test_a_remix_whose_source_is_gone_fails_without_sending(home: Path,
                                                            server: FakeServer) -> None:
    store = Store.open(home / "sora.db")
    src = completed_source(home, server, store)
    (job,) = store.add_jobs([VideoRequest("at night", remix_of=src.id)])
    store.delete_jobs([src.id])
    run_runner(settings_for(home, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert done.error is not None and done.error.code == "remix_source_missing"
    assert server.create_count("at night") == 0


def video(prompt: str, remixed_from: str | None) -> Video:
    return Video(id="video_1", status="queued", progress=0, model="sora-2", size="720x1280",
                 seconds="4", prompt=prompt, created_at=100, completed_at=None,
                 expires_at=None, remixed_from_video_id=remixed_from, error_code=None,
                 error_message=None)


def test_reconciliation_tells_remixes_from_creates() -> None:
    job = Job(id="abcd2345", prompt="p", model="sora-2", size="720x1280", seconds=4,
              status=JobStatus.SUBMITTING, created_at=1, updated_at=1, create_started_at=99)
    assert matches(video("p", None), job, 99)
    assert not matches(video("p", "video_src"), job, 99)  # a create never adopts a remix
    assert matches(video("p", "video_src"), job, 99, "video_src")
    assert not matches(video("p", None), job, 99, "video_src")  # nor a remix a create
    assert not matches(video("p", "video_other"), job, 99, "video_src")
