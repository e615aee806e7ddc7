"""The baseline of the submission benchmark: the same rows (a queued job and its
`created` event per prompt) inserted with plain `sqlite3.executemany` in one
transaction. Prints the seconds the insert took (start-up excluded).

`python bench/insert_many.py STORE.db PROMPTS.txt`
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
import time
from pathlib import Path

ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def main(db: str, path: str) -> int:
    prompts = [line for line in Path(path).read_text().splitlines() if line.strip()]
    started = time.perf_counter()
    now = time.time()
    ids = ["".join(secrets.choice(ALPHABET) for _ in range(8)) for _ in prompts]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO jobs (id, prompt, model, size, seconds, status, progress, created_at, "
        "updated_at, create_attempts, poll_count, download_attempts) "
        "VALUES (?, ?, 'sora-2', '720x1280', 4, 'queued', 0, ?, ?, 0, 0, 0)",
        ((i, p, now + n * 1e-6, now + n * 1e-6) for n, (i, p) in enumerate(
            zip(ids, prompts, strict=True))))
    conn.executemany("INSERT INTO events (job_id, kind, at, to_status) "
                     "VALUES (?, 'created', ?, 'queued')",
                     ((i, now + n * 1e-6) for n, i in enumerate(ids)))
    conn.execute("COMMIT")
    conn.close()
    print(f"{time.perf_counter() - started:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
