"""Runway, Luma Dream Machine and MiniMax Hailuo end to end: real `sora` processes, a real
detached runner and `sora fake-server` serving their APIs (results on a second origin,
Runway's and MiniMax's behind signed URLs)."""

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
    make_env,
    provider_env,
    start_fake,
    stop_proc,
)

pytestmark = pytest.mark.e2e

MODELS = {"runway": "runway:gen4.5", "luma": "luma:ray-2",
          "minimax": "minimax:MiniMax-Hailuo-2.3"}


@pytest.fixture
def fake(make_fake: MakeFake) -> FakeProc:
    return make_fake("--job-seconds", "0.6", "--fail-prompt", "forbidden")


@pytest.fixture
def sora(fake: FakeProc, make_sora: MakeSora) -> Sora:
    return make_sora(fake, SORA_REQUEST_TIMEOUT="3", **provider_env(fake))


@pytest.mark.parametrize(("provider", "args", "sent"), [
    ("runway", ["--seconds", "6", "--size", "720x1280"],
     {"model": "gen4.5", "promptText": "a heron in the rain", "duration": 6,
      "ratio": "720:1280"}),
    ("luma", ["--seconds", "9", "--size", "1920x1080"],
     {"model": "ray-2", "prompt": "a heron in the rain", "duration": "9s",
      "aspect_ratio": "16:9", "resolution": "1080p"}),
    ("minimax", ["--size", "1920x1080"],
     {"model": "MiniMax-Hailuo-2.3", "prompt": "a heron in the rain", "duration": 6,
      "resolution": "1080P"}),
])
def test_a_job_is_waited_on_downloaded_and_hashed(sora: Sora, fake: FakeProc, provider: str,
                                                  args: list[str], sent: dict[str, object]
                                                  ) -> None:
    job_id = sora.ok("submit", "-m", MODELS[provider], "a heron in the rain", *args).strip()
    r = sora.run("wait", job_id, "--download", "-o", "heron.mp4", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    saved = (sora.cwd / "heron.mp4").read_bytes()
    assert hashlib.sha256(saved).hexdigest() == job["sha256"] == fake.sha256(job["remote_id"])
    assert job["provider"] == provider
    assert fake.get(f"/_fake/jobs/{job['remote_id']}")["input"] == sent
    counters = fake.stats()["counters"]
    assert counters["cdn_requests"] >= 1
    assert counters.get("cdn_with_credentials", 0) == 0  # the CDN is another origin


@pytest.mark.parametrize(("provider", "message"), [
    ("runway", "flagged by our content moderation system"),
    ("luma", "rejected by content moderation"),
    ("minimax", "output new_sensitive (1027)")])
def test_a_failed_generation_fails_wait_with_the_providers_message(
        sora: Sora, fake: FakeProc, provider: str, message: str) -> None:
    job_id = sora.ok("submit", "-m", MODELS[provider], "something forbidden").strip()
    r = sora.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1
    assert message in r.stderr and job_id in r.stderr
    assert sora.job(job_id)["status"] == "failed"


@pytest.mark.parametrize("provider", ["runway", "minimax"])
def test_an_unanswered_create_where_nothing_can_be_listed_is_never_resent(
        sora: Sora, fake: FakeProc, provider: str) -> None:
    prompt = f"unanswered on {provider}"
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
    job_id = sora.ok("submit", "-m", MODELS[provider], prompt).strip()
    r = sora.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1
    job = sora.job(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "create_unconfirmed"
    assert "got no usable answer" in job["error"]["message"]
    assert fake.stats()["creates_by_prompt"][prompt] == 1  # made once, paid once
    assert job["create_attempts"] == 1


def test_an_unanswered_luma_create_is_found_in_the_list(sora: Sora, fake: FakeProc) -> None:
    prompt = "unanswered on luma"
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
    job_id = sora.ok("submit", "-m", MODELS["luma"], prompt).strip()
    r = sora.run("wait", job_id, "--timeout", "90")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    assert job["create_attempts"] == 1
    kinds = [e["kind"] for e in job_events(sora, job_id)]
    assert "create_unknown" in kinds and "reconciled" in kinds


def test_a_luma_generation_made_elsewhere_is_imported_and_saved(sora: Sora,
                                                                fake: FakeProc) -> None:
    import json
    import urllib.request

    urls = fake.get("/_fake/urls")
    body = json.dumps({"model": "ray-2", "prompt": "made in the Luma console",
                       "duration": "9s"}).encode()
    from .harness import DIRECT_TEST_KEYS

    request = urllib.request.Request(
        f"{urls['luma']}/generations", data=body, method="POST",
        headers={"Authorization": f"Bearer {DIRECT_TEST_KEYS['LUMAAI_API_KEY']}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        generation = json.loads(answer.read())
    job_id = sora.ok("import", f"luma:{generation['id']}", "-q").strip()
    r = sora.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    assert (job["provider"], job["model"], job["seconds"]) == ("luma", "ray-2", 9)


def test_runway_cancel_reaches_the_provider(sora: Sora, fake: FakeProc, tmp_path: Path
                                            ) -> None:
    slow = start_fake("--job-seconds", "30")
    try:
        s = Sora(sora.home.with_name("slow"), make_env(
            sora.home.with_name("slow"), slow.base_url, **provider_env(slow)), sora.cwd)
        job_id = s.ok("submit", "-m", MODELS["runway"], "stop me").strip()
        from .harness import wait_job

        job = wait_job(s, job_id, lambda j: j["remote_id"] is not None, 30)
        out = s.run("cancel", job_id)
        assert out.returncode == 0, out.stderr
        assert "Runway cancelled it" in out.stdout + out.stderr
        assert slow.get(f"/_fake/jobs/{job['remote_id']}")["state"] == "cancelled"
        s.stop_runner()
    finally:
        stop_proc(slow.proc)


def test_a_size_runway_takes_only_with_an_image_exits_2_and_records_nothing(
        sora: Sora) -> None:
    r = sora.run("submit", "-m", MODELS["runway"], "square", "--size", "960x960")
    assert r.returncode == 2
    assert "only with --image" in r.stderr and len(r.stderr.splitlines()) == 1
    r = sora.run("submit", "-m", MODELS["minimax"], "long", "--size", "1920x1080",
                 "--seconds", "10")
    assert r.returncode == 2 and "at most 6 s" in r.stderr
    assert not (sora.home / "sora.db").exists() or sora.ok("list", "-q") == ""
