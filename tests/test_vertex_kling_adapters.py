"""The Vertex AI Veo and Kling adapters against the fake server in-process (and, where
the fake cannot say it, against an httpx.MockTransport): create, poll, the result
(inline base64, GCS, a CDN), their failures, their credentials, and reconciliation."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import secrets
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google_sa import service_account

from sora_cli.config import Settings, load_settings
from sora_cli.domain.catalogue import find_model, map_request
from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.errors import AmbiguousCreate, ApiError, AuthError, CannotSend
from sora_cli.fake.server import FakeOptions, FakeServer, Fault
from sora_cli.providers.base import CreateRequest, ImageInput, Polled, RemoteState
from sora_cli.providers.download import Saved, download_from
from sora_cli.providers.kling.adapter import KlingProvider, external_id
from sora_cli.providers.kling.token import kling_token
from sora_cli.providers.registry import check_credentials, make_adapter
from sora_cli.providers.vertex.inline import decode_inline, reduce_operation

pytest.importorskip("google.auth", reason="google-auth (the vertex extra) is not installed")
pytest.importorskip("cryptography", reason="cryptography is not installed")

VEO = "veo-3.1-generate-001"
KLING = "kling-v2-1-master"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDw"
                       "AEhQGAhKmMIQAAAABJRU5ErkJggg==")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeOptions(job_seconds=0.2, fail_prompt="forbidden")) as s:
        yield s


EnvFor = Callable[..., dict[str, str]]


@pytest.fixture
def env_for(monkeypatch: pytest.MonkeyPatch) -> EnvFor:
    """sora's environment for a fake server. google-auth reads
    GOOGLE_APPLICATION_CREDENTIALS from the process environment: it is set there too."""

    def make(server: FakeServer, tmp_path: Path, **extra: str) -> dict[str, str]:
        urls = server.urls()
        sa = service_account(tmp_path, urls["google_token"])
        server.register_google_key(sa.email, sa.n, sa.e)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa.path))
        return {"SORA_HOME": str(tmp_path / "home"),
                "GOOGLE_APPLICATION_CREDENTIALS": str(sa.path),
                "SORA_VERTEX_BASE_URL": urls["vertex"], "SORA_VERTEX_STORAGE_URL": urls["gcs"],
                "SORA_KLING_BASE_URL": urls["kling"],
                "KLING_ACCESS_KEY": "kling-fake-access-key",
                "KLING_SECRET_KEY": "kling-fake-secret-key", "SORA_MAX_RETRIES": "1", **extra}

    return make


def new_job(provider: str, model: str, prompt: str, params: dict[str, Any] | None = None,
            **fields: Any) -> Job:
    now = time.time()
    return Job(id=secrets.token_hex(4), prompt=prompt, model=model, size="", seconds=8,
               status=JobStatus.SUBMITTING, created_at=now, updated_at=now, provider=provider,
               params=params, create_started_at=now, **fields)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def to_the_end(settings: Settings, job: Job, dest: Path,
                     image: ImageInput | None = None) -> tuple[Job, Polled, Saved | None]:
    adapter = make_adapter(job.provider, settings)
    try:
        created = await adapter.create(CreateRequest(job, image), on_attempt=lambda a: None)
        job = dataclasses.replace(job, remote_id=created.remote_id,
                                  remote_handle=dict(created.handle or {}))
        deadline = time.monotonic() + 10
        while (polled := await adapter.poll(job, on_attempt=lambda a: None)).state in (
                RemoteState.QUEUED, RemoteState.RUNNING):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        if polled.result is None:
            return job, polled, None
        job = dataclasses.replace(job, remote_handle={**(job.remote_handle or {}),
                                                      "result": polled.result})
        saved = await download_from(lambda offset: adapter.open_result(job, offset=offset),
                                    dest, name=str(job.remote_id), path=adapter.result_path(job))
        return job, polled, saved
    finally:
        await adapter.aclose()


def expected(server: FakeServer, remote_id: str | None) -> str | None:
    return server.expected_sha256(str(remote_id))


# --- Vertex ----------------------------------------------------------------------------------


def test_vertex_inline_video_is_decoded_to_the_file(env_for: EnvFor, server: FakeServer,
                                                    tmp_path: Path) -> None:
    settings = load_settings(env_for(server, tmp_path))
    job = new_job("vertex", VEO, "a fox", {"durationSeconds": 6, "aspectRatio": "9:16"})
    job, polled, saved = run(to_the_end(settings, job, tmp_path / "out.mp4",
                                        ImageInput(name="i.png", data=PNG, mime="image/png")))
    assert saved is not None and saved.sha256 == expected(server, job.remote_id)
    assert polled.result == f"inline:0:{saved.bytes}"  # the size the poll counted
    kept = server.remote_job(str(job.remote_id))
    assert kept is not None and kept.input["parameters"] == {
        "sampleCount": 1, "generateAudio": True, "durationSeconds": 6, "aspectRatio": "9:16"}
    assert kept.input["image"]["bytes"] == len(PNG)
    assert job.remote_handle and job.remote_handle["operation"].startswith(
        f"projects/sora-e2e/locations/us-central1/publishers/google/models/{VEO}/operations/")


def test_vertex_gcs_video_is_fetched_with_the_token_and_an_encoded_name(env_for: EnvFor,
        server: FakeServer, tmp_path: Path) -> None:
    settings = load_settings(env_for(server, tmp_path,
                                     SORA_VERTEX_STORAGE_URI="gs://sora-bucket/videos/out"))
    job, polled, saved = run(to_the_end(settings, new_job("vertex", VEO, "a fox"),
                                        tmp_path / "out.mp4"))
    assert polled.result == f"gs://sora-bucket/videos/out/{job.remote_id}/sample_0.mp4"
    assert saved is not None and saved.sha256 == expected(server, job.remote_id)
    fetched = [p for m, p, s in server.request_log() if p.startswith("/storage/")]
    assert fetched == [f"/storage/v1/b/sora-bucket/o/videos%2Fout%2F{job.remote_id}"
                       "%2Fsample_0.mp4"]


def test_vertex_responsible_ai_filtering_fails_the_job_with_the_reasons(env_for: EnvFor,
        server: FakeServer, tmp_path: Path) -> None:
    settings = load_settings(env_for(server, tmp_path))
    _, polled, saved = run(to_the_end(settings, new_job("vertex", VEO, "forbidden"),
                                      tmp_path / "out.mp4"))
    assert saved is None and polled.state is RemoteState.FAILED and polled.error
    assert polled.error.code == "rai_filtered"
    assert "usage guidelines" in polled.error.message


def vertex_answers(answer: dict[str, Any]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(":predictLongRunning"):
            return httpx.Response(200, json={"name": NAME})
        return httpx.Response(200, json={"name": NAME, **answer})
    return httpx.MockTransport(handle)


NAME = f"projects/123456/locations/us-central1/publishers/google/models/{VEO}/operations/abc"


@pytest.mark.parametrize(("answer", "code", "words"), [
    ({"done": True, "error": {"code": 3, "message": "Unsupported image aspect ratio"}},
     "invalid_argument", "Unsupported image aspect ratio"),
    ({"done": True, "response": {"videos": [{"gcsUri": "gs://elsewhere/x.mp4"}]}},
     "no_video", "storage_uri setting"),
    ({"done": True, "response": {"videos": []}}, "no_video", "has no video"),
    ({"done": True, "response": {"videos": [{"bytesBase64Encoded": "a!==",
                                             "mimeType": "video/mp4"}]}},
     "no_video", "inline bytes")])
def test_vertex_failures_the_fake_cannot_make(env_for: EnvFor, server: FakeServer, tmp_path: Path,
                                              answer: dict[str, Any], code: str,
                                              words: str) -> None:
    env = env_for(server, tmp_path, SORA_VERTEX_STORAGE_URI="gs://mine/out")
    settings = load_settings(env)

    async def go() -> Polled:
        adapter = make_adapter("vertex", settings, transport=vertex_answers(answer))
        token = adapter.token  # type: ignore[attr-defined]
        token.headers = _no_token  # no Google here: the transport is a mock
        job = new_job("vertex", VEO, "x")
        created = await adapter.create(CreateRequest(job), on_attempt=lambda a: None)
        assert created.remote_id == "abc"  # a project number in the name is fine
        job = dataclasses.replace(job, remote_id="abc", remote_handle=dict(created.handle or {}))
        return await adapter.poll(job, on_attempt=lambda a: None)

    polled = run(go())
    assert polled.state is RemoteState.FAILED and polled.error is not None
    assert polled.error.code == code and words in polled.error.message


async def _no_token() -> dict[str, str]:
    return {"Authorization": "Bearer test"}


def test_vertex_token_is_refreshed_when_it_runs_out(env_for: EnvFor, tmp_path: Path) -> None:
    with FakeServer(FakeOptions(job_seconds=0.2, token_seconds=1)) as server:
        settings = load_settings(env_for(server, tmp_path))
        _, _, saved = run(to_the_end(settings, new_job("vertex", VEO, "a fox"),
                                     tmp_path / "o.mp4"))
        tokens = [p for _, p, s in server.request_log() if p == "/token"]
        assert saved is not None and len(tokens) >= 2  # google-auth refreshes ahead of expiry


def test_vertex_refused_credentials_fail_with_googles_words(env_for: EnvFor, server: FakeServer,
                                                            tmp_path: Path) -> None:
    env = env_for(server, tmp_path)
    server.register_google_key("sora-tests@sora-e2e.iam.gserviceaccount.com", 3 * 2**2047 + 1, 3)
    with pytest.raises(AuthError, match="Invalid JWT Signature") as caught:
        run(to_the_end(load_settings(env), new_job("vertex", VEO, "x"), tmp_path / "o.mp4"))
    assert caught.value.exit_code == 4


def test_vertex_without_credentials_or_google_auth_exits_4(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    missing = load_settings({"SORA_HOME": str(tmp_path),
                             "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "none.json")})
    with pytest.raises(AuthError, match="no Google credentials for vertex"):
        check_credentials("vertex", missing)
    monkeypatch.setitem(sys.modules, "google.auth", None)  # `import google.auth` fails
    with pytest.raises(AuthError, match=r"pip install 'sora-cli\[vertex\]'"):
        check_credentials("vertex", missing)


def test_vertex_refuses_an_image_url_and_an_ambiguous_answer(env_for: EnvFor, server: FakeServer,
                                                            tmp_path: Path) -> None:
    settings = load_settings(env_for(server, tmp_path))
    with pytest.raises(CannotSend, match="gs://"):
        run(to_the_end(settings, new_job("vertex", VEO, "x"), tmp_path / "o.mp4",
                       ImageInput(url="https://example.com/i.png")))
    server.add_faults(Fault("bad_id", route="create", text="projects/x/../../escape"))
    with pytest.raises(AmbiguousCreate, match="operation name"):
        run(to_the_end(settings, new_job("vertex", VEO, "y"), tmp_path / "o.mp4"))
    assert server.create_count("y") == 1  # made once, never re-sent


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_the_inline_scanner_round_trips_and_holds_no_video_in_memory() -> None:
    video = os.urandom(1024 * 1024 + 7)
    b64 = base64.b64encode(video).decode().replace("/", "\\/")  # JSON's escape allowed
    doc = ('{"name": "op", "done": true, "response": {"note": "\\"bytesBase64Encoded\\"", '
           '"videos": [{"bytesBase64Encoded" : "' + b64 + '", "mimeType": "video/mp4"}]}}')
    data = doc.encode()
    tracemalloc.start()
    try:
        raw, whole = run(reduce_operation(_chunks(data, 65536), 10 * 1024 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert whole and json.loads(raw)["response"]["videos"][0]["bytesBase64Encoded"] == {
        "soraInline": 0, "bytes": len(video)}
    assert peak < 512 * 1024  # 1.4 MiB of base64 streamed through, a chunk at a time

    async def decoded() -> bytes:
        return b"".join([c async for c in decode_inline(_chunks(data, 4099), 0)])

    assert run(decoded()) == video


# --- Kling -----------------------------------------------------------------------------------


def test_kling_job_runs_and_its_video_comes_from_the_cdn_without_credentials(env_for: EnvFor,
        server: FakeServer, tmp_path: Path) -> None:
    settings = load_settings(env_for(server, tmp_path))
    job = new_job("kling", "kling-v2-5-turbo", "a fox", {"duration": "10", "mode": "pro"})
    job, polled, saved = run(to_the_end(settings, job, tmp_path / "out.mp4"))
    assert saved is not None and saved.sha256 == expected(server, job.remote_id)
    assert polled.remote_status == "succeed" and polled.expires_at is not None
    assert polled.expires_at > time.time() + 29 * 86400  # "cleared after 30 days"
    kept = server.remote_job(str(job.remote_id))
    assert kept is not None and kept.input == {
        "model_name": "kling-v2-5-turbo", "prompt": "a fox", "duration": "10", "mode": "pro",
        "external_task_id": external_id(job)}
    stats = httpx.get(f"{server.root_url}/_fake/stats").json()
    assert stats["counters"]["cdn_requests"] >= 1
    assert stats["counters"].get("cdn_with_credentials", 0) == 0


def test_kling_image_goes_to_image2video_as_raw_base64(env_for: EnvFor, server: FakeServer,
                                                      tmp_path: Path) -> None:
    settings = load_settings(env_for(server, tmp_path))
    job = new_job("kling", KLING, "animate it", image="/in/i.png")
    job, _, saved = run(to_the_end(settings, job, tmp_path / "out.mp4",
                                   ImageInput(name="i.png", data=PNG, mime="image/png")))
    assert saved is not None and job.remote_handle == {
        "endpoint": "image2video", "result": job.remote_handle["result"]}  # type: ignore[index]
    kept = server.remote_job(str(job.remote_id))
    assert kept is not None and kept.input["image"]["bytes"] == len(PNG)


def test_kling_failure_and_bad_keys(env_for: EnvFor, server: FakeServer, tmp_path: Path) -> None:
    env = env_for(server, tmp_path)
    _, polled, _ = run(to_the_end(load_settings(env), new_job("kling", KLING, "forbidden"),
                                  tmp_path / "o.mp4"))
    assert polled.state is RemoteState.FAILED and polled.error is not None
    assert polled.error.message == "Failure to pass the risk control system"
    with pytest.raises(AuthError, match="Authorization is invalid") as caught:
        run(to_the_end(load_settings({**env, "KLING_SECRET_KEY": "wrong"}),
                       new_job("kling", KLING, "x"), tmp_path / "o.mp4"))
    assert caught.value.exit_code == 4 and caught.value.code == "1002"


def test_kling_token_is_the_references_jwt() -> None:
    token = kling_token("ak", "sk", 1_700_000_000.9)
    head, body, _ = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(head + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(body + "==")) == {
        "iss": "ak", "exp": 1_700_001_800, "nbf": 1_699_999_995}
    import hashlib
    import hmac

    signature = hmac.new(b"sk", f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert token.split(".")[2] == base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def counting(status: int, body: dict[str, Any]) -> tuple[httpx.MockTransport, list[int]]:
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(status, json=body)
    return httpx.MockTransport(handle), seen


@pytest.mark.parametrize(("code", "words"), [
    (1101, "in arrears"), (1102, "resource package is used up or expired")])
def test_kling_account_states_on_429_are_not_retried(tmp_path: Path, code: int,
                                                     words: str) -> None:
    transport, seen = counting(429, {"code": code, "message": "account problem",
                                     "request_id": "kr-1"})
    settings = load_settings({"SORA_HOME": str(tmp_path), "KLING_ACCESS_KEY": "a",
                              "KLING_SECRET_KEY": "b", "SORA_MAX_RETRIES": "3"})

    async def go() -> None:
        adapter = make_adapter("kling", settings, transport=transport)
        try:
            await adapter.create(CreateRequest(new_job("kling", KLING, "x")),
                                 on_attempt=lambda a: None)
        finally:
            await adapter.aclose()

    with pytest.raises(ApiError, match=words) as caught:
        run(go())
    assert len(seen) == 1 and caught.value.request_id == "kr-1"


def test_kling_rate_limit_429_is_retried(tmp_path: Path) -> None:
    transport, seen = counting(429, {"code": 1302, "message": "rate limit", "request_id": "r"})
    settings = load_settings({"SORA_HOME": str(tmp_path), "KLING_ACCESS_KEY": "a",
                              "KLING_SECRET_KEY": "b", "SORA_MAX_RETRIES": "2"})

    async def go() -> None:
        adapter = make_adapter("kling", settings, transport=transport, sleep=_no_sleep)
        await adapter.create(CreateRequest(new_job("kling", KLING, "x")),
                             on_attempt=lambda a: None)

    with pytest.raises(ApiError, match="rate limit"):
        run(go())
    assert len(seen) == 3


async def _no_sleep(seconds: float) -> None:
    return None


def test_kling_unanswered_create_is_found_by_its_external_id(env_for: EnvFor,
        server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(env_for(server, tmp_path))
    server.add_faults(Fault("create_then_drop", route="create", prompt="dropped"))
    job = new_job("kling", KLING, "dropped")

    async def go(j: Job, taken: Callable[[str], bool]) -> Any:
        adapter = make_adapter("kling", settings)
        assert isinstance(adapter, KlingProvider)
        try:
            return await adapter.find_created(CreateRequest(j), taken=taken,
                                              on_attempt=lambda a: None)
        finally:
            await adapter.aclose()

    async def send() -> None:
        adapter = make_adapter("kling", settings)
        try:
            await adapter.create(CreateRequest(job), on_attempt=lambda a: None)
        finally:
            await adapter.aclose()

    with pytest.raises(AmbiguousCreate):
        run(send())
    found = run(go(job, lambda rid: False))
    assert found.created is not None and server.remote_job(found.created.remote_id)
    other = new_job("kling", KLING, "never sent")
    assert run(go(other, lambda rid: False)).later  # not listed (yet): look again
    late = dataclasses.replace(other, create_started_at=time.time() - 3600)
    undecided = run(go(late, lambda rid: False)).undecided
    assert undecided and external_id(other) in undecided and "not sent again" in undecided
    assert server.create_count("dropped") == 1


# --- settings, catalogue, imports ------------------------------------------------------------


def test_provider_settings_come_from_env_and_the_table(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[providers.vertex]\nproject = "from-table"\nlocation = "europe-west4"\n'
                      'storage_uri = "gs://b/p"\n[providers.kling]\nsecret_key = "s3cret"\n')
    config.chmod(0o644)
    warnings: list[str] = []
    s = load_settings({"SORA_HOME": str(tmp_path), "SORA_CONFIG": str(config),
                       "SORA_VERTEX_LOCATION": "asia-northeast1"}, warnings)
    vertex, kling = s.provider("vertex"), s.provider("kling")
    assert vertex is not None and kling is not None
    assert (vertex.extra("project"), vertex.extra("location"), vertex.extra("storage_uri")) == (
        "from-table", "asia-northeast1", "gs://b/p")
    assert vertex.has_key and vertex.base_url == "https://{location}-aiplatform.googleapis.com"
    assert kling.extra("secret_key") is None and not kling.has_key  # a readable file
    assert any("secret_key" in w and "chmod 600" in w for w in warnings)
    config.chmod(0o600)
    s = load_settings({"SORA_HOME": str(tmp_path), "SORA_CONFIG": str(config),
                       "KLING_ACCESS_KEY": "ak-123456789"})
    kling = s.provider("kling")
    assert kling is not None and kling.has_key
    shown = json.dumps(s.public_dict())
    assert "s3cret" not in shown and "ak-123456789" not in shown


def test_seconds_and_size_map_onto_their_fields() -> None:
    veo = find_model("vertex", VEO)
    kling = find_model("kling", "kling-v2-5-turbo")
    assert veo is not None and kling is not None
    assert map_request(veo, seconds=6, size="1080x1920").fields == {
        "durationSeconds": 6, "aspectRatio": "9:16", "resolution": "1080p"}
    assert map_request(kling, seconds=10, size="1920x1080").fields == {
        "duration": "10", "aspect_ratio": "16:9", "mode": "pro"}
    fast3 = find_model("vertex", "veo-3.0-fast-generate-001")
    assert fast3 is not None and fast3.image_field is None  # its page: no image to video


def test_status_list_and_help_import_nothing_of_vertex_or_kling(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "OPENAI_"))}
    env.update(SORA_HOME=str(tmp_path), OPENAI_API_KEY="sk-test", NO_COLOR="1",
               OPENAI_BASE_URL="http://127.0.0.1:9/v1", KLING_ACCESS_KEY="a",
               KLING_SECRET_KEY="b", GOOGLE_APPLICATION_CREDENTIALS=str(tmp_path / "sa.json"),
               SORA_VERTEX_PROJECT="p1")
    sora = [sys.executable, "-X", "importtime", "-m", "sora_cli"]
    for argv in (["--help"], ["list"], ["status"], ["config", "show"]):
        proc = subprocess.run([*sora, *argv], env=env, capture_output=True, text=True)
        imported = {line.rsplit("|", 1)[-1].strip()
                    for line in proc.stderr.splitlines() if line.startswith("import time:")}
        bad = {m for m in imported if m.startswith(("google", "sora_cli.providers.vertex",
                                                    "sora_cli.providers.kling", "cryptography"))}
        assert not bad, (argv, sorted(bad))


@pytest.mark.parametrize(("created_ms", "expires"), [
    (99_999_999_999_999, False), (10**400, False), ("1700000000000", False),
    (1_700_000_000_000, True)])
def test_kling_expiry_comes_only_from_a_time_someone_could_mean(created_ms: Any,
                                                               expires: bool) -> None:
    from sora_cli.providers.kling.adapter import RETENTION, polled
    from sora_cli.providers.wire import Answer

    data = {"task_id": "1", "task_status": "succeed", "created_at": created_ms,
            "task_result": {"videos": [{"url": "https://cdn.example/v.mp4"}]}}
    p = polled(data, Answer(data, None, None, None))
    assert p.state is RemoteState.COMPLETED
    assert (p.expires_at == 1_700_000_000 + RETENTION) if expires else p.expires_at is None
