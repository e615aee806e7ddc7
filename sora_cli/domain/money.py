"""Money, as pure rules: what jobs are estimated to cost, budgets, and `--since`.

No I/O. The store counts jobs by what sets their price (`PriceCount` rows, grouped
in SQL); this module turns counts into estimated dollars with the one price table
(`jobs.estimated_cost`), checks a submit against the configured budget, and parses
the `30m` / `12h` / `7d` / `2w` durations of `sora cost --since`.

Budget rule: "today's spend" is the estimated cost of the jobs created since local
midnight that did not fail and were not cancelled (a job that never produced a
video is assumed not billed). Jobs of models with no known price count as $0:
there is no estimate to hold against a budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from sora_cli.domain.catalogue import job_cost
from sora_cli.domain.durations import parse_duration
from sora_cli.domain.jobs import VideoRequest
from sora_cli.errors import BudgetExceeded

GROUPINGS: Final = ("day", "model", "label", "provider")



def parse_since(text: str) -> float:
    """`--since`: how far back `sora cost` looks, in seconds."""
    return parse_duration(text, "--since")


def local_midnight(now: float) -> float:
    """The epoch time of the last local midnight at or before `now`."""
    t = time.localtime(now)
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, -1))


def day_starts(since: float, now: float) -> list[float]:
    """Local midnights from the one at or before `now` back to the one at or before `since`,
    newest first: the buckets of `sora cost --by day`."""
    starts = [local_midnight(now)]
    while starts[-1] > since:
        # An hour past the previous midnight, minus a day, is inside the previous day
        # whatever daylight saving did to that day's length.
        starts.append(local_midnight(starts[-1] - 86400 + 3600))
    return starts


def day_name(start: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(start + 3600))


def money(usd: float) -> str:
    return f"${usd:,.2f}"


# --- counting -------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceCount:
    """How many jobs share what sets their price (and a grouping key): a row from the store."""

    model: str
    size: str
    seconds: int
    count: int
    label: str | None = None
    day: int | None = None  # index into `day_starts(...)`, 0 = today
    provider: str = "openai"


@dataclass
class CostLine:
    """Jobs and their estimated cost, for one group or the total."""

    key: str | None
    jobs: int = 0
    seconds: int = 0
    estimated_cost_usd: float = 0.0
    unpriced_jobs: int = 0  # jobs of a model or size with no known price: not in the cost

    def add(self, row: PriceCount) -> None:
        self.jobs += row.count
        self.seconds += row.seconds * row.count
        each = job_cost(row.provider, row.model, row.size, row.seconds)
        if each is None:
            self.unpriced_jobs += row.count
        else:
            self.estimated_cost_usd = round(self.estimated_cost_usd + each * row.count, 4)


def total_cost(rows: Iterable[PriceCount]) -> float:
    line = CostLine(None)
    for row in rows:
        line.add(row)
    return line.estimated_cost_usd


def cost_report(rows: Iterable[PriceCount], *, by: str | None,
                days: Sequence[float] = ()) -> tuple[CostLine, list[CostLine]]:
    """The total and, with `by`, one line per group (days newest first, others by cost)."""
    total = CostLine(None)
    groups: dict[str | None, CostLine] = {}
    for row in rows:
        total.add(row)
        if by is None:
            continue
        key = _key(row, by, days)
        groups.setdefault(key, CostLine(key)).add(row)
    lines = list(groups.values())
    if by == "day":
        lines.sort(key=lambda g: g.key or "", reverse=True)
    else:
        lines.sort(key=lambda g: (-g.estimated_cost_usd, -g.jobs, g.key or ""))
    return total, lines


def _key(row: PriceCount, by: str, days: Sequence[float]) -> str | None:
    if by == "model":
        return row.model if row.provider == "openai" else f"{row.provider}:{row.model}"
    if by == "provider":
        return row.provider
    if by == "label":
        return row.label
    if row.day is None or row.day >= len(days):
        return None
    return day_name(days[row.day])


# --- budgets ----------------------------------------------------------------------------


def request_cost(req: VideoRequest) -> float | None:
    """Estimated USD for the job a request makes, or None (no known price)."""
    return job_cost(req.provider, req.model, req.size, req.seconds)


def check_budget(requests: Sequence[VideoRequest], *, spent_today: float,
                 max_job_cost: float | None, max_daily_cost: float | None,
                 origins: Sequence[str] | None = None) -> None:
    """Refuse (BudgetExceeded, exit 2) a submit that would cross a budget, saying by how much.

    `origins` say where each request came from ("FILE line N"), named in the message."""
    if max_job_cost is not None:
        for n, req in enumerate(requests):
            cost = request_cost(req)
            if cost is not None and cost > max_job_cost + 1e-9:
                where = f"{origins[n]}: " if origins is not None else ""
                raise BudgetExceeded(
                    f"{where}the job would cost about {money(cost)}, over max_job_cost "
                    f"{money(max_job_cost)} by {money(cost - max_job_cost)} "
                    "(--force submits anyway)")
    if max_daily_cost is not None:
        adding = sum(c for r in requests if (c := request_cost(r)) is not None)
        after = spent_today + adding
        if adding > 0 and after > max_daily_cost + 1e-9:
            jobs = f"{len(requests)} jobs" if len(requests) > 1 else "the job"
            raise BudgetExceeded(
                f"{jobs} ({money(adding)}) would bring today's estimated spend to "
                f"{money(after)}, over max_daily_cost {money(max_daily_cost)} by "
                f"{money(after - max_daily_cost)} (--force submits anyway)")
