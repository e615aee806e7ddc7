"""Target 6: the cost of waiting. With many jobs running remotely, the runner makes at
most one retrieve per job per poll interval and sleeps in between.

A window is measured in the middle of the jobs' run, once every job is `running`:
the retrieves the fake server saw, and the runner's CPU time (from /proc) over it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from common import FakeServer, Section, by_route, proc_cpu, temp_home, wait_until
from runnerproc import RunnerChild, runner_env, seed_jobs


def _running(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
    finally:
        conn.close()
    return int(row[0])


def window(jobs: int, interval: float, span: float) -> tuple[int, float, float]:
    """(retrieves, runner CPU seconds, seconds) over a window while every job runs."""
    job_seconds = span + 12 * interval + 10
    with FakeServer(job_seconds=job_seconds, poll_after_ms=int(interval * 1000)) as fake, \
            temp_home() as home:
        seed_jobs(home, jobs, prompt="a time-lapse of clouds")
        child = RunnerChild(runner_env(home, fake.base_url, in_flight=jobs,
                                       poll_max_seconds=str(max(20.0, interval))))
        try:
            wait_until(lambda: _running(home / "sora.db") == jobs, 60, "all jobs running")
            time.sleep(interval)  # past the first polls
            before, cpu0, t0 = by_route(fake.stats()), proc_cpu(child.pid), time.monotonic()
            time.sleep(span)
            after, cpu1, t1 = by_route(fake.stats()), proc_cpu(child.pid), time.monotonic()
        finally:
            child.proc.terminate()
            child.finish(timeout=30)
    return after.get("retrieve", 0) - before.get("retrieve", 0), cpu1 - cpu0, t1 - t0


def bench(quick: bool) -> Section:
    jobs, fast, slow, span = (5, 1.0, 2.0, 1.5) if quick else (100, 2.0, 10.0, 20.0)
    section = Section(f"6. Polling cost ({jobs} jobs running)")
    (r_fast, c_fast, s_fast), (r_slow, c_slow, s_slow) = (window(jobs, fast, span),
                                                          window(jobs, slow, span))
    for interval, retrieves, took in ((fast, r_fast, s_fast), (slow, r_slow, s_slow)):
        per = retrieves / (jobs * took / interval)
        section.add(f"retrieves per job per interval (hint {interval:g} s)", f"{per:.2f}",
                    "<= 1", per <= 1.0 + 0.5 / (took / interval),
                    f"{retrieves} retrieves in {took:.1f} s")
    # CPU = waiting + per_retrieve x retrieves: two windows, two unknowns.
    rate_fast, rate_slow = r_fast / s_fast, r_slow / s_slow
    per_retrieve = (c_fast / s_fast - c_slow / s_slow) / max(rate_fast - rate_slow, 1e-9)
    waiting = max(0.0, c_slow / s_slow - per_retrieve * rate_slow)
    section.add("runner CPU while waiting (not polling)", f"{waiting * 100:.1f}% of a core",
                "near zero (<= 1%)", waiting <= 0.01,
                f"CPU {c_fast / s_fast * 100:.1f}% at hint {fast:g} s, "
                f"{c_slow / s_slow * 100:.1f}% at {slow:g} s")
    section.add("runner CPU per retrieve (poll + store update)",
                f"{per_retrieve * 1000:.2f} ms", "", None)
    section.notes.append(
        f"Two windows of {span:g} s while all {jobs} jobs were `running`, with poll hints "
        f"of {fast:g} s and {slow:g} s. The runner's CPU (from /proc/PID/stat) is split into "
        "a part per retrieve and a part that is there without polls (the idle loop, "
        "heartbeats): two windows, two unknowns. The retrieve limit allows half an interval "
        "of phase at the window's edges.")
    return section
