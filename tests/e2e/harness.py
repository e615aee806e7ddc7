"""End-to-end harness: real `sora` processes, a real detached runner, and
`sora fake-server` on 127.0.0.1, all under a temporary SORA_HOME.

Every server and runner started here stops by itself (idle exits) and is also
stopped at teardown. Waits are conditions with deadlines, never bare sleeps; what they
poll (a job's row, the runner's lock) is read from SORA_HOME's files, not by starting a
`sora` process each time.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waits import wait_until

from sora_cli.domain.jobs import JobStatus
from sora_cli.runner.spawn import runner_alive, runner_info

SORA = str(Path(sys.executable).with_name("sora"))
TEST_KEY = "sk-e2e-test-secret-key-0123456789"


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    return wait_until(predicate, timeout, what, interval=0.05)


@dataclass
class FakeProc:
    proc: subprocess.Popen[str]
    base_url: str

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.root + path, timeout=10) as r:
            return json.loads(r.read())

    def faults(self, *faults: dict[str, Any]) -> None:
        body = json.dumps({"faults": list(faults)}).encode()
        req = urllib.request.Request(self.root + "/_fake/faults", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_fake/stats"))

    def sha256(self, video_id: str) -> str:
        return str(self.get(f"/_fake/sha256/{video_id}")["sha256"])


def start_fake(*args: str) -> FakeProc:
    proc = subprocess.Popen(
        [SORA, "fake-server", "--port", "0", "--idle-exit", "300", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("http://127.0.0.1:"), f"fake-server said {line!r}"
    return FakeProc(proc, line)


def stop_proc(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Sora:
    """Runs the real `sora` executable with an isolated environment."""

    home: Path
    env: dict[str, str]
    cwd: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, *args: str, input: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SORA, *args], input=input, capture_output=True, text=True,
                              env={**self.env, **(env or {})}, cwd=self.cwd, timeout=timeout)

    def ok(self, *args: str, **kw: Any) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"sora {' '.join(args)} -> {r.returncode}: {r.stderr}"
        return r.stdout

    def job(self, ref: str) -> dict[str, Any]:
        return dict(json.loads(self.ok("status", ref, "--json")))

    def runner(self) -> dict[str, Any]:
        return dict(json.loads(self.ok("runner", "status", "--json")))

    def shell(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        path = f"{Path(SORA).parent}{os.pathsep}{self.env['PATH']}"
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env={**self.env, "PATH": path}, cwd=self.cwd, timeout=timeout)

    def stop_runner(self, *, after_submit: bool = False) -> None:
        """Stop this home's runner. Right after a submit, the runner it started may not
        hold its lock yet: `after_submit` waits for it (or for the work to be over), so
        it cannot come up after the stop and write to a store the test then inspects."""
        if after_submit:
            wait_for(lambda: runner_alive(self.home / "runner.lock")
                     or not JobStatus(self.newest()["status"]).is_active, 20,
                     "the runner to start")
        if runner_alive(self.home / "runner.lock"):
            self.run("runner", "stop", "--timeout", "20")

    def stored(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]] | None:
        """Rows of this home's SQLite store, read without writing to it or starting a
        process (cheap enough to poll): [] before the store exists, None when the store
        is not a SQLite file here (SORA_DATABASE_URL)."""
        if "SORA_DATABASE_URL" in self.env:
            return None
        if not (self.home / "sora.db").exists():
            return []
        conn = sqlite3.connect(f"file:{self.home / 'sora.db'}?mode=ro", uri=True, timeout=30)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def row(self, job_id: str) -> dict[str, Any] | None:
        """The job's row (its columns: status, remote_id, poll_count, error_code...), or
        None before it is recorded; `job` (a process) where the store is not a file."""
        rows = self.stored("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if rows is None:
            return self.job(job_id)
        return rows[0] if rows else None

    def newest(self) -> dict[str, Any]:
        """The row of the job `@last` names."""
        rows = self.stored("SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 1")
        if rows is None:
            return self.job("@last")
        assert rows, "no jobs yet"
        return rows[0]


MakeFake = Callable[..., FakeProc]  # tests/conftest.py's make_fake
MakeSora = Callable[..., Sora]  # tests/conftest.py's make_sora


def make_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `sora` with this home and API: quick polls, an idle exit
    after 3 s, and an unanswered create looked up 0.2 s after it began and settled 0.5 s
    later (the fake makes a video before it drops, or fails to answer, a create; a test
    of a create that lands later says how long to wait). `extra` wins."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "SORA_", "PYTEST_", "FAL_", "REPLICATE_",
                                "RUNWAYML_", "LUMAAI_", "MINIMAX_", "KLING_", "GOOGLE_",
                                "GEMINI_"))}
    env.update(
        SORA_HOME=str(home), OPENAI_BASE_URL=base_url, OPENAI_API_KEY=TEST_KEY,
        SORA_POLL_MIN_SECONDS="0.1", SORA_POLL_MAX_SECONDS="1", SORA_IDLE_EXIT_SECONDS="3",
        SORA_LEASE_SECONDS="6", SORA_RECONCILE_PAUSE_SECONDS="0.2",
        SORA_SETTLE_MAX_SECONDS="0.5", NO_COLOR="1",
    )
    env.update(extra)
    return env


FAL_TEST_KEY = "fal-e2e-key:0123456789abcdef"
REPLICATE_TEST_KEY = "r8_e2e_0123456789abcdefghij"
DIRECT_TEST_KEYS = {"RUNWAYML_API_SECRET": "key_e2e_runway_0123456789abcdef",
                    "LUMAAI_API_KEY": "luma-e2e-0123456789abcdef",
                    "MINIMAX_API_KEY": "mm-e2e-0123456789abcdef"}
KLING_TEST_KEYS = ("kling-fake-access-key", "kling-fake-secret-key")  # the fake's default pair


def provider_env(fake: FakeProc) -> dict[str, str]:
    """Where the fake serves each provider family, and their keys, as sora reads them
    (Vertex's credentials: `vertex_env`)."""
    urls = fake.get("/_fake/urls")
    return {"SORA_FAL_BASE_URL": urls["fal"], "SORA_FAL_PLATFORM_URL": urls["fal_platform"],
            "SORA_REPLICATE_BASE_URL": urls["replicate"], "FAL_KEY": FAL_TEST_KEY,
            "REPLICATE_API_TOKEN": REPLICATE_TEST_KEY,
            "SORA_RUNWAY_BASE_URL": urls["runway"], "SORA_LUMA_BASE_URL": urls["luma"],
            "SORA_MINIMAX_BASE_URL": urls["minimax"], **DIRECT_TEST_KEYS,
            "SORA_VERTEX_BASE_URL": urls["vertex"], "SORA_VERTEX_STORAGE_URL": urls["gcs"],
            "SORA_KLING_BASE_URL": urls["kling"], "KLING_ACCESS_KEY": KLING_TEST_KEYS[0],
            "KLING_SECRET_KEY": KLING_TEST_KEYS[1]}


def vertex_env(fake: FakeProc, where: Path, **extra: str) -> dict[str, str]:
    """Application Default Credentials for the fake: a service-account file in `where`
    whose token_uri is the fake's token endpoint, its key registered with the fake."""
    from google_sa import service_account

    sa = service_account(where, fake.get("/_fake/urls")["google_token"])
    body = json.dumps(sa.registration).encode()
    req = urllib.request.Request(fake.root + "/_fake/google-keys", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
    return {"GOOGLE_APPLICATION_CREDENTIALS": str(sa.path), "SORA_VERTEX_PROJECT": "sora-e2e",
            **extra}


def kill_runner(s: Sora) -> int:
    pid = runner_pid(s)
    assert pid is not None, "no runner to kill"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not runner_alive(s.home / "runner.lock"), 10,
             "the killed runner's lock to drop")
    return pid


# --- helpers for the fault, security and store tests ---------------------------------

CRASH_ENV = "SORA_TEST_CRASH_AT"  # the runner's test-only crash seam (sora_cli/runner/crash.py)


def job_events(s: Sora, job_id: str) -> list[dict[str, Any]]:
    """A job's events, read from the store file without writing to it."""
    return s.stored("SELECT * FROM events WHERE job_id = ? ORDER BY id", (job_id,)) or []


def runner_pid(s: Sora) -> int | None:
    """The live runner's pid, from its lock file (as `sora runner status` finds it)."""
    info = runner_info(s.home / "runner.lock")
    pid = info.get("pid") if info is not None else None
    return pid if isinstance(pid, int) else None


def wait_job(s: Sora, job_id: str, check: Callable[[dict[str, Any]], bool],
             timeout: float = 60.0, what: str = "the job") -> dict[str, Any]:
    """Wait until `check` holds for the job's row (`Sora.row`); then the job as
    `sora status --json` shows it."""
    wait_for(lambda: (row := s.row(job_id)) is not None and check(row), timeout, what)
    return s.job(job_id)


def assert_saved_once(s: Sora, fake: FakeProc, job_id: str) -> dict[str, Any]:
    """The job completed with the server's exact bytes, from exactly one create."""
    job = s.job(job_id)
    assert job["status"] == "completed", job
    path = Path(job["output_path"])
    assert path.stat().st_size == job["bytes"]
    assert job["sha256"] == fake.sha256(job["remote_id"])
    creates = fake.stats()["creates_by_prompt"][job["prompt"]]
    assert creates == 1, f"{creates} creates for one job"
    assert not list(s.home.glob("videos/*.partial")), "a partial file was left behind"
    return job


def stop_all(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        stop_proc(proc)


def start_fake_url(*args: str, scheme: str = "http") -> FakeProc:
    """Like start_fake, for servers whose URL is not plain http (TLS)."""
    proc = subprocess.Popen(
        [SORA, "fake-server", "--port", "0", "--idle-exit", "300", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith(f"{scheme}://127.0.0.1:"), f"fake-server said {line!r}"
    return FakeProc(proc, line)


def limited(*, file_size: int | None = None, no_root_powers: bool = False
            ) -> Callable[[], None]:
    """A preexec_fn: cap the size of files the process (and its children) may write, and/or
    take away root's power to ignore file permissions (so chmod means something as root)."""

    def setup() -> None:
        if file_size is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
        if no_root_powers and os.geteuid() == 0:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
                if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return setup


def run_limited(s: Sora, *args: str, preexec: Callable[[], None], timeout: float = 120,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SORA, *args], capture_output=True, text=True, timeout=timeout,
                          env={**s.env, **(env or {})}, cwd=s.cwd, preexec_fn=preexec)


def proc_memory_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def quick_fake(make: Callable[..., FakeProc], *args: str, scheme: str = "http") -> FakeProc:
    """A fake whose jobs take 0.3 s, polled every 0.1 s (`make` is the make_fake fixture)."""
    return make("--job-seconds", "0.3", "--poll-after-ms", "100", *args, scheme=scheme)
