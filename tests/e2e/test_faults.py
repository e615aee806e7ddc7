"""Nothing lost, nothing paid twice: the runner under crashes and network faults.

Real `sora` processes, a real detached runner and `sora fake-server` with scheduled
faults. Every job must end `completed` with the server's exact bytes (the fake tells
the sha256 it served) or `failed` with a reason, and the fake's create counter must
show exactly one create per job.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .harness import (
    CRASH_ENV,
    FakeProc,
    MakeFake,
    MakeSora,
    Sora,
    assert_saved_once,
    job_events,
    kill_runner,
    proc_memory_kib,
    provider_env,
    runner_pid,
    vertex_env,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.e2e

@pytest.fixture
def make_sora(make_sora: MakeSora) -> MakeSora:
    """conftest's, for the fake's every provider family, with long leases: a crashed
    runner's jobs must be taken over at once, not when their leases end."""
    def make(fake: FakeProc, **env: str) -> Sora:
        return make_sora(fake, **{"SORA_LEASE_SECONDS": "300", **provider_env(fake), **env})

    return make


def runner_gone(s: Sora) -> bool:
    return runner_pid(s) is None


# The same faults against each provider family (a few representative cases each, for CI's
# time): the model a submit names, and so the adapter and the fake family that serve it.
MODELS = {"openai": [], "fal": ["-m", "fal:fal-ai/kling-video/v2.1/master/text-to-video"],
          "replicate": ["-m", "replicate:google/veo-3"],
          "runway": ["-m", "runway:gen4.5"], "luma": ["-m", "luma:ray-2"],
          "minimax": ["-m", "minimax:MiniMax-Hailuo-2.3"],
          "vertex": ["-m", "vertex:veo-3.1-generate-001"],
          "kling": ["-m", "kling:kling-v2-1-master"]}


def creds(provider: str, fake: FakeProc, where: Path, **extra: str) -> dict[str, str]:
    """Vertex's service-account file (its token endpoint is the fake's); others' keys
    are in provider_env."""
    return vertex_env(fake, where, **extra) if provider == "vertex" else {}


# -- 1. SIGKILL of the runner in each phase ---------------------------------------------


@pytest.mark.parametrize(("provider", "point", "left_as", "creates"), [
    ("openai", "after_claim", "queued", 0),        # claimed, nothing done yet
    ("openai", "before_create", "submitting", 0),  # marked submitting, the request never left
    ("openai", "after_create", "submitting", 1),   # answered; the remote id was not stored
    ("openai", "before_complete", "downloading", 1),  # the file is saved; not yet completed
    ("fal", "after_create", "submitting", 1),
    ("fal", "before_complete", "downloading", 1),
    ("replicate", "after_create", "submitting", 1),
    ("replicate", "before_complete", "downloading", 1),
    ("runway", "before_complete", "downloading", 1),
    ("luma", "after_create", "submitting", 1),
    ("minimax", "before_complete", "downloading", 1),
    ("kling", "after_create", "submitting", 1),  # found again by its external_task_id
    ("vertex", "before_complete", "downloading", 1),
])
def test_runner_killed_at_a_step_boundary_is_resumed(
        make_fake: MakeFake, make_sora: MakeSora, tmp_path: Path, provider: str, point: str,
        left_as: str, creates: int) -> None:
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    s = make_sora(fake, SORA_REQUEST_TIMEOUT="2", **creds(provider, fake, tmp_path))
    prompt = f"crash {point} on {provider}"
    job_id = s.ok("submit", *MODELS[provider], prompt, env={CRASH_ENV: point}).strip()
    wait_for(lambda: runner_gone(s) and s.row(job_id)["status"] == left_as, 30,
             f"the runner to die at {point}")
    assert fake.stats()["creates"] == creates
    s.ok("status", job_id)  # any command brings a runner back
    wait_for(lambda: runner_pid(s) or s.row(job_id)["status"] == "completed", 15,
             "a new runner")
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(s, fake, job_id)
    assert job["create_attempts"] == (2 if point == "before_create" else 1)


def test_vertex_runner_killed_after_create_never_pays_twice(make_fake: MakeFake,
                                                           make_sora: MakeSora,
                                                           tmp_path: Path) -> None:
    """Vertex lists no operations: a create whose answer was lost is never sent again."""
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    s = make_sora(fake, SORA_REQUEST_TIMEOUT="2", **creds("vertex", fake, tmp_path))
    job_id = s.ok("submit", *MODELS["vertex"], "crash after a veo create",
                  env={CRASH_ENV: "after_create"}).strip()
    wait_for(lambda: runner_gone(s) and s.job(job_id)["status"] == "submitting", 30,
             "the runner to die after the create")
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1 and "create_unconfirmed" in s.job(job_id)["error"]["code"]
    assert fake.stats()["creates"] == 1


# A create the server answers (or makes its video) 2.5 s after it began: the runner's own
# pauses, 2 s and up to 10 s more (at most request_timeout), let it land before a re-send.
LATE = {"SORA_RECONCILE_PAUSE_SECONDS": "2", "SORA_SETTLE_MAX_SECONDS": "10"}


@pytest.mark.parametrize("action", ["create_then_stall", "stall_then_create"])
def test_runner_killed_during_the_create_request(make_fake: MakeFake, make_sora: MakeSora,
                                                 action: str) -> None:
    """Killed with the request in flight: the server made (or will make) the video."""
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    prompt = f"in flight {action}"
    fake.faults({"action": action, "route": "create", "prompt": prompt, "delay_ms": 2500})
    s = make_sora(fake, SORA_REQUEST_TIMEOUT="3", **LATE)
    job_id = s.ok("submit", prompt).strip()
    wait_for(lambda: fake.stats()["counters"].get("route:create", 0) >= 1, 20,
             "the create request to reach the server")
    assert s.job(job_id)["status"] == "submitting"
    kill_runner(s)
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert_saved_once(s, fake, job_id)
    assert "reconciled" in [e["kind"] for e in job_events(s, job_id)]


def test_runner_killed_while_polling(make_fake: MakeFake, make_sora: MakeSora) -> None:
    fake = make_fake("--job-seconds", "4", "--poll-after-ms", "100")
    s = make_sora(fake)
    job_id = s.ok("submit", "killed while polling").strip()
    wait_job(s, job_id, lambda j: j["status"] == "running" and j["poll_count"] > 0, 30)
    kill_runner(s)
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    assert_saved_once(s, fake, job_id)


def test_runner_killed_mid_download(make_fake: MakeFake, make_sora: MakeSora) -> None:
    size = 8 * 1024 * 1024
    fake = make_fake("--job-seconds", "0.3", "--poll-after-ms", "100",
                     "--video-bytes", str(size))
    fake.faults({"action": "slow", "route": "content", "delay_ms": 40})
    s = make_sora(fake)
    job_id = s.ok("submit", "killed mid-download").strip()

    def partial_file() -> Path | None:  # a private temp name: .<id>.mp4.<random>.partial
        found = list((s.home / "videos").glob(f".{job_id}.mp4.*.partial"))
        return found[0] if found and found[0].stat().st_size > 0 else None

    partial = wait_for(partial_file, 30, "a partial file")
    kill_runner(s)
    assert s.job(job_id)["status"] == "downloading"
    assert 0 < partial.stat().st_size < size
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    job = assert_saved_once(s, fake, job_id)
    assert job["bytes"] == size


# -- 2. Ambiguous creates -------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "action"), [
    ("openai", "create_then_stall"), ("openai", "stall_then_create"),
    ("fal", "stall_then_create"), ("replicate", "stall_then_create"),
    ("luma", "stall_then_create"), ("kling", "stall_then_create")])
def test_create_slower_than_the_client_timeout_is_not_sent_twice(
        make_fake: MakeFake, make_sora: MakeSora, provider: str, action: str) -> None:
    """The client gives up after 1 s; the server made the video before, or after that."""
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    prompt = f"slow server {action} on {provider}"
    fake.faults({"action": action, "route": "create", "prompt": prompt, "delay_ms": 2500})
    s = make_sora(fake, SORA_REQUEST_TIMEOUT="1", **LATE)
    job_id = s.ok("submit", *MODELS[provider], prompt).strip()
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(s, fake, job_id)
    assert job["create_attempts"] == 1
    kinds = [e["kind"] for e in job_events(s, job_id)]
    assert "create_unknown" in kinds and "reconciled" in kinds


@pytest.mark.parametrize("provider", ["runway", "minimax"])
def test_killed_after_a_create_no_list_can_find_fails_unconfirmed_and_pays_once(
        make_fake: MakeFake, make_sora: MakeSora, provider: str) -> None:
    """Answered, but the remote id was never stored, on a provider with no list: the
    job cannot be found again, so it fails create_unconfirmed; nothing is sent twice."""
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    s = make_sora(fake, SORA_REQUEST_TIMEOUT="2")
    prompt = f"crash after_create on {provider}"
    job_id = s.ok("submit", *MODELS[provider], prompt, env={CRASH_ENV: "after_create"}).strip()
    wait_for(lambda: runner_gone(s) and s.row(job_id)["status"] == "submitting", 30,
             "the runner to die after the create")
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1 and "create_unconfirmed" in r.stderr
    job = s.job(job_id)
    assert job["error"]["code"] == "create_unconfirmed" and job["create_attempts"] == 1
    assert fake.stats()["creates_by_prompt"][prompt] == 1


def test_identical_ambiguous_creates_adopt_one_video_each(make_fake: MakeFake,
                                                          make_sora: MakeSora) -> None:
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    prompt = "three identical twins"
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt,
                 "times": 3})
    s = make_sora(fake, SORA_MAX_IN_FLIGHT="4")
    ids = [s.ok("submit", "-q", prompt).strip() for _ in range(3)]
    r = s.run("wait", *ids, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    jobs = [s.job(i) for i in ids]
    assert all(j["status"] == "completed" for j in jobs), jobs
    assert len({j["remote_id"] for j in jobs}) == 3
    assert fake.stats()["creates_by_prompt"][prompt] == 3
    for j in jobs:
        assert j["sha256"] == fake.sha256(j["remote_id"])


def test_unreadable_remote_list_makes_the_job_wait_never_resend(make_fake: MakeFake,
                                                                make_sora: MakeSora) -> None:
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    prompt = "cannot tell yet"
    fake.faults({"action": "create_then_error", "route": "create", "prompt": prompt,
                 "status": 502},
                {"action": "error", "route": "list", "status": 503, "times": 6})
    s = make_sora(fake, SORA_MAX_RETRIES="1")
    job_id = s.ok("submit", prompt).strip()
    wait_for(lambda: any(e["kind"] == "reconcile_failed" for e in job_events(s, job_id)), 30,
             "a failed reconciliation")
    assert s.job(job_id)["status"] == "submitting"  # waiting, not guessing
    assert fake.stats()["creates_by_prompt"][prompt] == 1
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    assert_saved_once(s, fake, job_id)
    failed = [e for e in job_events(s, job_id) if e["kind"] == "reconcile_failed"]
    assert "waits" in failed[0]["message"]


# -- 3. A flaky network for a whole run -----------------------------------------------------

SOAK_JOBS = int(os.environ.get("SORA_SOAK_JOBS", "30"))


def finished_jobs(s: Sora) -> int:
    """How many jobs are final, read from the store without starting a process."""
    import sqlite3

    conn = sqlite3.connect(f"file:{s.home / 'sora.db'}?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT count(*) FROM jobs WHERE status IN "
                           "('completed', 'failed', 'cancelled')").fetchone()
        return int(row[0])
    finally:
        conn.close()


@pytest.mark.soak
def test_soak_flaky_network_loses_nothing_and_pays_once(make_fake: MakeFake,
                                                        make_sora: MakeSora) -> None:
    """SORA_SOAK_JOBS jobs (30 by default, 200 for the full soak) through 10% 429 with
    hints, 10% 5xx, 5% dropped connections and 10% truncated downloads."""
    from concurrent.futures import ThreadPoolExecutor

    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100", "--seed", "4",
                     "--video-bytes", "300000",
                     "--fault-mix", "429=0.1,500=0.05,503=0.05,drop=0.05,truncate=0.1")
    s = make_sora(fake, SORA_MAX_IN_FLIGHT="10", SORA_CREATES_PER_MINUTE="100000",
                  SORA_MAX_RETRIES="8", SORA_REQUEST_TIMEOUT="2", SORA_IDLE_EXIT_SECONDS="30",
                  SORA_POLL_MAX_SECONDS="0.5")
    prompts = [f"soak clip {n:03d}" for n in range(SOAK_JOBS)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: s.run("submit", "-q", p), prompts))
    assert [r.returncode for r in results] == [0] * SOAK_JOBS, [r.stderr for r in results]
    ids = [r.stdout.strip() for r in results]
    pid = wait_for(lambda: runner_pid(s), 15, "the runner")

    samples: list[tuple[int, int]] = []  # (jobs finished, runner RSS in KiB)
    deadline = time.monotonic() + 60 + SOAK_JOBS * 3
    while True:
        done = finished_jobs(s)
        samples.append((done, proc_memory_kib(pid)))  # raises if the runner died
        if done == SOAK_JOBS:
            break
        assert time.monotonic() < deadline, f"only {done} of {SOAK_JOBS} jobs finished"
        time.sleep(0.5)

    assert runner_pid(s) == pid, "the runner died or restarted during the soak"
    for job_id in ids:
        job = s.job(job_id)
        assert job["status"] == "completed", job
        assert job["sha256"] == fake.sha256(job["remote_id"])
    stats = fake.stats()
    assert stats["creates"] == SOAK_JOBS
    assert sorted(stats["creates_by_prompt"]) == prompts
    assert set(stats["creates_by_prompt"].values()) == {1}
    # memory stays flat: from a quarter of the run to its end, at most a few MiB more
    early = [rss for n, rss in samples if n >= SOAK_JOBS // 4]
    assert early, samples
    growth_mib = (max(early) - early[0]) / 1024
    assert growth_mib < 25, f"runner memory grew {growth_mib:.1f} MiB: {samples}"
    assert "Traceback" not in (s.home / "runner.log").read_text()


# -- 4. Downloads ----------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "ranges"), [
    ("openai", True), ("openai", False), ("fal", True), ("replicate", True),
    ("runway", True), ("minimax", True), ("vertex", True), ("kling", True)],
    ids=["range", "no-range", "fal-cdn", "replicate-cdn", "runway-signed", "minimax-file-hop",
         "vertex-gcs", "kling-cdn"])
def test_truncated_download_is_resumed_or_restarted(make_fake: MakeFake, make_sora: MakeSora,
                                                    tmp_path: Path, provider: str,
                                                    ranges: bool) -> None:
    fake = make_fake("--job-seconds", "0.3", "--poll-after-ms", "100",
                     "--video-bytes", "1000000", *([] if ranges else ["--no-range"]))
    fake.faults({"action": "truncate", "route": "content", "times": 2})
    # Vertex: a video in the user's bucket, fetched from GCS (an inline one is no file)
    s = make_sora(fake, **creds(provider, fake, tmp_path,
                                SORA_VERTEX_STORAGE_URI="gs://sora-e2e/out"))
    job_id = s.ok("submit", *MODELS[provider], f"truncated {ranges} on {provider}").strip()
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    assert_saved_once(s, fake, job_id)
    counters = fake.stats()["counters"]
    assert counters["route:content"] == 3
    assert counters.get("range_requests", 0) == 2  # asked to resume each time


def test_disk_full_leaves_no_partial_and_a_later_download_succeeds(
        make_fake: MakeFake, make_sora: MakeSora) -> None:
    from .harness import limited, run_limited

    size = 6 * 1024 * 1024
    fake = make_fake("--job-seconds", "0.3", "--poll-after-ms", "100",
                     "--video-bytes", str(size))
    s = make_sora(fake)
    cap = limited(file_size=2 * 1024 * 1024)  # inherited by the runner that submit starts
    r = run_limited(s, "submit", "no room for this", preexec=cap)
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    job = wait_job(s, job_id, lambda j: j["status"] == "failed", 60)
    assert job["error"]["code"] == "download_failed"
    assert "File too large" in job["error"]["message"]
    assert "cannot write" in job["error"]["message"]
    assert not list((s.home / "videos").iterdir())  # no partial file, no half video
    assert fake.stats()["creates"] == 1

    r = run_limited(s, "download", job_id, "-o", "clip.mp4", preexec=cap)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and "File too large" in r.stderr
    assert not list(s.cwd.iterdir())

    out = s.ok("download", job_id, "-o", "clip.mp4")  # space is back
    saved = s.cwd / out.strip()
    assert saved.stat().st_size == size
    import hashlib

    assert hashlib.sha256(saved.read_bytes()).hexdigest() == fake.sha256(job["remote_id"])
    assert fake.stats()["creates"] == 1


def _expire_quickly(make_fake: MakeFake, make_sora: MakeSora) -> tuple[Sora, str]:
    # The server deletes the assets 1 s after creation; the video takes 1.5 s.
    fake = make_fake("--job-seconds", "1.5", "--poll-after-ms", "100", "--expire-seconds", "1")
    s = make_sora(fake)
    job_id = s.ok("submit", "gone too soon").strip()
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1
    assert "expired" in r.stderr
    return s, job_id


def test_expired_video_fails_with_a_clear_message(make_fake: MakeFake,
                                                  make_sora: MakeSora) -> None:
    s, job_id = _expire_quickly(make_fake, make_sora)
    job = s.job(job_id)
    assert job["error"]["code"] == "expired"
    assert "expired" in job["error"]["message"] and job["remote_id"] in job["error"]["message"]
    r = s.run("download", job_id, "-o", "late.mp4")
    assert r.returncode == 1 and "expired" in r.stderr
    assert not (s.cwd / "late.mp4").exists()


def test_expired_video_gets_its_own_state(make_fake: MakeFake, make_sora: MakeSora) -> None:
    s, job_id = _expire_quickly(make_fake, make_sora)
    assert s.job(job_id)["status"] == "expired"


# -- 7. Time ----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-2 * 86400, 3 * 3600], ids=["2-days-behind", "3-h-ahead"])
def test_server_clock_far_from_ours(make_fake: MakeFake, make_sora: MakeSora,
                                    offset: int) -> None:
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100",
                     "--clock-offset", str(offset))
    prompt = f"skewed clock {offset}"
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
    s = make_sora(fake, SORA_REQUEST_TIMEOUT="2")
    job_id = s.ok("submit", prompt).strip()
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(s, fake, job_id)
    assert "reconciled" in [e["kind"] for e in job_events(s, job_id)]
    from datetime import datetime

    expires = datetime.fromisoformat(job["expires_at"].replace("Z", "+00:00")).timestamp()
    assert abs(expires - (time.time() + 86400)) < 600  # on our clock: about a day from now


@pytest.mark.parametrize("hint_ms", [0, 3_600_000], ids=["zero", "an-hour"])
def test_poll_hints_are_clamped(make_fake: MakeFake, make_sora: MakeSora,
                                hint_ms: int) -> None:
    fake = make_fake("--job-seconds", "2", "--poll-after-ms", str(hint_ms))
    s = make_sora(fake, SORA_POLL_MIN_SECONDS="0.5", SORA_POLL_MAX_SECONDS="1")
    job_id = s.ok("submit", f"hint {hint_ms}").strip()
    started = time.monotonic()
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    assert time.monotonic() - started < 15  # an hour's hint is clamped to poll_max_seconds
    polls = fake.stats()["counters"]["route:retrieve"]
    assert 2 <= polls <= 2 / 0.5 + 3  # a zero hint is clamped to poll_min_seconds
    assert_saved_once(s, fake, job_id)
