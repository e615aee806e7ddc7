"""End-to-end harness: real `sora` processes, a real detached runner, and
`sora fake-server` on 127.0.0.1, all under a temporary SORA_HOME.

Every server and runner started here stops by itself (idle exits) and is also
stopped at teardown. Waits are conditions with deadlines, never bare sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from waits import wait_until

from sora_cli.runner.spawn import runner_alive, runner_info

SORA = str(Path(sys.executable).with_name("sora"))
TEST_KEY = "sk-e2e-test-secret-key-0123456789"


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


def start_fake(*args: str, scheme: str = "http") -> FakeProc:
    """`sora fake-server ARGS` on a free port (https with --tls-cert); it exits by itself
    after 300 s without a request."""
    proc = subprocess.Popen(
        [SORA, "fake-server", "--port", "0", "--idle-exit", "300", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith(f"{scheme}://127.0.0.1:"), f"fake-server said {line!r}"
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

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`sora ARGS` in the background (pipes for stdout and stderr), stopped by
        stop_runner if it is still running then."""
        proc = subprocess.Popen([SORA, *args], env=self.env, cwd=self.cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.started.append(proc)
        return proc

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

    def stop_runner(self) -> None:
        """Stop what `start` started, and the runner if one holds this home's lock."""
        for proc in self.started:
            stop_proc(proc)
        if runner_alive(self.home / "runner.lock"):
            self.run("runner", "stop", "--timeout", "20")


MakeFake = Callable[..., FakeProc]  # conftest's make_fake
MakeSora = Callable[..., Sora]  # conftest's make_sora


def make_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `sora` with this home and API: quick polls, an idle exit
    after 3 s, no rate limit to speak of, and an unanswered create looked up 0.2 s after
    it began and settled 0.5 s later (the fake makes a video before it answers, or
    drops, a create; a test of a late create says how long to wait). Leases are long:
    a killed runner's jobs must be taken over at once (its lock is free), not when the
    lease ends. No inherited CA settings; `extra` wins."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "SORA_", "PYTEST_", "SSL_CERT_"))}
    env.update(
        SORA_HOME=str(home), OPENAI_BASE_URL=base_url, OPENAI_API_KEY=TEST_KEY,
        SORA_POLL_MIN_SECONDS="0.1", SORA_POLL_MAX_SECONDS="1", SORA_IDLE_EXIT_SECONDS="3",
        SORA_LEASE_SECONDS="300", SORA_MAX_IN_FLIGHT="8", SORA_CREATES_PER_MINUTE="100000",
        SORA_RECONCILE_PAUSE_SECONDS="0.2", SORA_SETTLE_MAX_SECONDS="0.5", NO_COLOR="1",
    )
    env.update(extra)
    return env


def kill_runner(s: Sora) -> int:
    """SIGKILL the live runner (found, like `sora runner status` finds it, by its lock
    file: no process to start while the moment lasts) and wait for its lock to drop."""
    pid = runner_pid(s)
    assert pid is not None, "no runner to kill"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not runner_alive(s.home / "runner.lock"), 10,
               "the killed runner's lock to drop")
    return pid


# --- helpers for the fault, security and store tests ---------------------------------

CRASH_ENV = "SORA_TEST_CRASH_AT"  # the runner's test-only crash seam (see sora_cli/runner/steps.py)


def read_store(s: Sora, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of the job store, read from its file without writing to it and without
    starting a process (cheap enough to poll; none before the store exists)."""
    import sqlite3

    if not (s.home / "sora.db").exists():
        return []
    conn = sqlite3.connect(f"file:{s.home / 'sora.db'}?mode=ro", uri=True, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def job_events(s: Sora, job_id: str) -> list[dict[str, Any]]:
    return read_store(s, "SELECT * FROM events WHERE job_id = ? ORDER BY id", (job_id,))


def stored_job(s: Sora, job_id: str) -> dict[str, Any] | None:
    """The job's row in the store (its columns: status, poll_count, error_code...)."""
    rows = read_store(s, "SELECT * FROM jobs WHERE id = ?", (job_id,))
    return rows[0] if rows else None


def runner_pid(s: Sora) -> int | None:
    """The pid the live runner wrote into its lock file (None when none holds it)."""
    info = runner_info(s.home / "runner.lock")
    return int(info["pid"]) if info and info.get("pid") else None


def wait_job(s: Sora, job_id: str, check: Callable[[dict[str, Any]], bool],
             timeout: float = 60.0, what: str = "the job") -> dict[str, Any]:
    """Wait until `check` holds for the job's row (`stored_job`); then the job as
    `sora status --json` shows it."""
    wait_until(lambda: (row := stored_job(s, job_id)) is not None and check(row), timeout,
               what)
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
