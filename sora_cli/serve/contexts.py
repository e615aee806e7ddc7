"""What the server's parts share: one services `Context` (so one store connection) per
worker thread, and `Render`, the job's JSON shape.

FastAPI runs the API's plain functions on a pool of threads; a store connection is
used by one thread at a time, so each thread opens its own on first use. All are
closed when the server stops.

The JSON shape is the CLI's own `job_dict`, handed in by `sora serve` (cli/serve.py)
rather than imported here: the CLI starts the server, so the server must not import
the CLI (no cycle between the packages).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeAlias

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job
from sora_cli.services.context import Context

Render: TypeAlias = Callable[[Job], dict[str, Any]]  # a job as `--json` shows it


class ContextPool:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Context] = []

    def get(self) -> Context:
        ctx: Context | None = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = Context(self.settings)
            self._local.ctx = ctx
            with self._lock:
                self._all.append(ctx)
        return ctx

    def close(self) -> None:
        with self._lock:
            contexts, self._all = self._all, []
        for ctx in contexts:
            ctx.close()
