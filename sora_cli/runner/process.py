"""The runner process: take the lock, set up the log, run the loop, exit when idle.

Started detached by `spawn.start_runner` (or by hand with `sora runner serve`).
A second runner finds the lock taken and exits quietly with status 0. SIGTERM
and SIGINT stop it gracefully: in-flight jobs are released, not lost.

The runner id is `host:home:pid:token` (`home` a short hash of SORA_HOME): the lock
is per SORA_HOME, so only runner ids with this host-and-home prefix are known dead
when we hold it (several homes, or machines, may share one PostgreSQL store).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from types import TracebackType
from typing import TYPE_CHECKING

from sora_cli.config import Settings, ensure_home, missing_keys
from sora_cli.domain.text import mask_url, scrub
from sora_cli.errors import StoreError, StoreUnavailable
from sora_cli.runner.spawn import NO_FOLLOW, hold_runner_lock

if TYPE_CHECKING:
    from sora_cli.store.repository import Store

log = logging.getLogger("sora.runner")
FORGET_RUNNERS_AFTER = 24 * 3600.0  # runner rows silent this long are deleted at start
PR_SET_DUMPABLE = 4  # prctl(2)


class _Scrubbed(logging.Formatter):
    """Every log line, tracebacks included, goes through domain.text.scrub: no key, no
    password, no escape sequence reaches runner.log."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), None)


def _setup_logging(settings: Settings) -> None:
    # never through a link planted at runner.log (ensure_home refuses a shared home too)
    fd = os.open(settings.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | NO_FOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    handler.setFormatter(_Scrubbed("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("sora")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    sys.excepthook = _scrubbed_excepthook  # what escapes lands in runner.log (stderr) too


def _scrubbed_excepthook(kind: type[BaseException], exc: BaseException,
                         tb: TracebackType | None) -> None:
    import traceback

    sys.stderr.write(scrub("".join(traceback.format_exception(kind, exc, tb)), None))


def harden() -> None:
    """The runner holds the API key in memory for hours: no core dump of it (in
    SORA_HOME, say), and no other process of the user may read its memory (ptrace,
    /proc/<pid>/mem) or environment."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def runner_prefix(settings: Settings, host: str) -> str:
    """What the ids of every runner of this host and SORA_HOME start with."""
    import hashlib

    return f"{host}:{hashlib.sha256(str(settings.home).encode()).hexdigest()[:6]}:"


def serve(settings: Settings) -> int:
    harden()
    ensure_home(settings.home)
    host = socket.gethostname()
    runner_id = f"{runner_prefix(settings, host)}{os.getpid()}:{secrets.token_hex(3)}"
    started = time.time()
    info = {"pid": os.getpid(), "runner_id": runner_id, "host": host, "started_at": started,
            "missing_keys": missing_keys(settings)}
    with hold_runner_lock(settings.lock_path, info) as mine:
        if not mine:
            return 0  # another runner serves this store
        _setup_logging(settings)
        log.info("runner %s started (base URL %s)", runner_id, mask_url(settings.base_url))
        try:
            asyncio.run(_main(settings, runner_id, host, started))
        finally:
            log.info("runner %s stopped", runner_id)
    return 0


async def _main(settings: Settings, runner_id: str, host: str, started: float) -> None:
    from sora_cli.providers.registry import Adapters
    from sora_cli.runner.loop import Runner

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = await _open_store(settings, stop)
    if store is None:
        return
    try:
        _start_up(settings, store, runner_id, host)
        # each made when a job of its provider is worked; what they learn goes to the store
        async with Adapters(settings, memory=store) as adapters:
            runner = Runner(settings, store, adapters, runner_id=runner_id, started_at=started)
            await runner.run(stop)
    finally:
        try:
            store.runner_gone(runner_id)
        except StoreError as exc:  # the database is away: the row just goes stale
            log.warning("could not sign off: %s", exc)
        store.close()


def _start_up(settings: Settings, store: Store, runner_id: str, host: str) -> None:
    """Housekeeping before the loop; best effort (the loop copes with an absent store)."""
    try:
        # We hold this host's (and SORA_HOME's) runner lock, so no other runner with our
        # prefix is alive: leases left by dead ones are free to take at once.
        # (A SQLite store has one home: every earlier runner id of this host is ours.)
        mine = runner_prefix(settings, host) if settings.database_url else f"{host}:"
        store.release_host(mine, keep=runner_id)
        store.prune_runners(time.time() - FORGET_RUNNERS_AFTER)
        if settings.fleet_max_in_flight is not None:  # stored: every runner honours it
            store.set_fleet_limit(settings.fleet_max_in_flight or None)
    except StoreUnavailable as exc:
        log.warning("start-up housekeeping skipped: %s", exc)


async def _open_store(settings: Settings, stop: asyncio.Event) -> Store | None:
    """The store, waiting for it (with backoff) while it is unreachable: a shared
    database may be restarting. None when stopped meanwhile."""
    from sora_cli.store.repository import Store

    delay, deadline = 0.5, time.monotonic() + max(settings.idle_exit_seconds, 30.0)
    while True:
        try:
            return Store.open(settings.store_location)
        except StoreUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s; trying again in %.1f s", exc, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
            return None
        except TimeoutError:
            delay = min(delay * 2, 10.0)
