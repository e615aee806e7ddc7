"""The runner with several providers, in-process against the fake server: each provider
has its own slots, a provider without a key is left alone, and an unanswered create is
never sent twice, whether the provider can list what it made or not."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest
from inproc import MakeServer, run_runner, settings_for

from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.errors import AmbiguousCreate
from sora_cli.fake.server import FakeOptions, FakeServer, Fault
from sora_cli.providers.base import Created, CreateRequest, Polled, RemoteState
from sora_cli.providers.fal import adapter as fal_adapter
from sora_cli.providers.registry import Adapters
from sora_cli.store.repository import Store

KLING = "fal-ai/kling-video/v2.1/master/text-to-video"


def req(prompt: str, provider: str = "fal", model: str = KLING, **kw: Any) -> VideoRequest:
    if provider == "openai":
        return VideoRequest(prompt, **kw)
    return VideoRequest(prompt, model, "", 5, provider=provider, params={"duration": "5"}
                        if provider == "fal" else {"duration": 8}, **kw)


def test_each_provider_has_its_own_slots(tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server(job_seconds=0.8)  # long enough for the providers' jobs to overlap
    s = settings_for(tmp_path, server, max_in_flight=2, tables={"fal": {"max_in_flight": 1}})
    store = Store.open(tmp_path / "sora.db")
    fal_jobs = store.add_jobs([req(f"slow {n}") for n in range(3)])
    openai_jobs = store.add_jobs([req(f"quick {n}", "openai") for n in range(2)])
    run_runner(s, store)
    done = {j.id: store.get(j.id) for j in fal_jobs + openai_jobs}
    assert all(j is not None and j.status is JobStatus.COMPLETED for j in done.values()), done
    falls = sorted((done[j.id] for j in fal_jobs), key=lambda j: j.submitted_at or 0)
    for before, after in itertools.pairwise(falls):  # one fal job at a time
        assert (after.submitted_at or 0) >= (before.completed_at or 0) - 0.05
    last_fal_sent = max(j.submitted_at or 0 for j in falls)
    # the older fal jobs did not hold the openai ones back
    assert all((done[j.id].completed_at or 0) < last_fal_sent for j in openai_jobs)


def test_a_provider_without_a_key_is_left_alone(tmp_path: Path, server: FakeServer) -> None:
    s = settings_for(tmp_path, server, keys=False)
    store = Store.open(tmp_path / "sora.db")
    (waiting,) = store.add_jobs([req("no key for me")])
    (done,) = store.add_jobs([req("openai has one", "openai")])
    run_runner(s, store)  # exits when idle, though the fal job is unfinished
    assert store.get(done.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]
    left = store.get(waiting.id)
    assert left is not None and left.status is JobStatus.QUEUED and left.runner_id is None
    assert [e.kind for e in store.events(waiting.id)] == ["created"]
    assert server.create_count("no key for me") == 0


@pytest.mark.parametrize("provider", ["fal", "replicate"])
def test_an_unanswered_create_is_adopted(tmp_path: Path, server: FakeServer,
                                         provider: str) -> None:
    prompt = f"dropped on {provider}"
    server.add_faults(Fault("create_then_drop", "create", prompt=prompt))
    store = Store.open(tmp_path / "sora.db")
    model = KLING if provider == "fal" else "google/veo-3"
    (job,) = store.add_jobs([req(prompt, provider, model)])
    run_runner(settings_for(tmp_path, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert server.create_count(prompt) == 1 and done.create_attempts == 1
    assert "reconciled" in [e.kind for e in store.events(job.id)]


def test_fal_gives_up_looking_without_ever_sending_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fal lists only requests that ended: one still running is never proof of nothing."""
    monkeypatch.setattr(fal_adapter, "LIST_WAIT", 0.0)  # give up at the first empty list
    with FakeServer(FakeOptions(job_seconds=60, poll_after_ms=50)) as slow:
        slow.add_faults(Fault("create_then_drop", "create", prompt="never listed"))
        store = Store.open(tmp_path / "sora.db")
        (job,) = store.add_jobs([req("never listed")])
        run_runner(settings_for(tmp_path, slow), store)
        assert slow.create_count("never listed") == 1
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "create_unconfirmed"
    assert KLING in failed.error.message and "not sent again" in failed.error.message


class Unlistable:
    """A provider (a plug-in, say) that cannot list what it made."""

    name = "fal"
    capabilities = frozenset({"cancel"})

    def __init__(self) -> None:
        self.creates = 0

    async def create(self, request: CreateRequest, *, on_attempt: Any) -> Created:
        self.creates += 1
        raise AmbiguousCreate("no answer")

    async def poll(self, job: Job, *, on_attempt: Any) -> Polled:
        return Polled(RemoteState.RUNNING, "running")

    def open_result(self, job: Job, *, variant: str = "video", offset: int = 0) -> Any:
        raise NotImplementedError

    def result_path(self, job: Job, variant: str = "video") -> str:
        return "/"

    def where(self, job: Job) -> str:
        return "POST https://unlistable.test/make"

    async def aclose(self) -> None:
        return None


def test_a_provider_that_cannot_list_fails_the_job_naming_endpoint_and_time(
        tmp_path: Path, server: FakeServer) -> None:
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([req("cannot tell")])
    s = settings_for(tmp_path, server)
    adapter = Unlistable()
    started = time.strftime("%Y-%m-%d", time.localtime())
    run_runner(s, store, adapters=Adapters(s, made={"fal": adapter}))  # type: ignore[dict-item]
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "create_unconfirmed"
    assert "POST https://unlistable.test/make" in failed.error.message
    assert started in failed.error.message and f"sora retry {job.id}" in failed.error.message
    assert adapter.creates == 1
