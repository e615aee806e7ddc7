"""Named endpoints of the Videos contract end to end: real `sora` processes, a detached
runner, and `sora fake-server --dialect vllm-omni|litellm` on 127.0.0.1, configured
with nothing but a `[providers.NAME]` table in config.toml (no OPENAI_* variable)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .harness import (
    FakeProc,
    MakeFake,
    Sora,
    assert_saved_once,
    job_events,
    make_env,
    wait_job,
)

pytestmark = pytest.mark.e2e

WAN = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
VEO = "gemini/veo-3.1-generate-preview"
LITE_KEY = "sk-litellm-virtual-key-0123456789"

@pytest.fixture
def make_fake(make_fake: MakeFake) -> MakeFake:
    """conftest's, with 0.6 s jobs and a poll hint of 100 ms unless told."""
    def make(*args: str) -> FakeProc:
        return make_fake("--job-seconds", "0.6", "--poll-after-ms", "100", *args)

    return make


def endpoint_sora(tmp_path: Path, table: str, **env: str) -> Sora:
    """`sora` whose only configuration is `table` in config.toml (no OPENAI_* at all)."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text(table)
    work = tmp_path / "work"
    work.mkdir()
    full = make_env(home, "unused", **env)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        full.pop(name)
    return Sora(home, full, work)


@pytest.fixture
def omni(tmp_path: Path, make_fake: MakeFake) -> Iterator[tuple[Sora, FakeProc]]:
    fake = make_fake("--dialect", "vllm-omni")
    s = endpoint_sora(tmp_path, f'[providers.omni]\napi = "openai"\nbase_url = "{fake.base_url}"\n')
    yield s, fake
    s.stop_runner()


def learned(s: Sora) -> dict[str, str]:
    """What the runners learned about endpoints, as the store's meta table keeps it."""
    conn = sqlite3.connect(f"file:{s.home / 'sora.db'}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE 'learned:%'")
        return {k.removeprefix("learned:").split("#")[0]: v for k, v in rows}
    finally:
        conn.close()


def creates(fake: FakeProc) -> int:
    return int(fake.stats()["counters"].get("route:create", 0))


def test_a_vllm_omni_job_is_waited_on_and_downloaded(omni: tuple[Sora, FakeProc]) -> None:
    s, fake = omni
    job_id = s.ok("submit", "-m", f"omni:{WAN}", "a heron lifts off a misty lake",
                  "--seconds", "5", "--size", "1280x720", "-p", "seed=7").strip()
    r = s.run("wait", job_id, "--download", "-o", "heron.mp4", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(s, fake, job_id)
    saved = (s.cwd / "heron.mp4").read_bytes()
    assert hashlib.sha256(saved).hexdigest() == job["sha256"] == fake.sha256(job["remote_id"])
    assert (job["provider"], job["model"]) == ("omni", WAN)
    sent = fake.get(f"/_fake/videos/{job['remote_id']}")
    assert (sent["model"], sent["size"], sent["seconds"]) == (WAN, "1280x720", "5")
    # JSON first, refused with a 422 (nothing made), then the same create as a form
    assert creates(fake) == 2
    assert learned(s) == {"encoding@omni": "multipart"}
    # remembered: the next job's create goes as a form at once
    second = s.ok("submit", "-m", f"omni:{WAN}", "a second heron").strip()
    assert s.run("wait", second, "--timeout", "60").returncode == 0
    assert creates(fake) == 3


def test_an_unanswered_create_on_vllm_omni_is_never_sent_twice(
        omni: tuple[Sora, FakeProc]) -> None:
    s, fake = omni
    prompt = "a create whose answer is lost"
    fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
    job_id = s.ok("submit", "-m", f"omni:{WAN}", prompt, "--size", "832x480").strip()
    r = s.run("wait", job_id, "--download", "-o", "lost.mp4", "--timeout", "90")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(s, fake, job_id)  # adopted from the list, paid once
    assert job["create_attempts"] == 1
    kinds = [e["kind"] for e in job_events(s, job_id)]
    assert "create_unknown" in kinds and "reconciled" in kinds


def test_the_issues_server_multipart_minimal_processing_opaque_ids_no_list(
        tmp_path: Path, make_fake: MakeFake) -> None:
    """Issue 11's "done when": with only a `[providers.omni]` table, a server that takes
    only forms, answers a create minimally, says `processing`, has ids with `::` and `/`
    and no list: a job is waited on and downloaded (sha256 checked), and an unanswered
    create is never sent twice."""
    fake = make_fake("--dialect", "vllm-omni", "--quirk", "processing", "--quirk",
                     "opaque-ids", "--quirk", "no-list", "--job-seconds", "2")
    s = endpoint_sora(tmp_path, f'[providers.omni]\napi = "openai"\nbase_url = "{fake.base_url}"\n')
    try:
        job_id = s.ok("submit", "-m", f"omni:{WAN}", "a heron over the lake").strip()
        seen = wait_job(s, job_id, lambda j: j["remote_status"] == "processing", 30,
                        "a processing job")
        assert "::operations/" in seen["remote_id"]
        r = s.run("wait", job_id, "--download", "-o", "heron.mp4", "--timeout", "60")
        assert r.returncode == 0, r.stderr
        job = assert_saved_once(s, fake, job_id)
        saved = (s.cwd / "heron.mp4").read_bytes()
        assert hashlib.sha256(saved).hexdigest() == job["sha256"] == fake.sha256(job["remote_id"])
        assert creates(fake) == 2  # JSON refused (nothing made), then the form
        prompt = "a create whose answer is lost"
        fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
        lost = s.ok("submit", "-m", f"omni:{WAN}", prompt).strip()
        assert s.run("wait", lost, "--timeout", "90").returncode == 1
        failed = s.job(lost)
        assert failed["status"] == "failed" and failed["error"]["code"] == "create_unconfirmed"
        assert fake.stats()["creates_by_prompt"][prompt] == 1 and failed["create_attempts"] == 1
        assert learned(s) == {"encoding@omni": "multipart", "lists@omni": "no"}
    finally:
        s.stop_runner()


def test_models_and_config_show_list_the_named_endpoint(omni: tuple[Sora, FakeProc]) -> None:
    s, fake = omni
    rows = [json.loads(line) for line in s.ok("models", "--json").splitlines()]
    mine = [r for r in rows if r["provider"] == "omni"]
    assert mine and mine[0]["kind"] == "endpoint" and mine[0]["base_url"] == fake.base_url
    assert "omni" in s.ok("models", "--provider", "omni")
    shown = json.loads(s.ok("config", "show", "--json"))["providers"]["omni"]
    assert shown["api"] == "openai" and shown["base_url"] == fake.base_url
    assert shown["key_required"] is False and shown["create_encoding"] == "auto"


def test_a_key_is_sent_only_when_configured(tmp_path: Path, make_fake: MakeFake) -> None:
    fake = make_fake("--dialect", "vllm-omni", "--api-key", "omni-secret-key")
    table = (f'[providers.omni]\napi = "openai"\nbase_url = "{fake.base_url}"\n'
             'api_key_env = "OMNI_KEY"\ncreate_encoding = "multipart"\n')
    s = endpoint_sora(tmp_path, table)
    try:
        r = s.run("submit", "-m", f"omni:{WAN}", "no key yet")
        assert r.returncode == 4 and "OMNI_KEY" in r.stderr
        s.env["OMNI_KEY"] = "omni-secret-key"
        job_id = s.ok("submit", "-m", f"omni:{WAN}", "with the key").strip()
        assert s.run("wait", job_id, "--timeout", "60").returncode == 0
        assert creates(fake) == 1  # multipart up front: no JSON attempt
        assert "omni-secret-key" not in (s.home / "runner.log").read_text()
    finally:
        s.stop_runner()


# --- LiteLLM ----------------------------------------------------------------------------


def lite_sora(tmp_path: Path, fake: FakeProc, backend: str) -> Sora:
    table = (f'[providers.lite]\napi = "openai"\nbase_url = "{fake.base_url}"\n'
             'api_key_env = "LITE_KEY"\nseconds_type = "number"\n'
             f'list_params = {{ custom_llm_provider = "{backend}" }}\n')
    return endpoint_sora(tmp_path, table, LITE_KEY=LITE_KEY)


@pytest.fixture
def lite(tmp_path: Path, make_fake: MakeFake) -> Iterator[tuple[Sora, FakeProc]]:
    fake = make_fake("--dialect", "litellm", "--api-key", LITE_KEY, "--job-seconds", "2")
    s = lite_sora(tmp_path, fake, "gemini")
    yield s, fake
    s.stop_runner()


def test_a_veo_job_through_litellm_is_waited_on_and_downloaded(
        lite: tuple[Sora, FakeProc]) -> None:
    s, fake = lite
    job_id = s.ok("submit", "-m", f"lite:{VEO}", "a lighthouse at dawn", "--seconds", "8",
                  "--size", "1280x720").strip()
    seen = wait_job(s, job_id, lambda j: j["status"] == "running"
                    and j["remote_status"] == "processing", 30, "a processing job")
    assert seen["remote_id"].startswith("gemini::operations/")
    r = s.run("wait", job_id, "--download", "-o", "out/", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = assert_saved_once(s, fake, job_id)
    assert (s.cwd / "out" / f"{job_id}.mp4").read_bytes() == Path(job["output_path"]).read_bytes()
    assert fake.get(f"/_fake/videos/{job['remote_id']}")["seconds"] == "8"
    assert job["remote_id"] in s.ok("status", job_id)


def test_an_unanswered_create_without_a_list_fails_and_is_never_resent(
        lite: tuple[Sora, FakeProc]) -> None:
    s, fake = lite
    for n, prompt in enumerate(("lost on veo", "lost again")):
        fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
        job_id = s.ok("submit", "-m", f"lite:{VEO}", prompt).strip()
        r = s.run("wait", job_id, "--timeout", "90")
        assert r.returncode == 1
        job = s.job(job_id)
        assert job["status"] == "failed" and job["error"]["code"] == "create_unconfirmed"
        assert "not sent again" in job["error"]["message"]
        assert fake.stats()["creates_by_prompt"][prompt] == 1 and job["create_attempts"] == 1
        # the list was asked once, with custom_llm_provider (a 404: Veo has none), then
        # remembered: the second job does not ask again
        assert fake.stats()["counters"]["route:list"] == 1, n
    assert learned(s) == {"lists@lite": "no"}


def test_list_params_let_a_gateway_reconcile(tmp_path: Path, make_fake: MakeFake) -> None:
    fake = make_fake("--dialect", "litellm", "--api-key", LITE_KEY)
    s = lite_sora(tmp_path, fake, "openai")
    try:
        prompt = "lost but listed"
        fake.faults({"action": "create_then_drop", "route": "create", "prompt": prompt})
        job_id = s.ok("submit", "-m", "lite:openai/sora-2", prompt, "--seconds", "4",
                      "--size", "720x1280").strip()
        assert s.run("wait", job_id, "--timeout", "90").returncode == 0
        job: dict[str, Any] = assert_saved_once(s, fake, job_id)
        assert job["remote_id"].startswith("openai::video_")
        assert "reconciled" in [e["kind"] for e in job_events(s, job_id)]
    finally:
        s.stop_runner()
