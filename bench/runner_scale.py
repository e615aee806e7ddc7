"""Target 4: the runner at scale, side by side with the official SDK doing the same work.

Both talk to one `sora fake-server` process (jobs of `job_seconds`, the server's poll
hint), one after the other; the server counts the requests of each by route.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from common import PY, FakeServer, Proc, Section, by_route, child_env, finish, temp_home
from runnerproc import RunnerChild, last_completion, runner_env, seed_jobs, statuses

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Outcome:
    proc: Proc
    total: float  # seconds until the last job was done
    done: int
    requests: dict[str, int]


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def sora_run(fake: FakeServer, jobs: int, in_flight: int, timeout: float) -> Outcome:
    with temp_home() as home:
        seed_jobs(home, jobs)
        before = by_route(fake.stats())
        child = RunnerChild(runner_env(home, fake.base_url, in_flight=in_flight))
        proc = child.finish(timeout)
        total = last_completion(home / "sora.db") - child.started_wall
        done = statuses(home / "sora.db").get("completed", 0)
    return Outcome(proc, total, done, _delta(by_route(fake.stats()), before))


def sdk_run(fake: FakeServer, jobs: int, in_flight: int) -> Outcome:
    import subprocess

    with temp_home() as out:
        before = by_route(fake.stats())
        started = time.perf_counter()
        with open(out / "sdk.out", "wb") as report:
            popen = subprocess.Popen(
                [PY, str(HERE / "sdk_worker.py"), fake.base_url, str(jobs), str(in_flight),
                 str(out)], env=child_env(None), stdout=report, stderr=subprocess.DEVNULL)
            proc = finish(popen, started, timeout=3600)
        line = (out / "sdk.out").read_text().split()
    total, done = (float(line[0]), int(line[1])) if len(line) == 2 else (proc.wall, 0)
    return Outcome(proc, total, done, _delta(by_route(fake.stats()), before))


def bench(quick: bool) -> Section:
    jobs, in_flight, job_seconds = (20, 10, 1.0) if quick else (1000, 500, 10.0)
    poll_ms, video_bytes = 1000, 256 * 1024
    section = Section(f"4. Runner at scale ({jobs:,} jobs, {in_flight} in flight, "
                      f"{job_seconds:g} s jobs)")
    batches = math.ceil(jobs / in_flight)
    with FakeServer(job_seconds=job_seconds, video_bytes=video_bytes,
                    poll_after_ms=poll_ms) as fake:
        # The ideal includes the downloads: all the bytes at the server's own pace.
        probe = fake.create("probe")
        time.sleep(job_seconds + 0.2)
        t0 = time.perf_counter()
        fake.get(f"/_fake/sha256/{probe}")  # the server generating the bytes once
        per_video = time.perf_counter() - t0
        ideal = job_seconds * batches + per_video * jobs
        ours = sora_run(fake, jobs, in_flight, timeout=ideal * 10 + 60)
        sdk = sdk_run(fake, jobs, in_flight)
    allowed = job_seconds / (poll_ms / 1000) + 3
    for name, out in (("sora runner", ours), ("openai SDK, a thread per job", sdk)):
        per_job = sum(out.requests.values()) / max(out.done, 1)
        routes = ", ".join(f"{k} {v}" for k, v in sorted(out.requests.items()))
        mine = name == "sora runner"
        section.add(f"{name}: jobs done", f"{out.done}/{jobs}", f"{jobs}", out.done == jobs)
        section.add(f"{name}: total time", f"{out.total:.1f} s = {out.total / ideal:.2f}x ideal",
                    "<= 1.5x ideal" if mine else "", out.total <= 1.5 * ideal if mine else None,
                    f"ideal {ideal:.1f} s")
        section.add(f"{name}: peak RSS", f"{out.proc.max_rss_mib:.0f} MiB",
                    "<= 150 MiB" if mine else "", out.proc.max_rss_mib <= 150 if mine else None)
        section.add(f"{name}: CPU per job", f"{out.proc.cpu / jobs * 1000:.1f} ms",
                    "<= 15 ms" if mine else "", out.proc.cpu / jobs <= 0.015 if mine else None,
                    f"{out.proc.cpu:.1f} s in all")
        section.add(f"{name}: HTTP requests per job", f"{per_job:.1f}",
                    f"<= {allowed:g}" if mine else "", per_job <= allowed if mine else None,
                    routes)
    section.add("sora vs SDK: CPU", f"{ours.proc.cpu / max(sdk.proc.cpu, 1e-9):.2f}x",
                "< 1x", ours.proc.cpu < sdk.proc.cpu)
    section.add("sora vs SDK: peak RSS",
                f"{ours.proc.max_rss_mib / max(sdk.proc.max_rss_mib, 1e-9):.2f}x", "< 1x",
                ours.proc.max_rss_mib < sdk.proc.max_rss_mib)
    section.notes.append(
        f"Ideal = job duration x {batches} batch(es) + the server's time to produce every "
        f"video once ({per_video * 1000:.1f} ms per {video_bytes // 1024} KiB video). The "
        "runner's time runs from its launch (start-up included) to the last `completed_at` "
        "in the store. CPU: the whole process's, by wait4; peak RSS: its VmHWM, sampled "
        "every 50 ms while it runs (the same for the SDK). Poll hint "
        f"{poll_ms} ms.")
    return section
