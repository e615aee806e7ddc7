"""Money use cases over the store: today's spend, the budget check, the cost report.

The rules (prices, the budget rule, `--since`) are pure, in money.py; the counting
is SQL, in the store. Used by `services.submit` and `sora cost`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sora_cli.config import Settings
from sora_cli.domain.jobs import VideoRequest
from sora_cli.domain.money import (
    GROUPINGS,
    CostLine,
    check_budget,
    cost_report,
    day_starts,
    local_midnight,
    total_cost,
)
from sora_cli.errors import InvalidInput
from sora_cli.services.context import Context
from sora_cli.store.repository import Store


def spent_today(store: Store, now: float | None = None) -> float:
    """Estimated cost of the jobs created since local midnight that did not fail and
    were not cancelled (the budget rule; see money.py)."""
    return total_cost(store.spend_counts(local_midnight(time.time() if now is None else now)))


def enforce_budget(settings: Settings, requests: Sequence[VideoRequest], *, spent: float,
                   origins: Sequence[str] | None) -> None:
    check_budget(requests, spent_today=spent, max_job_cost=settings.max_job_cost,
                 max_daily_cost=settings.max_daily_cost, origins=origins)


def cost(store: Store, *, since: float | None, by: str | None,
         now: float | None = None) -> CostReport:
    """Estimated spend of completed jobs, completed in the last `since` seconds (or ever),
    in total and grouped `by` day, model or label."""
    if by is not None and by not in GROUPINGS:
        raise InvalidInput(f"--by must be one of {', '.join(GROUPINGS)} (got {by!r})")
    now = time.time() if now is None else now
    start = None if since is None else now - since
    days: list[float] = []
    if by == "day":
        first = start if start is not None else store.first_completed_at()
        days = day_starts(min(first, now), now) if first is not None else []
    rows = store.completed_counts(start, by_label=by == "label", day_starts=days)
    total, groups = cost_report(rows, by=by, days=days)
    return CostReport(since=start, by=by, total=total, groups=groups)


@dataclass(frozen=True)
class CostReport:
    since: float | None  # epoch start of the period, None = every completed job
    by: str | None
    total: CostLine
    groups: list[CostLine]


def spending(ctx: Context, *, since: float | None, by: str | None) -> CostReport:
    """`sora cost`: the cost report of this context's store, as of its clock."""
    return cost(ctx.store, since=since, by=by, now=ctx.hooks.clock())
