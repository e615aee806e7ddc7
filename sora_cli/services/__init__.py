"""What each command means, as functions over a `Context` returning typed values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_cli.lazy import lazy_exports

if TYPE_CHECKING:
    from sora_cli.services.context import Context, Hooks
    from sora_cli.services.jobs import cancel, list_jobs, resolve
    from sora_cli.services.runner_control import FleetMember, RunnerStatus, runner_status
    from sora_cli.services.spending import CostReport
    from sora_cli.services.submit import preview
    from sora_cli.services.waiting import WaitResult, wait_targets, watch

__all__ = [
    "Context", "CostReport", "FleetMember", "Hooks", "RunnerStatus", "WaitResult", "cancel",
    "list_jobs", "preview", "resolve", "runner_status",
    "wait_targets", "watch",
]

__getattr__ = lazy_exports(__name__, {
    "Context": "context",
    "CostReport": "spending",
    "FleetMember": "runner_control",
    "Hooks": "context",
    "RunnerStatus": "runner_control",
    "WaitResult": "waiting",
    "cancel": "jobs",
    "list_jobs": "jobs",
    "preview": "submit",
    "resolve": "jobs",
    "runner_status": "runner_control",
    "wait_targets": "waiting",
    "watch": "waiting",
})
