"""The fake's Vertex and Kling families against what the providers publish: Vertex
through Google's official client (`google-genai` with ``vertexai=True``, authenticated
by google-auth from a service-account file whose token_uri is the fake's token
endpoint), Kling (no official Python client) with plain httpx against the shapes of its
API reference. If these pass, the fake is faithful enough to test sora's adapters on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google_sa import service_account

from sora_cli.fake.server import FakeOptions, FakeServer, Fault

genai = pytest.importorskip("google.genai", reason="google-genai is not installed")
pytest.importorskip("cryptography", reason="cryptography is not installed")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types  # noqa: E402

MakeServer = Callable[..., FakeServer]
VEO = "veo-3.1-generate-001"


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    servers: list[FakeServer] = []

    def make(**options: Any) -> FakeServer:
        options.setdefault("job_seconds", 0.3)
        server = FakeServer(FakeOptions(**options)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


# --- google-genai (Vertex) -----------------------------------------------------------------


def genai_client(server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 api_version: str | None = None) -> Any:
    sa = service_account(tmp_path, server.urls()["google_token"])
    server.register_google_key(sa.email, sa.n, sa.e)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa.path))
    options = types.HttpOptions(base_url=server.urls()["vertex"] + "/",
                                api_version=api_version)
    # a custom base URL needs the project and location given (else it posts to "/")
    return genai.Client(vertexai=True, project="sora-e2e", location="us-central1",
                        http_options=options)


def wait_done(client: Any, operation: Any) -> Any:
    deadline = time.monotonic() + 20
    while not operation.done:
        assert time.monotonic() < deadline, "the operation never finished"
        time.sleep(0.05)
        operation = client.operations.get(operation)
    return operation


def test_genai_generates_a_video_inline_through_the_service_account_flow(
        make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server()
    client = genai_client(server, tmp_path, monkeypatch)
    operation = client.models.generate_videos(
        model=VEO, source=types.GenerateVideosSource(prompt="a fox in the snow"),
        config=types.GenerateVideosConfig(duration_seconds=6, aspect_ratio="9:16",
                                          resolution="1080p", number_of_videos=1,
                                          generate_audio=True))
    assert operation.name.startswith(
        f"projects/sora-e2e/locations/us-central1/publishers/google/models/{VEO}/operations/")
    operation = wait_done(client, operation)
    video = operation.response.generated_videos[0].video
    op_id = operation.name.rpartition("/")[2]
    assert hashlib.sha256(video.video_bytes).hexdigest() == server.expected_sha256(op_id)
    assert video.mime_type == "video/mp4"
    sent = server.remote_job(op_id)
    assert sent is not None and sent.input["parameters"] == {
        "durationSeconds": 6, "aspectRatio": "9:16", "resolution": "1080p", "sampleCount": 1,
        "generateAudio": True}
    paths = [p for _, p, _ in server.request_log()]
    assert any(p.startswith("/vertex/v1beta1/projects/") for p in paths)  # genai's default
    assert "/token" in paths  # the token came from the service-account flow


def test_genai_writes_to_gcs_with_output_gcs_uri_and_v1(
        make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server()
    client = genai_client(server, tmp_path, monkeypatch, api_version="v1")
    image = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
    operation = client.models.generate_videos(
        model="veo-3.1-fast-generate-001",
        source=types.GenerateVideosSource(prompt="a fox", image=types.Image(
            image_bytes=image, mime_type="image/png")),
        config=types.GenerateVideosConfig(output_gcs_uri="gs://sora-bucket/out"))
    operation = wait_done(client, operation)
    uri = operation.response.generated_videos[0].video.uri
    op_id = operation.name.rpartition("/")[2]
    assert uri == f"gs://sora-bucket/out/{op_id}/sample_0.mp4"
    kept = server.remote_job(op_id)
    assert kept is not None and kept.input["image"]["sha256"] == hashlib.sha256(image).hexdigest()
    assert any(p.startswith("/vertex/v1/projects/") for _, p, _ in server.request_log())


def test_genai_sees_responsible_ai_filtering_and_google_errors(
        make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(fail_prompt="forbidden")
    client = genai_client(server, tmp_path, monkeypatch)
    operation = wait_done(client, client.models.generate_videos(
        model=VEO, source=types.GenerateVideosSource(prompt="something forbidden")))
    assert operation.error is None
    assert operation.response.rai_media_filtered_count == 1
    assert "usage guidelines" in operation.response.rai_media_filtered_reasons[0]
    assert not operation.response.generated_videos
    server.add_faults(Fault("error", route="create", status=429))
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_videos(model=VEO, source=types.GenerateVideosSource(prompt="x"))
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_videos(model=VEO, source=types.GenerateVideosSource(
            prompt="x"), config=types.GenerateVideosConfig(duration_seconds=5))
    assert caught.value.code == 400 and "durationSeconds" in str(caught.value.message)


def test_the_token_endpoint_checks_the_assertion(
        make_server: MakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server()
    sa = service_account(tmp_path, server.urls()["google_token"])
    server.register_google_key(sa.email, sa.n + 2, sa.e)  # not this file's key
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(sa.path))
    client = genai.Client(vertexai=True, project="p1", location="us-central1",
                          http_options=types.HttpOptions(base_url=server.urls()["vertex"]))
    import google.auth.exceptions

    with pytest.raises(google.auth.exceptions.RefreshError, match="Invalid JWT Signature"):
        client.models.generate_videos(model=VEO, source=types.GenerateVideosSource(prompt="x"))
    answer = httpx.post(server.urls()["vertex"] + f"/v1/projects/p1/locations/us-central1/"
                        f"publishers/google/models/{VEO}:predictLongRunning",
                        json={"instances": [{"prompt": "x"}]},
                        headers={"Authorization": "Bearer ya29.made-up"})
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


# --- Kling (documented shapes, plain httpx) ------------------------------------------------


def kling_jwt(ak: str = "kling-fake-access-key", sk: str = "kling-fake-secret-key",
              now: float | None = None) -> str:
    """The reference's token, built here independently of sora's code."""
    def enc(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    t = int(time.time() if now is None else now)
    head = enc({"alg": "HS256", "typ": "JWT"})
    body = enc({"iss": ak, "exp": t + 1800, "nbf": t - 5})
    sig = hmac.new(sk.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"


def test_kling_creates_queries_lists_and_serves_the_video(make_server: MakeServer) -> None:
    server = make_server()
    base = server.urls()["kling"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {kling_jwt()}"}) as k:
        created = k.post("/v1/videos/text2video", json={
            "model_name": "kling-v2-1-master", "prompt": "a fox", "duration": "5",
            "aspect_ratio": "16:9", "external_task_id": "mine-1"}).json()
        assert created["code"] == 0 and created["message"] == "SUCCEED"
        assert set(created) == {"code", "message", "request_id", "data"}
        data = created["data"]
        assert data["task_status"] == "submitted"
        assert data["task_info"] == {"external_task_id": "mine-1"}
        assert isinstance(data["created_at"], int) and data["created_at"] > 10**12  # ms
        task_id = data["task_id"]
        deadline = time.monotonic() + 10
        while (task := k.get(f"/v1/videos/text2video/{task_id}").json()["data"])[
                "task_status"] != "succeed":
            assert task["task_status"] in ("submitted", "processing")
            assert time.monotonic() < deadline
            time.sleep(0.05)
        url = task["task_result"]["videos"][0]["url"]
        assert not url.startswith(base.removesuffix("/kling"))  # the CDN is another origin
        listed = k.get("/v1/videos/text2video", params={"pageNum": 1, "pageSize": 30}).json()
        assert [t["task_id"] for t in listed["data"]] == [task_id]
        again = k.post("/v1/videos/text2video", json={
            "model_name": "kling-v2-1-master", "prompt": "x", "external_task_id": "mine-1"})
        assert again.status_code == 400 and again.json()["code"] == 1201
    video = httpx.get(url)
    assert hashlib.sha256(video.content).hexdigest() == server.expected_sha256(task_id)


# Made when the test runs, not when it is collected: a token "from 10 minutes ahead"
# made at collection is a valid one by the time a long run gets to it.
TOKENS: dict[str, Callable[[], str]] = {
    "none": lambda: "", "not-a-jwt": lambda: "not.a.jwt",
    "wrong-secret": lambda: kling_jwt(sk="wrong-secret"),
    "someone-else": lambda: kling_jwt(ak="someone-else"),
    "not-yet-valid": lambda: kling_jwt(now=time.time() + 600),
    "expired": lambda: kling_jwt(now=time.time() - 3600)}


@pytest.mark.parametrize(("kind", "code"), [
    ("none", 1000), ("not-a-jwt", 1002), ("wrong-secret", 1002), ("someone-else", 1002),
    ("not-yet-valid", 1003), ("expired", 1004)])
def test_kling_refuses_tokens_as_its_error_table_says(make_server: MakeServer, kind: str,
                                                     code: int) -> None:
    server = make_server()
    token = TOKENS[kind]()
    answer = httpx.get(server.urls()["kling"] + "/v1/videos/text2video/1",
                       headers={"Authorization": f"Bearer {token}"} if token else {})
    assert answer.status_code == 401
    body = answer.json()
    assert body["code"] == code and body["message"] and body["request_id"]


def test_kling_errors_carry_its_codes(make_server: MakeServer) -> None:
    server = make_server()
    base = server.urls()["kling"]
    auth = {"Authorization": f"Bearer {kling_jwt()}"}
    server.add_faults(Fault("error", route="create", status=429))
    throttled = httpx.post(base + "/v1/videos/text2video", headers=auth,
                           json={"model_name": "kling-v2-1-master", "prompt": "x"})
    assert throttled.status_code == 429 and throttled.json()["code"] == 1302
    bad = httpx.post(base + "/v1/videos/text2video", headers=auth,
                     json={"model_name": "kling-v2-1-master", "prompt": "x", "duration": 5})
    assert bad.status_code == 400 and bad.json()["code"] == 1201  # "5", not 5
    missing = httpx.get(base + "/v1/videos/text2video/123", headers=auth)
    assert missing.status_code == 404 and missing.json()["code"] == 1203
    paging = httpx.get(base + "/v1/videos/text2video", headers=auth, params={"pageSize": 501})
    assert paging.status_code == 400
