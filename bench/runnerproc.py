"""The sora runner as a child of the bench: jobs seeded into a store, then
`python -m sora_cli runner serve` run to its idle exit and reaped with wait4 (its
CPU time and peak RSS, as the kernel counted them)."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

from common import PY, Proc, child_env, finish

RUNNER_ARGV = [PY, "-m", "sora_cli", "runner", "serve"]


def seed_jobs(home: Path, count: int, prompt: str = "a red fox in the snow") -> list[str]:
    from sora_cli.config import ensure_home
    from sora_cli.domain.jobs import VideoRequest
    from sora_cli.store.repository import Store

    ensure_home(home)
    with Store.open(home / "sora.db") as store:
        jobs = store.add_jobs([VideoRequest(prompt=f"{prompt}, take {n}")
                               for n in range(count)])
    return [job.id for job in jobs]


def runner_env(home: Path, base_url: str, *, in_flight: int,
               **settings: str) -> dict[str, str]:
    return child_env(home, OPENAI_BASE_URL=base_url, SORA_MAX_IN_FLIGHT=str(in_flight),
                     SORA_CREATES_PER_MINUTE="1000000", SORA_IDLE_EXIT_SECONDS="1",
                     **{f"SORA_{k.upper()}": v for k, v in settings.items()})


class RunnerChild:
    """`sora runner serve` started now; `finish()` waits for its idle exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.started_wall = time.time()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(RUNNER_ARGV, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, timeout: float) -> Proc:
        """Wait for its idle exit (terminating it after `timeout`); CPU and peak RSS."""
        return finish(self.proc, self.started, timeout)


def statuses(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall())
    finally:
        conn.close()


def last_completion(db: Path) -> float:
    conn = sqlite3.connect(db)
    try:
        value = conn.execute("SELECT max(completed_at) FROM jobs").fetchone()[0]
    finally:
        conn.close()
    return float(value or 0.0)


def download_seconds(db: Path) -> list[float]:
    """Per job: from the `downloading` transition to `completed` (bytes on disk, hashed,
    fsynced and renamed)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT d.job_id, min(d.at), max(c.at) FROM events d JOIN events c "
            "ON c.job_id = d.job_id AND c.kind = 'completed' WHERE d.kind = 'downloading' "
            "GROUP BY d.job_id").fetchall()
    finally:
        conn.close()
    return [done - began for _, began, done in rows]
