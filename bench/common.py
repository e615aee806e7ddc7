"""What every benchmark shares: child processes measured with wait4, statistics, a
throwaway SORA_HOME, the fake server in its own process, and a held runner lock.

Every process is started by this script and measured by the kernel (os.wait4 gives
its user+system CPU time and its peak RSS), so nothing is sampled or guessed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PY = sys.executable
SORA = str(Path(PY).parent / "sora")
API_KEY = "sk-bench-key"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Proc:
    """One finished child process, as the kernel saw it."""

    wall: float
    cpu: float  # user + system seconds
    max_rss_mib: float  # from wait4 (includes the parent's at fork) or sampled (finish)
    returncode: int
    stdout: bytes = b""


@dataclass
class Row:
    """A line of the results table: one target, its figure, and whether it is met."""

    section: str
    name: str
    figure: str
    target: str
    met: bool | None  # None: information only
    detail: str = ""


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, figure: str, target: str = "", met: bool | None = None,
            detail: str = "") -> None:
        self.rows.append(Row(self.title, name, figure, target, met, detail))


def child_env(home: Path | None, **extra: str) -> dict[str, str]:
    """The environment of a measured child: the user's, minus anything that would
    change what sora does, with warm bytecode caches allowed (as after pip install)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SORA_", "OPENAI_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(NO_COLOR="1", OPENAI_API_KEY=API_KEY)
    if home is not None:
        env["SORA_HOME"] = str(home)
    env.update(extra)
    return env


def run(argv: Sequence[str], env: dict[str, str], *, stdin: bytes | None = None,
        capture: bool = False, cwd: Path | None = None) -> Proc:
    """Run a child to its end; wall time from fork to reaping, CPU and peak RSS by wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), env=env, cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = b""
    if stdin is not None or capture:
        assert proc.stdin is not None or stdin is None
        if proc.stdin is not None:
            proc.stdin.write(stdin or b"")
            proc.stdin.close()
        if proc.stdout is not None:
            out = proc.stdout.read()
            proc.stdout.close()
    return reap(proc, start, out)


def reap(proc: subprocess.Popen[bytes], start: float, out: bytes = b"") -> Proc:
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Proc(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                proc.returncode, out)


def vm_hwm_mib(pid: int) -> float:
    """Peak RSS of a live process so far (VmHWM). Not wait4's ru_maxrss: that one
    starts from the parent's RSS at fork time (it survives exec)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def finish(proc: subprocess.Popen[bytes], start: float, timeout: float) -> Proc:
    """Wait for a child's exit (terminating it after `timeout`), sampling its peak RSS
    while it lives; then reap it with wait4 for its CPU time."""
    deadline = time.monotonic() + timeout
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT  # look, but leave it to wait4
    peak = 0.0
    while os.waitid(os.P_PID, proc.pid, flags) is None:
        peak = max(peak, vm_hwm_mib(proc.pid))
        if time.monotonic() > deadline:
            proc.terminate()
            deadline = float("inf")
        time.sleep(0.05)
    done = reap(proc, start)
    return Proc(done.wall, done.cpu, peak, done.returncode, done.stdout)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: Sequence[float], scale: float = 1000.0, unit: str = "ms") -> str:
    """'median (min-max) unit' of a sample."""
    if not xs:
        return "n/a"
    fmt = (lambda v: f"{v * scale:.0f}") if max(xs) * scale >= 100 else (
        lambda v: f"{v * scale:.1f}")
    return f"{fmt(median(xs))} ({fmt(min(xs))}-{fmt(max(xs))}) {unit}"


def ratio(a: Sequence[float], b: Sequence[float]) -> float:
    return median(a) / median(b)


@contextlib.contextmanager
def temp_home(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sora-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def runner_lock(home: Path) -> Iterator[None]:
    """Hold the runner lock of `home`: to sora, "a runner is alive" (and none is spawned)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(home / "runner.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": os.getpid(), "runner_id": "bench"}).encode())
        yield
    finally:
        os.close(fd)


class FakeServer:
    """`sora fake-server` in its own process (so its CPU is not the runner's)."""

    def __init__(self, *, job_seconds: float, video_bytes: int = 65536,
                 poll_after_ms: int = 1000) -> None:
        argv = [PY, "-m", "sora_cli.fake.server", "--port", "0", "--idle-exit", "900",
                "--job-seconds", str(job_seconds), "--video-bytes", str(video_bytes),
                "--poll-after-ms", str(poll_after_ms)]
        self.proc = subprocess.Popen(argv, env=child_env(None), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().decode().strip()
        if not self.base_url.startswith("http://"):
            self.close()
            raise RuntimeError("the fake server did not start")

    def get(self, path: str) -> Any:
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(root + path, timeout=30) as answer:
            return json.loads(answer.read())

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/_fake/stats")
        return data

    def create(self, prompt: str = "bench") -> str:
        body = json.dumps({"prompt": prompt, "model": "sora-2", "seconds": "4",
                           "size": "720x1280"}).encode()
        request = urllib.request.Request(
            self.base_url + "/videos", data=body, method="POST",
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            video_id: str = json.loads(answer.read())["id"]
        return video_id

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def by_route(stats: dict[str, Any]) -> dict[str, int]:
    routes = stats.get("requests_by_route")
    return dict(routes) if isinstance(routes, dict) else {}


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def wait_until(check: Any, timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)
