"""The runner in-process, against a fake server on loopback (conftest's `server`): quick
settings and one call that runs it until it idles out.

The settings are small so that nothing waits real seconds: polls every 0.05-0.3 s, an
idle exit after 0.3 s, and an unanswered create looked up 0.1 s after it began and
settled 0.3 s after (the fake makes a video before it answers, or drops, the create).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sora_cli.config import Settings
from sora_cli.fake.server import FakeServer
from sora_cli.providers.client import VideosClient
from sora_cli.providers.settings import api_settings
from sora_cli.runner.loop import Runner
from sora_cli.store.repository import Store

QUICK: dict[str, Any] = dict(
    api_key="sk-test", poll_min_seconds=0.05, poll_max_seconds=0.3, idle_exit_seconds=0.3,
    lease_seconds=5.0, request_timeout=5.0, max_retries=1, reconcile_pause_seconds=0.1,
    settle_max_seconds=0.2)


def settings_for(home: Path, server: FakeServer, **kw: Any) -> Settings:
    """QUICK settings for a runner with this home (videos/ made) and server; `kw` wins."""
    (home / "videos").mkdir(parents=True, exist_ok=True)
    return Settings(**{"home": home, "base_url": server.base_url, **QUICK, **kw})


def run_runner(settings: Settings, store: Store, *, runner_id: str = "host:1:a",
               stop_after: float | None = None, timeout: float = 30.0) -> None:
    """Run one runner until it idles out (or `stop_after` seconds, a graceful stop)."""
    async def go() -> None:
        async with VideosClient(api_settings(settings)) as client:
            stop = asyncio.Event()
            if stop_after is not None:
                asyncio.get_running_loop().call_later(stop_after, stop.set)
            runner = Runner(settings, store, client, runner_id=runner_id)
            await asyncio.wait_for(runner.run(stop), timeout)

    asyncio.run(go())
