"""Target 5: one big video from the fake server, by the runner and by `curl -o`, and
the runner's peak RSS at two sizes (it must not grow with the file).

The runner's download time runs from the job's `downloading` transition to its
`completed` one: the bytes streamed to the `.partial` file, hashed, fsynced and
renamed. curl only writes; `curl + fsync` adds a `sync` of its file for a like for
like figure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from common import API_KEY, FakeServer, Section, child_env, temp_home
from runnerproc import RunnerChild, download_seconds, runner_env, seed_jobs, statuses

MIB = 2**20


def curl(fake: FakeServer, video_id: str, dest: Path) -> tuple[float, float]:
    """Seconds for `curl -o`, and for curl plus the fsync of what it wrote."""
    url = f"{fake.base_url}/videos/{video_id}/content"
    started = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", str(dest), "-H", f"Authorization: Bearer {API_KEY}",
                    url], check=True, env=child_env(None))
    took = time.perf_counter() - started
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return took, time.perf_counter() - started


def runner_download(fake: FakeServer) -> tuple[float, float, int]:
    """(seconds, runner peak RSS MiB, bytes) for one job downloaded by the runner."""
    with temp_home() as home:
        seed_jobs(home, 1, prompt="a slow pan over a glacier")
        child = RunnerChild(runner_env(home, fake.base_url, in_flight=1,
                                       poll_min_seconds="0.05"))
        proc = child.finish(timeout=600)
        if statuses(home / "sora.db").get("completed") != 1:
            raise RuntimeError("the runner did not download the video")
        took = download_seconds(home / "sora.db")[0]
        size = sum(p.stat().st_size for p in (home / "videos").glob("*.mp4"))
    return took, proc.max_rss_mib, size


def bench(quick: bool) -> Section:
    sizes = [8 * MIB, 32 * MIB] if quick else [100 * MIB, 1024 * MIB]
    section = Section(f"5. Download ({sizes[-1] // MIB} MiB video)")
    rss: dict[int, float] = {}
    for size in sizes:
        with FakeServer(job_seconds=0.2, video_bytes=size, poll_after_ms=50) as fake:
            took, rss[size], got = runner_download(fake)
            if got != size:
                raise RuntimeError(f"downloaded {got} bytes, expected {size}")
            if size == sizes[-1] and shutil.which("curl") is None:
                section.add("runner throughput vs curl -o", "curl is not installed", ">= 0.8x")
            elif size == sizes[-1]:
                with temp_home() as work:
                    video = fake.create("curl")
                    time.sleep(0.5)
                    curl_s, curl_sync_s = curl(fake, video, work / "curl.mp4")
                    shutil.rmtree(work, ignore_errors=True)
                mine, theirs = size / took / MIB, size / curl_s / MIB
                section.add("runner throughput vs curl -o", f"{mine / theirs:.2f}x; "
                            f"{mine:.0f} vs {theirs:.0f} MiB/s", ">= 0.8x", mine / theirs >= 0.8,
                            f"curl + fsync {size / curl_sync_s / MIB:.0f} MiB/s")
    big, small = sizes[-1], sizes[0]
    section.add(f"runner peak RSS, {big // MIB} MiB video", f"{rss[big]:.0f} MiB", "<= 80 MiB",
                rss[big] <= 80)
    growth = rss[big] - rss[small]
    section.add(f"RSS growth {small // MIB} -> {big // MIB} MiB", f"{growth:+.1f} MiB",
                "flat (< 5 MiB)", growth < 5, f"{rss[small]:.0f} MiB at {small // MIB} MiB")
    section.notes.append(
        "Runner: the whole process's peak RSS (VmHWM, sampled while it runs); its "
        "download time from the job's `downloading` to its `completed` event (streamed to "
        "the partial file, sha256, fsync, rename). Both clients fetch from the same "
        "fake-server process in turn.")
    return section
