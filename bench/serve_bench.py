"""Target 7: `sora serve`. `GET /api/jobs/{id}` on a store of 200,000 jobs (against one of
100), and the runner's pace while 200 clients each poll a job once a second and hold an
event stream open (against the same work with no server and no clients).

The server is `sora serve` in its own process; the clients run in this process on one
asyncio loop (plain streams), so on a small machine they take CPU from the runner as well: the
figure is an upper bound on what serving costs the runner.
"""

from __future__ import annotations

import asyncio
import http.client
import random
import subprocess
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from common import (
    SORA,
    FakeServer,
    Proc,
    Section,
    child_env,
    median,
    ratio,
    runner_lock,
    spread,
    temp_home,
    wait_until,
)
from runnerproc import RunnerChild, last_completion, runner_env, seed_jobs, statuses
from store_size import build


def start_serve(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([SORA, "serve", "--port", "0"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        stop(proc)
        raise RuntimeError("sora serve did not start")
    return proc, url


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def latencies(url: str, ids: list[str], count: int, warmup: int = 30) -> list[float]:
    """Seconds per `GET /api/jobs/{id}` of a random job, one keep-alive connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    rng = random.Random(3)
    out: list[float] = []
    try:
        for n in range(warmup + count):
            job_id = rng.choice(ids)
            t0 = time.perf_counter()
            conn.request("GET", f"/api/jobs/{job_id}")
            answer = conn.getresponse()
            body = answer.read()
            took = time.perf_counter() - t0
            if answer.status != 200 or job_id.encode() not in body:
                raise RuntimeError(f"GET /api/jobs/{job_id}: HTTP {answer.status}")
            if n >= warmup:
                out.append(took)
    finally:
        conn.close()
    return out


def store_latency(jobs: int, count: int) -> list[float]:
    with temp_home() as home:
        ids, _ = build(home, jobs)
        with runner_lock(home):  # "a runner is alive": the server starts none
            proc, url = start_serve(child_env(home))
            try:
                return latencies(url, ids, count)
            finally:
                stop(proc)


@dataclass
class Load:
    polls: list[float] = field(default_factory=list)  # seconds per poll
    failures: int = 0
    events: list[int] = field(default_factory=list)  # `job` events seen per stream


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
               path: str) -> int:
    """One GET on a kept-alive connection; the status (the body is read and dropped)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def _clients(url: str, ids: list[str], clients: int, done: threading.Event,
                   load: Load) -> None:
    """Each client: one connection polling a job every second, one reading the events.

    Plain asyncio streams, not httpx: with 400 connections in one httpx pool, the
    client itself (its pool's bookkeeping) took most of the CPU and the latency."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    load.events = [0] * clients

    async def poller(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await asyncio.sleep(n / clients)  # spread over the second
            while True:
                t0 = time.perf_counter()
                status = await _get(reader, writer, parts.netloc, f"/api/jobs/{ids[n % len(ids)]}")
                load.polls.append(time.perf_counter() - t0)
                load.failures += status != 200
                await asyncio.sleep(1.0)
        finally:
            writer.close()

    async def stream(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET /api/events HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
            await writer.drain()
            while line := await reader.readline():
                load.events[n] += line == b"event: job\n"
        finally:
            writer.close()

    tasks = [asyncio.create_task(f(n)) for n in range(clients) for f in (poller, stream)]
    await asyncio.to_thread(done.wait)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@dataclass(frozen=True)
class Run:
    proc: Proc
    total: float
    done: int
    load: Load | None


def runner_run(fake: FakeServer, jobs: int, clients: int) -> Run:
    from sora_cli.runner.spawn import runner_alive

    with temp_home() as home:
        ids = seed_jobs(home, jobs, prompt="a harbour at night")
        env = runner_env(home, fake.base_url, in_flight=jobs)
        child = RunnerChild(env)
        load, serve, thread, finished = None, None, None, threading.Event()
        try:
            if clients:
                # the runner first, so that the server never starts one of its own
                wait_until(lambda: runner_alive(home / "runner.lock"), 30, "the runner")
                serve, url = start_serve(env)
                load = Load()
                thread = threading.Thread(target=asyncio.run, args=(
                    _clients(url, ids, clients, finished, load),))
                thread.start()
            proc = child.finish(timeout=600)
        finally:
            finished.set()
            if thread is not None:
                thread.join()
            if serve is not None:
                stop(serve)
        total = last_completion(home / "sora.db") - child.started_wall
        done = statuses(home / "sora.db").get("completed", 0)
    return Run(proc, total, done, load)


def bench(quick: bool) -> Section:
    big, count = (2_000, 100) if quick else (200_000, 1000)
    jobs, clients, job_seconds = (3, 10, 1.0) if quick else (50, 200, 8.0)
    section = Section(f"7. sora serve ({big:,}-job store; {clients} clients while "
                      f"{jobs} jobs run)")
    small_lat, big_lat = store_latency(100, count), store_latency(big, count)
    r = ratio(big_lat, small_lat)
    p95 = sorted(big_lat)[int(len(big_lat) * 0.95)]
    section.add(f"GET /api/jobs/ID on {big:,} jobs", spread(big_lat), "median <= 5 ms",
                median(big_lat) <= 0.005, f"p95 {p95 * 1000:.1f} ms, {count} requests")
    section.add("  vs a 100-job store", f"{r:.2f}x; {spread(small_lat)}", "<= 1.2x",
                r <= 1.2)
    with FakeServer(job_seconds=job_seconds, poll_after_ms=1000) as fake:
        alone = runner_run(fake, jobs, 0)
        loaded = runner_run(fake, jobs, clients)
    assert loaded.load is not None
    slow = loaded.total / max(alone.total, 1e-9)
    section.add("runner: all jobs done, alone / with the clients",
                f"{alone.done}/{jobs}, {loaded.done}/{jobs}", f"{jobs}",
                alone.done == loaded.done == jobs)
    section.add("runner: time to finish every job, with the clients", f"{slow:.2f}x alone",
                "<= 1.25x", slow <= 1.25, f"{loaded.total:.1f} s vs {alone.total:.1f} s")
    section.add("runner: CPU, with the clients",
                f"{loaded.proc.cpu / max(alone.proc.cpu, 1e-9):.2f}x alone", "", None,
                f"{loaded.proc.cpu:.2f} s vs {alone.proc.cpu:.2f} s")
    polls = loaded.load.polls
    section.add(f"{clients} clients polling once a second: latency", spread(polls),
                "median <= 20 ms", median(polls) <= 0.020,
                f"{len(polls)} polls, {loaded.load.failures} not 200")
    least = min(loaded.load.events, default=0)
    section.add(f"{clients} event streams: job events per stream (fewest)", str(least),
                f">= {jobs} (one per job at least)", least >= jobs)
    section.notes.append(
        f"Latency: {count} sequential requests for random jobs on one keep-alive "
        "connection (http.client), after a warm-up, with a runner lock held so that no "
        "runner runs. The big store is section 3's. Load: the same "
        f"{jobs} jobs of {job_seconds:g} s run by a `sora runner serve` child twice, "
        f"alone and with `sora serve` answering {clients} clients that each poll one job "
        "every second and read `/api/events`; the runner's time runs from its launch to "
        "the last `completed_at`. The clients share the machine with the runner.")
    return section
