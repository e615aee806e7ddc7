"""The job store under load, across upgrades and on bad ground: many writers at once,
old and newer stores, files that are not stores, data dirs we cannot read or write."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sora_cli.store.migrations import SCHEMA_VERSION

from .harness import (
    SORA,
    FakeProc,
    MakeFake,
    MakeSora,
    Sora,
    limited,
    run_limited,
    runner_pid,
    wait_for,
)

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store_v1.sql"


@pytest.fixture
def quick_fake(make_fake: MakeFake) -> FakeProc:
    return make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")


@pytest.fixture
def s(quick_fake: FakeProc, make_sora: MakeSora) -> Sora:
    return make_sora(quick_fake, SORA_MAX_IN_FLIGHT="8", SORA_CREATES_PER_MINUTE="100000")


def one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("sora: "), r.stderr
    for word in words:
        assert word in r.stderr, r.stderr


def snapshot(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}


# -- 5. many writers at once ----------------------------------------------------------------


def test_fifty_concurrent_submits_beside_a_busy_runner(s: Sora, quick_fake: FakeProc) -> None:
    s.env["SORA_IDLE_EXIT_SECONDS"] = "60"  # one runner for the whole test
    busy = [s.ok("submit", "-q", f"keeps the runner busy {n}").strip() for n in range(6)]
    pid = wait_for(lambda: runner_pid(s), 10, "the runner")
    readers_failed: list[str] = []
    reads = [0]
    stop = threading.Event()

    def read_while_writing() -> None:
        while not stop.is_set():
            for args in (("list", "--json"), ("status", busy[0], "--json"), ("list",)):
                r = s.run(*args)
                reads[0] += 1
                if r.returncode != 0 or r.stderr:
                    readers_failed.append(f"{args}: {r.returncode} {r.stderr}")

    reader = threading.Thread(target=read_while_writing)
    reader.start()
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(lambda n: s.run("submit", "-q", f"crowd {n}"), range(50)))
        # a second runner started by hand finds the lock taken and leaves quietly
        second = subprocess.run([SORA, "runner", "serve"], env=s.env, capture_output=True,
                                text=True, timeout=30)
    finally:
        stop.set()
        reader.join()
    assert [(r.returncode, r.stderr) for r in results] == [(0, "")] * 50
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert runner_pid(s) == pid  # still the one runner
    assert readers_failed == [] and reads[0] >= 3
    ids = {r.stdout.strip() for r in results}
    listed = [json.loads(line) for line in s.ok("list", "--all", "--json").splitlines()]
    assert {j["id"] for j in listed} == ids | set(busy)
    assert s.run("wait", "--all", "--timeout", "120").returncode == 0
    stats = quick_fake.stats()
    assert stats["creates"] == 56 and set(stats["creates_by_prompt"].values()) == {1}


# -- 6. upgrades and stores we must not touch ------------------------------------------------


def load_fixture(home: Path) -> None:
    home.mkdir(mode=0o700)
    conn = sqlite3.connect(home / "sora.db")
    conn.executescript(FIXTURE.read_text())
    conn.close()
    (home / "sora.db").chmod(0o600)


def test_store_from_the_first_release_is_migrated_keeping_every_job(s: Sora) -> None:
    load_fixture(s.home)
    conn = sqlite3.connect(s.home / "sora.db")
    before = {r[0]: r for r in conn.execute("SELECT id, prompt, status, remote_id FROM jobs")}
    events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    listed = [json.loads(line) for line in s.ok("list", "--all", "--json").splitlines()]
    assert {j["id"]: (j["id"], j["prompt"], j["status"], j["remote_id"]) for j in listed
            if j["status"] != "running"} == {k: v for k, v in before.items()
                                              if v[2] != "running"}
    assert {j["id"] for j in listed} == set(before)
    conn = sqlite3.connect(s.home / "sora.db")
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert int(version) == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] >= events
    conn.close()
    completed = s.job("cmpd2345")
    assert completed["status"] == "completed" and completed["remote_id"] == "video_cmpd2345"


def test_store_from_a_newer_sora_is_refused_and_left_untouched(s: Sora) -> None:
    s.ok("submit", "-q", "written before the downgrade")
    s.stop_runner(after_submit=True)
    conn = sqlite3.connect(s.home / "sora.db")
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = (s.home / "sora.db").read_bytes()
    for args in (("list",), ("status", "@last"), ("submit", "one more")):
        one_line_error(s.run(*args), "newer sora", "not changed")
    assert (s.home / "sora.db").read_bytes() == before


@pytest.mark.parametrize("content", [b"this is not a database\n" * 300, b""],
                         ids=["junk", "sqlite-but-foreign"])
def test_a_file_that_is_not_a_store_is_refused_and_left_untouched(s: Sora,
                                                                   content: bytes) -> None:
    s.home.mkdir(mode=0o700)
    path = s.home / "sora.db"
    if content:
        path.write_bytes(content)
    else:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
        conn.commit()
        conn.close()
    before = path.read_bytes()
    for args in (("list",), ("submit", "into the wrong file")):
        one_line_error(s.run(*args), "not a sora job store")
    assert path.read_bytes() == before


def test_unreadable_data_dir_is_a_clear_error(s: Sora) -> None:
    s.ok("submit", "-q", "before the chmod")
    s.stop_runner(after_submit=True)
    before = snapshot(s.home)
    s.home.chmod(0o000)
    try:
        for args in (("list",), ("status", "@last"), ("submit", "into the dark")):
            r = run_limited(s, *args, preexec=limited(no_root_powers=True))
            one_line_error(r, str(s.home))
    finally:
        s.home.chmod(0o700)
    assert snapshot(s.home) == before


def test_read_only_data_dir_is_a_clear_error(s: Sora) -> None:
    s.ok("submit", "-q", "before the chmod")
    s.stop_runner(after_submit=True)
    before = snapshot(s.home)
    s.home.chmod(0o500)
    try:
        for args in (("list",), ("submit", "onto a read-only disk")):
            r = run_limited(s, *args, preexec=limited(no_root_powers=True))
            one_line_error(r, str(s.home))
    finally:
        s.home.chmod(0o700)
    assert snapshot(s.home) == before
    assert len(s.ok("list", "--all", "-q").split()) == 1
