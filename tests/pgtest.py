"""PostgreSQL for the tests: the server the machine provides on 127.0.0.1:5432.

Each test session creates a fresh database (`sora_test_<worker>_<random>`) and drops
it at the end; under pytest-xdist every worker is a session of its own, so workers
never share one. Each test that asks for `pg_url` gets a fresh schema in it (a URL
whose `search_path` names the schema), so no test sees another's rows or leftovers.

When no server answers, the PostgreSQL tests skip with the reason, unless the
environment has `CI` set: then they fail (CI must not pass by skipping them).
`PG_TEST_ADMIN_URL` names another server (a database to connect to for
CREATE/DROP DATABASE).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

ADMIN_URL = os.environ.get("PG_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _connect(url: str, **kw: Any) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=3, **kw)


def unreachable_reason(url: str = ADMIN_URL) -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        _connect(url).close()
    except Exception as exc:  # any failure to connect means: no usable server
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"no PostgreSQL server at {url.rsplit('@', 1)[-1]}: {first[:200]}"
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI (CI is set): {reason}", pytrace=False)
    pytest.skip(f"{reason} (set CI to make this a failure)")


def with_database(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


@dataclass
class Database:
    """A throwaway database on the test server."""

    name: str
    url: str
    admin_url: str

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement as an outside client (not through sora)."""
        with _connect(self.url) as conn:
            cur = conn.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description else []

    @contextmanager
    def schema(self) -> Iterator[str]:
        """A fresh schema; yields a URL whose connections use it (search_path)."""
        name = f"t_{secrets.token_hex(5)}"
        self.execute(f"CREATE SCHEMA {name}")
        try:
            yield schema_url(self.url, name)
        finally:
            self.execute(f"DROP SCHEMA {name} CASCADE")

    def terminate_sora_connections(self) -> int:
        """Kill every backend sora has open on this database (pg_terminate_backend)."""
        rows = self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'sora' AND pid <> pg_backend_pid()",
            (self.name,))
        return sum(1 for (done,) in rows if done)


def schema_url(url: str, schema: str) -> str:
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_database(admin_url: str = ADMIN_URL, *, create_options: str = "") -> Iterator[Database]:
    """CREATE DATABASE sora_test_<worker>_<random> ...; DROP it (kicking out stragglers)
    after. The worker is pytest-xdist's (gw0, gw1...), or `main` without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"sora_test_{worker if worker.isalnum() else 'main'}_{secrets.token_hex(6)}"
    with _connect(admin_url) as admin:
        admin.execute(f"CREATE DATABASE {name} {create_options}")
    try:
        yield Database(name, with_database(admin_url, name), admin_url)
    finally:
        with _connect(admin_url) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
