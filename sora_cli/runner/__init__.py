"""The runner: the loop, one job's steps, pacing, the process and its spawning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_cli.lazy import lazy_exports

if TYPE_CHECKING:
    from sora_cli.runner.loop import Runner
    from sora_cli.runner.process import serve
    from sora_cli.runner.spawn import ensure_runner, runner_alive, runner_info

__all__ = [
    "Runner", "ensure_runner", "runner_alive", "runner_info", "serve",
]

__getattr__ = lazy_exports(__name__, {
    "Runner": "loop",
    "ensure_runner": "spawn",
    "runner_alive": "spawn",
    "runner_info": "spawn",
    "serve": "process",
})
