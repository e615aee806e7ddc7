"""The job store: repository, leases, schema and migrations, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_cli.lazy import lazy_exports

if TYPE_CHECKING:
    from sora_cli.store.connect import is_database_url, open_db
    from sora_cli.store.db import DB
    from sora_cli.store.migrations import SCHEMA_VERSION
    from sora_cli.store.repository import Store

__all__ = [
    "DB", "SCHEMA_VERSION", "Store", "is_database_url", "open_db",
]

__getattr__ = lazy_exports(__name__, {
    "DB": "db",
    "SCHEMA_VERSION": "migrations",
    "Store": "repository",
    "is_database_url": "connect",
    "open_db": "connect",
})
