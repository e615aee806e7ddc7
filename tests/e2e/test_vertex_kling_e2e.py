"""Vertex AI Veo and Kling end to end: real `sora` processes, a real detached runner and
`sora fake-server` serving both (Vertex's token endpoint and GCS, and Kling's CDN, on
a second origin). Vertex authenticates as it would for real: a service-account file
whose token_uri is the fake's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import (
    FakeProc,
    Sora,
    assert_saved_once,
    job_events,
    make_env,
    provider_env,
    start_fake,
    stop_proc,
    vertex_env,
)

pytest.importorskip("google.auth", reason="google-auth (the vertex extra) is not installed")
pytest.importorskip("cryptography", reason="cryptography is not installed")
pytestmark = pytest.mark.e2e

VEO = "vertex:veo-3.1-generate-001"
KLING = "kling:kling-v2-5-turbo"
MODELS = {"vertex": VEO, "kling": KLING}


@pytest.fixture
def fake() -> Iterator[FakeProc]:
    server = start_fake("--job-seconds", "0.6", "--fail-prompt", "forbidden")
    yield server
    stop_proc(server.proc)


@pytest.fixture
def sora(tmp_path: Path, fake: FakeProc) -> Iterator[Sora]:
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    s = Sora(home, make_env(home, fake.base_url, SORA_REQUEST_TIMEOUT="3",
                            **provider_env(fake), **vertex_env(fake, tmp_path)), work)
    yield s
    s.stop_runner()


def test_veo_job_is_waited_on_and_its_inline_video_decoded(sora: Sora, fake: FakeProc) -> None:
    job_id = sora.ok("submit", "-m", VEO, "a lighthouse at dawn", "--seconds", "6",
                     "--size", "1920x1080").strip()
    r = sora.run("wait", job_id, "--download", "-o", "veo.mp4", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    assert hashlib.sha256((sora.cwd / "veo.mp4").read_bytes()).hexdigest() == job["sha256"]
    assert (job["provider"], job["model"], job["remote_status"]) == (
        "vertex", "veo-3.1-generate-001", "done")
    assert job["params"] == {"durationSeconds": 6, "aspectRatio": "16:9", "resolution": "1080p"}
    sent = fake.get(f"/_fake/jobs/{job['remote_id']}")["input"]
    assert sent == {"prompt": "a lighthouse at dawn", "parameters": {
        "sampleCount": 1, "generateAudio": True, "durationSeconds": 6, "aspectRatio": "16:9",
        "resolution": "1080p"}}
    routes = fake.stats()["requests_by_route"]
    assert routes["token"] >= 1  # the service-account flow, at the fake's token_uri


def test_veo_job_with_a_storage_uri_is_fetched_from_gcs(sora: Sora, fake: FakeProc) -> None:
    env = {"SORA_VERTEX_STORAGE_URI": "gs://sora-e2e-bucket/videos"}
    job_id = sora.ok("submit", "-m", "veo-3.1-fast", "a storm at sea", env=env).strip()
    r = sora.run("wait", job_id, "--timeout", "60", env=env)
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    assert job["model"] == "veo-3.1-fast-generate-001"  # the catalogue's alias
    assert fake.stats()["counters"]["gcs_downloads"] >= 1


def test_kling_job_is_waited_on_and_downloaded(sora: Sora, fake: FakeProc) -> None:
    job_id = sora.ok("submit", "-m", KLING, "a corgi surfing", "--seconds", "10",
                     "--size", "1080x1920").strip()
    r = sora.run("wait", job_id, "--download", "-o", "out/", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(sora, fake, job_id)
    assert (sora.cwd / "out" / f"{job_id}.mp4").read_bytes() == Path(
        job["output_path"]).read_bytes()
    assert job["remote_status"] == "succeed" and job["expires_at"]
    assert fake.get(f"/_fake/jobs/{job['remote_id']}")["input"] == {
        "model_name": "kling-v2-5-turbo", "prompt": "a corgi surfing", "duration": "10",
        "aspect_ratio": "9:16", "mode": "pro", "external_task_id": f"sora-{job_id}"}
    assert fake.stats()["counters"].get("cdn_with_credentials", 0) == 0


@pytest.mark.parametrize(("provider", "message"), [
    ("vertex", "responsible-AI filters removed the video: Veo could not generate"),
    ("kling", "Failure to pass the risk control system")])
def test_a_failed_generation_fails_wait_with_the_providers_message(
        sora: Sora, provider: str, message: str) -> None:
    job_id = sora.ok("submit", "-m", MODELS[provider], "something forbidden").strip()
    r = sora.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1
    assert message in r.stderr and job_id in r.stderr
    assert sora.job(job_id)["status"] == "failed"


def test_kling_unanswered_create_is_found_by_its_external_id(sora: Sora,
                                                             fake: FakeProc) -> None:
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": "dropped"})
    job_id = sora.ok("submit", "-m", KLING, "dropped").strip()
    r = sora.run("wait", job_id, "--timeout", "90")
    assert r.returncode == 0, r.stderr
    assert_saved_once(sora, fake, job_id)
    kinds = [e["kind"] for e in job_events(sora, job_id)]
    assert "create_unknown" in kinds and "reconciled" in kinds


def test_veo_unanswered_create_is_never_sent_again(sora: Sora, fake: FakeProc) -> None:
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": "dropped"})
    job_id = sora.ok("submit", "-m", VEO, "dropped").strip()
    r = sora.run("wait", job_id, "--timeout", "90")
    assert r.returncode == 1
    job = sora.job(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "create_unconfirmed"
    assert "cannot list what it made: it was not sent again" in job["error"]["message"]
    assert fake.stats()["creates_by_prompt"]["dropped"] == 1


def test_submits_without_credentials_exit_4_and_record_nothing(sora: Sora,
                                                              tmp_path: Path) -> None:
    r = sora.run("submit", "-m", KLING, "no secret", env={"KLING_SECRET_KEY": ""})
    assert r.returncode == 4
    assert "KLING_ACCESS_KEY and KLING_SECRET_KEY" in r.stderr
    r = sora.run("submit", "-m", VEO, "no file", env={
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")})
    assert r.returncode == 4
    assert "no Google credentials for vertex" in r.stderr and "missing.json" in r.stderr
    r = sora.run("submit", "-m", VEO, "nothing", env={"GOOGLE_APPLICATION_CREDENTIALS": "",
                                                       "SORA_VERTEX_PROJECT": ""})
    assert r.returncode == 4 and "GOOGLE_APPLICATION_CREDENTIALS" in r.stderr
    assert not (sora.home / "sora.db").exists() or sora.ok("list", "-q") == ""


def test_models_lists_vertex_and_kling(sora: Sora) -> None:
    rows = [json.loads(line) for line in sora.ok("models", "--json").splitlines()]
    refs = {r["ref"] for r in rows}
    assert {"vertex:veo-3.1-generate-001", "vertex:veo-3.1-fast-generate-001",
            "vertex:veo-3.0-generate-001", "kling:kling-v2-1-master",
            "kling:kling-v2-5-turbo"} <= refs
    table = sora.ok("models", "--provider", "kling")
    assert "kling-v2-6" in table and "vertex" not in table
    r = sora.run("submit", "-m", VEO, "x", "--seconds", "5")
    assert r.returncode == 2 and "takes --seconds 4, 6, 8" in r.stderr
