"""Money: the pure rules (money.py), `submit --dry-run`, budgets and `sora cost`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import one_error, sora
from seed import PATH, add, recorded

from sora_cli.domain.jobs import JobError, JobStatus, VideoRequest
from sora_cli.domain.money import (
    PriceCount,
    check_budget,
    cost_report,
    day_name,
    day_starts,
    local_midnight,
    parse_since,
)
from sora_cli.errors import BudgetExceeded, InvalidInput
from sora_cli.store.repository import Store

pytestmark = pytest.mark.usefixtures("home")

DAY = 86400.0


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set the local time zone for a test (and restore it after)."""
    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


def finish(home: Path, job_id: str, status: JobStatus = JobStatus.COMPLETED,
           at: float | None = None) -> None:
    with Store.open(home / "sora.db") as st:
        if status is JobStatus.COMPLETED:
            for step in PATH[1:]:
                extra: dict[str, Any] = {"remote_id": f"video_{job_id}"} if (
                    step is JobStatus.RUNNING) else {}
                if step is JobStatus.COMPLETED:
                    extra["completed_at"] = time.time() if at is None else at
                st.transition(job_id, step, **extra)
        elif status is JobStatus.FAILED:
            st.transition(job_id, status, error=JobError("x", "failed"))
        else:
            st.transition(job_id, status)


# --- the pure rules ------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("12h", 43200), ("7d", 7 * DAY),
                                           ("2w", 14 * DAY), (" 1.5H ", 5400), ("45s", 45)])
def test_parse_since(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-7d", "0d", "7 days", "1e3d", "7d2h"])
def test_parse_since_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(InvalidInput, match="--since must be a duration like 30m"):
        parse_since(text)


def test_days_are_local_and_survive_daylight_saving(tz: Any) -> None:
    tz("America/New_York")
    now = time.mktime((2025, 3, 10, 12, 0, 0, 0, 0, -1))  # the day after the spring change
    starts = day_starts(now - 3 * DAY, now)
    assert [day_name(s) for s in starts] == ["2025-03-10", "2025-03-09", "2025-03-08",
                                             "2025-03-07"]
    assert all(time.localtime(s)[3:6] == (0, 0, 0) for s in starts)  # each a local midnight
    assert starts[0] - starts[1] == 23 * 3600  # 9 March had 23 hours there
    assert local_midnight(starts[1]) == starts[1]


def test_cost_report_groups_totals_and_keeps_unpriced_apart() -> None:
    rows = [PriceCount("sora-2", "720x1280", 4, 3, label="a", day=0),
            PriceCount("sora-2-pro", "1792x1024", 12, 1, label="b", day=1),
            PriceCount("my-deploy", "640x480", 8, 2, label=None, day=1)]
    total, groups = cost_report(rows, by="model")
    assert (total.jobs, total.seconds, total.estimated_cost_usd, total.unpriced_jobs) == (
        6, 40, 7.2, 2)
    assert [(g.key, g.estimated_cost_usd, g.unpriced_jobs) for g in groups] == [
        ("sora-2-pro", 6.0, 0), ("sora-2", 1.2, 0), ("my-deploy", 0.0, 2)]
    _, by_day = cost_report(rows, by="day", days=[2 * DAY, DAY])
    assert [(g.key, g.jobs) for g in by_day] == [(day_name(2 * DAY), 3), (day_name(DAY), 3)]
    _, by_label = cost_report(rows, by="label")
    assert {g.key: g.jobs for g in by_label} == {"a": 3, "b": 1, None: 2}


def test_check_budget_says_by_how_much() -> None:
    reqs = [VideoRequest("a", seconds=8), VideoRequest("b", seconds=4)]
    check_budget(reqs, spent_today=0.0, max_job_cost=0.8, max_daily_cost=1.2)  # at, not over
    with pytest.raises(BudgetExceeded, match=r"f line 1: .*\$0.80, over max_job_cost \$0.50 "
                                             r"by \$0.30"):
        check_budget(reqs, spent_today=0, max_job_cost=0.5, max_daily_cost=None,
                     origins=["f line 1", "f line 2"])
    with pytest.raises(BudgetExceeded, match=r"2 jobs \(\$1.20\) would bring today's "
                                             r"estimated spend to \$3.70, over max_daily_cost "
                                             r"\$3.00 by \$0.70"):
        check_budget(reqs, spent_today=2.5, max_job_cost=None, max_daily_cost=3.0)
    unpriced = [VideoRequest("c", model="my-deploy", size="640x480")]
    check_budget(unpriced, spent_today=99, max_job_cost=0, max_daily_cost=1)  # no estimate


# --- the store's counts (portable SQL: test_pg_store.py can collect these too) -------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "counts.db") as st:
        yield st


def _walk(store: Store, job_id: str, to: JobStatus, at: float) -> None:
    steps = PATH[1:] if to is JobStatus.COMPLETED else (to,)
    for step in steps:
        extra: dict[str, Any] = {"remote_id": f"video_{job_id}"} if (
            step is JobStatus.RUNNING) else {}
        if step is JobStatus.COMPLETED:
            extra["completed_at"] = at
        if step is JobStatus.FAILED:
            extra["error"] = JobError("x", "failed")
        store.transition(job_id, step, now=at, **extra)


def test_store_counts_jobs_by_what_sets_their_price(store: Store) -> None:
    t0 = 1_700_000_000.0
    a, b, c, d, _ = store.add_jobs([
        VideoRequest("a", seconds=8, label="x"), VideoRequest("b", seconds=8, label="x"),
        VideoRequest("c", label=None), VideoRequest("d", seconds=12),
        VideoRequest("e", model="sora-2-pro", size="1792x1024", seconds=12, label="y"),
    ], now=t0)
    _walk(store, a.id, JobStatus.COMPLETED, t0 + 10)
    _walk(store, b.id, JobStatus.COMPLETED, t0 + DAY + 10)
    _walk(store, c.id, JobStatus.COMPLETED, t0 + 2 * DAY + 10)
    _walk(store, d.id, JobStatus.FAILED, t0 + 10)
    assert sorted((r.model, r.seconds, r.count) for r in store.spend_counts(t0)) == [
        ("sora-2", 4, 1), ("sora-2", 8, 2), ("sora-2-pro", 12, 1)]  # not the failed one
    assert store.spend_counts(t0 + 1) == []
    every = store.completed_counts(None)
    assert sorted((r.seconds, r.count, r.label, r.day) for r in every) == [
        (4, 1, None, None), (8, 2, None, None)]
    days = [t0 + 2 * DAY, t0 + DAY, t0]  # newest first
    rows = store.completed_counts(t0 + DAY, by_label=True, day_starts=days)
    assert sorted((r.seconds, r.count, r.label, r.day) for r in rows) == [
        (4, 1, None, 0), (8, 1, "x", 1)]
    assert store.first_completed_at() == t0 + 10


def test_store_lists_by_label(store: Store) -> None:
    a, _, c = store.add_jobs([VideoRequest("a", label="b7"), VideoRequest("b"),
                              VideoRequest("c", label="b7")], now=1000.0)
    assert [j.id for j in store.list_jobs(label="b7", limit=None)] == [c.id, a.id]
    store.transition(a.id, JobStatus.CANCELLED)
    assert [j.id for j in store.list_jobs(label="b7", statuses=[JobStatus.QUEUED])] == [c.id]
    assert store.list_jobs(label="B7") == []


# --- submit --dry-run ----------------------------------------------------------------------


def test_dry_run_prints_the_request_and_cost_and_records_nothing(
        home: Path, kicks: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")  # no key needed
    r = sora("submit", "--dry-run", "a storm at sea", "--model", "sora-2-pro", "--size",
             "1792x1024", "--seconds", "12", "--label", "pro")
    assert r.exit_code == 0, r.stderr
    head, row, total = r.stdout.splitlines()
    assert head.split() == ["MODEL", "SIZE", "SECS", "EST.COST", "LABEL", "IMAGE", "PROMPT"]
    assert row.split()[:6] == ["sora-2-pro", "1792x1024", "12", "~$6.00", "pro", "-"]
    assert row.endswith("a storm at sea")
    assert total.startswith("total: 1 job, ~$6.00 estimated") and "nothing recorded" in total
    assert not (home / "sora.db").exists() and kicks == []


def test_dry_run_json_has_the_request_fields(home: Path) -> None:
    r = sora("submit", "--dry-run", "--json", "-f", "-", "--label", "b7",
             input='one\n{"prompt": "two", "seconds": 8, "model": "my-deploy"}\n')
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows == [
        {"prompt": "one", "provider": "openai", "model": "sora-2", "size": "720x1280",
         "seconds": 4, "image": None, "label": "b7", "params": None, "estimated_cost_usd": 0.4},
        {"prompt": "two", "provider": "openai", "model": "my-deploy", "size": "720x1280",
         "seconds": 8, "image": None, "label": "b7", "params": None,
         "estimated_cost_usd": None},
    ]
    assert recorded(home) == 0
    assert sora("submit", "--dry-run", "-q", "x").stdout == ""


def test_dry_run_refuses_bad_input_and_wait(home: Path) -> None:
    assert "line 2" in one_error(sora("submit", "--dry-run", "-f", "-", input="ok\n{x\n"), 2)
    assert "--dry-run" in one_error(sora("submit", "--dry-run", "x", "--wait"), 2)


# --- budgets -------------------------------------------------------------------------------


def test_a_job_over_max_job_cost_is_refused_unless_forced(home: Path, kicks: list[Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_MAX_JOB_COST", "0.5")
    line = one_error(sora("submit", "a fox", "--seconds", "8"), 2)
    assert "over max_job_cost $0.50 by $0.30" in line and "--force" in line
    assert recorded(home) == 0 and kicks == []
    assert "by $0.30" in one_error(sora("submit", "--dry-run", "a fox", "--seconds", "8"), 2)
    r = sora("submit", "a fox", "--seconds", "8", "--force")
    assert r.exit_code == 0, r.stderr
    assert recorded(home) == 1
    assert sora("submit", "a fox", "--seconds", "4").exit_code == 0  # $0.40 is within


def test_the_daily_budget_counts_todays_unfailed_jobs(home: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    add(home, seconds=4)  # $0.40, queued today: counts
    finish(home, add(home, seconds=12), JobStatus.FAILED)  # failed: not billed
    finish(home, add(home, seconds=12), JobStatus.CANCELLED)
    finish(home, add(home, seconds=4))  # completed today: counts ($0.40)
    yesterday = local_midnight(time.time()) - 600
    add(home, now=yesterday, seconds=12)  # yesterday's: not today's spend
    monkeypatch.setenv("SORA_MAX_DAILY_COST", "1.5")
    line = one_error(sora("submit", "a fox", "--seconds", "8", "--model", "sora-2"), 2)
    assert line == ("sora: the job ($0.80) would bring today's estimated spend to $1.60, "
                    "over max_daily_cost $1.50 by $0.10 (--force submits anyway)")
    assert recorded(home) == 5
    assert sora("submit", "-q", "a fox", "--seconds", "4").exit_code == 0  # $1.20: fits
    assert sora("submit", "-q", "x", "--model", "my-deploy", "--size", "1x1").exit_code == 0


def test_a_batch_that_would_cross_the_budget_is_refused_whole(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_MAX_DAILY_COST", "1")
    line = one_error(sora("submit", "-f", "-", input="a\nb\nc\n"), 2)
    assert "3 jobs ($1.20) would bring today's estimated spend to $1.20" in line
    assert "by $0.20" in line
    assert recorded(home) == 0
    monkeypatch.setenv("SORA_MAX_JOB_COST", "0.5")
    line = one_error(sora("submit", "-f", "-", input='a\n{"prompt": "b", "seconds": 8}\n'), 2)
    assert line.startswith("sora: stdin line 2: the job would cost about $0.80")
    r = sora("submit", "-f", "-", "--force", input="a\nb\nc\n")
    assert r.exit_code == 0 and len(r.stdout.split()) == 3


def test_budget_keys_in_the_config_file(home: Path) -> None:
    (home / "config.toml").write_text("max_daily_cost = 2\nmax_job_cost = 0.45\n")
    d = json.loads(sora("config", "show", "--json").stdout)
    assert (d["max_daily_cost"], d["max_job_cost"]) == (2.0, 0.45)
    assert "max_job_cost $0.45" in one_error(sora("submit", "x", "--seconds", "8"), 2)
    (home / "config.toml").write_text("max_job_cost = -1\n")
    assert "max_job_cost" in one_error(sora("submit", "x"), 2)


def test_no_budget_by_default(home: Path) -> None:
    d = json.loads(sora("config", "show", "--json").stdout)
    assert d["max_daily_cost"] is None and d["max_job_cost"] is None
    assert sora("submit", "x", "--model", "sora-2-pro", "--size", "1792x1024", "--seconds",
                "12").exit_code == 0


# --- sora cost ------------------------------------------------------------------------------


@pytest.fixture
def history(home: Path, tz: Any) -> dict[str, str]:
    """Completed jobs over the last weeks (UTC days), plus some that cost nothing."""
    tz("UTC")
    now = time.time()
    jobs = {
        "today": add(home, seconds=8, label="b7"),  # $0.80
        "2 days": add(home, model="sora-2-pro", size="1792x1024", seconds=12, label="b7"),  # $6
        "10 days": add(home, seconds=4),  # $0.40, no label
        "unpriced": add(home, model="my-deploy", size="640x480", seconds=4, label="b8"),
    }
    finish(home, jobs["today"], at=now)
    finish(home, jobs["2 days"], at=now - 2 * DAY)
    finish(home, jobs["10 days"], at=now - 10 * DAY)
    finish(home, jobs["unpriced"], at=now - 1)
    finish(home, add(home, seconds=12), JobStatus.FAILED)  # not completed: not spend
    add(home, seconds=12)  # queued: not spend
    return jobs


def test_cost_totals_completed_jobs(history: dict[str, str]) -> None:
    r = sora("cost")
    assert r.exit_code == 0
    head, total = r.stdout.splitlines()
    assert head.split() == ["JOBS", "SECONDS", "EST.COST"]
    assert total.split() == ["total", "4", "28", "$7.20"]
    assert "1 completed job(s) of a model or size with no known price" in r.stderr
    d = json.loads(sora("cost", "--json").stdout)
    assert d == {"since": None, "by": None, "jobs": 4, "seconds": 28,
                 "estimated_cost_usd": 7.2, "unpriced_jobs": 1, "groups": []}


def test_cost_since_and_by_day_model_label(history: dict[str, str]) -> None:
    d = json.loads(sora("cost", "--since", "7d", "--json").stdout)
    assert (d["jobs"], d["estimated_cost_usd"]) == (3, 6.8)
    assert d["since"].endswith("Z")
    d = json.loads(sora("cost", "--since", "1w", "--by", "day", "--json").stdout)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    two_days_ago = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * DAY))
    assert [(g["day"], g["jobs"], g["estimated_cost_usd"]) for g in d["groups"]] == [
        (today, 2, 0.8), (two_days_ago, 1, 6.0)]
    d = json.loads(sora("cost", "--by", "model", "--json").stdout)
    assert [(g["model"], g["jobs"], g["estimated_cost_usd"], g["unpriced_jobs"])
            for g in d["groups"]] == [("sora-2-pro", 1, 6.0, 0), ("sora-2", 2, 1.2, 0),
                                      ("my-deploy", 1, 0.0, 1)]
    d = json.loads(sora("cost", "--by", "LABEL", "--json").stdout)
    assert {g["label"]: g["estimated_cost_usd"] for g in d["groups"]} == {
        "b7": 6.8, None: 0.4, "b8": 0.0}
    days = [g["day"] for g in json.loads(sora("cost", "--by", "day", "--json").stdout)["groups"]]
    assert len(days) == 3 and days == sorted(days, reverse=True)  # every day, all time


def test_cost_table_by_label(history: dict[str, str]) -> None:
    lines = sora("cost", "--by", "label").stdout.splitlines()
    assert lines[0].split() == ["LABEL", "JOBS", "SECONDS", "EST.COST"]
    assert [x.split()[0] for x in lines[1:]] == ["b7", "(none)", "b8", "total"]
    assert lines[1].split() == ["b7", "2", "20", "$6.80"]


def test_cost_of_an_empty_store(home: Path) -> None:
    d = json.loads(sora("cost", "--by", "day", "--json").stdout)
    assert (d["jobs"], d["estimated_cost_usd"], d["groups"]) == (0, 0.0, [])


@pytest.mark.parametrize("args, expected", [
    (["--since", "7x"], "--since must be a duration like 30m, 12h, 7d or 2w (got '7x')"),
    (["--since", "-1d"], "--since"),
    (["--by", "week"], "--by must be one of day, model, label"),
])
def test_cost_bad_options_exit_2(home: Path, args: list[str], expected: str) -> None:
    assert expected in one_error(sora("cost", *args), 2)
    assert not (home / "sora.db").exists()  # refused before the store is opened


def test_cost_help_has_examples() -> None:
    r = sora("cost", "--help")
    assert r.exit_code == 0 and "sora cost --since 7d --by day" in r.stdout
