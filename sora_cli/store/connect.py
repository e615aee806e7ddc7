"""Choosing the job store's driver: a PostgreSQL URL or a SQLite file.

The one module that knows both drivers, so that neither imports the other (pg.py
and sqlite.py both build on db.py's interface). psycopg is imported only when a
database URL is configured.
"""

from __future__ import annotations

from pathlib import Path

from sora_cli.errors import StoreError
from sora_cli.store.db import DB, URL_SCHEMES


def is_database_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def open_db(location: Path | str) -> DB:
    """Connect to the store at `location` (a SQLite file, or a PostgreSQL URL),
    creating or upgrading its schema on first use."""
    if is_database_url(location):
        assert isinstance(location, str)
        try:
            from sora_cli.store.pg import connect_pg
        except ImportError as exc:
            if exc.name is None or not exc.name.startswith("psycopg"):
                raise
            raise StoreError("a PostgreSQL database URL is configured but psycopg is not "
                             "installed: pip install 'sora-cli[postgres]'") from None
        return connect_pg(location)
    from sora_cli.store.sqlite import connect

    return connect(Path(location))
