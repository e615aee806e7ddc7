"""The job store's schema: SQLModel tables, the one source of truth for its shape.

This module is imported only to create or migrate a store (and by tests); the
hot paths (submit, status, list) talk to the database through `store.py` with the
column names below, and `tests/test_schema.py` checks that both agree. So the
CLI never pays for importing SQLAlchemy on a command that only reads a row.
The same tables make a SQLite file and a PostgreSQL schema (`create_statements`).
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import BigInteger, Index, Integer, String
from sqlmodel import Field, SQLModel


def _bytewise(length: int | None = None) -> Any:
    """A string column compared byte by byte on PostgreSQL too (SQLite's BINARY), so
    that id-prefix ranges (`id >= 'abcd' AND id < 'abce'`) and their index work
    whatever the database's collation (with en_US, punctuation is ignored...)."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


# (table, column, type) of the columns above that use _bytewise() (byte-wise on
# PostgreSQL). Keep in step with those fields.
C_COLLATED: Final = (("jobs", "id", "VARCHAR(32)"), ("jobs", "runner_id", "VARCHAR"),
                     ("runners", "runner_id", "VARCHAR(64)"))


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_lease", "runner_id"),
        Index("ux_jobs_remote_id", "remote_id", unique=True),
        Index("ix_jobs_label_created", "label", "created_at"),
        Index("ix_jobs_remix_of", "remix_of"),  # schema 3: `status` finds remixes/retries
        Index("ix_jobs_retry_of", "retry_of"),
    )

    id: str = Field(primary_key=True, sa_type=_bytewise(32))
    prompt: str
    model: str
    size: str
    seconds: int
    status: str = Field(max_length=16)
    remote_id: str | None = None
    remote_status: str | None = None
    progress: int = 0
    created_at: float
    updated_at: float
    submitted_at: float | None = None
    completed_at: float | None = None
    expires_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_http_status: int | None = None
    error_request_id: str | None = None
    output_path: str | None = None
    # 64-bit on PostgreSQL (videos may pass 2 GiB); SQLite's INTEGER is 64-bit already
    bytes: int | None = Field(default=None,
                              sa_type=BigInteger().with_variant(Integer(), "sqlite"))
    sha256: str | None = None
    create_attempts: int = 0
    poll_count: int = 0
    download_attempts: int = 0
    create_started_at: float | None = None
    runner_id: str | None = Field(default=None, sa_type=_bytewise())
    lease_expires_at: float | None = None
    # schema 2
    label: str | None = None
    image: str | None = None
    remix_of: str | None = Field(default=None, max_length=32)
    retry_of: str | None = Field(default=None, max_length=32)
    thumbnail_path: str | None = None
    # schema 3
    output_host: str | None = None  # the host whose runner saved output_path
    # schema 5: jobs of any provider
    provider: str = Field(default="openai", sa_column_kwargs={"server_default": "openai"})
    params: str | None = None  # JSON: the model's input fields besides prompt and image
    remote_handle: str | None = None  # JSON: what the provider handed back to address it


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_job", "job_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=32)
    at: float
    kind: str
    from_status: str | None = None
    to_status: str | None = None
    attempt: int | None = None
    http_status: int | None = None
    request_id: str | None = None
    retry_in: float | None = None
    message: str | None = None
    runner_id: str | None = None


class RunnerRow(SQLModel, table=True):
    __tablename__ = "runners"

    runner_id: str = Field(primary_key=True, sa_type=_bytewise(64))
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    jobs_in_flight: int = 0


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str


def sqlite_ddl() -> list[str]:
    """CREATE statements for every table and index, in the SQLite dialect."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite.dialect()
    out: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        indexes = sorted(table.indexes, key=lambda ix: str(ix.name))  # a set: fix the order
        out.extend(str(CreateIndex(ix).compile(dialect=dialect)).strip() for ix in indexes)
    return out


def create_statements(dialect: str) -> list[str]:
    """The DDL of a fresh store: SQLite's, or what SQLAlchemy's `create_all` emits
    for a `postgresql+psycopg` engine (captured, to run in the migration's own
    transaction, under its lock, together with the version stamp)."""
    if dialect != "postgresql":
        return sqlite_ddl()
    from sqlalchemy import create_mock_engine

    out: list[str] = []

    def collect(sql: Any, *args: Any, **kw: Any) -> None:
        out.append(str(sql.compile(dialect=engine.dialect)).strip())

    engine = create_mock_engine("postgresql+psycopg://", collect)
    SQLModel.metadata.create_all(engine, checkfirst=False)
    return out


def column_names(table: str) -> tuple[str, ...]:
    return tuple(c.name for c in SQLModel.metadata.tables[table].columns)
