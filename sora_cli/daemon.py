"""The runner process: take the lock, set up the log, run the loop, exit when idle.

Started detached by `spawn.start_runner` (or by hand with `sora runner serve`).
A second runner finds the lock taken and exits quietly with status 0. SIGTERM
and SIGINT stop it gracefully: in-flight jobs are released, not lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import time

from .config import Settings, ensure_home
from .spawn import hold_runner_lock

log = logging.getLogger("sora.runner")


def _setup_logging(settings: Settings) -> None:
    handler = logging.FileHandler(settings.log_path, encoding="utf-8")
    os.chmod(settings.log_path, 0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("sora")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def serve(settings: Settings) -> int:
    ensure_home(settings.home)
    host = socket.gethostname()
    runner_id = f"{host}:{os.getpid()}:{secrets.token_hex(3)}"
    started = time.time()
    info = {"pid": os.getpid(), "runner_id": runner_id, "host": host, "started_at": started}
    with hold_runner_lock(settings.lock_path, info) as mine:
        if not mine:
            return 0  # another runner serves this store
        _setup_logging(settings)
        log.info("runner %s started (base URL %s)", runner_id, settings.base_url)
        try:
            asyncio.run(_main(settings, runner_id, host, started))
        finally:
            log.info("runner %s stopped", runner_id)
    return 0


async def _main(settings: Settings, runner_id: str, host: str, started: float) -> None:
    from .api import VideosClient
    from .fetch import api_settings
    from .runner import Runner
    from .store import Store

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    api = api_settings(settings)
    store = Store.open(settings.db_path)
    # We hold this host's runner lock, so no other runner of this store on this host
    # is alive: leases left here by dead ones are free to take at once.
    store.release_host(f"{host}:", keep=runner_id)
    try:
        async with VideosClient(api) as client:
            runner = Runner(settings, store, client, runner_id=runner_id, started_at=started)
            await runner.run(stop)
    finally:
        store.runner_gone(runner_id)
        store.close()
