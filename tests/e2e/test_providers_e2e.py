"""fal and Replicate end to end: real `sora` processes, a real detached runner and
`sora fake-server` serving both families (their results on a second origin)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .harness import (
    FakeProc,
    MakeFake,
    MakeSora,
    Sora,
    assert_saved_once,
    job_events,
    provider_env,
)

pytestmark = pytest.mark.e2e

KLING = "fal:fal-ai/kling-video/v2.1/master/text-to-video"
VEO = "replicate:google/veo-3"
MODELS = {"fal": KLING, "replicate": VEO}


@pytest.fixture
def fake(make_fake: MakeFake) -> FakeProc:
    return make_fake("--job-seconds", "0.6", "--fail-prompt", "forbidden")


@pytest.fixture
def sora(fake: FakeProc, make_sora: MakeSora) -> Sora:
    return make_sora(fake, SORA_REQUEST_TIMEOUT="3", **provider_env(fake))


def test_fal_kling_is_waited_on_and_downloaded(sora: Sora, fake: FakeProc) -> None:
    job_id = sora.ok("submit", "-m", KLING, "a corgi surfing at sunset", "--seconds", "5",
                     "--size", "1280x720").strip()
    r = sora.run("wait", job_id, "--download", "-o", "corgi.mp4", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    saved = (sora.cwd / "corgi.mp4").read_bytes()
    assert hashlib.sha256(saved).hexdigest() == job["sha256"]
    assert (job["provider"], job["model"]) == ("fal", KLING.removeprefix("fal:"))
    assert job["params"] == {"duration": "5", "aspect_ratio": "16:9"}
    sent = fake.get(f"/_fake/jobs/{job['remote_id']}")
    assert sent["input"] == {"prompt": "a corgi surfing at sunset", "duration": "5",
                             "aspect_ratio": "16:9"}
    counters = fake.stats()["counters"]
    assert counters["cdn_requests"] >= 1
    assert counters.get("cdn_with_credentials", 0) == 0  # the CDN is another origin


def test_replicate_veo3_is_waited_on_and_downloaded(sora: Sora, fake: FakeProc) -> None:
    job_id = sora.ok("submit", "-m", VEO, "a lighthouse at dawn").strip()
    r = sora.run("wait", job_id, "--download", "-o", "out/", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    assert (sora.cwd / "out" / f"{job_id}.mp4").read_bytes() == Path(
        job["output_path"]).read_bytes()
    assert job["remote_status"] == "succeeded" and job["seconds"] == 8
    assert fake.get(f"/_fake/jobs/{job['remote_id']}")["input"] == {
        "prompt": "a lighthouse at dawn", "duration": 8}
    assert fake.stats()["counters"].get("cdn_with_credentials", 0) == 0


@pytest.mark.parametrize(("provider", "message"), [
    ("fal", "flagged by a content checker"), ("replicate", "content policy")])
def test_a_failed_generation_fails_wait_with_the_providers_message(
        sora: Sora, fake: FakeProc, provider: str, message: str) -> None:
    job_id = sora.ok("submit", "-m", MODELS[provider], "something forbidden").strip()
    r = sora.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1
    assert message in r.stderr and job_id in r.stderr
    assert sora.job(job_id)["status"] == "failed"


@pytest.mark.parametrize("provider", ["fal", "replicate"])
def test_an_unanswered_create_is_never_paid_twice(sora: Sora, fake: FakeProc,
                                                  provider: str) -> None:
    prompt = f"unanswered on {provider}"
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
    job_id = sora.ok("submit", "-m", MODELS[provider], prompt).strip()
    r = sora.run("wait", job_id, "--timeout", "90")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    assert job["create_attempts"] == 1
    kinds = [e["kind"] for e in job_events(sora, job_id)]
    assert "create_unknown" in kinds and "reconciled" in kinds


def test_a_submit_without_the_providers_key_exits_4_and_records_nothing(
        sora: Sora) -> None:
    r = sora.run("submit", "-m", VEO, "no key", env={"REPLICATE_API_TOKEN": ""})
    assert r.returncode == 4
    assert "REPLICATE_API_TOKEN" in r.stderr
    assert not (sora.home / "sora.db").exists() or sora.ok("list", "-q") == ""


def test_status_and_list_show_the_provider(sora: Sora) -> None:
    job_id = sora.ok("submit", "-m", "kling", "an alias", "--seconds", "10").strip()
    assert sora.job(job_id)["provider"] == "fal"
    assert KLING in sora.ok("status", job_id)
    assert "duration" in sora.ok("status", job_id)
    assert sora.run("wait", job_id, "--timeout", "60").returncode == 0
