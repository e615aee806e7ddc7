"""The job store on a real SQLite file: records, lookups, transitions, leases, runners,
refusing foreign files, many writers at once, and queries that use an index."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sora_cli.store.repository as store_mod
from sora_cli.domain.jobs import ID_ALPHABET, JobError, JobStatus, VideoRequest
from sora_cli.errors import (
    ExitCode,
    IllegalTransition,
    InvalidInput,
    JobNotFound,
    LeaseLost,
    StoreError,
)
from sora_cli.store import rows as store_sql
from sora_cli.store.leases import RunnerRecord
from sora_cli.store.repository import Store

S = JobStatus


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sora.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with Store.open(db) as s:
        yield s


def controlled_ids(monkeypatch: pytest.MonkeyPatch, *ids: str) -> None:
    """Make the store draw these ids, in order (to force shared prefixes)."""
    monkeypatch.setattr(store_mod, "new_job_id", iter(ids).__next__)


def add(store: Store, *prompts: str, now: float = 1000.0) -> list[str]:
    return [j.id for j in store.add_jobs([VideoRequest(p) for p in prompts], now=now)]


def kinds(store: Store, job_id: str) -> list[str]:
    return [e.kind for e in store.events(job_id)]


# --- recording jobs -------------------------------------------------------------------


def test_add_jobs_records_queued_jobs(store: Store) -> None:
    reqs = [VideoRequest("one"), VideoRequest("two", model="sora-2-pro", size="1792x1024",
                                               seconds=12)]
    jobs = store.add_jobs(reqs, now=1000.0)
    assert [j.prompt for j in jobs] == ["one", "two"]
    assert all(j.status is S.QUEUED for j in jobs)
    assert (jobs[1].model, jobs[1].size, jobs[1].seconds) == ("sora-2-pro", "1792x1024", 12)
    assert jobs[0].created_at == 1000.0 < jobs[1].created_at < 1000.001
    for job in jobs:
        assert store.get(job.id) == job
        [event] = store.events(job.id)
        assert (event.kind, event.from_status, event.to_status, event.at) == (
            "created", None, "queued", job.created_at)


def test_ids_are_unique_lowercase_and_long_enough(store: Store) -> None:
    ids = add(store, *[f"p{i}" for i in range(200)])
    assert len(set(ids)) == 200
    assert all(len(i) >= 8 and i == i.lower() and set(i) <= set(ID_ALPHABET) for i in ids)


def test_add_jobs_is_one_transaction(store: Store) -> None:
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    add(store, "a", "b", "c")
    store._conn.set_trace_callback(None)
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE", "COMMIT"]


def test_add_jobs_is_all_or_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = store_sql.insert_event

    def fail_second(*args: Any, **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk on fire")
        real(*args, **kw)

    monkeypatch.setattr("sora_cli.store.repository.insert_event", fail_second)
    with pytest.raises(RuntimeError):
        add(store, "a", "b", "c")
    assert store.list_jobs(limit=None) == []
    assert store._conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert not store._conn.in_transaction


def test_add_no_jobs(store: Store) -> None:
    assert store.add_jobs([]) == []


def test_an_id_seen_only_in_events_is_not_reused(store: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store.log("aaaa2222", "note", message="history of a job long gone")
    controlled_ids(monkeypatch, "aaaa2222", "bbbb3333")
    assert add(store, "x") == ["bbbb3333"]


def test_file_is_private_and_in_wal_mode(store: Store, db: Path) -> None:
    add(store, "x")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    wal = db.with_name(db.name + "-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    other = sqlite3.connect(db)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()
    assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000


def test_reopening_keeps_everything(db: Path) -> None:
    with Store.open(db) as s:
        [job_id] = add(s, "kept")
    with Store.open(db) as s:
        job = s.get(job_id)
        assert job is not None and job.prompt == "kept"
        assert kinds(s, job_id) == ["created"]


# --- finding jobs --------------------------------------------------------------------------


def test_resolve_by_id_prefix_and_case(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    controlled_ids(monkeypatch, "abcd2345", "wxyz6789")
    add(store, "a", "b")
    assert store.resolve("abcd2345").prompt == "a"
    assert store.resolve("  ABCD2345 ").prompt == "a"
    assert store.resolve("abcd").prompt == "a"
    assert store.resolve("wxyz67").prompt == "b"


def test_resolve_by_remote_id(store: Store) -> None:
    [job_id] = add(store, "x")
    store.transition(job_id, S.SUBMITTING)
    store.transition(job_id, S.RUNNING, remote_id="video_abc123")
    assert store.resolve("video_abc123").id == job_id
    assert store.remote_id_taken("video_abc123")
    assert not store.remote_id_taken("video_other")
    with pytest.raises(JobNotFound, match="no job has remote id video_other"):
        store.resolve("video_other")


def test_resolve_last(store: Store) -> None:
    with pytest.raises(JobNotFound, match="no jobs yet"):
        store.resolve("@last")
    add(store, "old", now=100.0)
    add(store, "new-1", "new-2", now=200.0)
    add(store, "older", now=50.0)  # created_at decides, not insertion order
    assert store.resolve("@last").prompt == "new-2"


def test_ambiguous_prefix_lists_candidates(store: Store,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    controlled_ids(monkeypatch, "abcd2222", "abcd3333", "abcz4444")
    add(store, "a", "b", "c")
    with pytest.raises(JobNotFound) as info:
        store.resolve("abcd")
    assert info.value.exit_code == ExitCode.NOT_FOUND
    assert "ambiguous" in str(info.value)
    assert "abcd2222, abcd3333" in str(info.value) and "abcz4444" not in str(info.value)
    assert store.resolve("abcd3").prompt == "b"
    assert store.resolve("abcz").prompt == "c"


def test_very_ambiguous_prefix_is_cut_short(store: Store,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"abcd{c * 4}" for c in "2345678"]
    controlled_ids(monkeypatch, *ids)
    add(store, *ids)
    with pytest.raises(JobNotFound) as info:
        store.resolve("abcd")
    assert str(info.value).endswith(", ".join(ids[:5]) + ", ...")


def test_short_or_unknown_refs(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    controlled_ids(monkeypatch, "abcd2345")
    add(store, "a")
    with pytest.raises(JobNotFound, match=r"needs 4\+ chars"):
        store.resolve("abc")
    with pytest.raises(JobNotFound, match="no such job"):
        store.resolve("")
    with pytest.raises(JobNotFound, match="no such job: abce"):
        store.resolve("abce")
    with pytest.raises(JobNotFound, match="no such job"):
        store.resolve("abcd23456")  # longer than the id


@pytest.mark.parametrize("ref", ["\udcff\udcfe\udcfd\udcfc", "abc\U0010ffff", "abcd\x00",
                                 "caf\u00e9", "abcd\n2345"])
def test_junk_refs_are_not_found_not_a_crash(store: Store, ref: str) -> None:
    add(store, "a")
    with pytest.raises(JobNotFound):
        store.resolve(ref)


# --- transitions ------------------------------------------------------------------------------


def test_transitions_append_events(store: Store) -> None:
    [job_id] = add(store, "x")
    store.transition(job_id, S.SUBMITTING, now=1001.0, attempt=1, create_attempts=1)
    job = store.transition(job_id, S.RUNNING, now=1002.0, event="created",
                           remote_id="video_1", remote_status="queued", submitted_at=1002.0)
    assert (job.status, job.remote_id, job.create_attempts, job.updated_at) == (
        S.RUNNING, "video_1", 1, 1002.0)
    events = store.events(job_id)
    assert [(e.kind, e.from_status, e.to_status) for e in events] == [
        ("created", None, "queued"), ("submitting", "queued", "submitting"),
        ("created", "submitting", "running")]
    assert events[1].attempt == 1 and events[1].at == 1001.0
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_failure_keeps_the_error(store: Store) -> None:
    [job_id] = add(store, "x")
    err = JobError("moderation_blocked", "the prompt was refused", http_status=400,
                   request_id="req_1")
    job = store.transition(job_id, S.FAILED, error=err)
    assert job.status is S.FAILED and job.error == err
    last = store.events(job_id)[-1]
    assert (last.kind, last.message, last.http_status, last.request_id) == (
        "failed", "the prompt was refused", 400, "req_1")


@pytest.mark.parametrize(("path", "bad"), [
    ((), S.RUNNING), ((), S.COMPLETED), ((), S.QUEUED),
    ((S.CANCELLED,), S.QUEUED), ((S.SUBMITTING, S.RUNNING), S.SUBMITTING),
])
def test_illegal_transitions_change_nothing(store: Store, path: tuple[JobStatus, ...],
                                            bad: JobStatus) -> None:
    [job_id] = add(store, "x")
    for status in path:
        store.transition(job_id, status)
    before, events_before = store.get(job_id), store.events(job_id)
    with pytest.raises(IllegalTransition):
        store.transition(job_id, bad, remote_id="video_x")
    assert store.get(job_id) == before and store.events(job_id) == events_before


def test_wrong_runner_id_is_refused(store: Store) -> None:
    [job_id] = add(store, "x")
    store.claim("runner-a", 1, 60, now=1000.0)
    before, events_before = store.get(job_id), store.events(job_id)
    with pytest.raises(LeaseLost):
        store.transition(job_id, S.SUBMITTING, runner_id="runner-b")
    with pytest.raises(LeaseLost):
        store.update(job_id, runner_id="runner-b", progress=50)
    assert store.get(job_id) == before and store.events(job_id) == events_before
    job = store.transition(job_id, S.SUBMITTING, runner_id="runner-a")
    assert job.status is S.SUBMITTING
    assert store.events(job_id)[-1].runner_id == "runner-a"


def test_transition_of_unknown_job(store: Store) -> None:
    with pytest.raises(JobNotFound):
        store.transition("nope2345", S.CANCELLED)


def test_unknown_fields_are_refused_and_rolled_back(store: Store) -> None:
    [job_id] = add(store, "x")
    with pytest.raises(ValueError, match="not job columns"):
        store.transition(job_id, S.SUBMITTING, colour="red")
    with pytest.raises(ValueError, match="not job columns"):
        store.update(job_id, created_at=5.0)
    job = store.get(job_id)
    assert job is not None and job.status is S.QUEUED
    assert kinds(store, job_id) == ["created"]


def test_update_changes_fields_but_not_status(store: Store) -> None:
    [job_id] = add(store, "x")
    store.update(job_id, progress=42, remote_status="in_progress", now=1500.0)
    job = store.get(job_id)
    assert job is not None
    assert (job.progress, job.remote_status, job.updated_at) == (42, "in_progress", 1500.0)
    with pytest.raises(ValueError, match="transition"):
        store.update(job_id, status="completed")
    job = store.get(job_id)
    assert job is not None and job.status is S.QUEUED
    assert kinds(store, job_id) == ["created"]  # update logs nothing


def test_log_appends_without_changing_the_job(store: Store) -> None:
    [job_id] = add(store, "x")
    before = store.get(job_id)
    store.log(job_id, "http", attempt=2, http_status=503, request_id="req_9", retry_in=1.5,
              now=1234.0)
    assert store.get(job_id) == before
    event = store.events(job_id)[-1]
    assert (event.kind, event.attempt, event.http_status, event.retry_in, event.at) == (
        "http", 2, 503, 1.5, 1234.0)
    sneaky: dict[str, Any] = {"message) VALUES (1); --": "boom"}
    with pytest.raises(ValueError, match="not event columns"):
        store.log(job_id, "x", **sneaky)


# --- leases ------------------------------------------------------------------------------------


def test_claim_oldest_first_up_to_the_limit(store: Store) -> None:
    first = add(store, "a", now=100.0)
    second = add(store, "b", now=200.0)
    add(store, "c", now=300.0)
    claimed = store.claim("runner-a", 2, 60, now=1000.0)
    assert [j.id for j in claimed] == first + second
    assert all(j.runner_id == "runner-a" and j.lease_expires_at == 1060.0 for j in claimed)
    event = store.events(first[0])[-1]
    assert (event.kind, event.runner_id, event.message) == ("claimed", "runner-a", None)
    assert store.claim("runner-a", 0, 60, now=1000.0) == []


def test_a_live_lease_is_not_taken(store: Store) -> None:
    [job_id] = add(store, "x")
    store.claim("runner-a", 5, 60, now=1000.0)
    assert store.claim("runner-b", 5, 60, now=1059.0) == []
    assert store.claim("runner-b", 5, 60, now=1060.0) == []  # expires at 1060: not yet
    job = store.get(job_id)
    assert job is not None and job.runner_id == "runner-a"


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    [job_id] = add(store, "x")
    store.claim("runner-a", 5, 60, now=1000.0)
    [job] = store.claim("runner-b", 5, 60, now=1061.0)
    assert (job.id, job.runner_id, job.lease_expires_at) == (job_id, "runner-b", 1121.0)
    event = store.events(job_id)[-1]
    assert (event.kind, event.runner_id) == ("claimed", "runner-b")
    assert event.message is not None and "runner-a" in event.message
    with pytest.raises(LeaseLost):
        store.transition(job_id, S.SUBMITTING, runner_id="runner-a")
    assert store.renew("runner-a", 60, now=1062.0) == set()


def test_final_jobs_are_never_claimed(store: Store) -> None:
    done, cancelled, live = add(store, "a", "b", "c")
    for status in (S.SUBMITTING, S.RUNNING, S.DOWNLOADING, S.COMPLETED):
        store.transition(done, status)
    store.transition(cancelled, S.CANCELLED)
    assert [j.id for j in store.claim("runner-a", 10, 60)] == [live]


def test_renew_and_release(store: Store) -> None:
    a, b, c = add(store, "a", "b", "c")
    store.claim("runner-a", 2, 60, now=1000.0)
    store.claim("runner-b", 2, 60, now=1000.0)
    assert store.renew("runner-a", 60, now=1050.0) == {a, b}
    job = store.get(a)
    assert job is not None and job.lease_expires_at == 1110.0
    store.release("runner-b", [a])  # not b's lease: no effect
    store.release("runner-a", [a])
    assert store.renew("runner-a", 60, now=1051.0) == {b}
    job = store.get(a)
    assert job is not None and (job.runner_id, job.lease_expires_at) == (None, None)
    store.release("runner-a")
    assert store.renew("runner-a", 60) == set()
    assert store.renew("runner-b", 60) == {c}


def test_release_host(store: Store) -> None:
    ids = add(store, "a", "b", "c", "d")
    owners = ["h:1:aa", "h:2:bb", "h:3:cc", "h2:4:dd"]
    for job_id, owner in zip(ids, owners, strict=True):
        assert [j.id for j in store.claim(owner, 1, 9e9)] == [job_id]  # oldest first
        store.runner_beat(owner, host=owner.split(":")[0], pid=1, started_at=1.0,
                          jobs_in_flight=1)
    store.release_host("h:", keep="h:3:cc")
    assert [(j.runner_id if (j := store.get(i)) else "gone") for i in ids] == [
        None, None, "h:3:cc", "h2:4:dd"]
    assert sorted(r.runner_id for r in store.runners()) == ["h2:4:dd", "h:3:cc"]


# --- listing ---------------------------------------------------------------------------------


def test_list_newest_first_with_filter_and_limit(store: Store) -> None:
    ids = add(store, "a", "b", "c", "d", "e")
    store.transition(ids[1], S.CANCELLED)
    store.transition(ids[3], S.CANCELLED)
    assert [j.id for j in store.list_jobs()] == ids[::-1]
    assert [j.id for j in store.list_jobs(limit=2)] == [ids[4], ids[3]]
    assert store.list_jobs(limit=0) == []
    assert len(store.list_jobs(limit=None)) == 5
    assert [j.id for j in store.list_jobs(statuses=[S.CANCELLED])] == [ids[3], ids[1]]
    assert [j.id for j in store.list_jobs(statuses=[S.QUEUED], limit=1)] == [ids[4]]
    assert store.list_jobs(statuses=[S.COMPLETED]) == []
    with pytest.raises(InvalidInput):
        store.list_jobs(limit=-1)


def test_default_limit_is_twenty(store: Store) -> None:
    add(store, *[str(i) for i in range(25)])
    assert len(store.list_jobs()) == 20


def test_has_active(store: Store) -> None:
    assert not store.has_active() and store.count_active() == 0
    a, b = add(store, "a", "b")
    assert store.has_active() and store.count_active() == 2
    store.transition(a, S.CANCELLED)
    assert store.has_active() and store.count_active() == 1
    store.transition(b, S.FAILED, error=JobError("x", "y"))
    assert not store.has_active() and store.count_active() == 0


# --- runners ---------------------------------------------------------------------------------


def test_runner_heartbeat_rows(store: Store) -> None:
    assert store.runners() == []
    store.runner_beat("h:1:aa", host="h", pid=1, started_at=10.0, jobs_in_flight=0, now=11.0)
    store.runner_beat("h:2:bb", host="h", pid=2, started_at=20.0, jobs_in_flight=1, now=21.0)
    store.runner_beat("h:1:aa", host="h", pid=1, started_at=10.0, jobs_in_flight=3, now=30.0)
    assert store.runners() == [
        RunnerRecord("h:2:bb", host="h", pid=2, started_at=20.0, heartbeat_at=21.0,
                     jobs_in_flight=1),
        RunnerRecord("h:1:aa", host="h", pid=1, started_at=10.0, heartbeat_at=30.0,
                     jobs_in_flight=3),
    ]
    store.runner_gone("h:2:bb")
    assert [r.runner_id for r in store.runners()] == ["h:1:aa"]


# --- files that are not a job store -----------------------------------------------------------


@pytest.mark.parametrize("content", [b"hello, not a database\n", os.urandom(4096),
                                     b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_non_sqlite_file_is_refused_and_untouched(db: Path, content: bytes) -> None:
    db.write_bytes(content)
    with pytest.raises(StoreError, match="not a sora job store"):
        Store.open(db)
    assert db.read_bytes() == content
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_another_apps_database_is_refused_and_untouched(db: Path) -> None:
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE notes (body TEXT)")
    other.execute("INSERT INTO notes VALUES ('mine')")
    other.commit()
    other.close()
    content = db.read_bytes()
    with pytest.raises(StoreError, match="not a sora job store") as info:
        Store.open(db)
    assert "notes" in str(info.value)
    assert db.read_bytes() == content
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_unopenable_paths(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot create the job store"):
        Store.open(tmp_path / "missing-dir" / "sora.db")
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreError):
        Store.open(tmp_path / "adir")


# --- many writers at once ---------------------------------------------------------------------


def test_concurrent_writers_and_a_reader(db: Path) -> None:
    Store.open(db).close()
    writers, per_writer = 8, 10
    start = threading.Barrier(writers + 1, timeout=60)
    writers_done = threading.Event()
    errors: list[BaseException] = []
    reads = 0

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
                start.abort()
        return run

    def writer(k: int) -> Callable[[], None]:
        def work() -> None:
            with Store.open(db) as s:
                start.wait()
                for i in range(per_writer):
                    [job] = s.add_jobs([VideoRequest(f"writer {k} job {i}")])
                    s.transition(job.id, S.SUBMITTING)
                    s.transition(job.id, S.RUNNING, remote_id=f"video_{k}_{i}")
                    s.log(job.id, "http", attempt=1, http_status=200)
        return work

    def reader() -> None:
        nonlocal reads
        with Store.open(db) as s:
            start.wait()
            while True:
                finished = writers_done.is_set()
                s.list_jobs(limit=None)
                s.has_active()
                reads += 1
                if finished:
                    return

    threads = [threading.Thread(target=guarded(writer(k))) for k in range(writers)]
    threads.append(threading.Thread(target=guarded(reader)))
    for t in threads:
        t.start()
    for t in threads[:-1]:
        t.join(timeout=60)
    writers_done.set()
    threads[-1].join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert reads >= 1
    with Store.open(db) as s:
        jobs = s.list_jobs(limit=None)
        assert len(jobs) == writers * per_writer
        assert {j.remote_id for j in jobs} == {f"video_{k}_{i}" for k in range(writers)
                                               for i in range(per_writer)}
        assert all(j.status is S.RUNNING for j in jobs)
        assert all(kinds(s, j.id) == ["created", "submitting", "running", "http"] for j in jobs)


def test_opening_waits_for_another_writer_while_switching_to_wal(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A store still in rollback-journal mode (as a new file, or one loaded from a dump
    # is) while another connection holds the write lock: switching it to WAL gets
    # "database is locked" at once, without SQLite's busy wait. Opening must wait.
    Store.open(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("PRAGMA journal_mode = DELETE")
    other.execute("BEGIN IMMEDIATE")
    retried = threading.Event()
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        retried.set()
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    outcome: list[object] = []

    def open_it() -> None:
        try:
            with Store.open(db) as s:
                outcome.append(len(s.add_jobs([VideoRequest("x")])))
        except BaseException as exc:
            outcome.append(exc)

    opener = threading.Thread(target=open_it)
    opener.start()
    deadline = time.monotonic() + 30
    while not retried.wait(0.01) and opener.is_alive() and time.monotonic() < deadline:
        pass
    other.execute("COMMIT")
    other.close()
    opener.join(timeout=60)
    assert outcome == [1]
    assert retried.is_set()


# --- indexes ------------------------------------------------------------------------------------


def query_plans(store: Store, action: Callable[[], object]) -> dict[str, list[str]]:
    """The query plan of every statement `action` runs against the jobs table."""
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        store._conn.set_trace_callback(None)
    return {
        sql: [row[3] for row in store._conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
        if sql.split()[0].upper() in ("SELECT", "UPDATE", "DELETE") and " jobs" in sql
    }


@pytest.mark.parametrize("action", [
    pytest.param(lambda s: s.resolve("abcd"), id="resolve-prefix"),
    pytest.param(lambda s: s.resolve("abcd2345"), id="resolve-id"),
    pytest.param(lambda s: s.resolve("video_1"), id="resolve-remote-id"),
    pytest.param(lambda s: s.resolve("@last"), id="resolve-last"),
    pytest.param(lambda s: s.remote_id_taken("video_1"), id="remote-id-taken"),
    pytest.param(lambda s: s.list_jobs(limit=20), id="list"),
    pytest.param(lambda s: s.list_jobs(statuses=[S.QUEUED], limit=20), id="list-status"),
    pytest.param(lambda s: s.has_active(), id="has-active"),
    pytest.param(lambda s: s.count_active(), id="count-active"),
    pytest.param(lambda s: s.claim("r", 4, 60), id="claim"),
    pytest.param(lambda s: s.renew("r", 60), id="renew"),
    pytest.param(lambda s: s.release("r"), id="release"),
    pytest.param(lambda s: s.release_host("h:", keep="h:1"), id="release-host"),
    pytest.param(lambda s: s.update("abcd2345", progress=1), id="update"),
])
def test_queries_use_an_index(store: Store, monkeypatch: pytest.MonkeyPatch,
                              action: Callable[[Store], object]) -> None:
    controlled_ids(monkeypatch, "abcd2345", *(f"wxyz{c}{c}{c}{c}" for c in "23456789"))
    [first, *_] = add(store, *"abcdefghi")
    store.transition(first, S.SUBMITTING)
    store.transition(first, S.RUNNING, remote_id="video_1")
    plans = query_plans(store, lambda: action(store))
    assert plans, "no query on jobs was traced"
    for sql, plan in plans.items():
        full_scans = [d for d in plan if d.startswith("SCAN jobs") and "USING" not in d]
        assert not full_scans, f"{sql}\n{plan}"
        assert any("jobs USING" in d for d in plan), f"{sql}\n{plan}"


def test_a_remote_id_owned_by_another_job_is_refused(store: Store) -> None:
    """Two runners reconciling identical jobs may pick the same video: one wins, the other
    is told (RemoteIdTaken) and its job is left as it was, to look again."""
    from sora_cli.errors import RemoteIdTaken

    a, b = store.add_jobs([VideoRequest("twin"), VideoRequest("twin")])
    for job in (a, b):
        store.transition(job.id, JobStatus.SUBMITTING)
    store.transition(a.id, JobStatus.RUNNING, remote_id="video_shared")
    with pytest.raises(RemoteIdTaken, match="video_shared"):
        store.transition(b.id, JobStatus.RUNNING, remote_id="video_shared")
    after = store.get(b.id)
    assert after is not None and after.status is JobStatus.SUBMITTING and after.remote_id is None


def test_a_runner_never_claims_its_own_lapsed_lease(store: Store) -> None:
    """A runner whose renewals ran late must not claim (and start) a job it works already."""
    (job,) = store.add_jobs([VideoRequest("mine")])
    t0 = time.time()
    assert [j.id for j in store.claim("host:1:a", 5, 1.0, now=t0)] == [job.id]
    assert store.claim("host:1:a", 5, 1.0, now=t0 + 10) == []
    assert [j.id for j in store.claim("host:2:b", 5, 1.0, now=t0 + 10)] == [job.id]
