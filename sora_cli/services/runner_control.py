"""Runner control: is a runner alive for this store, what is the fleet doing, start
one, stop it. Typed answers; the CLI renders them."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Final

from sora_cli.errors import SoraError
from sora_cli.runner.spawn import runner_alive, runner_info
from sora_cli.services.context import Context

LIVE_WITHIN: Final = 10.0  # seconds: a runner beats every 2 s (or lease/3); silent longer, gone


@dataclass(frozen=True)
class FleetMember:
    """A live runner of the store (any machine sharing it)."""

    runner_id: str
    host: str
    pid: int
    leases: int
    jobs_in_flight: int
    heartbeat_at: float
    started_at: float
    local: bool  # the runner of this SORA_HOME


@dataclass(frozen=True)
class RunnerStatus:
    running: bool
    pid: int | None = None
    runner_id: str | None = None
    started_at: float | None = None
    jobs_in_flight: int = 0
    heartbeat_at: float | None = None
    fleet: tuple[FleetMember, ...] = ()
    missing_keys: tuple[str, ...] = ()  # keys it lacks: it leaves those jobs untouched


def runner_status(ctx: Context) -> RunnerStatus:
    """This store's local runner (from its lock file) and every live runner of the fleet."""
    info = runner_info(ctx.settings.lock_path)
    local_id = None if info is None else _text(info.get("runner_id"))
    fleet = fleet_members(ctx, local_id)
    if info is None:
        return RunnerStatus(running=False, fleet=fleet)
    beat = next((m for m in fleet if m.runner_id == local_id), None)
    started = info.get("started_at")
    missing = info.get("missing_keys")
    return RunnerStatus(
        missing_keys=tuple(str(k) for k in missing) if isinstance(missing, list) else (),
        running=True, pid=info["pid"] if isinstance(info.get("pid"), int) else None,
        runner_id=local_id,
        started_at=float(started) if isinstance(started, int | float) else None,
        jobs_in_flight=beat.jobs_in_flight if beat else 0,
        heartbeat_at=beat.heartbeat_at if beat else None, fleet=fleet)


def fleet_members(ctx: Context, local_id: str | None) -> tuple[FleetMember, ...]:
    s = ctx.settings
    if not s.database_url and not s.db_path.exists():
        return ()  # no store yet: nothing runs, and nothing is created just to say so
    return tuple(
        FleetMember(runner_id=r.runner_id, host=r.host, pid=r.pid, leases=r.leases or 0,
                    jobs_in_flight=r.jobs_in_flight, heartbeat_at=r.heartbeat_at,
                    started_at=r.started_at, local=r.runner_id == local_id)
        for r in ctx.store.fleet(stale_after=LIVE_WITHIN))


def start(ctx: Context) -> bool:
    """Start a runner now (normally submit does it on demand); False if one is alive."""
    return ctx.hooks.start_runner(ctx.settings)


def stop(ctx: Context, *, timeout: float) -> int | None:
    """Stop the local runner gracefully (SIGTERM, then wait for its lock to free);
    the pid it had, or None when none was running."""
    info = runner_info(ctx.settings.lock_path)
    pid = None if info is None else info.get("pid")
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return None
    deadline = ctx.hooks.monotonic() + timeout
    while runner_alive(ctx.settings.lock_path):
        if ctx.hooks.monotonic() > deadline:
            raise SoraError(f"the runner (pid {pid}) did not stop within {timeout:g} s")
        ctx.hooks.sleep(0.05)
    return pid


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
