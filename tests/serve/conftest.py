"""Fixtures for `sora serve`: a real `sora serve --port 0` process on 127.0.0.1 with its
SORA_HOME under the test's temp dir, in front of a real `sora fake-server` (see
tests/e2e/harness.py). Every process started here is stopped at teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.harness import SORA, FakeProc, MakeFake, Sora, make_env, stop_proc, wait_for


@dataclass
class Served:
    """A running `sora serve`, its environment and an HTTP client for it."""

    proc: subprocess.Popen[str]
    url: str
    sora: Sora  # the CLI on the same store
    token: str | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        c = httpx.Client(base_url=self.url, timeout=30, headers=headers, **kw)
        self.clients.append(c)
        return c

    def submit(self, client: httpx.Client, **body: Any) -> dict[str, Any]:
        r = client.post("/api/jobs", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def wait_job(self, client: httpx.Client, job_id: str, status: str = "completed",
                 timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            job = dict(client.get(f"/api/jobs/{job_id}").json())
            return job if job["status"] == status else None

        return dict(wait_for(check, timeout, f"job {job_id} to be {status}"))

    def stop(self) -> int:
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sora.stop_runner()
        return self.proc.returncode


def start_serve(home: Path, fake: FakeProc, *args: str, **env: str) -> Served:
    s = Sora(home, make_env(home, fake.base_url, **env), home.parent)
    proc = subprocess.Popen([SORA, "serve", "--port", "0", *args], env=s.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("http://127.0.0.1:"):
        stop_proc(proc)
        said = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"sora serve said {line!r}: {said}")
    return Served(proc, line, s, token=env.get("SORA_SERVE_TOKEN"))


MakeServed = Callable[..., Served]


@pytest.fixture
def fake(make_fake: MakeFake) -> FakeProc:
    return make_fake("--job-seconds", "1", "--poll-after-ms", "100", "--fail-prompt", "forbidden")


@pytest.fixture
def make_served(tmp_path: Path, fake: FakeProc) -> Iterator[MakeServed]:
    started: list[Served] = []

    def make(*args: str, **env: str) -> Served:
        served = start_serve(tmp_path / f"home{len(started)}", fake, *args, **env)
        started.append(served)
        return served

    yield make
    for served in started:
        served.stop()


@pytest.fixture
def served(make_served: MakeServed) -> Served:
    return make_served()


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs, and ("comment", text) for comment lines, from an SSE stream."""
    event, data = "message", []
    for line in lines:
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield event, "\n".join(data)
            event, data = "message", []


def job_json(data: str) -> dict[str, Any]:
    return dict(json.loads(data))


def free_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "OPENAI_"))}
