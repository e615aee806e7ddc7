"""`sora logs`: a job's history as the runner recorded it (in-process runner, the fake
server on loopback with an injected error), as text and as JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import sora
from inproc import run_runner, settings_for

from sora_cli.domain.jobs import JobStatus, VideoRequest
from sora_cli.fake.server import FakeServer, Fault
from sora_cli.store.repository import Store

EVENT_KEYS = {"job_id", "at", "kind", "from_status", "to_status", "attempt", "http_status",
              "request_id", "retry_in", "message", "runner_id"}


def worked_job(home: Path, server: FakeServer) -> str:
    """A job the runner took through a 429 on create (retried) to completion."""
    server.add_faults(Fault("error", route="create", status=429, retry_after_ms=50))
    store = Store.open(home / "sora.db")
    (job,) = store.add_jobs([VideoRequest("a logged fox")])
    run_runner(settings_for(home, server), store, runner_id="h:1:a")
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    store.close()
    return job.id


def test_logs_show_transitions_http_attempts_and_retries(home: Path, server: FakeServer) -> None:
    job_id = worked_job(home, server)
    r = sora("logs", job_id[:5])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "created  -> queued" in lines[0]
    text = r.stdout
    for status in ("queued -> submitting", "submitting -> running", "running -> downloading",
                   "downloading -> completed"):
        assert status in text
    (retried,) = [x for x in lines if "HTTP 429" in x]
    assert "http  attempt 1  HTTP 429  retry in 0.05 s  request req_" in retried
    assert "POST /videos" in retried


def test_logs_json_is_one_object_per_event(home: Path, server: FakeServer) -> None:
    job_id = worked_job(home, server)
    r = sora("logs", job_id, "--json")
    assert r.exit_code == 0, r.stderr
    events = [json.loads(x) for x in r.stdout.splitlines()]
    assert all(set(e) == EVENT_KEYS and e["job_id"] == job_id for e in events)
    assert events[0]["kind"] == "created" and events[0]["to_status"] == "queued"
    assert events[0]["at"].endswith("Z")
    (retried,) = [e for e in events if e["http_status"] == 429]
    assert retried["attempt"] == 1 and retried["retry_in"] == pytest.approx(0.05)
    assert retried["request_id"].startswith("req_")
    assert events[-1]["to_status"] == "completed"
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)


def test_logs_of_an_unknown_job_exits_3(home: Path) -> None:
    r = sora("logs", "nope2345")
    assert r.exit_code == 3 and r.stdout == "" and "no such job" in r.stderr


def test_logs_strip_escape_sequences_from_server_text(home: Path) -> None:
    with Store.open(home / "sora.db") as st:
        (job,) = st.add_jobs([VideoRequest("x")])
        st.log(job.id, "note", message="bad \x1b[31mred\x1b[0m\nnews")
    r = sora("logs", job.id)
    assert "bad red news" in r.stdout and "\x1b" not in r.stdout
