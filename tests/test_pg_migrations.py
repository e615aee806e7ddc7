"""Creating and upgrading the job store on PostgreSQL: a fresh store is SQLModel's
`create_all` for PostgreSQL plus the version stamp; a store of schema 1 (the first
release's fixture, loaded through its own DDL) or schema 2 upgrades through the
same `STEPS` to the same schema, keeping every job and event; migrations run one at
a time (an advisory lock); a newer or foreign schema is refused untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgtest
import pytest
from test_schema import T0, V1_EVENT_COLUMNS, V1_IDS, V1_JOB_COLUMNS, V1_JOB_COLUMNS_NOW
from waits import wait_until

from sora_cli.domain.jobs import JobStatus, VideoRequest
from sora_cli.errors import StoreError
from sora_cli.store import migrations, schema
from sora_cli.store.pg import PgDB
from sora_cli.store.repository import Store
from sora_cli.store.rows import EVENT_COLUMNS, JOB_COLUMNS

pytestmark = pytest.mark.postgres
S = JobStatus
FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.sql"


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, params or None)
        return list(cur.fetchall()) if cur.description else []


def shape(url: str) -> dict[str, Any]:
    """Columns (name, type, length, nullable, collation, default) and index definitions
    of every table in the schema the URL uses, with the schema's name left out."""
    cols = query(url, "SELECT table_name, column_name, data_type, character_maximum_length, "
                 "is_nullable, collation_name, column_default FROM information_schema.columns "
                 "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position")
    [(current,)] = query(url, "SELECT current_schema()")
    indexes = query(url, "SELECT tablename, indexname, indexdef FROM pg_indexes "
                    "WHERE schemaname = current_schema() ORDER BY indexname")
    return {"columns": cols,
            "indexes": [(t, n, d.replace(f"{current}.", "")) for t, n, d in indexes]}


@pytest.fixture
def other_url(pg_database: pgtest.Database) -> Iterator[str]:
    with pg_database.schema() as url:
        yield url


def load_v1_fixture(url: str) -> None:
    """The first release's store, through its own DDL, as PostgreSQL would hold it: the
    dump is SQLite's, where an INTEGER primary key counts by itself; SQLModel's
    `create_all` makes that column SERIAL on PostgreSQL."""
    import psycopg

    statements = [s.strip() for s in FIXTURE.read_text().split(";\n") if s.strip()]
    statements = [s for s in statements if not s.startswith(("BEGIN", "COMMIT", "PRAGMA"))]
    with psycopg.connect(url) as conn:  # one transaction
        for statement in statements:
            if statement.startswith("CREATE TABLE events"):
                statement = statement.replace("id INTEGER NOT NULL", "id SERIAL NOT NULL", 1)
            conn.execute(statement.replace("%", "%%"))
        conn.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), max(id)) "
                     "FROM events")


def v1_rows(url: str, *, upgraded: bool = False
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    columns = V1_JOB_COLUMNS_NOW if upgraded else V1_JOB_COLUMNS
    return (query(url, f"SELECT {', '.join(columns)} FROM jobs ORDER BY id"),
            query(url, f"SELECT {', '.join(V1_EVENT_COLUMNS)} FROM events ORDER BY id"))


# --- a fresh store -----------------------------------------------------------------------


def test_a_fresh_store_is_the_declared_schema(pg_url: str) -> None:
    Store.open(pg_url).close()
    got = shape(pg_url)
    tables = {c[0] for c in got["columns"]}
    assert tables == {"jobs", "events", "runners", "meta"}
    for table in tables:
        assert tuple(c[1] for c in got["columns"] if c[0] == table) == schema.column_names(table)
    assert schema.column_names("jobs") == JOB_COLUMNS
    assert schema.column_names("events") == EVENT_COLUMNS
    collated = {(c[0], c[1]) for c in got["columns"] if c[5] == "C"}
    assert collated == {(t, c) for t, c, _ in schema.C_COLLATED}
    from sqlmodel import SQLModel

    declared = {str(ix.name) for t in SQLModel.metadata.sorted_tables for ix in t.indexes}
    assert declared <= {name for _, name, _ in got["indexes"]}
    assert query(pg_url, "SELECT key, value FROM meta") == [
        ("schema_version", str(migrations.SCHEMA_VERSION))]


def test_opening_a_current_store_only_reads(pg_url: str) -> None:
    Store.open(pg_url).close()
    conn = PgDB(pg_url)
    try:
        seen: list[str] = []
        conn.trace = lambda sql, params: seen.append(sql)
        migrations.migrate(conn, path=conn.where)
        assert seen and all(s.lstrip().upper().startswith("SELECT") for s in seen)
    finally:
        conn.close()


def test_first_opens_at_once_make_one_schema(pg_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(5, timeout=60)

    def open_it() -> None:
        try:
            start.wait()
            with Store.open(pg_url) as s:
                s.add_jobs([VideoRequest("x")])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert query(pg_url, "SELECT count(*) FROM meta") == [(1,)]
    assert query(pg_url, "SELECT count(*) FROM jobs") == [(5,)]


# Sessions of this test's database waiting for an advisory lock (the tests of a worker
# run one after another, each in a database of its worker's).
WAITING_FOR_A_LOCK = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                      " AND database = (SELECT oid FROM pg_database"
                      " WHERE datname = current_database())")


def test_migrations_wait_for_the_advisory_lock(pg_url: str) -> None:
    import psycopg

    holder = psycopg.connect(pg_url)  # a transaction holding the migration lock
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.MIGRATION_LOCK,))
    opened: list[float] = []

    def open_it() -> None:
        Store.open(pg_url).close()
        opened.append(time.monotonic())

    thread = threading.Thread(target=open_it)
    thread.start()
    wait_until(lambda: query(pg_url, WAITING_FOR_A_LOCK) == [(1,)], 30,
               "the migration to wait for the advisory lock")
    assert opened == [] and query(pg_url, "SELECT current_schema()")
    assert {c[0] for c in shape(pg_url)["columns"]} == set()
    released = time.monotonic()
    holder.rollback()
    holder.close()
    thread.join(30)
    assert opened and opened[0] >= released
    assert query(pg_url, "SELECT value FROM meta") == [(str(migrations.SCHEMA_VERSION),)]


# --- upgrades --------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [1, 2, 3, 4])
def test_an_old_store_upgrades_to_the_fresh_schema(pg_url: str, other_url: str,
                                                   start: int) -> None:
    load_v1_fixture(pg_url)
    if start > 1:  # an earlier version: schema 1 with the steps up to `start` applied
        conn = PgDB(pg_url)
        with conn.write():
            for step in range(1, start):
                migrations.STEPS[step](conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                         (str(start),))
        conn.close()
    assert query(pg_url, "SELECT value FROM meta") == [(str(start),)]
    jobs_before, events_before = v1_rows(pg_url, upgraded=start >= 4)  # 4 renamed one
    assert len(jobs_before) == 3 and len(events_before) == 19

    with Store.open(pg_url) as s:
        assert v1_rows(pg_url, upgraded=True) == (jobs_before, events_before)
        done, failed, running = (s.resolve(i) for i in V1_IDS)
        assert (done.status, failed.status, running.status) == (S.COMPLETED, S.FAILED,
                                                                 S.RUNNING)
        assert (done.bytes, done.sha256, done.output_host) == (123456, "ab" * 32, None)
        assert {j.provider for j in (done, failed, running)} == {"openai"}  # schema 5
        [fal] = s.add_jobs([VideoRequest("on fal", "fal-ai/veo3", "", 8, provider="fal",
                                         params={"duration": "8s"})])
        s.transition(fal.id, S.SUBMITTING)
        s.transition(fal.id, S.RUNNING, remote_id="req-1", remote_handle={"status_url": "u"})
        got = s.get(fal.id)
        assert got is not None and (got.provider, got.params, got.remote_handle) == (
            "fal", {"duration": "8s"}, {"status_url": "u"})
        assert s.resolve("cmpd").id == "cmpd2345"
        assert [e.kind for e in s.events("rnng3456")] == [
            "created", "claimed", "submitting", "http", "created"]
        [new] = s.add_jobs([VideoRequest("after the upgrade")])  # events.id keeps counting
        assert s.events(new.id)[0].id == 23  # 19, then the fal job's 3
        s.transition("rnng3456", S.DOWNLOADING, runner_id="host:100:abcdef")
        assert [j.id for j in s.claim("other", 5, 60, now=T0 + 1000, rooms={"openai": 5})
                ] == ["rnng3456", new.id]

    assert query(pg_url, "SELECT value FROM meta") == [(str(migrations.SCHEMA_VERSION),)]
    Store.open(other_url).close()
    assert shape(pg_url) == shape(other_url)  # both roads end at the same schema
    assert query(pg_url, "SELECT data_type FROM information_schema.columns WHERE "
                 "table_schema = current_schema() AND table_name = 'jobs' AND "
                 "column_name = 'bytes'") == [("bigint",)]  # a 3 GiB video fits


def test_a_failing_step_changes_nothing(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(pg_url) as s:
        s.add_jobs([VideoRequest("survivor")])
    before = shape(pg_url)
    old = migrations.SCHEMA_VERSION
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", old + 1)

    def step(conn: Any) -> None:
        conn.execute("ALTER TABLE jobs ADD COLUMN note TEXT")
        raise RuntimeError("step failed half way")

    monkeypatch.setitem(migrations.STEPS, old, step)
    with pytest.raises(RuntimeError):
        Store.open(pg_url)
    assert shape(pg_url) == before  # DDL is transactional: the column went too
    assert query(pg_url, "SELECT value FROM meta") == [(str(old),)]
    assert query(pg_url, "SELECT prompt FROM jobs") == [("survivor",)]


def test_a_newer_store_is_refused_and_untouched(pg_url: str) -> None:
    with Store.open(pg_url) as s:
        s.add_jobs([VideoRequest("from the future")])
    query(pg_url, "UPDATE meta SET value = %s", (str(migrations.SCHEMA_VERSION + 1),))
    before = shape(pg_url), query(pg_url, "SELECT * FROM jobs")
    with pytest.raises(StoreError, match="newer sora") as info:
        Store.open(pg_url)
    assert "not changed" in str(info.value)
    assert (shape(pg_url), query(pg_url, "SELECT * FROM jobs")) == before


def test_another_programs_schema_is_refused_and_untouched(pg_url: str) -> None:
    query(pg_url, "CREATE TABLE notes (body TEXT)")
    query(pg_url, "INSERT INTO notes VALUES ('mine')")
    with pytest.raises(StoreError, match="PostgreSQL schema but not a sora job store") as info:
        Store.open(pg_url)
    assert "notes" in str(info.value)
    assert {c[0] for c in shape(pg_url)["columns"]} == {"notes"}
    assert query(pg_url, "SELECT body FROM notes") == [("mine",)]


def test_a_missing_database_is_a_clear_store_error(pg_database: pgtest.Database) -> None:
    url = pgtest.with_database(pg_database.url, "sora_no_such_database")
    with pytest.raises(StoreError, match=r'cannot reach the job store at .*/sora_no_such_database: '
                       r'.*database "sora_no_such_database" does not exist'):
        Store.open(url)
