"""The runner in-process against a hostile stand-in server (issue 13): once a video is
paid for, transient trouble never abandons it; answers are read within total deadlines
and bounded sizes; what the server sends is validated before anything is stored. The
wire-level cases run for every provider the fake serves (the OpenAI contract, fal,
Replicate): the protections live in the HTTP machinery and the runner they share.

Short timeouts come from the settings, so no test here waits for real time-outs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sora_cli.config import Settings
from sora_cli.domain.jobs import Job, JobStatus, VideoRequest
from sora_cli.fake.server import FakeOptions, FakeServer, Fault
from sora_cli.provider_settings import build
from sora_cli.providers.registry import Adapters
from sora_cli.runner import crash
from sora_cli.runner.loop import Runner
from sora_cli.store.repository import Store

KEY = "sk-hostile-test-0123456789abcdef"
VIDEO_BYTES = 20_000
DEEP = "[" * 100_000  # json.loads of this raises RecursionError, not ValueError


@pytest.fixture
def server() -> Iterator[FakeServer]:
    options = FakeOptions(job_seconds=0.3, poll_after_ms=50, video_bytes=VIDEO_BYTES)
    with FakeServer(options) as s:
        yield s


PROVIDERS = ("openai", "fal", "replicate")
KLING = "fal-ai/kling-video/v2.1/master/text-to-video"


def settings_for(tmp_path: Path, server: FakeServer, **kw: Any) -> Settings:
    urls = server.urls()
    env = {"SORA_FAL_BASE_URL": str(urls["fal"]), "SORA_FAL_PLATFORM_URL": str(
        urls["fal_platform"]), "SORA_REPLICATE_BASE_URL": str(urls["replicate"]),
        "FAL_KEY": "fal-hostile-key-0123456789", "REPLICATE_API_TOKEN": "r8-hostile-0123456789"}
    values: dict[str, Any] = dict(
        home=tmp_path, api_key=KEY, base_url=server.base_url, poll_min_seconds=0.05,
        poll_max_seconds=0.2, idle_exit_seconds=0.3, lease_seconds=5.0, request_timeout=0.5,
        max_retries=1, providers=build({}, env))
    values.update(kw)
    (tmp_path / "videos").mkdir(parents=True, exist_ok=True)
    return Settings(**values)


def run_runner(settings: Settings, store: Store, timeout: float = 20.0, *,
               runner_id: str = "host:1:a", stop_after: float | None = None) -> None:
    """Run a runner until it idles out (or `stop_after` seconds); fail after `timeout`."""
    async def go() -> None:
        stop = asyncio.Event()
        if stop_after is not None:
            asyncio.get_running_loop().call_later(stop_after, stop.set)
        async with Adapters(settings) as adapters:
            runner = Runner(settings, store, adapters, runner_id=runner_id)
            await asyncio.wait_for(runner.run(stop), timeout)

    asyncio.run(go())


def request(prompt: str, provider: str = "openai") -> VideoRequest:
    if provider == "openai":
        return VideoRequest(prompt)
    if provider == "fal":
        return VideoRequest(prompt, KLING, "", 5, provider="fal", params={"duration": "5"})
    return VideoRequest(prompt, "google/veo-3", "", 8, provider="replicate",
                        params={"duration": 8})


def one_job(tmp_path: Path, prompt: str = "a paid video", provider: str = "openai"
            ) -> tuple[Store, Job]:
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([request(prompt, provider)])
    return store, job


def completed(store: Store, server: FakeServer, job: Job) -> Job:
    """The job completed with the server's exact bytes, from exactly one create."""
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done
    assert done.remote_id is not None and done.output_path is not None
    data = Path(done.output_path).read_bytes()
    assert len(data) == VIDEO_BYTES == done.bytes
    assert hashlib.sha256(data).hexdigest() == done.sha256 == server.expected_sha256(
        done.remote_id)
    if job.provider == "openai":
        assert server.create_count(job.prompt) == 1
    else:  # the other families' jobs: one create of this prompt, in the request log
        creates = [r for r in server.request_log() if r[0] == "POST" and 200 <= r[2] < 300
                   and not r[1].endswith("/cancel")]
        assert len(creates) == 1, creates
    return done


# -- point 2: a paid video is never abandoned ------------------------------------------------


TROUBLE = {
    "5xx-outage": Fault("error", route="retrieve", status=503, times=4),  # over the retries
    "huge-retry-after": Fault("error", route="retrieve", status=429,
                              retry_after_ms=10**12),  # "come back in 30 years"
    "nested-json": Fault("body", route="retrieve", status=503, text=DEEP, times=2),
    "huge-number": Fault("patch", route="retrieve", times=2,  # OverflowError
                         fields={"expires_at": 10**400, "queue_position": 10**400}),
    "bad-hint": Fault("headers", route="retrieve", headers={"openai-poll-after-ms": "²"},
                      times=2),
}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", list(TROUBLE))
def test_transient_trouble_while_polling_never_fails_a_paid_video(
        tmp_path: Path, server: FakeServer, kind: str, provider: str) -> None:
    if provider != "openai" and kind in ("huge-number", "bad-hint"):
        pytest.skip("OpenAI-contract fields and headers")
    fault = TROUBLE[kind]
    store, job = one_job(tmp_path, provider=provider)
    server.add_faults(fault)
    run_runner(settings_for(tmp_path, server, poll_max_seconds=0.1), store)
    completed(store, server, job)
    if fault.action in ("error", "body"):  # polls that failed, and were tried again
        assert any(e.kind == "poll_failed" for e in store.events(job.id))


def test_an_unparseable_hint_on_the_create_answer_keeps_the_remote_id(
        tmp_path: Path, server: FakeServer) -> None:
    store, job = one_job(tmp_path)
    server.add_faults(Fault("headers", route="create", headers={"openai-poll-after-ms": "²"}))
    run_runner(settings_for(tmp_path, server), store)
    completed(store, server, job)  # one create: the paid video was adopted, not orphaned


def test_hostile_fields_in_the_create_answer_never_lose_the_remote_id(
        tmp_path: Path, server: FakeServer) -> None:
    store, job = one_job(tmp_path)
    server.add_faults(Fault("patch", route="create", fields={
        "seconds": 10**400, "progress": 10**400, "created_at": "²", "status": DEEP[:5000]}))
    run_runner(settings_for(tmp_path, server), store)
    completed(store, server, job)  # one create: the id was kept whatever else came with it


# -- point 12: values that would break the readers, or expire the job at once ------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deeply_nested_json_answering_a_create_is_reconciled(
        tmp_path: Path, server: FakeServer, provider: str) -> None:
    store, job = one_job(tmp_path, provider=provider)
    server.add_faults(Fault("create_then_body", route="create", text=DEEP))
    run_runner(settings_for(tmp_path, server), store)
    completed(store, server, job)


def test_a_date_in_year_9999_does_not_expire_the_job(tmp_path: Path, server: FakeServer) -> None:
    store, job = one_job(tmp_path)
    in_a_day = int(time.time()) + 86400
    server.add_faults(Fault("patch", route="retrieve", times=3, fields={"expires_at": in_a_day},
                            headers={"Date": "Fri, 31 Dec 9999 23:59:59 GMT"}))
    run_runner(settings_for(tmp_path, server), store)
    done = completed(store, server, job)
    assert done.expires_at is not None and abs(done.expires_at - in_a_day) < 60


def test_timestamps_nobody_can_render_are_not_stored(tmp_path: Path, server: FakeServer) -> None:
    store, job = one_job(tmp_path)
    server.add_faults(Fault("patch", route="retrieve", times=100,  # every poll
                            fields={"expires_at": 99999999999999, "progress": -5}))
    run_runner(settings_for(tmp_path, server), store)
    done = completed(store, server, job)
    for event in store.events(job.id):
        assert "internal_error" not in (event.message or "")
    assert done.expires_at is None or done.expires_at < 4102444800  # 2100-01-01


# -- point 7: total deadlines ------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("route", ["retrieve", "content"])
def test_a_server_that_drips_bytes_cannot_hold_a_request(tmp_path: Path, server: FakeServer,
                                                          route: str, provider: str) -> None:
    store, job = one_job(tmp_path, provider=provider)
    # one byte every 100 ms: every read gets something within request_timeout (0.5 s), but
    # the answer would take minutes
    server.add_faults(Fault("drip", route=route, delay_ms=100))
    run_runner(settings_for(tmp_path, server), store, timeout=15)
    completed(store, server, job)


# -- point 8: bodies decoded although identity was asked for -----------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_encoded_video_body_is_never_saved_decoded(tmp_path: Path, server: FakeServer,
                                                      provider: str) -> None:
    store, job = one_job(tmp_path, provider=provider)
    server.add_faults(Fault("gzip", route="content", size=50 * 1024 * 1024))
    # the fake takes a moment to compress the bomb: this test is not about deadlines
    run_runner(settings_for(tmp_path, server, request_timeout=10.0), store)
    completed(store, server, job)
    events = " ".join(e.message or "" for e in store.events(job.id))
    assert "gzip" in events


# -- point 15: bodies that are not a video -----------------------------------------------------


@pytest.mark.parametrize(("text", "content_type"), [
    ("<html><body>Service temporarily unavailable</body></html>", "text/html"),
    ("", "video/mp4"),
    ('{"error": "not a video"}', "application/json"),
], ids=["html", "empty", "json"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_200_that_is_not_a_video_is_not_saved_as_one(
        tmp_path: Path, server: FakeServer, text: str, content_type: str, provider: str) -> None:
    store, job = one_job(tmp_path, provider=provider)
    server.add_faults(Fault("body", route="content", status=200, text=text,
                            content_type=content_type))
    run_runner(settings_for(tmp_path, server), store)
    completed(store, server, job)


def test_a_job_deleted_while_its_video_is_saved_leaves_no_file(
        tmp_path: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    store, job = one_job(tmp_path)
    other = Store.open(tmp_path / "sora.db")  # `sora delete` in another process

    def delete_now(name: str) -> None:
        if name == "before_complete":  # the file is in place, not yet recorded
            other.delete_jobs([job.id], message="deleted by the user")

    monkeypatch.setattr(crash, "crash_point", delete_now)
    run_runner(settings_for(tmp_path, server), store)
    assert store.get(job.id) is None
    assert sorted(os.listdir(tmp_path / "videos")) == []


# -- point 15: a shared store, and images kept on another host ---------------------------------


PNG_720 = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (720).to_bytes(4, "big")
           + (1280).to_bytes(4, "big") + b"\x08\x02\x00\x00\x00" + bytes(64))


@pytest.mark.postgres
def test_a_runner_elsewhere_leaves_a_job_whose_image_it_cannot_read(
        tmp_path: Path, server: FakeServer, pg_url: str) -> None:
    kept = tmp_path / "host-a" / "inputs" / f"{hashlib.sha256(PNG_720).hexdigest()}.png"
    store = Store.open(pg_url)
    (job,) = store.add_jobs([VideoRequest("an image from host A", image=str(kept))])
    here = settings_for(tmp_path / "host-b", server, database_url=pg_url)
    run_runner(here, store, runner_id="host-b:1:b", stop_after=2.0)  # the image is not here
    waiting = store.get(job.id)
    assert waiting is not None and waiting.status is JobStatus.QUEUED, waiting
    assert server.create_count() == 0
    notes = [e for e in store.events(job.id) if e.kind == "image_elsewhere"]
    assert len(notes) == 1 and "host-b" in (notes[0].message or "")
    kept.parent.mkdir(parents=True)
    kept.write_bytes(PNG_720)  # the host that kept it runs it
    run_runner(settings_for(tmp_path / "host-a", server, database_url=pg_url), store,
               runner_id="host-a:1:a")
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.COMPLETED, done


def test_an_image_whose_bytes_changed_is_never_sent(tmp_path: Path, server: FakeServer) -> None:
    kept = tmp_path / "inputs" / f"{hashlib.sha256(PNG_720).hexdigest()}.png"
    kept.parent.mkdir()
    kept.write_bytes(PNG_720[:-1] + b"\x01")  # another image under the recorded hash
    store = Store.open(tmp_path / "sora.db")
    (job,) = store.add_jobs([VideoRequest("a swapped image", image=str(kept))])
    run_runner(settings_for(tmp_path, server), store)
    done = store.get(job.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert done.error is not None and done.error.code == "image_changed"
    assert server.create_count() == 0
