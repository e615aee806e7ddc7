"""PostgreSQL under the job store: `PgDB`, the interface of db.py over psycopg 3.

Imported only when a database URL is configured (`SORA_DATABASE_URL` or
`database_url`). The connection runs in autocommit mode, so a read is one
statement and holds nothing; every write is an explicit `BEGIN ... COMMIT` from
`write()`. The repository's `?` placeholders become psycopg's `%s` here.

Connection loss: a statement that fails because the server went away raises
`StoreUnavailable`, and the next call opens a new connection. A read outside a
transaction is retried once at once on a fresh connection (a read is safe to
repeat; a write is not, so the caller decides: the runner backs off and resumes
from what the store says).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any, Final

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sora_cli.domain.text import scrub
from sora_cli.errors import StoreError, StoreUnavailable
from sora_cli.store.db import DB, Cursor, display_url, malformed_url

# Connection defaults (the URL may override any): give up connecting after 5 s, and
# notice a server that vanished without a word (a machine gone) within about 30 s,
# instead of waiting on a dead TCP connection for many minutes.
DEFAULTS: Final = {"connect_timeout": "5", "application_name": "sora", "keepalives": "1",
                   "keepalives_idle": "10", "keepalives_interval": "5",
                   "keepalives_count": "3", "tcp_user_timeout": "30000"}
_IDLE: Final = pq.TransactionStatus.IDLE


@lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`?` placeholders to `%s`, and a literal `%` to `%%` (psycopg reads both)."""
    out: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


def _first_line(exc: BaseException) -> str:
    """The driver's reason, through the one redaction (it may quote the URL)."""
    text = scrub(str(exc), 500).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


class PgDB:
    dialect: Final = "postgresql"

    def __init__(self, url: str) -> None:
        self._url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.where = display_url(url)
        # Test seam, like sqlite3's set_trace_callback: sees each statement and its params.
        self.trace: Callable[[str, Sequence[Any]], None] | None = None
        self._in_write = False
        self._conn: psycopg.Connection[Any] | None = None
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        if malformed_url(self._url):  # libpq would quote (and split) its password anywhere
            raise StoreError(f"cannot use the job store at {self.where}: the database URL "
                             "does not parse cleanly (percent-encode @ / ? # % and : in the "
                             "user name and password, or keep the password in ~/.pgpass "
                             "or PGPASSWORD)")
        try:
            params = {**DEFAULTS, **conninfo_to_dict(self._url)}
            return psycopg.connect(make_conninfo("", **params), autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"cannot reach the job store at {self.where}: {_first_line(exc)}") from None
        except psycopg.Error as exc:  # a malformed URL, an unknown option
            raise StoreError(f"cannot use the job store at {self.where}: "
                             f"{_first_line(exc)}") from None

    def _live(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed:
            if self._in_write:  # never carry on a transaction on another connection
                raise StoreUnavailable(f"lost the connection to the job store at {self.where}")
            self._conn = None
            conn = self._conn = self._connect()
        return conn

    def _lost(self, exc: psycopg.Error, doing: str = "") -> StoreUnavailable:
        if self._conn is not None and not self._conn.closed:  # a lock timeout, a deadlock
            return StoreUnavailable(f"job store at {self.where}{doing}: {_first_line(exc)}")
        return StoreUnavailable(
            f"lost the connection to the job store at {self.where}{doing}: {_first_line(exc)}")

    @property
    def in_transaction(self) -> bool:
        conn = self._conn
        return (conn is not None and not conn.closed
                and conn.info.transaction_status != _IDLE)

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        conn = self._live()
        if self.trace is not None:
            self.trace(sql, params)
        query, args = (to_pyformat(sql), tuple(params)) if params else (sql, None)
        try:
            return conn.execute(query, args)
        except psycopg.OperationalError as exc:
            if not (conn.closed and not self._in_write and sql.lstrip()[:6].upper() == "SELECT"):
                raise self._lost(exc) from None
        try:  # a read on a connection that had gone away: once more on a new one
            return self._live().execute(query, args)
        except psycopg.OperationalError as exc:
            raise self._lost(exc) from None

    @contextmanager
    def write(self) -> Iterator[DB]:
        """One write transaction; rolled back if the block raises."""
        self.execute("BEGIN")
        self._in_write = True
        try:
            yield self
        except BaseException:
            self._in_write = False
            self._rollback()
            raise
        self._in_write = False
        try:
            self._live().execute("COMMIT")
        except psycopg.OperationalError as exc:
            self._rollback()
            raise self._lost(exc, " while saving a change (it may not have been saved)") from None
        except psycopg.Error:
            self._rollback()
            raise

    def _rollback(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed and conn.info.transaction_status != _IDLE:
            with suppress(psycopg.Error):  # a failed connection took its transaction with it
                conn.execute("ROLLBACK")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def connect_pg(url: str) -> PgDB:
    """Connect, and create or upgrade the schema (under an advisory lock) on first use."""
    from sora_cli.store.migrations import migrate

    db = PgDB(url)
    try:
        migrate(db, path=db.where)
    except psycopg.Error as exc:  # say which database, in one line (a permission, say)
        db.close()
        raise StoreError(f"cannot set up the job store at {db.where}: "
                         f"{_first_line(exc)}") from None
    except BaseException:
        db.close()
        raise
    return db
