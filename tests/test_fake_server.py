"""The fake Videos API server, driven over real HTTP with httpx."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from waits import wait_until

from sora_cli.fake.content import PREVIEW_SIZES, iter_content
from sora_cli.fake.media import ASSETS, FILES, TAG_BYTES, media_bytes
from sora_cli.fake.server import FakeOptions, FakeServer, Fault, main

ROOT = Path(__file__).resolve().parents[1]

AUTH = {"Authorization": "Bearer sk-test"}
TLS = httpx.create_ssl_context()  # built once: loading CA certificates per client is slow
VIDEO_KEYS = {
    "id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at",
    "prompt", "size", "seconds", "remixed_from_video_id", "error",
}  # fmt: skip
def connect(server: FakeServer, **kwargs: Any) -> httpx.Client:
    kwargs.setdefault("headers", AUTH)
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("verify", TLS)
    return httpx.Client(base_url=server.base_url, **kwargs)


@pytest.fixture
def client(server: FakeServer) -> Iterator[httpx.Client]:
    with connect(server) as http:
        yield http


def create(client: httpx.Client, prompt: str = "a calm lake", **fields: Any) -> dict[str, Any]:
    response = client.post("/videos", json={"prompt": prompt, **fields})
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


def wait_status(client: httpx.Client, video_id: str, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        video: dict[str, Any] = client.get(f"/videos/{video_id}").json()
        return video if video["status"] == status else None

    return wait_until(check, what=f"{video_id} to be {status}")


def completed(client: httpx.Client, prompt: str = "a calm lake") -> dict[str, Any]:
    return wait_status(client, create(client, prompt)["id"], "completed")


def assert_envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["x-request-id"].startswith("req_")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> None:
    assert assert_envelope(response, status)["param"] == param


# -- create and validation


def test_create_answers_a_full_video_object(server: FakeServer, client: httpx.Client) -> None:
    response = client.post("/videos", json={"prompt": "a calm lake"})
    assert response.status_code == 200
    assert re.fullmatch(r"req_[0-9a-f]+", response.headers["x-request-id"])
    video = response.json()
    assert set(video) == VIDEO_KEYS
    assert re.fullmatch(r"video_[0-9a-f]{32}", video["id"])
    assert video["object"] == "video"
    assert video["status"] == "queued"
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2", "720x1280", "4")
    assert video["completed_at"] is None and video["expires_at"] is None
    assert video["remixed_from_video_id"] is None and video["error"] is None
    assert abs(video["created_at"] - time.time()) < 5
    assert server.create_count() == 1 and server.create_count("a calm lake") == 1


def test_create_multipart_with_a_file_part(server: FakeServer, client: httpx.Client) -> None:
    files = {"input_reference": ("ref.png", b"\x89PNG fake image", "image/png")}
    data = {"prompt": "from an image", "model": "sora-2-pro", "size": "1792x1024", "seconds": "12"}
    response = client.post("/videos", data=data, files=files)
    assert response.status_code == 200, response.text
    video = response.json()
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2-pro", "1792x1024", "12")
    assert server.create_count("from an image") == 1


def form(**fields: str) -> dict[str, tuple[None, str]]:
    """Plain fields sent as multipart/form-data (what the official SDK does for create)."""
    return {name: (None, value) for name, value in fields.items()}


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"input_reference[image_url]": "https://example.com/a.png"}, True),
        ({"input_reference[file_id]": "file_123"}, True),
        ({"input_reference[image_url]": "u", "input_reference[file_id]": "f"}, False),
        ({"input_reference[file_id]": ""}, False),
    ],
)
def test_create_multipart_reference_keys(
    client: httpx.Client, fields: dict[str, str], ok: bool
) -> None:
    response = client.post("/videos", files=form(prompt="p", **fields))
    if ok:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, 400, "input_reference")


@pytest.mark.parametrize(
    ("reference", "ok"),
    [
        ({"image_url": "https://example.com/a.png"}, True),
        ({"file_id": "file_123"}, True),
        ({"image_url": "u", "file_id": "f"}, False),
        ({}, False),
        ({"url": "u"}, False),
        ("https://example.com/a.png", False),
    ],
)
def test_create_json_reference_object(client: httpx.Client, reference: object, ok: bool) -> None:
    response = client.post("/videos", json={"prompt": "p", "input_reference": reference})
    if ok:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, 400, "input_reference")


def test_file_part_and_reference_keys_together_are_refused(client: httpx.Client) -> None:
    files: dict[str, Any] = {
        **form(prompt="p", **{"input_reference[file_id]": "file_1"}),
        "input_reference": ("a.png", b"png", "image/png"),
    }
    assert_error(client.post("/videos", files=files), 400, "input_reference")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": "p", "seconds": 4}, "seconds"),
        ({"prompt": "p", "seconds": "5"}, "seconds"),
        ({"prompt": "p", "size": "1024x1792"}, "size"),
        ({"prompt": "p", "model": "sora-2-2025-12-08", "size": "1792x1024"}, "size"),
        ({"prompt": "p", "model": "sora-2-pro", "size": "640x480"}, "size"),
        ({"prompt": "p", "model": "gateway-model", "size": "wide"}, "size"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 32001}, "prompt"),
        ({"prompt": 7}, "prompt"),
        ({}, "prompt"),
        ({"prompt": "p", "n": 2}, "n"),
    ],
)
def test_create_validation(
    server: FakeServer, client: httpx.Client, fields: dict[str, object], param: str
) -> None:
    assert_error(client.post("/videos", json=fields), 400, param)
    assert server.create_count() == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"prompt": "x" * 32000},
        {"prompt": "p", "model": "sora-2-pro-2025-10-06", "size": "1024x1792", "seconds": "8"},
        {"prompt": "p", "model": "sora-2", "size": "1280x720", "seconds": "12"},
        {"prompt": "p", "model": "gateway-model", "size": "640x480", "seconds": "20"},
    ],
)
def test_create_accepts_valid_requests(client: httpx.Client, fields: dict[str, str]) -> None:
    video = create(client, **fields)
    for name in ("model", "size", "seconds"):
        if name in fields:
            assert video[name] == fields[name]


def test_multipart_seconds_arrive_as_a_string(client: httpx.Client) -> None:
    response = client.post("/videos", files=form(prompt="p", seconds="8"))
    assert response.json()["seconds"] == "8"


def test_bad_json_body_is_400(client: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(client.post("/videos", content=b"{not json", headers=headers), 400)
    assert_error(client.post("/videos", content=b"[1, 2]", headers=headers), 400)


# -- status, list, delete, remix


def test_status_progresses_with_time(make_server: Callable[..., FakeServer]) -> None:
    server = make_server(job_seconds=0.6, expire_seconds=3600)
    with connect(server) as client:
        video = create(client)
        seen: list[tuple[str, int]] = [(video["status"], video["progress"])]

        def done() -> dict[str, Any] | None:
            current: dict[str, Any] = client.get(f"/videos/{video['id']}").json()
            seen.append((current["status"], current["progress"]))
            return current if current["status"] == "completed" else None

        final = wait_until(done, what="completion")
    statuses = [status for status, _ in seen]
    assert statuses[0] == "queued" and "in_progress" in statuses
    assert statuses == sorted(statuses, key=["queued", "in_progress", "completed"].index)
    progress = [value for _, value in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < value < 100 for value in progress)
    assert final["completed_at"] >= final["created_at"]
    assert final["expires_at"] == final["created_at"] + 3600
    assert final["error"] is None


def test_fail_prompt_ends_failed_with_moderation_error(
    make_server: Callable[..., FakeServer],
) -> None:
    server = make_server(fail_prompt="forbidden")
    with connect(server) as client:
        video = wait_status(client, create(client, "something forbidden here")["id"], "failed")
        assert video["error"] == {
            "code": "moderation_blocked",
            "message": "Your request was blocked by our moderation system.",
        }
        assert video["expires_at"] is None and video["completed_at"] is not None
        assert_envelope(client.get(f"/videos/{video['id']}/content"), 404)
        assert completed(client, "an allowed prompt")["error"] is None


def test_retrieve_poll_after_header(make_server: Callable[..., FakeServer]) -> None:
    with_header, without = make_server(poll_after_ms=50), make_server(poll_after_ms=None)
    with connect(with_header) as client:
        response = client.get(f"/videos/{create(client)['id']}")
        assert response.headers["openai-poll-after-ms"] == "50"
    with connect(without) as client:
        response = client.get(f"/videos/{create(client)['id']}")
        assert response.status_code == 200
        assert "openai-poll-after-ms" not in response.headers


def test_unknown_id_route_and_method_are_404(client: httpx.Client) -> None:
    missing = "video_" + "0" * 32
    for response in (
        client.get(f"/videos/{missing}"),
        client.delete(f"/videos/{missing}"),
        client.get(f"/videos/{missing}/content"),
        client.post(f"/videos/{missing}/remix", json={"prompt": "p"}),
        client.get("/nothing-here"),
        client.put("/videos"),
        client.get("/videos/a/b/c"),
    ):
        assert_envelope(response, 404)
    assert client.get(f"/videos/{missing}").json()["error"]["param"] == "video_id"


def test_list_pages_with_after_and_has_more(client: httpx.Client) -> None:
    empty = client.get("/videos").json()
    assert empty == {
        "object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False
    }  # fmt: skip
    ids = [create(client, f"clip {n}")["id"] for n in range(5)]
    page = client.get("/videos", params={"limit": 2}).json()
    assert [v["id"] for v in page["data"]] == ids[::-1][:2]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[4], ids[3], True)
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 2, "order": "asc"}
        if after:
            params["after"] = after
        page = client.get("/videos", params=params).json()
        seen += [v["id"] for v in page["data"]]
        after = page["last_id"]
        if not page["has_more"]:
            break
    assert seen == ids
    assert len(client.get("/videos").json()["data"]) == 5
    assert client.get("/videos", params={"limit": 0}).json()["data"] == []
    last = client.get("/videos", params={"after": ids[0]}).json()
    assert last["data"] == [] and last["has_more"] is False


@pytest.mark.parametrize(
    ("params", "param"),
    [({"limit": 101}, "limit"), ({"limit": -1}, "limit"), ({"order": "up"}, "order"),
     ({"after": "video_unknown"}, "after")],
)  # fmt: skip
def test_list_validation(client: httpx.Client, params: dict[str, Any], param: str) -> None:
    assert_error(client.get("/videos", params=params), 400, param)


def test_delete_only_finished_videos(server: FakeServer, client: httpx.Client) -> None:
    running = create(client)
    assert_error(client.delete(f"/videos/{running['id']}"), 400, "video_id")
    wait_status(client, running["id"], "completed")
    response = client.delete(f"/videos/{running['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": running["id"], "object": "video.deleted", "deleted": True}
    assert_error(client.get(f"/videos/{running['id']}"), 404, "video_id")
    assert_error(client.delete(f"/videos/{running['id']}"), 404, "video_id")
    assert client.get("/videos").json()["data"] == []


def test_deleted_video_still_works_as_a_list_cursor(client: httpx.Client) -> None:
    first, second = create(client, "one"), create(client, "two")
    wait_status(client, second["id"], "completed")
    assert client.delete(f"/videos/{first['id']}").status_code == 200
    page = client.get("/videos", params={"order": "asc", "after": first["id"]}).json()
    assert [v["id"] for v in page["data"]] == [second["id"]]


def test_remix_needs_a_completed_source(server: FakeServer, client: httpx.Client) -> None:
    source = create(client, "original", model="sora-2-pro", size="1024x1792", seconds="8")
    assert_envelope(client.post(f"/videos/{source['id']}/remix", json={"prompt": "p"}), 400)
    wait_status(client, source["id"], "completed")
    remix = client.post(f"/videos/{source['id']}/remix", json={"prompt": "make it night"})
    assert remix.status_code == 200
    video = remix.json()
    assert set(video) == VIDEO_KEYS
    assert video["id"] != source["id"] and video["status"] == "queued"
    assert video["remixed_from_video_id"] == source["id"]
    assert video["prompt"] == "make it night"
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2-pro", "1024x1792", "8")
    assert_error(client.post(f"/videos/{source['id']}/remix", json={"prompt": ""}), 400, "prompt")
    assert_error(client.post(f"/videos/{source['id']}/remix", json={}), 400, "prompt")
    assert server.create_count() == 2 and server.create_count("make it night") == 1


# -- content


def mp4_boxes(data: bytes) -> list[bytes]:
    """The top-level box types of an MP4, checking that the sizes add up to the file."""
    kinds, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        assert size >= 8, f"box of {size} bytes at {pos}"
        kinds.append(data[pos + 4 : pos + 8])
        pos += size
    assert pos == len(data)
    return kinds


@pytest.mark.parametrize(
    ("variant", "kind", "magic"),
    [
        ("video", "video/mp4", re.compile(rb"^\x00\x00\x00 ftypisom", re.S)),
        ("thumbnail", "image/webp", re.compile(rb"^RIFF.{4}WEBPVP8", re.S)),
        ("spritesheet", "image/jpeg", re.compile(rb"^\xff\xd8\xff.*\xff\xd9$", re.S)),
    ],
)
def test_content_variants_are_the_real_sample_media(
    server: FakeServer, client: httpx.Client, variant: str, kind: str, magic: re.Pattern[bytes]
) -> None:
    video = completed(client)
    response = client.get(f"/videos/{video['id']}/content", params={"variant": variant})
    assert response.status_code == 200
    assert response.headers["content-type"] == kind
    assert int(response.headers["content-length"]) == len(response.content)
    assert magic.match(response.content)
    digest = hashlib.sha256(response.content).hexdigest()
    assert digest == server.expected_sha256(video["id"], variant)
    sample = (ASSETS / FILES[variant]).read_bytes()
    assert response.content.startswith(sample)
    if variant == "video":  # the sample, then a `free` box naming the video: each differs
        assert mp4_boxes(response.content) == [b"ftyp", b"moov", b"free", b"mdat", b"free"]
        assert len(response.content) == len(sample) + TAG_BYTES
        assert digest != server.expected_sha256(completed(client, "another")["id"])
    else:
        assert response.content == sample


@pytest.mark.parametrize(
    ("variant", "magic"),
    [
        ("video", re.compile(rb"^\x00\x00\x00 ftypisom.{24}mdat", re.S)),
        ("thumbnail", re.compile(rb"^RIFF.{4}WEBP", re.S)),
        ("spritesheet", re.compile(rb"^\xff\xd8\xff")),
    ],
)
def test_video_bytes_serves_synthetic_content_of_that_size(
    make_server: Callable[..., FakeServer], variant: str, magic: re.Pattern[bytes]
) -> None:
    server = make_server(job_seconds=0.0, video_bytes=150_000)
    with connect(server) as client:
        video_id = create(client)["id"]
        response = client.get(f"/videos/{video_id}/content", params={"variant": variant})
        assert response.status_code == 200 and magic.match(response.content)
        assert len(response.content) == (150_000 if variant == "video" else
                                         PREVIEW_SIZES[variant])
        assert hashlib.sha256(response.content).hexdigest() == server.expected_sha256(
            video_id, variant)


def test_content_errors(client: httpx.Client) -> None:
    running = create(client)
    assert assert_envelope(client.get(f"/videos/{running['id']}/content"), 404)["code"]
    wait_status(client, running["id"], "completed")
    params = {"variant": "poster"}
    assert_error(client.get(f"/videos/{running['id']}/content", params=params), 400, "variant")


def test_content_expires(make_server: Callable[..., FakeServer]) -> None:
    server = make_server(job_seconds=0.0, expire_seconds=0)
    with connect(server) as client:
        video = create(client)
        assert video["status"] == "completed" and video["expires_at"] == video["created_at"]
        assert_envelope(client.get(f"/videos/{video['id']}/content"), 404)


def test_content_range_requests(make_server: Callable[..., FakeServer]) -> None:
    server = make_server(job_seconds=0.0, video_bytes=200_000)
    with connect(server) as client:
        video_id = create(client)["id"]
        full = client.get(f"/videos/{video_id}/content").content
        assert len(full) == 200_000
        part = client.get(f"/videos/{video_id}/content", headers={"Range": "bytes=70000-"})
        assert part.status_code == 206
        assert part.headers["content-range"] == "bytes 70000-199999/200000"
        assert part.content == full[70000:]
        window = client.get(f"/videos/{video_id}/content", headers={"Range": "bytes=10-19"})
        assert window.status_code == 206 and window.content == full[10:20]
        beyond = client.get(f"/videos/{video_id}/content", headers={"Range": "bytes=200000-"})
        assert_envelope(beyond, 416)
        assert beyond.headers["content-range"] == "bytes */200000"


def test_range_requests_on_the_real_media(make_server: Callable[..., FakeServer]) -> None:
    server = make_server(job_seconds=0.0)
    with connect(server) as client:
        video_id = create(client)["id"]
        full = media_bytes(video_id, "video")
        part = client.get(f"/videos/{video_id}/content", headers={"Range": "bytes=1000-"})
        assert part.status_code == 206 and part.content == full[1000:]
        assert part.headers["content-range"] == f"bytes 1000-{len(full) - 1}/{len(full)}"
        beyond = client.get(f"/videos/{video_id}/content",
                            headers={"Range": f"bytes={len(full)}-"})
        assert_envelope(beyond, 416)


def test_range_ignored_without_range_support(make_server: Callable[..., FakeServer]) -> None:
    server = make_server(job_seconds=0.0, range_support=False)
    with connect(server) as client:
        video_id = create(client)["id"]
        response = client.get(f"/videos/{video_id}/content", headers={"Range": "bytes=100-"})
        assert response.status_code == 200
        assert len(response.content) == len(media_bytes(video_id, "video"))


def test_content_generator_is_consistent_across_blocks() -> None:
    size = 3 * 65536 + 123
    full = b"".join(iter_content("video_abc", "video", size))
    assert len(full) == size
    for start, end in [(0, 1), (65535, 65537), (100, 140000), (size - 5, size)]:
        assert b"".join(iter_content("video_abc", "video", size, start, end)) == full[start:end]
    spritesheet = b"".join(iter_content("video_abc", "spritesheet", 1000))
    assert spritesheet.startswith(b"\xff\xd8\xff") and spritesheet.endswith(b"\xff\xd9")


def test_huge_content_is_generated_lazily() -> None:
    gib = 2**30
    first = next(iter_content("video_big", "video", gib))
    assert first.startswith(b"\x00\x00\x00 ftyp") and len(first) == 65536
    tail = b"".join(iter_content("video_big", "video", gib, gib - 10))
    assert tail == b"".join(iter_content("video_big", "video", gib, gib - 65536))[-10:]
    assert len(tail) == 10


# -- scheduled faults


def test_error_faults_are_consumed_in_order(server: FakeServer, client: httpx.Client) -> None:
    video_id = create(client)["id"]
    server.add_faults(Fault("error", "retrieve", status=503), Fault("error", times=2, status=502))
    assert_envelope(client.get(f"/videos/{video_id}"), 503)
    assert_envelope(client.get("/videos"), 502)
    assert_envelope(client.get(f"/videos/{video_id}"), 502)
    assert client.get(f"/videos/{video_id}").status_code == 200
    assert [status for _, _, status in server.request_log()] == [200, 503, 502, 502, 200]


def test_rate_limit_fault_carries_retry_hints(server: FakeServer, client: httpx.Client) -> None:
    server.add_faults(Fault("error", "list", status=429, retry_after_ms=250))
    response = client.get("/videos")
    error = assert_envelope(response, 429)
    assert error["type"] == "requests" and error["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after-ms"] == "250"
    assert response.headers["retry-after"] == "1"
    server.add_faults(Fault("error", "list", status=500))
    plain = client.get("/videos")
    assert assert_envelope(plain, 500)["type"] == "server_error"
    assert "retry-after-ms" not in plain.headers


def test_drop_fault_closes_without_answer_and_creates_nothing(
    server: FakeServer, client: httpx.Client
) -> None:
    server.add_faults(Fault("drop", "create"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/videos", json={"prompt": "dropped"})
    assert server.create_count() == 0
    assert server.request_log() == [("POST", "/v1/videos", 0)]
    assert create(client, "dropped")["status"] == "queued"


def test_create_then_error_creates_a_job_behind_the_error(
    server: FakeServer, client: httpx.Client
) -> None:
    server.add_faults(Fault("create_then_error", status=500))
    assert_envelope(client.post("/videos", json={"prompt": "ambiguous"}), 500)
    assert server.create_count("ambiguous") == 1
    listed = client.get("/videos").json()["data"]
    assert [video["prompt"] for video in listed] == ["ambiguous"]


def test_create_then_drop_creates_a_job_and_drops(server: FakeServer, client: httpx.Client) -> None:
    server.add_faults(Fault("create_then_drop"))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/videos", json={"prompt": "ambiguous"})
    assert server.create_count("ambiguous") == 1


def test_create_then_stall_outlasts_a_client_timeout(server: FakeServer) -> None:
    server.add_faults(Fault("create_then_stall", retry_after_ms=2000))
    with connect(server, timeout=0.3) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/videos", json={"prompt": "slow"})
    assert server.create_count("slow") == 1


def test_truncate_fault_sends_half_the_body(
    make_server: Callable[..., FakeServer],
) -> None:
    server = make_server(job_seconds=0.0, video_bytes=100_000)
    with connect(server) as client:
        video_id = create(client)["id"]
        server.add_faults(Fault("truncate", "content"))
        received = bytearray()
        with (
            pytest.raises(httpx.RemoteProtocolError),
            client.stream("GET", f"/videos/{video_id}/content") as response,
        ):
            assert response.headers["content-length"] == "100000"
            for chunk in response.iter_raw():
                received += chunk
        assert 0 < len(received) < 100_000
        full = client.get(f"/videos/{video_id}/content").content
        assert full.startswith(bytes(received))


def test_prompt_fault_only_hits_that_prompt(server: FakeServer, client: httpx.Client) -> None:
    server.add_faults(Fault("error", "*", status=500, prompt="unlucky"))
    video_id = create(client, "lucky")["id"]
    assert client.get(f"/videos/{video_id}").status_code == 200
    assert_envelope(client.post("/videos", json={"prompt": "unlucky"}), 500)
    assert create(client, "unlucky")["prompt"] == "unlucky"


def test_create_only_actions_skip_other_routes(server: FakeServer, client: httpx.Client) -> None:
    server.add_faults(Fault("create_then_error"), Fault("truncate"))
    assert client.get("/videos").status_code == 200
    assert_envelope(client.post("/videos", json={"prompt": "p"}), 500)
    assert server.create_count() == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"action": "explode"}, {"action": "error", "route": "upload"}, {"action": "drop", "times": 0}],
)
def test_bad_fault_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Fault(**kwargs)


# -- control routes, auth, random faults


def test_fake_routes_need_no_auth_and_are_not_logged(
    make_server: Callable[..., FakeServer],
) -> None:
    server = make_server(api_key="sk-right", job_seconds=0.0)
    control = server.base_url.removesuffix("/v1") + "/_fake"
    with (
        httpx.Client(verify=TLS, timeout=5.0) as anonymous,
        connect(server, headers={"Authorization": "Bearer sk-right"}) as client,
    ):
        faults = {"faults": [{"action": "error", "route": "create", "status": 503}]}
        assert anonymous.post(f"{control}/faults", json=faults).json() == {"scheduled": 1}
        assert_envelope(client.post("/videos", json={"prompt": "p"}), 503)
        video_id = create(client, "p")["id"]
        create(client, "p")
        create(client, "q")
        stats = anonymous.get(f"{control}/stats").json()
        assert stats["creates"] == 3 and stats["creates_by_prompt"] == {"p": 2, "q": 1}
        assert stats["requests"] == 4
        digest = anonymous.get(f"{control}/sha256/{video_id}").json()["sha256"]
        content = client.get(f"/videos/{video_id}/content").content
        assert digest == hashlib.sha256(content).hexdigest() == server.expected_sha256(video_id)
        thumb = anonymous.get(f"{control}/sha256/{video_id}", params={"variant": "thumbnail"})
        assert thumb.json()["sha256"] == server.expected_sha256(video_id, "thumbnail")
        assert_envelope(anonymous.post(f"{control}/faults", json={"faults": [{"x": 1}]}), 400)
        assert_envelope(anonymous.get(f"{control}/nothing"), 404)
    assert all(not path.startswith("/_fake") for _, path, _ in server.request_log())


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer sk-wrong"}, 401),
        ({"Authorization": "Basic sk-right"}, 401),
        ({"api-key": "sk-wrong"}, 401),
        ({"Authorization": "Bearer sk-right"}, 200),
        ({"api-key": "sk-right"}, 200),
    ],
)
def test_auth_with_a_configured_key(
    make_server: Callable[..., FakeServer], headers: dict[str, str], status: int
) -> None:
    server = make_server(api_key="sk-right")
    with connect(server, headers=headers) as client:
        response = client.get("/videos")
    assert response.status_code == status
    if status == 401:
        assert response.json() == {
            "error": {
                "message": "Incorrect API key provided.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }


def test_any_non_empty_key_without_a_configured_key(server: FakeServer) -> None:
    with connect(server, headers={"api-key": "anything"}) as client:
        assert client.get("/videos").status_code == 200
    with connect(server, headers={}) as client:
        assert client.get("/videos").status_code == 401


def run_random_creates(seed: int, attempts: int = 40) -> tuple[list[str], FakeServer]:
    outcomes: list[str] = []
    with FakeServer(FakeOptions(error_rate=0.5, seed=seed)) as server, connect(server) as client:
        for n in range(attempts):
            prompt = f"prompt {n}"
            try:
                response = client.post("/videos", json={"prompt": prompt})
            except httpx.TransportError:
                outcomes.append("drop")
                assert server.create_count(prompt) == 0
                continue
            outcomes.append(str(response.status_code))
            assert server.create_count(prompt) == (1 if response.status_code == 200 else 0)
            if response.status_code == 429:
                assert 100 <= int(response.headers["retry-after-ms"]) <= 500
                assert int(response.headers["retry-after"]) >= 1
    return outcomes, server


def test_random_faults_never_duplicate_creates() -> None:
    outcomes, server = run_random_creates(seed=7)
    assert {"200", "429", "drop"} <= set(outcomes)
    assert {"500", "503"} & set(outcomes)
    assert server.create_count() == outcomes.count("200")
    assert run_random_creates(seed=7)[0] == outcomes  # a seed replays the same faults


def test_random_faults_also_truncate_downloads(make_server: Callable[..., FakeServer]) -> None:
    server = make_server(job_seconds=0.0, video_bytes=70_000, seed=1)
    with connect(server) as client:
        video_id = create(client)["id"]
    server.options.error_rate, kinds = 0.9, set()  # the seed makes the draws repeatable
    for _ in range(30):
        with connect(server) as client:
            try:
                response = client.get(f"/videos/{video_id}/content")
                kinds.add(str(response.status_code))
            except httpx.RemoteProtocolError as error:
                kinds.add("truncated" if "message body" in str(error) else "drop")
    assert "truncated" in kinds and "drop" in kinds


# -- lifecycle and the command line


def refuses_connections(base_url: str) -> bool:
    try:
        httpx.get(base_url + "/videos", headers=AUTH, timeout=1.0, verify=TLS)
    except httpx.ConnectError:
        return True
    return False


def test_base_url_and_stop() -> None:
    with FakeServer(FakeOptions()) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
        assert not refuses_connections(server.base_url)
    assert refuses_connections(server.base_url)
    server.stop()  # stopping twice is harmless


def test_idle_exit_stops_serving_in_process() -> None:
    server = FakeServer(FakeOptions(idle_exit=0.3))
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    runner.join(timeout=5)
    assert not runner.is_alive()
    assert refuses_connections(server.base_url)


def test_serve_forever_returns_on_stop() -> None:
    server = FakeServer()
    runner = threading.Thread(target=server.serve_forever)
    runner.start()
    wait_until(lambda: not refuses_connections(server.base_url), what="the server")
    server.stop()
    runner.join(timeout=5)
    assert not runner.is_alive()


def test_a_stop_while_the_server_starts_waits_and_stops_every_thread() -> None:
    """`serve_forever`'s caller may stop the server while start() is between its two
    threads: stop() waits for start(), then stops both (it once closed the sockets under
    a serving thread, which then spun on them for the rest of the process)."""
    server = FakeServer(FakeOptions())
    stopper = threading.Thread(target=server.stop)
    serve_aux = server._aux.serve_forever

    def second_thread(**kw: Any) -> None:  # the first one is serving by now
        stopper.start()
        stopper.join(0.2)  # blocked on start(): it has not returned yet
        serve_aux(**kw)

    server._aux.serve_forever = second_thread  # type: ignore[method-assign]
    server.start()
    # the aux thread starts the stopper; on a loaded machine start() may return first
    wait_until(lambda: stopper.ident is not None, 5, "the stopper to start")
    stopper.join(5)
    wait_until(lambda: not any(t.is_alive() for t in server._threads), 5,
               "every serving thread to end")


def test_stop_wakes_a_stalled_create() -> None:
    server = FakeServer(FakeOptions()).start()
    server.add_faults(Fault("create_then_stall", retry_after_ms=60_000))
    answers: list[int] = []

    def post() -> None:
        with connect(server, timeout=10.0) as client:
            answers.append(client.post("/videos", json={"prompt": "p"}).status_code)

    poster = threading.Thread(target=post)
    poster.start()
    wait_until(lambda: server.create_count() == 1, what="the stalled create")
    server.stop()
    poster.join(timeout=5)
    assert answers == [200]


def spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SORA_FAKE_VERBOSE", None)
    command = [sys.executable, "-m", "sora_cli.fake.server", *args]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_subprocess_prints_url_first_and_exits_on_signal(signum: signal.Signals) -> None:
    process = spawn("--idle-exit", "20", "--job-seconds", "0", "--api-key", "sk-cli")
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
        headers = {"Authorization": "Bearer sk-cli"}
        with httpx.Client(base_url=base_url, headers=headers, verify=TLS, timeout=5) as client:
            video = client.post("/videos", json={"prompt": "from the cli"}).json()
            assert video["status"] == "completed"
            stats = client.get(base_url.removesuffix("/v1") + "/_fake/stats").json()
            assert stats["creates_by_prompt"] == {"from the cli": 1}
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert stdout == "" and stderr == ""  # quiet: no request log, no traceback


def test_subprocess_exits_after_idle_time() -> None:
    process = spawn("--idle-exit", "0.3", "--seed", "1", "--error-rate", "0")
    try:
        stdout, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1\n", stdout)
    assert stderr == ""


def test_main_rejects_a_bad_error_rate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--error-rate", "2"])
    assert exit_info.value.code == 2
    assert "--error-rate" in capsys.readouterr().err


def test_main_serves_in_a_thread_until_idle(capsys: pytest.CaptureFixture[str]) -> None:
    results: list[int] = []
    runner = threading.Thread(target=lambda: results.append(main(["--idle-exit", "0.2"])))
    runner.start()
    runner.join(timeout=5)
    assert results == [0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1\n", capsys.readouterr().out)
