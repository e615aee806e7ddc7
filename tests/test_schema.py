"""The store's schema: SQLModel tables are the source of truth, `store.py` agrees with
them, a fresh store and an upgraded one end at the same shape, and a store from a
newer sora (or another program) is refused untouched.

tests/fixtures/store_v1.sql is a store written by the first release (schema 1),
dumped as SQL text. It is frozen on purpose: later versions must keep opening it
with every job and event intact, so never rewrite it with newer code. It was made
by `write_v1_fixture()` below; from a checkout of the release that wrote schema 1:

    .venv/bin/python -c "import sys; sys.path[:0] = ['tests']; import test_schema as t; t.write_v1_fixture()"
"""  # noqa: E501

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import sora_cli.store.repository as store_mod
from sora_cli.domain.jobs import JobError, JobStatus, VideoRequest
from sora_cli.errors import StoreError
from sora_cli.store import migrations, schema
from sora_cli.store.repository import Store
from sora_cli.store.rows import EVENT_COLUMNS, JOB_COLUMNS

S = JobStatus
FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.sql"
Columns = tuple[tuple[str, str, bool, int], ...]  # name, type, not null, pk position
Indexes = dict[str, tuple[bool, tuple[str, ...]]]  # name: (unique, columns)
Shape = dict[str, tuple[Columns, Indexes]]


# --- what the schema is ------------------------------------------------------------------


def shape(conn: sqlite3.Connection) -> Shape:
    """Tables -> (columns (name, type, not null, pk position), indexes {name: (unique, cols)})."""
    out: Shape = {}
    tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                          "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    for (table,) in tables:
        cols = tuple((r[1], r[2].upper(), bool(r[3]), r[5])
                     for r in conn.execute(f"PRAGMA table_info('{table}')"))
        indexes = {
            r[1]: (bool(r[2]), tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{r[1]}')")))
            for r in conn.execute(f"PRAGMA index_list('{table}')") if r[3] == "c"
        }
        out[table] = (cols, indexes)
    return out


def declared_shape() -> Shape:
    """The same, from the SQLModel metadata."""
    from sqlalchemy.dialects import sqlite
    from sqlmodel import SQLModel

    dialect = sqlite.dialect()
    out: Shape = {}
    for table in SQLModel.metadata.sorted_tables:
        pk = [c.name for c in table.primary_key.columns]
        cols = tuple((c.name, c.type.compile(dialect=dialect).upper(), not c.nullable,
                      pk.index(c.name) + 1 if c.name in pk else 0) for c in table.columns)
        indexes = {str(ix.name): (bool(ix.unique), tuple(c.name for c in ix.columns))
                   for ix in table.indexes}
        out[table.name] = (cols, indexes)
    return out


def read(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_store_columns_match_the_tables(tmp_path: Path) -> None:
    assert schema.column_names("jobs") == JOB_COLUMNS
    assert schema.column_names("events") == EVENT_COLUMNS
    with Store.open(tmp_path / "s.db") as s:
        s.runner_beat("h:1", host="h", pid=1, started_at=1.0, jobs_in_flight=0)
        import dataclasses

        names = tuple(f.name for f in dataclasses.fields(s.runners()[0]))
        assert names[:-1] == schema.column_names("runners")  # + leases, from fleet()


def test_fresh_store_has_the_declared_schema(tmp_path: Path) -> None:
    Store.open(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        assert shape(conn) == declared_shape()
        assert set(declared_shape()) == {"jobs", "events", "runners", "meta"}
        assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION
        assert conn.execute("SELECT key, value FROM meta").fetchall() == [
            ("schema_version", str(migrations.SCHEMA_VERSION))]
    finally:
        conn.close()


# --- refusing what is not ours ---------------------------------------------------------------


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_newer_store_is_refused_and_untouched(tmp_path: Path, journal: str) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as s:
        s.add_jobs([VideoRequest("from the future")])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                 (str(migrations.SCHEMA_VERSION + 1),))
    conn.commit()
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.close()
    before = files(tmp_path)
    with pytest.raises(StoreError, match="newer sora") as info:
        Store.open(path)
    assert "not changed" in str(info.value)
    assert files(tmp_path) == before


def test_an_unreadable_version_stamp_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = 'one' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="unreadable schema version"):
        Store.open(path)


# --- migrate() ----------------------------------------------------------------------------------


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as s:
        [job] = s.add_jobs([VideoRequest("kept")])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        before = shape(conn)
        statements: list[str] = []
        conn.set_trace_callback(statements.append)
        migrations.migrate(conn, path=str(path))
        migrations.migrate(conn, path=str(path))
        conn.set_trace_callback(None)
        assert not [s for s in statements if not s.lstrip().upper().startswith("SELECT")]
        assert shape(conn) == before
        assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 1
    finally:
        conn.close()
    with Store.open(path) as s:
        assert s.get(job.id) == job


def test_opening_a_new_file_from_many_threads_at_once(tmp_path: Path) -> None:
    # Each round: several connections find the same brand-new file and all try to
    # create the schema (and switch it to WAL) together.
    for round_ in range(25):
        path = tmp_path / f"race{round_}.db"
        start = threading.Barrier(4, timeout=60)
        errors: list[BaseException] = []

        def open_it(p: Path = path, barrier: threading.Barrier = start,
                    errs: list[BaseException] = errors) -> None:
            try:
                barrier.wait()
                with Store.open(p) as s:
                    s.add_jobs([VideoRequest("x")])
            except BaseException as exc:
                errs.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == [], f"round {round_}: {errors}"
        conn = sqlite3.connect(path)
        try:
            assert shape(conn) == declared_shape()
            assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 1
            assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 4
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


def _old_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A current store, then this code pretends to be one version newer."""
    with Store.open(path) as s:
        [job] = s.add_jobs([VideoRequest("survivor")])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", migrations.SCHEMA_VERSION + 1)
    return job.id


def test_steps_upgrade_an_old_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    job_id = _old_store(path, monkeypatch)
    old = migrations.SCHEMA_VERSION - 1
    ran: list[int] = []

    def step(conn: sqlite3.Connection) -> None:
        ran.append(old)
        conn.execute("ALTER TABLE jobs ADD COLUMN note TEXT")

    monkeypatch.setitem(migrations.STEPS, old, step)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        migrations.migrate(conn, path=str(path))
        migrations.migrate(conn, path=str(path))  # already done: the step runs once
        assert ran == [old]
        assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION
        assert "note" in [r[1] for r in conn.execute("PRAGMA table_info('jobs')")]
        assert conn.execute("SELECT prompt FROM jobs WHERE id = ?", (job_id,)).fetchone() == (
            "survivor",)
    finally:
        conn.close()


def test_a_failing_step_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    _old_store(path, monkeypatch)
    old = migrations.SCHEMA_VERSION - 1

    def step(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE jobs ADD COLUMN note TEXT")
        raise RuntimeError("step failed half way")

    monkeypatch.setitem(migrations.STEPS, old, step)
    with pytest.raises(RuntimeError):
        Store.open(path)
    assert read(path, "SELECT value FROM meta") == [(str(old),)]
    assert "note" not in [r[1] for r in read(path, "PRAGMA table_info('jobs')")]
    assert len(read(path, "SELECT id FROM jobs")) == 1


def test_a_missing_step_is_a_store_error(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    _old_store(path, monkeypatch)
    with pytest.raises(StoreError, match="no upgrade from schema"):
        Store.open(path)
    assert read(path, "SELECT value FROM meta") == [(str(migrations.SCHEMA_VERSION - 1),)]


# --- the store written by the first release --------------------------------------------------

T0 = 1_760_000_000.0
V1_IDS = ("cmpd2345", "fajd6789", "rnng3456")
RUNNER = "host:100:abcdef"
# The columns of schema 1: later versions may add columns, never lose these.
V1_JOB_COLUMNS = (
    "id", "prompt", "model", "size", "seconds", "status", "remote_id", "remote_status",
    "progress", "created_at", "updated_at", "submitted_at", "completed_at", "expires_at",
    "error_code", "error_message", "error_http_status", "error_request_id", "output_path",
    "bytes", "sha256", "create_attempts", "poll_count", "download_attempts",
    "create_started_at", "lease_owner", "lease_expires_at",
)
# The same columns as named today (schema 4 renamed lease_owner to runner_id).
RENAMED = {"lease_owner": "runner_id"}
V1_JOB_COLUMNS_NOW = tuple(RENAMED.get(c, c) for c in V1_JOB_COLUMNS)
V1_EVENT_COLUMNS = ("id", "job_id", "at", "kind", "from_status", "to_status", "attempt",
                    "http_status", "request_id", "retry_in", "message", "runner_id")


def build_v1_store(path: Path) -> None:
    """Three jobs (completed, failed, running) with the events a runner leaves."""
    with mock.patch.object(store_mod, "new_job_id", iter(V1_IDS).__next__), \
            Store.open(path) as s:
        done, failed, running = (j.id for j in s.add_jobs([
            VideoRequest("a red fox in fresh snow", seconds=8),
            VideoRequest("a storm at sea", model="sora-2-pro", size="1792x1024", seconds=12),
            VideoRequest("a quiet library at night"),
        ], now=T0))
        s.claim(RUNNER, 3, 60, now=T0 + 1)
        for n, job_id in enumerate((done, failed, running)):
            s.transition(job_id, S.SUBMITTING, runner_id=RUNNER, attempt=1, create_attempts=1,
                         create_started_at=T0 + 2, now=T0 + 2)
            s.log(job_id, "http", attempt=1, http_status=200, request_id=f"req_{n}",
                  runner_id=RUNNER, now=T0 + 3)
            s.transition(job_id, S.RUNNING, runner_id=RUNNER, event="created",
                         remote_id=f"video_{job_id}", remote_status="queued",
                         submitted_at=T0 + 3, now=T0 + 3)
        s.update(running, runner_id=RUNNER, progress=40, remote_status="in_progress", poll_count=3,
                 now=T0 + 4)
        s.log(failed, "http", attempt=1, http_status=503, retry_in=2.5, runner_id=RUNNER,
              message="server busy", now=T0 + 4)
        s.transition(failed, S.FAILED, runner_id=RUNNER, remote_status="failed",
                     error=JobError("moderation_blocked", "the video was blocked",
                                    request_id="req_9"), now=T0 + 5)
        s.transition(done, S.DOWNLOADING, runner_id=RUNNER, remote_status="completed", progress=100,
                     expires_at=T0 + 86400, poll_count=5, now=T0 + 5)
        s.transition(done, S.COMPLETED, runner_id=RUNNER, output_path="videos/cmpd2345.mp4",
                     bytes=123456, sha256="ab" * 32, completed_at=T0 + 6,
                     message="saved 123456 bytes", now=T0 + 6)


def write_v1_fixture(tmp_dir: Path | None = None) -> None:
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_dir) as d:
        path = Path(d) / "v1.db"
        build_v1_store(path)
        conn = sqlite3.connect(path)
        try:
            FIXTURE.write_text("\n".join(conn.iterdump()) + "\n")
        finally:
            conn.close()


def load_fixture(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(FIXTURE.read_text())
    finally:
        conn.close()


def test_fixture_is_a_v1_store(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    load_fixture(path)
    assert read(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    assert read(path, "SELECT id, status FROM jobs ORDER BY id") == [
        ("cmpd2345", "completed"), ("fajd6789", "failed"), ("rnng3456", "running")]


def test_the_first_release_store_opens_with_everything(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    load_fixture(path)
    assert set(V1_JOB_COLUMNS_NOW) <= set(JOB_COLUMNS)
    assert set(V1_EVENT_COLUMNS) <= set(EVENT_COLUMNS)
    job_cols = ", ".join(V1_JOB_COLUMNS)
    job_cols_now = ", ".join(V1_JOB_COLUMNS_NOW)
    event_cols = ", ".join(V1_EVENT_COLUMNS)
    jobs_before = read(path, f"SELECT {job_cols} FROM jobs ORDER BY id")
    events_before = read(path, f"SELECT {event_cols} FROM events ORDER BY id")
    assert len(jobs_before) == 3 and len(events_before) == 19

    with Store.open(path) as s:
        assert read(path, f"SELECT {job_cols_now} FROM jobs ORDER BY id") == jobs_before
        assert read(path, f"SELECT {event_cols} FROM events ORDER BY id") == events_before

        done, failed, running = (s.resolve(i) for i in V1_IDS)
        assert (done.status, failed.status, running.status) == (S.COMPLETED, S.FAILED,
                                                                 S.RUNNING)
        assert (done.output_path, done.bytes, done.sha256) == ("videos/cmpd2345.mp4", 123456,
                                                               "ab" * 32)
        assert failed.error == JobError("moderation_blocked", "the video was blocked",
                                        request_id="req_9")
        assert (failed.model, failed.size, failed.seconds) == ("sora-2-pro", "1792x1024", 12)
        assert (running.progress, running.poll_count, running.runner_id) == (40, 3, RUNNER)
        assert {j.provider for j in (done, failed, running)} == {"openai"}  # schema 5
        assert (done.params, done.remote_handle) == (None, None)
        assert s.resolve("video_rnng3456").id == "rnng3456"
        assert s.resolve("@last").id == "rnng3456"
        assert [e.kind for e in s.events("cmpd2345")] == [
            "created", "claimed", "submitting", "http", "created", "downloading", "completed"]
        assert [e.kind for e in s.events("fajd6789")] == [
            "created", "claimed", "submitting", "http", "created", "http", "failed"]
        assert [e.kind for e in s.events("rnng3456")] == [
            "created", "claimed", "submitting", "http", "created"]
        # Still a working store: new jobs, legal moves, leases.
        [new] = s.add_jobs([VideoRequest("after the upgrade")])
        assert new.id not in V1_IDS
        s.transition("rnng3456", S.DOWNLOADING, runner_id=RUNNER)
        assert [j.id for j in s.claim("other", 5, 60, now=T0 + 1000)] == ["rnng3456", new.id]

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert migrations.stored_version(conn) == migrations.SCHEMA_VERSION
        assert shape(conn) == declared_shape()  # both roads end at the same schema
    finally:
        conn.close()


def test_a_schema_4_store_gets_providers(tmp_path: Path) -> None:
    """The previous release's store: every job becomes an openai one, and the new
    columns hold JSON."""
    path = tmp_path / "v3.db"
    load_fixture(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for step in (1, 2, 3):
            migrations.STEPS[step](conn)
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    finally:
        conn.close()
    with Store.open(path) as s:
        assert [s.resolve(i).provider for i in V1_IDS] == ["openai"] * 3
        [job] = s.add_jobs([VideoRequest("on replicate", "google/veo-3", "", 8,
                                         provider="replicate", params={"duration": 8})])
        assert s.get(job.id).params == {"duration": 8}  # type: ignore[union-attr]
        assert read(path, "SELECT provider, params FROM jobs WHERE id = ?", (job.id,)) == [
            ("replicate", '{"duration":8}')]
    conn = sqlite3.connect(path)
    try:
        assert shape(conn) == declared_shape()
    finally:
        conn.close()
