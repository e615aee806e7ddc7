"""The fake server against the official `openai` SDK: if the SDK is happy, the contract holds.

The SDK marks every Videos method as deprecated (the hosted Sora API shuts down on
2026-09-24); the warnings are silenced here because the contract outlives that endpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from inproc import MakeServer

from sora_cli.fake.server import FakeServer, Fault

openai = pytest.importorskip("openai", reason="the official openai SDK is not installed")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KEY = "sk-contract"


def sdk(server: FakeServer, *, api_key: str = KEY, max_retries: int = 0) -> Any:
    return openai.OpenAI(
        base_url=server.base_url, api_key=api_key, max_retries=max_retries, timeout=10.0
    )


@pytest.fixture
def client(server: FakeServer) -> Iterator[Any]:
    with sdk(server) as sdk_client:
        yield sdk_client


def retrieves(server: FakeServer, video_id: str) -> int:
    return server.request_log().count(("GET", f"/v1/videos/{video_id}", 200))


def test_create_parses_as_a_video(server: FakeServer, client: Any) -> None:
    video = client.videos.create(prompt="a fox", model="sora-2-pro", size="1792x1024", seconds="8")
    assert isinstance(video, openai.types.Video)
    assert video.object == "video" and video.status == "queued"
    assert (video.model, video.size, video.seconds) == ("sora-2-pro", "1792x1024", "8")
    assert video.error is None and video.completed_at is None
    # the SDK always sends create as multipart/form-data
    assert server.create_count("a fox") == 1


def test_create_and_poll_honours_poll_after_ms(make_server: MakeServer) -> None:
    server = make_server(job_seconds=0.5)
    with sdk(server) as client:
        video = client.videos.create_and_poll(prompt="a quick one")
    assert video.status == "completed" and video.progress == 100
    assert video.expires_at == video.created_at + 86400
    # polls 20 ms apart during the 0.5 s job; with the SDK's 1 s default there would be 2
    assert retrieves(server, video.id) >= 4


def test_create_and_poll_returns_a_failed_video(make_server: MakeServer) -> None:
    with sdk(make_server(fail_prompt="blocked")) as client:
        video = client.videos.create_and_poll(prompt="this is blocked")
    assert video.status == "failed"
    assert video.error is not None and video.error.code == "moderation_blocked"


def test_create_with_reference_file_and_object(server: FakeServer, client: Any) -> None:
    upload = client.videos.create(
        prompt="from file", input_reference=("a.png", b"png", "image/png")
    )
    assert upload.status == "queued"
    # this SDK version cannot pass the object form as `input_reference=` (it expects a file
    # there); extra_body sends it as the input_reference[image_url] form key
    reference = {"input_reference": {"image_url": "https://example.com/a.png"}}
    by_url = client.videos.create(prompt="from url", extra_body=reference)
    assert by_url.status == "queued"
    assert server.create_count() == 2


def test_retrieve_and_poll_header(client: Any, server: FakeServer) -> None:
    video = client.videos.create(prompt="p")
    raw = client.videos.with_raw_response.retrieve(video.id)
    assert raw.headers["openai-poll-after-ms"] == str(server.options.poll_after_ms)
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().id == video.id


def test_list_auto_paginates(client: Any) -> None:
    ids = [client.videos.create(prompt=f"clip {n}").id for n in range(5)]
    assert [video.id for video in client.videos.list(limit=2)] == ids[::-1]
    assert [video.id for video in client.videos.list(limit=2, order="asc")] == ids
    first_page = client.videos.list(limit=2)
    assert first_page.has_more is True and len(first_page.data) == 2


@pytest.mark.parametrize(
    ("variant", "magic"),
    [("video", b"\x00\x00\x00 ftyp"), ("thumbnail", b"RIFF"), ("spritesheet", b"\xff\xd8\xff")],
)
def test_download_content(server: FakeServer, client: Any, variant: str, magic: bytes) -> None:
    video = client.videos.create_and_poll(prompt="download me")
    if variant == "video":
        content = client.videos.download_content(video.id)
    else:
        content = client.videos.download_content(video.id, variant=variant)
    data = content.read()
    assert data.startswith(magic)
    assert hashlib.sha256(data).hexdigest() == server.expected_sha256(video.id, variant)


def test_delete_then_not_found(client: Any) -> None:
    video = client.videos.create_and_poll(prompt="short lived")
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError) as caught:
        client.videos.retrieve(video.id)
    assert caught.value.status_code == 404
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")


def test_delete_running_video_is_bad_request(client: Any) -> None:
    video = client.videos.create(prompt="still running")
    with pytest.raises(openai.BadRequestError):
        client.videos.delete(video.id)


def test_remix(client: Any) -> None:
    source = client.videos.create_and_poll(prompt="day", size="1280x720")
    remix = client.videos.remix(source.id, prompt="night")
    assert remix.remixed_from_video_id == source.id
    assert (remix.prompt, remix.size, remix.status) == ("night", "1280x720", "queued")
    with pytest.raises(openai.BadRequestError):
        client.videos.remix(remix.id, prompt="too early")


def test_bad_size_is_bad_request(server: FakeServer, client: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(prompt="p", size="1024x1792")
    assert caught.value.param == "size" and caught.value.code == "invalid_value"
    assert server.create_count() == 0


def test_wrong_key_is_authentication_error(make_server: MakeServer) -> None:
    server = make_server(api_key=KEY)
    with sdk(server, api_key="sk-wrong") as client, pytest.raises(openai.AuthenticationError):
        client.videos.list()
    with sdk(server) as client:
        assert list(client.videos.list()) == []


def test_unknown_id_is_not_found(client: Any) -> None:
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_" + "0" * 32)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content("video_" + "0" * 32)


def test_sdk_retries_honour_retry_after_ms(server: FakeServer) -> None:
    server.add_faults(Fault("error", "list", times=2, status=429, retry_after_ms=30))
    with sdk(server, max_retries=2) as client:
        assert client.videos.list().data == []
    assert [status for _, _, status in server.request_log()] == [429, 429, 200]


def test_sdk_retry_after_create_then_error_duplicates_the_job(server: FakeServer) -> None:
    # why a client must reconcile instead of re-sending a create: the SDK blindly retries
    server.add_faults(Fault("create_then_error", status=500, retry_after_ms=10))
    with sdk(server, max_retries=1) as client:
        client.videos.create(prompt="billed twice")
    assert server.create_count("billed twice") == 2
