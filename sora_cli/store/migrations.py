"""Bringing a store's schema up to date, once, under the store's write lock.

A fresh store is created from the SQLModel tables in `schema.py` and stamped with
the current version; an older store runs the numbered steps in `STEPS` from its
version on. `tests/test_schema.py` checks that both roads end at the same schema,
and that a store written by the first release (`tests/fixtures/store_v1.sql`)
still opens with every job and event (`tests/test_pg_migrations.py`: the same on
PostgreSQL). A store from a newer sora, or a database that is not a sora store,
is refused and left untouched.

The same code serves SQLite and PostgreSQL (`conn` is a db.DB, or a plain
sqlite3 connection): on SQLite the write lock (`BEGIN IMMEDIATE`) serialises
migrations, on PostgreSQL a transaction-level advisory lock does, and DDL is
transactional on both, so a failed upgrade leaves the old schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from sora_cli.errors import StoreError

# The version this code writes. Kept here (not only in schema.py) so that the
# common case, an up-to-date store, is checked without importing SQLModel.
SCHEMA_VERSION: Final = 5
# pg_advisory_xact_lock key: one migration at a time per PostgreSQL database.
MIGRATION_LOCK: Final = 0x736F72615F6D6967  # "sora_mig"

Step = Callable[[Any], None]
# STEPS[n] upgrades a store at version n to version n + 1. Each step runs inside
# the migration's transaction: it must not COMMIT, and a failure undoes them all.
# Portable SQL, or look at `dialect(conn)`.


def dialect(conn: Any) -> str:
    """"sqlite" or "postgresql" (a plain sqlite3 connection has no `dialect`)."""
    return str(getattr(conn, "dialect", "sqlite"))


def _v1_to_v2(conn: Any) -> None:
    """Labels, image references and links between jobs (remix, retry), thumbnails."""
    for column in ("label VARCHAR", "image VARCHAR", "remix_of VARCHAR(32)",
                   "retry_of VARCHAR(32)", "thumbnail_path VARCHAR"):
        conn.execute(f"ALTER TABLE jobs ADD COLUMN {column}")
    conn.execute("CREATE INDEX ix_jobs_label_created ON jobs (label, created_at)")


def _v2_to_v3(conn: Any) -> None:
    """The host that holds each saved video (several runners share one store); on
    PostgreSQL, ids and runner ids compare byte by byte (prefix ranges), as on SQLite,
    and `bytes` is 64-bit (videos may pass 2 GiB)."""
    conn.execute("ALTER TABLE jobs ADD COLUMN output_host VARCHAR")
    conn.execute("CREATE INDEX ix_jobs_remix_of ON jobs (remix_of)")
    conn.execute("CREATE INDEX ix_jobs_retry_of ON jobs (retry_of)")
    if dialect(conn) == "postgresql":
        conn.execute("ALTER TABLE jobs ALTER COLUMN bytes TYPE BIGINT")
        for table, column, sql_type in _V3_C_COLLATED:
            conn.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE {sql_type} '
                         'COLLATE "C"')


# The byte-wise columns as they were named at schema 3 (step 3 -> 4 renamed two).
_V3_C_COLLATED: Final = (("jobs", "id", "VARCHAR(32)"), ("jobs", "lease_owner", "VARCHAR"),
                         ("runners", "id", "VARCHAR(64)"))


def _v3_to_v4(conn: Any) -> None:
    """One name for one thing: the runner that holds a job's lease is its `runner_id`,
    as in `events` and `runners`."""
    conn.execute("ALTER TABLE jobs RENAME COLUMN lease_owner TO runner_id")
    conn.execute("ALTER TABLE runners RENAME COLUMN id TO runner_id")


def _v4_to_v5(conn: Any) -> None:
    """Jobs of any provider: whose model each job uses (every existing job is an
    `openai` one), the model's input fields, and the provider's addressing data."""
    conn.execute("ALTER TABLE jobs ADD COLUMN provider VARCHAR DEFAULT 'openai' NOT NULL")
    conn.execute("ALTER TABLE jobs ADD COLUMN params VARCHAR")
    conn.execute("ALTER TABLE jobs ADD COLUMN remote_handle VARCHAR")


STEPS: Final[dict[int, Step]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5}


def tables(conn: Any) -> set[str]:
    """The tables of the store (SQLite file, or the PostgreSQL schema in use)."""
    if dialect(conn) == "postgresql":
        sql = ("SELECT table_name FROM information_schema.tables "
               "WHERE table_schema = current_schema()")
    else:
        sql = "SELECT name FROM sqlite_master WHERE type='table'"
    return {r[0] for r in conn.execute(sql)} - {"sqlite_sequence"}


def stored_version(conn: Any, *, path: str = "the job store") -> int:
    """The schema version stamped in the store; 0 for an empty (new) database."""
    if "meta" not in tables(conn):
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise StoreError(f"{path}: unreadable schema version {row[0]!r}") from None


def check_openable(conn: Any, *, path: str) -> int:
    """The store's version, found by reading only; refuse what this sora must not touch."""
    # Tables first, then the stamp: a store gets both in one transaction, so once its
    # tables are visible its version is too (the other order races a creating process).
    found = tables(conn)
    version = stored_version(conn, path=path) if found else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer sora (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade sora-cli. The store was not changed."
        )
    if version == 0 and found:
        what = "PostgreSQL schema" if dialect(conn) == "postgresql" else "SQLite database"
        raise StoreError(
            f"{path} is a {what} but not a sora job store (tables: "
            f"{', '.join(sorted(found))}); it was not changed"
        )
    return version


def migrate(conn: Any, *, path: str) -> None:
    """Create or upgrade the schema; a no-op (one read) when it is current."""
    if check_openable(conn, path=path) == SCHEMA_VERSION:
        return
    if dialect(conn) == "postgresql":
        with conn.write():  # the next migrator waits on the lock, then finds it done
            conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            _upgrade(conn, path)
        return
    conn.execute("BEGIN IMMEDIATE")  # a plain sqlite3 connection too (tests)
    try:
        _upgrade(conn, path)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _upgrade(conn: Any, path: str) -> None:
    version = check_openable(conn, path=path)  # another process may have migrated meanwhile
    if version == 0:
        _create(conn)  # the current schema at once: no steps
    else:
        for step_from in range(version, SCHEMA_VERSION):
            _step(step_from, path)(conn)
    if version != SCHEMA_VERSION:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )


def _step(step_from: int, path: str) -> Step:
    step = STEPS.get(step_from)
    if step is None:
        raise StoreError(f"{path}: no upgrade from schema {step_from} (a broken sora install?)")
    return step


def _create(conn: Any) -> None:
    from sora_cli.store.schema import create_statements

    for statement in create_statements(dialect(conn)):
        conn.execute(statement)
