"""The core flow end to end: real processes, a real detached runner, the fake server."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .harness import (
    SORA,
    TEST_KEY,
    FakeProc,
    Sora,
    kill_runner,
    make_env,
    runner_pid,
    start_fake,
    stop_proc,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.e2e


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_submit_wait_download_happy_path(sora: Sora, fake: FakeProc) -> None:
    r = sora.run("submit", "a corgi surfing at sunset", "--seconds", "8", "--size", "1280x720")
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    assert len(job_id) >= 8 and job_id.islower() and "\n" not in job_id

    out = sora.ok("wait", job_id[:4], "--download", "-o", "clips/")
    path = sora.cwd / "clips" / f"{job_id}.mp4"
    assert out.strip() == f"clips/{job_id}.mp4"  # as given: relative to the current dir
    job = sora.job(job_id)
    assert job["status"] == "completed" and job["progress"] == 100
    assert job["seconds"] == 8 and job["size"] == "1280x720"
    assert job["sha256"] == sha256_of(path) == fake.sha256(job["remote_id"])
    assert job["bytes"] == path.stat().st_size
    assert Path(job["output_path"]) == sora.home / "videos" / f"{job_id}.mp4"
    assert oct(os.stat(sora.home / "sora.db").st_mode & 0o777) == "0o600"
    assert oct(os.stat(sora.home).st_mode & 0o777) == "0o700"
    assert sora.job(job["remote_id"])["id"] == job_id  # the remote id resolves too
    assert fake.stats()["creates"] == 1


def test_scripting_pipeline_with_xargs(sora: Sora, fake: FakeProc) -> None:
    r = sora.shell('sora submit -q "a red fox" | xargs sora wait --download')
    assert r.returncode == 0, r.stderr
    (path,) = r.stdout.split()
    assert Path(sora.cwd, path).stat().st_size > 0
    r = sora.shell('path=$(sora submit "a lighthouse" --download -o out.mp4) && echo "[$path]"')
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[out.mp4]"
    assert "submitted" in r.stderr  # the id went to stderr


def test_moderation_failure_is_reported_and_kept(tmp_path: Path) -> None:
    fake = start_fake("--job-seconds", "0.5", "--poll-after-ms", "100",
                      "--fail-prompt", "forbidden")
    try:
        s = Sora(tmp_path / "h", make_env(tmp_path / "h", fake.base_url), tmp_path)
        job_id = s.ok("submit", "something forbidden").strip()
        r = s.run("wait", job_id)
        assert r.returncode == 1
        assert "moderation_blocked" in r.stderr and job_id in r.stderr
        job = s.job(job_id)
        assert job["status"] == "failed"
        assert job["error"]["code"] == "moderation_blocked"
        assert "moderation" in job["error"]["message"]
        assert s.run("status", job_id).returncode == 0  # status exits 0 whatever the state
        s.stop_runner()
    finally:
        stop_proc(fake.proc)


def test_injected_errors_never_duplicate_creates(tmp_path: Path) -> None:
    fake = start_fake("--job-seconds", "0.5", "--poll-after-ms", "100",
                      "--error-rate", "0.25", "--seed", "7")
    try:
        s = Sora(tmp_path / "h", make_env(tmp_path / "h", fake.base_url,
                                          SORA_MAX_IN_FLIGHT="4"), tmp_path)
        ids = [s.ok("submit", "-q", f"clip number {n}").strip() for n in range(6)]
        r = s.run("wait", *ids, "--timeout", "90")
        assert r.returncode == 0, r.stderr
        for job_id in ids:
            job = s.job(job_id)
            assert job["status"] == "completed", job
            assert job["sha256"] == fake.sha256(job["remote_id"])
        stats = fake.stats()
        assert stats["creates"] == 6
        assert all(n == 1 for n in stats["creates_by_prompt"].values())
        s.stop_runner()
    finally:
        stop_proc(fake.proc)


@pytest.mark.parametrize("action", ["create_then_drop", "create_then_error"])
def test_ambiguous_create_is_reconciled_not_resent(sora: Sora, fake: FakeProc,
                                                   action: str) -> None:
    prompt = f"ambiguous {action}"
    fake.faults({"action": action, "route": "create", "status": 500, "prompt": prompt})
    job_id = sora.ok("submit", prompt).strip()
    r = sora.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert sora.job(job_id)["status"] == "completed"
    assert fake.stats()["creates_by_prompt"][prompt] == 1
    kinds = [e for e in sora.ok("status", job_id, "--json").splitlines()]
    assert kinds  # the job is readable; its history is checked in the store tests


def test_runner_killed_mid_job_is_resumed_by_next_command(tmp_path: Path) -> None:
    fake = start_fake("--job-seconds", "3", "--poll-after-ms", "100")
    try:
        s = Sora(tmp_path / "h", make_env(tmp_path / "h", fake.base_url), tmp_path)
        job_id = s.ok("submit", "survive a crash").strip()
        wait_job(s, job_id, lambda j: j["status"] == "running", 30, "the job to be running")
        kill_runner(s)
        assert s.job(job_id)["status"] == "running"  # left as it was
        out = s.ok("wait", job_id, "--download", "--timeout", "60")
        assert Path(s.cwd, out.strip()).exists()
        assert s.job(job_id)["status"] == "completed"
        assert fake.stats()["creates"] == 1
        s.stop_runner()
    finally:
        stop_proc(fake.proc)


def test_twenty_parallel_submits(sora: Sora, fake: FakeProc) -> None:
    def one(n: int) -> subprocess.CompletedProcess[str]:
        return sora.run("submit", f"parallel {n}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results]
    assert all(r.stderr == "" for r in results)
    ids = {r.stdout.strip() for r in results}
    assert len(ids) == 20
    listed = [json.loads(line) for line in sora.ok("list", "--all", "--json").splitlines()]
    assert {j["id"] for j in listed} == ids
    assert sora.run("wait", "--all", "--timeout", "120").returncode == 0
    assert fake.stats()["creates"] == 20


def test_rejected_key_fails_the_job_with_the_servers_words(tmp_path: Path) -> None:
    fake = start_fake("--job-seconds", "0.5", "--api-key", "sk-the-right-one")
    try:
        s = Sora(tmp_path / "h", make_env(tmp_path / "h", fake.base_url), tmp_path)
        job_id = s.ok("submit", "no entry").strip()
        r = s.run("wait", job_id, "--timeout", "30")
        assert r.returncode == 4, (r.returncode, r.stderr)
        job = s.job(job_id)
        assert job["status"] == "failed" and job["error"]["http_status"] == 401
        assert job["error"]["request_id"].startswith("req_")
        assert fake.stats()["creates"] == 0
        s.stop_runner()
    finally:
        stop_proc(fake.proc)


def test_unreachable_base_url_fails_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = make_env(tmp_path / "h", f"http://127.0.0.1:{port}/v1", SORA_MAX_RETRIES="1")
    s = Sora(tmp_path / "h", env, tmp_path)
    job_id = s.ok("submit", "into the void").strip()
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1
    assert "cannot reach" in r.stderr or "connect" in r.stderr.lower()
    assert s.job(job_id)["error"]["code"] == "unreachable"
    s.stop_runner()


def test_runner_is_single_idles_out_and_keeps_the_key_secret(sora: Sora, fake: FakeProc) -> None:
    job_id = sora.ok("submit", "a secret-keeping job").strip()
    pid = wait_for(lambda: runner_pid(sora), 10, "runner")
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert TEST_KEY.encode() not in cmdline
    # a second runner started by hand finds the lock taken and exits quietly
    second = subprocess.run([SORA, "runner", "serve"], env=sora.env, capture_output=True,
                            text=True, timeout=30)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert sora.run("wait", job_id, "--download").returncode == 0
    wait_for(lambda: runner_pid(sora) is None, 30, "the idle runner to exit")
    for path in sora.home.rglob("*"):
        if path.is_file():
            assert TEST_KEY.encode() not in path.read_bytes(), path
    killed_twice = sora.run("status", job_id)
    assert killed_twice.returncode == 0


def test_stale_lock_never_blocks_a_new_runner(sora: Sora, fake: FakeProc) -> None:
    sora.ok("runner", "start")
    wait_for(lambda: runner_pid(sora), 10, "runner start")
    kill_runner(sora)
    job_id = sora.ok("submit", "after a crash").strip()
    assert sora.run("wait", job_id, "--timeout", "60").returncode == 0
