"""Finding and starting the runner: one per store, guarded by an OS file lock.

The runner holds an exclusive `flock` on `runner.lock` for its whole life, and
writes its pid, id and start time into that file. The kernel drops the lock
when the process dies however it dies, so there is no stale pid file to clean
up: "is a runner alive?" is "is the lock taken?".
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sora_cli.config import ensure_home

LOCK_RETRY_SECONDS = 1.0
HAND_OVER_SECONDS = 15.0  # how long a runner without the key may take to stop
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # never write through a link planted in SORA_HOME


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | NO_FOLLOW, 0o600)


def runner_alive(lock_path: Path) -> bool:
    """True when some process holds the runner lock (a shared probe, released at once)."""
    if not lock_path.exists():
        return False
    fd = _open_lock(lock_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a probe lock we may have taken
    return False


def runner_info(lock_path: Path) -> dict[str, Any] | None:
    """What the live runner wrote into its lock file, or None when none is alive."""
    if not runner_alive(lock_path):
        return None
    import json  # not at the top: `sora --help` never needs it

    try:
        info = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    return info if isinstance(info, dict) else {}


@contextmanager
def hold_runner_lock(lock_path: Path, info: dict[str, Any]) -> Iterator[bool]:
    """Take the runner lock for the life of the block; yields False when another holds it.

    Probes hold the lock shared for microseconds, so a few quick retries tell a
    probe apart from a live runner.
    """
    import json

    fd = _open_lock(lock_path)
    try:
        deadline = time.monotonic() + LOCK_RETRY_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield True
    finally:
        os.close(fd)


def start_runner(home: Path, log_path: Path) -> None:
    """Start a detached runner: new session, no terminal, output to the log file.

    Its settings come from the same environment, so the API key travels in the
    environment, never in argv.
    """
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | NO_FOLLOW, 0o600)
    try:
        subprocess.Popen(
            [sys.executable, "-m", "sora_cli", "runner", "serve"],
            stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
            start_new_session=True, close_fds=True, cwd=home,
            # the runner must serve this very store, even when SORA_HOME was relative
            env={**os.environ, "SORA_HOME": str(home.resolve())},
        )
    finally:
        os.close(log_fd)


def ensure_runner(home: Path, lock_path: Path, log_path: Path) -> bool:
    """Start a runner when none is alive. Returns True when one was started."""
    ensure_home(home)
    if runner_alive(lock_path):
        return False
    start_runner(home, log_path)
    return True


def hand_over(lock_path: Path, keys: set[str]) -> bool:
    """Stop the live runner when it lacks one of `keys` (key variables this command has):
    a runner started without a key leaves those jobs untouched, and the next runner,
    started with this command's environment, works them. True when one was stopped."""
    import signal

    info = runner_info(lock_path)
    missing = set(info.get("missing_keys") or []) if info is not None else set()
    pid = info.get("pid") if info is not None else None
    if not (missing & keys) or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, signal.SIGTERM)  # graceful: it releases its leases
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + HAND_OVER_SECONDS
    while runner_alive(lock_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True
