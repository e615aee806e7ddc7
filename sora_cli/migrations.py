"""Bringing a store's schema up to date, once, under the store's write lock.

A fresh store is created from the SQLModel tables in `schema.py` and stamped with
the current version; an older store runs the numbered steps in `STEPS` from its
version on. `tests/test_schema.py` checks that both roads end at the same schema,
and that a store written by the first release (`tests/fixtures/store_v1.sql`)
still opens with every job and event. A store from a newer sora, or a SQLite
database that is not a sora store, is refused and left untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from .errors import StoreError

# The version this code writes. Kept here (not only in schema.py) so that the
# common case, an up-to-date store, is checked without importing SQLModel.
SCHEMA_VERSION: Final = 2

Step = Callable[[sqlite3.Connection], None]
# STEPS[n] upgrades a store at version n to version n + 1. Each step runs inside
# the migration's transaction: it must not COMMIT, and a failure undoes them all.


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Labels, image references and links between jobs (remix, retry), thumbnails."""
    for column in ("label VARCHAR", "image VARCHAR", "remix_of VARCHAR(32)",
                   "retry_of VARCHAR(32)", "thumbnail_path VARCHAR"):
        conn.execute(f"ALTER TABLE jobs ADD COLUMN {column}")
    conn.execute("CREATE INDEX ix_jobs_label_created ON jobs (label, created_at)")


STEPS: Final[dict[int, Step]] = {1: _v1_to_v2}


def stored_version(conn: sqlite3.Connection, *, path: str = "the job store") -> int:
    """The schema version stamped in the store; 0 for an empty (new) database."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise StoreError(f"{path}: unreadable schema version {row[0]!r}") from None


def check_openable(conn: sqlite3.Connection, *, path: str) -> int:
    """The store's version, found by reading only; refuse what this sora must not touch."""
    # Tables first, then the stamp: a store gets both in one transaction, so once its
    # tables are visible its version is too (the other order races a creating process).
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    tables -= {"sqlite_sequence"}
    version = stored_version(conn, path=path) if tables else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer sora (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade sora-cli. The store was not changed."
        )
    if version == 0 and tables:
        raise StoreError(
            f"{path} is a SQLite database but not a sora job store (tables: "
            f"{', '.join(sorted(tables))}); it was not changed"
        )
    return version


def migrate(conn: sqlite3.Connection, *, path: str) -> None:
    """Create or upgrade the schema; a no-op (one read) when it is current."""
    if check_openable(conn, path=path) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
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
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _step(step_from: int, path: str) -> Step:
    step = STEPS.get(step_from)
    if step is None:
        raise StoreError(f"{path}: no upgrade from schema {step_from} (a broken sora install?)")
    return step


def _create(conn: sqlite3.Connection) -> None:
    from .schema import sqlite_ddl

    for statement in sqlite_ddl():
        conn.execute(statement)
