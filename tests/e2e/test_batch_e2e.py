"""Batches end to end: `submit --file` with labels, `watch`, `wait --label --download`
and `cost`, with the real executable, a real runner and `sora fake-server`."""

from __future__ import annotations

import hashlib
import json

import pytest

from .harness import FakeProc, MakeFake, MakeSora, Sora

pytestmark = pytest.mark.e2e


@pytest.fixture
def quick(make_fake: MakeFake, make_sora: MakeSora) -> tuple[Sora, FakeProc]:
    # Long enough that `watch`, started after `submit` returns, still finds them running.
    fake = make_fake("--job-seconds", "4", "--poll-after-ms", "100")
    return make_sora(fake, SORA_CREATES_PER_MINUTE="600", SORA_MAX_IN_FLIGHT="8"), fake


def test_batch_submit_watch_then_wait_label_download(quick: tuple[Sora, FakeProc]) -> None:
    s, fake = quick
    batch = ('# tonight\na corgi surfing at sunset\n\n'
             '{"prompt": "a storm at sea", "seconds": 8}\n'
             '{"prompt": "a paper boat", "label": "other"}\na red fox in snow\n')
    r = s.run("submit", "--file", "-", "--label", "b7", input=batch)
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 4 and r.stderr == ""
    in_b7 = [ids[0], ids[1], ids[3]]

    r = s.run("watch", "--label", "b7", "--timeout", "60")  # not a terminal: plain lines
    assert r.returncode == 0, r.stderr
    last = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()}
    assert last == dict.fromkeys(in_b7, "completed")

    r = s.run("wait", "--label", "b7", "--download", "-o", "out/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [f"out/{i}.mp4" for i in in_b7]  # in input order
    for job_id in in_b7:
        job = s.job(job_id)
        data = (s.cwd / "out" / f"{job_id}.mp4").read_bytes()
        assert hashlib.sha256(data).hexdigest() == job["sha256"] == fake.sha256(
            job["remote_id"])
    assert [json.loads(x)["label"] for x in s.ok("list", "--json", "--all").splitlines()] == [
        "b7", "other", "b7", "b7"]
    assert s.ok("list", "-q", "--label", "other").split() == [ids[2]]

    s.ok("wait", ids[2])
    cost = json.loads(s.ok("cost", "--by", "label", "--json"))
    assert (cost["jobs"], cost["estimated_cost_usd"]) == (4, 2.0)
    assert {g["label"]: g["estimated_cost_usd"] for g in cost["groups"]} == {"b7": 1.6,
                                                                              "other": 0.4}
    assert fake.stats()["creates"] == 4


def test_bad_batches_and_budgets_change_nothing(quick: tuple[Sora, FakeProc]) -> None:
    s, fake = quick
    r = s.run("submit", "--file", "-", input='fine\n{"prompt": "x", "seconds": 5}\nfine too\n')
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "sora: stdin line 2: --seconds must be one of 4, 8, 12 (got 5)\n"
    r = s.run("submit", "--file", "-", input="a\nb\nc\n", env={"SORA_MAX_DAILY_COST": "1"})
    assert (r.returncode, r.stdout) == (2, "")
    assert "over max_daily_cost $1.00 by $0.20" in r.stderr and len(r.stderr.splitlines()) == 1
    r = s.run("cost", "--since", "a week")
    assert (r.returncode, r.stdout, len(r.stderr.splitlines())) == (2, "", 1)
    r = s.run("submit", "--dry-run", "--json", "a fox", env={"OPENAI_API_KEY": ""})
    assert r.returncode == 0 and json.loads(r.stdout)["estimated_cost_usd"] == 0.4
    assert s.ok("list", "-q") == ""
    assert fake.stats()["creates"] == 0
