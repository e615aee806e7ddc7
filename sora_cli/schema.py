"""The job store's schema: SQLModel tables, the one source of truth for its shape.

This module is imported only to create or migrate a store (and by tests); the
hot paths (submit, status, list) talk to SQLite through `store.py` with the
column names below, and `tests/test_schema.py` checks that both agree. So the
CLI never pays for importing SQLAlchemy on a command that only reads a row.
"""

from __future__ import annotations

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_lease", "lease_owner"),
        Index("ux_jobs_remote_id", "remote_id", unique=True),
        Index("ix_jobs_label_created", "label", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=32)
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
    bytes: int | None = None
    sha256: str | None = None
    create_attempts: int = 0
    poll_count: int = 0
    download_attempts: int = 0
    create_started_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    # schema 2
    label: str | None = None
    image: str | None = None
    remix_of: str | None = Field(default=None, max_length=32)
    retry_of: str | None = Field(default=None, max_length=32)
    thumbnail_path: str | None = None


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

    id: str = Field(primary_key=True, max_length=64)
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


def column_names(table: str) -> tuple[str, ...]:
    return tuple(c.name for c in SQLModel.metadata.tables[table].columns)
