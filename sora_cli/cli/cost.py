"""`sora cost`: the estimated spend of completed jobs, in total or grouped."""

from __future__ import annotations

from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import note, open_context, out
from sora_cli.cli.render import iso, json_line
from sora_cli.domain.money import GROUPINGS, CostLine, money, parse_since
from sora_cli.domain.text import clean
from sora_cli.errors import InvalidInput
from sora_cli.services.spending import CostReport, spending


@app.command("cost")
def cost_cmd(
    tctx: typer.Context,
    since: str = typer.Option(None, "--since", metavar="AGE", help="Only jobs completed in "
                              "the last AGE: 30m, 12h, 7d, 2w [default: all]."),
    by: str = typer.Option(None, "--by", metavar="day|model|label|provider", help="One "
                           "line per day (local time), model, label or provider."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object (with `groups`)."),
) -> None:
    """Estimated spend of completed jobs (the catalogue's prices by model, size and
    seconds; jobs of models with no known price are counted apart, never guessed).

    \b
    sora cost
    sora cost --since 7d --by day
    sora cost --by provider
    sora cost --by label --json | jq '.groups[] | {label, estimated_cost_usd}'
    """
    seconds = None if since is None else parse_since(since)  # bad input before the store
    grouping = by.strip().lower() if by is not None else None
    if grouping is not None and grouping not in GROUPINGS:
        raise InvalidInput(f"--by must be one of {', '.join(GROUPINGS)} (got {by!r})")
    report = spending(open_context(tctx), since=seconds, by=grouping)
    if as_json:
        out(json_line(report_dict(report)))
        return
    for line in report_table(report):
        out(line)
    if report.total.unpriced_jobs:
        note(f"{report.total.unpriced_jobs} completed job(s) of a model or size with no known "
             "price are not in the estimate")


def _line_dict(line: CostLine) -> dict[str, Any]:
    return {"jobs": line.jobs, "seconds": line.seconds,
            "estimated_cost_usd": line.estimated_cost_usd, "unpriced_jobs": line.unpriced_jobs}


def report_dict(report: CostReport) -> dict[str, Any]:
    """`sora cost --json`: the total, and with --by a `groups` list keyed by its name."""
    groups = [{report.by: g.key, **_line_dict(g)} for g in report.groups] if report.by else []
    return {"since": iso(report.since), "by": report.by, **_line_dict(report.total),
            "groups": groups}


def report_table(report: CostReport) -> list[str]:
    head = ((report.by or "").upper(), "JOBS", "SECONDS", "EST.COST")
    shown = [(clean(g.key) if g.key is not None else "(none)", g) for g in report.groups]
    rows = [(key, str(g.jobs), str(g.seconds), money(g.estimated_cost_usd)) for key, g in shown]
    t = report.total
    rows.append(("total", str(t.jobs), str(t.seconds), money(t.estimated_cost_usd)))
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

    def fmt(r: tuple[str, ...]) -> str:
        return "  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in
                                                   zip(r[1:], widths[1:], strict=True))])

    return [fmt(head), *(fmt(r) for r in rows)]
