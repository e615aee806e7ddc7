"""Bringing a store's schema up to date, once, under the store's write lock.

A fresh store is created from the SQLModel tables in `schema.py` and stamped with
the current version; an older store runs the numbered steps in `STEPS` from its
version on. `tests/test_migrations.py` checks that both roads end at the same
schema. A store from a newer sora is refused and left untouched.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from .errors import StoreError

# The version this code writes. Kept here (not only in schema.py) so that the
# common case, an up-to-date store, is checked without importing SQLModel.
SCHEMA_VERSION: Final = 1

Step = Callable[[sqlite3.Connection], None]
# STEPS[n] upgrades a store at version n to version n + 1.
STEPS: Final[dict[int, Step]] = {}


def stored_version(conn: sqlite3.Connection) -> int:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return 0
        raise
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, *, path: str) -> None:
    version = stored_version(conn)
    if version == SCHEMA_VERSION:
        return
    _refuse_newer(version, path)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = stored_version(conn)  # another process may have migrated meanwhile
        _refuse_newer(version, path)
        if version == 0:
            _create(conn)
        else:
            for step_from in range(version, SCHEMA_VERSION):
                STEPS[step_from](conn)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _refuse_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer sora (schema {version}, this one knows "
            f"{SCHEMA_VERSION}); upgrade sora-cli. The store was not changed."
        )


def _create(conn: sqlite3.Connection) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables - {"sqlite_sequence"}:
        raise StoreError(f"the database has tables but no sora schema version: {sorted(tables)}")
    from .schema import sqlite_ddl

    for statement in sqlite_ddl():
        conn.execute(statement)
