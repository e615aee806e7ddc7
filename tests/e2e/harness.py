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
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SORA = str(Path(sys.executable).with_name("sora"))
TEST_KEY = "sk-e2e-test-secret-key-0123456789"


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


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

    def stop_runner(self) -> None:
        info = self.runner()
        if info["running"]:
            self.run("runner", "stop", "--timeout", "20")


def make_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "SORA_", "PYTEST_"))}
    env.update(
        SORA_HOME=str(home), OPENAI_BASE_URL=base_url, OPENAI_API_KEY=TEST_KEY,
        SORA_POLL_MIN_SECONDS="0.1", SORA_POLL_MAX_SECONDS="1", SORA_IDLE_EXIT_SECONDS="3",
        SORA_LEASE_SECONDS="6", NO_COLOR="1",
    )
    env.update(extra)
    return env


def kill_runner(s: Sora) -> int:
    pid = int(s.runner()["pid"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not s.runner()["running"], 10, "the killed runner's lock to drop")
    return pid
