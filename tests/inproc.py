"""The runner in-process, against a fake server on loopback (conftest's `server`): quick
settings, and one call that runs it until it idles out.

The settings are small so that nothing waits real seconds: polls every 0.05-0.3 s, an
idle exit after 0.1 s, and an unanswered create looked up 0.1 s after it began and
settled 0.2 s later (the fake makes a video before it drops, or fails to answer, the
create; a test of a create that lands late says how long to wait).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sora_cli.config import Settings
from sora_cli.fake.server import FakeServer
from sora_cli.provider_settings import build
from sora_cli.providers.registry import Adapters
from sora_cli.runner.loop import Runner
from sora_cli.store.repository import Store

QUICK: dict[str, Any] = dict(
    api_key="sk-test", poll_min_seconds=0.05, poll_max_seconds=0.3, idle_exit_seconds=0.1,
    lease_seconds=5.0, request_timeout=5.0, max_retries=1, reconcile_pause_seconds=0.1,
    settle_max_seconds=0.2)
PROVIDER_KEYS = {"FAL_KEY": "fal-test-key-0123456789", "REPLICATE_API_TOKEN": "r8-test-0123456789"}
TICK = 0.05  # the loop looks for new work (and at its idle time) this often
MakeServer = Callable[..., FakeServer]  # conftest's make_server


def settings_for(home: Path, server: FakeServer, *, keys: bool = True,
                 tables: dict[str, Any] | None = None, **kw: Any) -> Settings:
    """QUICK settings for a runner with this SORA_HOME (its videos/ made) against
    `server`: the OpenAI contract at its base URL, fal and Replicate where the fake
    serves them, with keys unless `keys` is false; `tables` are [providers.NAME]
    tables; `kw` wins."""
    urls = server.urls()
    env = {"SORA_FAL_BASE_URL": str(urls["fal"]),
           "SORA_FAL_PLATFORM_URL": str(urls["fal_platform"]),
           "SORA_REPLICATE_BASE_URL": str(urls["replicate"]), **(PROVIDER_KEYS if keys else {})}
    (home / "videos").mkdir(parents=True, exist_ok=True)
    return Settings(**{"home": home, "base_url": server.base_url,
                       "providers": build(tables or {}, env), **QUICK, **kw})


def run_runner(settings: Settings, store: Store, *, adapters: Adapters | None = None,
               runner_id: str = "host:1:a", stop_after: float | None = None,
               stop_when: Callable[[], bool] | None = None, timeout: float = 90.0) -> None:
    """Run one runner until it idles out, or is stopped gracefully after `stop_after`
    seconds or once `stop_when()` holds (looked at every 20 ms). `timeout` only bounds a
    runner that never ends: a passing test returns as soon as its runner does, so it is
    generous, for a loaded 2-core machine."""
    async def go() -> None:
        stop = asyncio.Event()
        if stop_after is not None:
            asyncio.get_running_loop().call_later(stop_after, stop.set)

        async def watch(condition: Callable[[], bool]) -> None:
            while not condition():
                await asyncio.sleep(0.02)
            stop.set()

        async with adapters or Adapters(settings) as made:
            runner = Runner(settings, store, made, runner_id=runner_id, tick=TICK)
            watcher = None if stop_when is None else asyncio.create_task(watch(stop_when))
            try:
                await asyncio.wait_for(runner.run(stop), timeout)
            finally:
                if watcher is not None:
                    watcher.cancel()

    asyncio.run(go())
