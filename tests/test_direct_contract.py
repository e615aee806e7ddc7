"""The fake's Runway, Luma and MiniMax families against the providers' official Python
clients (`runwayml`, `lumaai`; dev dependencies) and, for MiniMax, which has none, against
its documented shapes with plain httpx: if they are happy, the fake is faithful enough to
test sora's adapters against.

Both Stainless clients re-send a POST create on 408/409/429/5xx, a dropped connection
and a read timeout, with no idempotency key: they are built with ``max_retries=0`` here,
and one test per client counts the duplicate tasks the default makes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sora_cli.fake.server import FakeOptions, FakeServer, Fault

runwayml = pytest.importorskip("runwayml", reason="the runwayml client is not installed")
lumaai = pytest.importorskip("lumaai", reason="the lumaai client is not installed")

MakeServer = Callable[..., FakeServer]
KEY = "key_contract_0123456789"


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    servers: list[FakeServer] = []

    def make(**options: Any) -> FakeServer:
        options.setdefault("job_seconds", 0.4)
        server = FakeServer(FakeOptions(api_key=KEY, **options)).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def fetched(url: str) -> bytes:
    answer = httpx.get(url)
    answer.raise_for_status()
    return answer.content


# --- runwayml ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_runway_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runwayml.lib.polling.POLL_TIME", 0.05)
    monkeypatch.setattr("runwayml.lib.polling.POLL_JITTER", 0)


def runway(server: FakeServer, key: str = KEY, retries: int = 0) -> Any:
    return runwayml.RunwayML(api_key=key, base_url=f"{server.root_url}/runway",
                             max_retries=retries)


def test_runwayml_creates_waits_and_downloads(make_server: MakeServer) -> None:
    server = make_server()
    task = runway(server).text_to_video.create(model="gen4.5", prompt_text="a fox",
                                               ratio="1280:720", duration=5)
    done = task.wait_for_task_output(timeout=20)
    assert done.status == "SUCCEEDED" and done.id == task.id
    url = done.output[0]
    assert url.startswith(server.cdn_url) and "Signature=" in url  # a signed URL elsewhere
    data = fetched(url)
    assert hashlib.sha256(data).hexdigest() == server.expected_sha256(task.id)
    stripped = httpx.get(url.split("?")[0])
    assert stripped.status_code == 403  # the CDN wants the signature


def test_runwayml_image_to_video_cancel_and_delete(make_server: MakeServer) -> None:
    server = make_server(job_seconds=30)
    c = runway(server)
    image = "data:image/png;base64,iVBORw0KGgo="
    task = c.image_to_video.create(model="gen4_turbo", prompt_image=image, ratio="960:960",
                                   duration=5)
    assert c.tasks.retrieve(task.id).status in ("PENDING", "RUNNING")
    c.tasks.delete(task.id)  # 204: cancels an unfinished task
    cancelled = c.tasks.retrieve(task.id)
    assert cancelled.status == "CANCELLED" and cancelled.cost.credits == 0  # refunded
    c.tasks.delete(task.id)  # a second delete deletes it
    with pytest.raises(runwayml.NotFoundError):
        c.tasks.retrieve(task.id)
    sent = until(lambda: server.request_log(), "the log")
    assert ("DELETE", f"/runway/v1/tasks/{task.id}", 204) in sent


def test_runwayml_sees_progress_throttling_and_failure(make_server: MakeServer) -> None:
    server = make_server(job_seconds=3, fail_prompt="forbidden")
    c = runway(server)
    tasks = [c.text_to_video.create(model="veo3.1", prompt_text=f"clip {n}",
                                    ratio="1920:1080", duration=8) for n in range(3)]
    assert c.tasks.retrieve(tasks[2].id).status == "THROTTLED"  # two run ahead of it
    running = until(lambda: (t := c.tasks.retrieve(tasks[0].id)).status == "RUNNING" and t,
                    "a running task")
    assert 0 <= running.progress < 1
    failing = c.text_to_video.create(model="gen4.5", prompt_text="something forbidden",
                                     ratio="720:1280", duration=2)
    with pytest.raises(runwayml.lib.polling.TaskFailedError) as failed:
        failing.wait_for_task_output(timeout=20)
    details = failed.value.task_details
    assert details.status == "FAILED" and details.failure_code == "SAFETY.INPUT.TEXT"
    assert "content moderation" in details.failure


def test_runwayml_reads_the_errors(make_server: MakeServer) -> None:
    server = make_server()
    with pytest.raises(runwayml.BadRequestError) as invalid:
        runway(server).text_to_video.create(model="gen4.5", prompt_text="x",
                                            ratio="960:960", duration=5)  # image-only ratio
    assert invalid.value.body["issues"][0]["path"] == ["ratio"]
    with pytest.raises(runwayml.AuthenticationError):
        runway(server, key="wrong").tasks.retrieve("00000000-0000-0000-0000-000000000000")
    with pytest.raises(runwayml.NotFoundError):
        runway(server).tasks.retrieve("00000000-0000-0000-0000-000000000000")
    bare = httpx.get(f"{server.root_url}/runway/v1/tasks/00000000-0000-0000-0000-000000000000",
                     headers={"Authorization": f"Bearer {KEY}"})
    assert bare.status_code == 400 and "X-Runway-Version" in bare.json()["error"]


def test_runwayml_default_retries_pay_twice_which_sora_never_does(
        make_server: MakeServer) -> None:
    server = make_server()
    server.add_faults(Fault("create_then_error", "create", status=500, times=2))
    task = runway(server, retries=2).text_to_video.create(
        model="gen4.5", prompt_text="retried", ratio="1280:720", duration=5)
    assert task.id
    assert server.create_count("retried") == 3  # three tasks, three bills


def test_runway_signed_urls_expire_and_a_fresh_read_renews_them(make_server: MakeServer) -> None:
    server = make_server(url_seconds=1)
    c = runway(server)
    task = c.text_to_video.create(model="gen4.5", prompt_text="short-lived",
                                  ratio="1280:720", duration=5)
    old = task.wait_for_task_output(timeout=20).output[0]
    expires = int(httpx.URL(old).params["Expires"])
    until(lambda: time.time() >= expires, "the URL to expire", timeout=5)
    assert httpx.get(old).status_code == 403
    fresh = c.tasks.retrieve(task.id).output[0]
    assert fresh != old and fetched(fresh)


# --- lumaai -----------------------------------------------------------------------------------


def luma(server: FakeServer, key: str = KEY, retries: int = 0) -> Any:
    return lumaai.LumaAI(auth_token=key, base_url=f"{server.root_url}/luma/dream-machine/v1",
                         max_retries=retries)


def test_lumaai_creates_polls_and_downloads(make_server: MakeServer) -> None:
    server = make_server()
    c = luma(server)
    made = c.generations.create(model="ray-2", prompt="a whale", duration="9s",
                                aspect_ratio="21:9", resolution="1080p",
                                keyframes={"frame0": {"type": "image",
                                                      "url": "https://example.com/a.jpg"}})
    assert made.state == "queued" and made.request.prompt == "a whale"
    done = until(lambda: (g := c.generations.get(made.id)).state == "completed" and g,
                 "a completed generation")
    assert done.assets.video.startswith(server.cdn_url)
    data = fetched(done.assets.video)
    assert hashlib.sha256(data).hexdigest() == server.expected_sha256(made.id)
    assert done.request.duration == "9s" and done.request.keyframes.frame0.url.endswith("a.jpg")
    # the docs' path, /generations, creates too
    docs = httpx.post(f"{server.root_url}/luma/dream-machine/v1/generations",
                      json={"model": "ray-flash-2", "prompt": "docs path"},
                      headers={"Authorization": f"Bearer {KEY}"})
    assert docs.status_code == 201 and docs.json()["state"] == "queued"


def test_lumaai_lists_deletes_and_sees_failures(make_server: MakeServer) -> None:
    server = make_server(job_seconds=0.3, fail_prompt="forbidden")
    c = luma(server)
    made = [c.generations.create(model="ray-2", prompt=f"clip {n}") for n in range(5)]
    first = c.generations.list(limit=2, offset=0)
    assert first.has_more and first.count == 2 and first.limit == 2
    listed = [g.id for off in (0, 2, 4) for g in c.generations.list(limit=2,
                                                                      offset=off).generations]
    assert listed == [g.id for g in reversed(made)]  # newest first
    c.generations.delete(made[0].id)
    with pytest.raises(lumaai.NotFoundError):
        c.generations.get(made[0].id)
    bad = c.generations.create(model="ray-2", prompt="something forbidden")
    failed = until(lambda: (g := c.generations.get(bad.id)).state == "failed" and g, "failure")
    assert "content moderation" in failed.failure_reason


def test_lumaai_reads_the_errors(make_server: MakeServer) -> None:
    server = make_server()
    with pytest.raises(lumaai.BadRequestError) as invalid:
        luma(server).generations.create(model="ray-2", prompt="x", duration="7s")
    assert "duration" in str(invalid.value.body)
    with pytest.raises(lumaai.AuthenticationError):
        luma(server, key="wrong").generations.list()


def test_lumaai_default_retries_pay_twice_which_sora_never_does(
        make_server: MakeServer) -> None:
    server = make_server()
    server.add_faults(Fault("create_then_error", "create", status=503, times=1))
    luma(server, retries=2).generations.create(model="ray-2", prompt="retried")
    assert server.create_count("retried") == 2


# --- MiniMax (no official client: the documented shapes) ------------------------------------


def minimax(server: FakeServer, method: str, path: str, key: str = KEY, **kw: Any
            ) -> dict[str, Any]:
    answer = httpx.request(method, f"{server.root_url}/minimax{path}",
                           headers={"Authorization": f"Bearer {key}"}, **kw)
    assert answer.status_code == 200, answer.text  # MiniMax answers errors with a 200 too
    body: dict[str, Any] = answer.json()
    return body


def test_minimax_creates_queries_and_downloads_through_the_file_hop(
        make_server: MakeServer) -> None:
    server = make_server(job_seconds=1.0)
    made = minimax(server, "POST", "/v1/video_generation", json={
        "model": "MiniMax-Hailuo-2.3", "prompt": "a kite", "duration": 10,
        "resolution": "768P"})
    assert made["base_resp"] == {"status_code": 0, "status_msg": "success"}
    task_id = made["task_id"]
    assert task_id.isdigit()
    seen: list[str] = []

    def query() -> dict[str, Any] | None:
        q = minimax(server, "GET", "/v1/query/video_generation", params={"task_id": task_id})
        seen.append(q["status"])
        return q if q["status"] == "Success" else None

    done = until(query, "Success")
    assert set(seen) <= {"Preparing", "Queueing", "Processing", "Success"}
    assert (done["video_width"], done["video_height"]) == (1366, 768)
    file = minimax(server, "GET", "/v1/files/retrieve", params={"file_id": done["file_id"]})
    assert file["file"]["filename"] == "output.mp4" and file["base_resp"]["status_code"] == 0
    url = file["file"]["download_url"]
    assert url.startswith(server.cdn_url)
    data = fetched(url)
    assert hashlib.sha256(data).hexdigest() == server.expected_sha256(task_id)


def test_minimax_errors_are_http_200_with_a_base_resp_code(make_server: MakeServer) -> None:
    server = make_server(fail_prompt="forbidden")
    no_key = minimax(server, "GET", "/v1/query/video_generation", key="wrong",
                     params={"task_id": "1"})
    assert no_key["base_resp"]["status_code"] == 1004
    invalid = minimax(server, "POST", "/v1/video_generation", json={
        "model": "MiniMax-Hailuo-2.3", "prompt": "x", "duration": 10, "resolution": "1080P"})
    assert invalid["base_resp"]["status_code"] == 2013 and "task_id" not in invalid
    assert "at most 6 seconds" in invalid["base_resp"]["status_msg"]
    server.add_faults(Fault("error", "create", status=429))
    limited = minimax(server, "POST", "/v1/video_generation",
                      json={"model": "MiniMax-Hailuo-2.3", "prompt": "x"})
    assert limited["base_resp"]["status_code"] == 1002
    fast = minimax(server, "POST", "/v1/video_generation",
                   json={"model": "MiniMax-Hailuo-2.3-Fast", "prompt": "needs an image"})
    assert "first_frame_image" in fast["base_resp"]["status_msg"]
    bad = minimax(server, "POST", "/v1/video_generation",
                  json={"model": "MiniMax-Hailuo-02", "prompt": "something forbidden"})
    failed = until(lambda: (q := minimax(server, "GET", "/v1/query/video_generation",
                                         params={"task_id": bad["task_id"]}))["status"]
                   == "Fail" and q, "Fail")
    assert failed["base_resp"]["status_code"] == 1027 and "file_id" not in failed
