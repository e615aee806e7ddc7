"""The job store's connection: one small interface over SQLite and PostgreSQL.

The repository (store.py, leases.py, store_admin.py) writes its SQL once, with `?`
placeholders and portable SQL, against `DB`:

- `execute(sql, params)` returns a cursor (`fetchone`, `fetchall`, iteration);
- `write()` is one short write transaction (`BEGIN IMMEDIATE` on SQLite, `BEGIN` on
  PostgreSQL), rolled back when the block raises;
- `dialect` ("sqlite" or "postgresql") for the few statements that differ on
  purpose (row locks when claiming; see `for_update`);
- errors come out as `StoreError`, and as `StoreUnavailable` when the database
  cannot be reached (the runner backs off and tries again; the CLI exits 1).

SQLite is `store_sql.SqliteDB`, a `sqlite3.Connection` subclass (nothing in between
on the hot path). PostgreSQL is `pg.PgDB`, imported only when a database URL is
configured: no command on SQLite imports psycopg, SQLAlchemy or SQLModel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Final, Protocol

URL_SCHEMES: Final = ("postgresql://", "postgres://", "postgresql+psycopg://")



class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class DB(Protocol):
    """What the repository needs from a connection (see the module docstring)."""

    @property
    def dialect(self) -> str: ...

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def write(self) -> AbstractContextManager[DB]: ...

    def close(self) -> None: ...




def for_update(conn: DB, *, skip_locked: bool = False) -> str:
    """The row-lock suffix for a SELECT inside `write()`: nothing on SQLite (its write
    transaction already excludes every other writer), `FOR UPDATE [SKIP LOCKED]` on
    PostgreSQL (where writers run side by side, row by row)."""
    if conn.dialect != "postgresql":
        return ""
    return " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"


def display_url(url: str) -> str:
    """A database URL fit for messages: no user, no password, no password-like
    parameter; a URL that does not parse cleanly shows its scheme only."""
    from sora_cli.domain.text import mask_url

    return mask_url(url) or "the PostgreSQL job store"


def malformed_url(url: str) -> bool:
    """True when where the URL's password ends cannot be told (an unencoded @, /, ?, #
    or a bad percent escape in it): then no driver message may quote any of it."""
    return display_url(url).endswith("://***")


def one_at_a_time(conn: DB, what: str) -> None:
    """Inside `write()`: transactions that call this with the same `what` run one after
    the other, each seeing what the one before it committed. SQLite's write lock
    already does that for every write; PostgreSQL takes an advisory lock until
    commit (for a check-then-write, such as a budget, that must not race)."""
    if conn.dialect == "postgresql":
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"sora:{what}",))
