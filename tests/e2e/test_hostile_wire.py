"""Issue 13, the wire: recovering paid videos that failed locally, requests that never
end, decompression bombs, values that would break later commands, terminal escapes,
`{"deleted": false}`, and a runner that cannot dump its memory."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sora_cli.domain.jobs import Job, JobError, JobStatus
from sora_cli.store.repository import Store

from .conftest import MakeFake, MakeSora
from .harness import (
    CRASH_ENV,
    TEST_KEY,
    FakeProc,
    assert_saved_once,
    proc_memory_kib,
    provider_env,
    quick_fake,
    runner_pid,
    vertex_env,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.e2e
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def remote_video(fake: FakeProc, prompt: str) -> str:
    """A video made on the server by someone else (for `sora import`)."""
    req = urllib.request.Request(
        fake.base_url + "/videos", data=json.dumps({"prompt": prompt}).encode(),
        headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as answer:
        return str(json.loads(answer.read())["id"])


def remote_status(fake: FakeProc, video_id: str) -> str:
    return str(fake.get(f"/_fake/videos/{video_id}")["status"])


# -- point 2: download and import recover a job that failed locally ---------------------------


def test_download_and_import_recover_a_paid_video_that_failed_locally(
        make_fake: MakeFake, make_sora: MakeSora) -> None:
    fake = make_fake("--job-seconds", "8", "--poll-after-ms", "100")  # outlives the stop
    s = make_sora(fake)
    ids = [s.ok("submit", f"paid for, then given up on {n}").strip() for n in (1, 2)]
    jobs = [wait_job(s, i, lambda j: j["remote_id"] is not None, 30) for i in ids]
    s.stop_runner()
    with Store.open(s.home / "sora.db") as store:  # what an older sora did after an outage
        for job_id in ids:
            store.transition(job_id, JobStatus.FAILED, release=True,
                             error=JobError("api_error", "the server answered Service "
                                            "Unavailable", http_status=503))
    for job in jobs:
        wait_for(lambda j=job: remote_status(fake, j["remote_id"]) == "completed", 30)
    r = s.run("download", ids[0], "-o", "saved.mp4")
    assert r.returncode == 0, r.stderr
    first = s.job(ids[0])
    assert first["status"] == "completed" and first["error"] is None
    assert first["sha256"] == fake.sha256(jobs[0]["remote_id"])
    r = s.run("import", jobs[1]["remote_id"])
    assert r.returncode == 0 and ids[1] in r.stdout, r.stderr
    assert s.run("wait", ids[1], "--timeout", "60").returncode == 0
    assert_saved_once(s, fake, ids[1])


DIRECT_MODELS = {"runway": "runway:gen4.5", "luma": "luma:ray-2",
                 "minimax": "minimax:MiniMax-Hailuo-2.3", "kling": "kling:kling-v2-1-master",
                 "vertex": "vertex:veo-3.1-generate-001"}


@pytest.mark.parametrize("provider", list(DIRECT_MODELS))
def test_download_recovers_a_direct_providers_paid_video_that_failed_locally(
        make_fake: MakeFake, make_sora: MakeSora, tmp_path: Path, provider: str) -> None:
    fake = quick_fake(make_fake)
    env = provider_env(fake)
    if provider == "vertex":
        env.update(vertex_env(fake, tmp_path))
    s = make_sora(fake, **env)
    # the runner dies once the video is done remotely, before it records it: no runner
    # is left to race what follows
    job_id = s.ok("submit", "-m", DIRECT_MODELS[provider], "paid for, then given up on",
                  env={CRASH_ENV: "before_complete"}).strip()
    with Store.open(s.home / "sora.db") as store:  # read here: `status` would start a runner
        def left() -> Job | None:
            j = store.get(job_id)
            running = s.runner()["running"]
            return j if j is not None and j.status is JobStatus.DOWNLOADING and not running \
                else None

        remote_id = wait_for(left, 60, "the runner to die").remote_id
        # what an older sora did after an outage
        store.transition(job_id, JobStatus.FAILED, release=True,
                         error=JobError("api_error", "the server answered Service "
                                        "Unavailable", http_status=503))
    r = s.run("download", job_id, "-o", "saved.mp4")
    assert r.returncode == 0, r.stderr
    saved = s.job(job_id)
    assert saved["status"] == "completed" and saved["error"] is None
    assert saved["sha256"] == fake.sha256(str(remote_id))
    assert fake.stats()["creates"] == 1


# -- point 7: `sora import` has a total deadline -----------------------------------------------


def test_import_from_a_server_that_drips_bytes_ends(make_fake: MakeFake,
                                                    make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    video_id = remote_video(fake, "made elsewhere")
    fake.faults({"action": "drip", "route": "retrieve", "delay_ms": 200, "times": 5})
    s = make_sora(fake, SORA_REQUEST_TIMEOUT="1", SORA_MAX_RETRIES="0")
    r = s.run("import", video_id, timeout=30)
    assert r.returncode == 1, r.stderr
    assert "within 1 s" in r.stderr


# -- point 8: decompression bombs --------------------------------------------------------------


def test_decompression_bombs_are_stopped_at_the_cap(make_fake: MakeFake,
                                                    make_sora: MakeSora) -> None:
    fake = make_fake("--job-seconds", "1", "--poll-after-ms", "100")
    size = 300 * 1024 * 1024  # each about 300 KiB on the wire
    fake.faults({"action": "gzip", "route": "retrieve", "size": size},
                {"action": "gzip", "route": "content", "size": size})
    s = make_sora(fake)
    job_id = s.ok("submit", "a bomb in every answer").strip()
    pid = wait_for(lambda: runner_pid(s), 10, "the runner")
    assert s.run("wait", job_id, "--timeout", "90").returncode == 0
    peak_mib = proc_memory_kib(pid, "VmHWM") / 1024
    assert peak_mib < 150, f"the runner peaked at {peak_mib:.0f} MiB"
    assert_saved_once(s, fake, job_id)


# -- point 12: values that would break later commands ------------------------------------------


def test_values_nobody_can_render_never_break_the_readers(make_fake: MakeFake,
                                                          make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    fake.faults({"action": "patch", "route": "retrieve", "times": 1000,
                 "fields": {"expires_at": 99999999999999, "completed_at": 10**30}})
    s = make_sora(fake)
    job_id = s.ok("submit", "from the year 3 million").strip()
    for args in (("wait", job_id, "--json", "--timeout", "60"), ("status", job_id),
                 ("status", job_id, "--json"), ("list", "--json"), ("list",)):
        r = s.run(*args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
    s.stop_runner()
    # a store written by an older sora may hold such a value already: still rendered
    with sqlite3.connect(s.home / "sora.db") as db:
        db.execute("UPDATE jobs SET expires_at = 1e300, submitted_at = -1e20 WHERE id = ?",
                   (job_id,))
    for args in (("status", job_id), ("status", job_id, "--json"), ("list", "--json")):
        r = s.run(*args)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)


def test_import_with_odd_seconds_and_escapes_stores_clean_values(make_fake: MakeFake,
                                                                 make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    video_id = remote_video(fake, "made elsewhere")
    evil = "\x1b]0;owned\x07\x1b[2Jfine\x9b1m"
    fake.faults({"action": "patch", "route": "retrieve", "fields": {
        "seconds": "²", "prompt": f"a {evil} prompt", "model": f"m{evil}", "size": f"{evil}"}})
    s = make_sora(fake)
    r = s.run("import", video_id)
    assert r.returncode == 0, r.stderr
    job = s.job(r.stdout.strip())
    assert job["seconds"] == 0 and job["prompt"] == "a fine prompt" and job["model"] == "mfine"
    assert not CONTROL.search(json.dumps(job, ensure_ascii=False))


# -- point 14: terminal escapes from the server ------------------------------------------------


def test_request_ids_and_statuses_with_escapes_are_stored_clean(make_fake: MakeFake,
                                                                make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    evil = "\x1b[2J\x9b2Jreq\x1b]0;owned\x07_1"
    fake.faults({"action": "error", "route": "create", "status": 400, "prompt": "refused",
                 "headers": {"x-request-id": evil}},
                {"action": "patch", "route": "retrieve", "headers": {"x-request-id": evil},
                 "fields": {"status": f"thinking{evil}"}})
    s = make_sora(fake, SORA_MAX_RETRIES="0")
    refused = s.ok("submit", "refused").strip()
    assert s.run("wait", refused, "--timeout", "60").returncode == 1
    fine = s.ok("submit", "a status with escapes").strip()
    assert s.run("wait", fine, "--timeout", "60").returncode == 0
    outputs: list[str] = [s.ok("status", refused, fine), s.ok("list", "--json")]
    for job_id in (refused, fine):
        outputs.append(s.ok("logs", job_id))
    r = s.run("wait", refused, fine)
    outputs.append(r.stdout + r.stderr)
    assert "req_1" in s.job(refused)["error"]["request_id"]
    for text in outputs:
        assert not CONTROL.search(text.replace("\n", "").replace("\t", "")), repr(text)
    s.stop_runner()
    with sqlite3.connect(s.home / "sora.db") as db:
        rows: list[Any] = db.execute("SELECT * FROM jobs").fetchall()
        rows += db.execute("SELECT * FROM events").fetchall()
    for row in rows:
        for value in row:
            assert not (isinstance(value, str) and CONTROL.search(value)), row


# -- point 15: a delete the server did not do --------------------------------------------------


def test_delete_remote_that_the_server_refuses_keeps_the_job(make_fake: MakeFake,
                                                             make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    job_id = s.ok("submit", "not really deleted").strip()
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    fake.faults({"action": "body", "route": "delete", "status": 200,
                 "text": '{"id": "x", "object": "video.deleted", "deleted": false}'})
    r = s.run("delete", job_id, "--remote", "--yes")
    assert r.returncode == 1 and "not deleted" in r.stderr, r.stderr
    assert s.job(job_id)["status"] == "completed"


# -- point 15: the runner cannot dump core -----------------------------------------------------


def test_the_runner_cannot_dump_core(make_fake: MakeFake, make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    s.ok("runner", "start")
    pid = wait_for(lambda: runner_pid(s), 10, "the runner")
    limits = Path(f"/proc/{pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core
