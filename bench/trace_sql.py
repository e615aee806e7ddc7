"""Run one sora command and write every SQL statement it sent to SQLite to a file, for
the query plans of the store benchmark.

`python bench/trace_sql.py OUT status ID` (the environment names the store).
"""

from __future__ import annotations

import atexit
import sqlite3
import sys
from pathlib import Path
from typing import Any

SEPARATOR = "\n\0\n"


def main(out: str, argv: list[str]) -> None:
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    sqlite3.connect = traced  # type: ignore[assignment]
    atexit.register(lambda: Path(out).write_text(SEPARATOR.join(statements)))
    sys.argv = ["sora", *argv]
    from sora_cli.__main__ import main as sora

    sora()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
