"""The fake server's fault actions and options used by the crash, fault and abuse tests."""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import time

import httpx
import pytest
from inproc import MakeServer

from sora_cli.fake.content import content_sha256
from sora_cli.fake.server import FakeOptions, FakeServer, Fault, _fault_mix

AUTH = {"Authorization": "Bearer sk-test"}


@pytest.fixture
def server(make_server: MakeServer) -> FakeServer:
    return make_server(job_seconds=0.0, video_bytes=200_000)


def client(server: FakeServer, **kw: object) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=AUTH, **kw)  # type: ignore[arg-type]


def create(c: httpx.Client, prompt: str = "a fox") -> httpx.Response:
    return c.post("/videos", json={"prompt": prompt})


def test_stall_then_create_makes_the_video_after_the_client_gave_up(server: FakeServer) -> None:
    server.add_faults(Fault("stall_then_create", route="create", delay_ms=600))
    with client(server, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        create(c, "late")
    assert server.create_count("late") == 0
    deadline = time.monotonic() + 5
    while server.create_count("late") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_bad_id_answers_a_hostile_id_for_a_real_video(server: FakeServer) -> None:
    server.add_faults(Fault("bad_id", route="create", text="video_../../x"))
    with client(server) as c:
        assert create(c).json()["id"] == "video_../../x"
        listed = c.get("/videos").json()["data"]
    assert len(listed) == 1 and listed[0]["id"].startswith("video_")
    assert listed[0]["id"] != "video_../../x"


def test_error_text_can_echo_the_offered_key(server: FakeServer) -> None:
    server.add_faults(Fault("error", route="create", status=400, text="bad key {api_key}"))
    with client(server) as c:
        answer = create(c)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "bad key sk-test"


def test_slow_content_paces_the_blocks(server: FakeServer) -> None:
    with client(server) as c:
        video_id = create(c).json()["id"]
        server.add_faults(Fault("slow", route="content", delay_ms=100))
        started = time.monotonic()
        body = c.get(f"/videos/{video_id}/content").content
    assert time.monotonic() - started >= 0.3  # 4 blocks of 64 KiB, a pause after each
    assert len(body) == 200_000


def test_huge_answer_has_no_length_and_is_big(server: FakeServer) -> None:
    with client(server) as c:
        video_id = create(c).json()["id"]
        server.add_faults(Fault("huge", route="retrieve", size=2 * 1024 * 1024))
        with c.stream("GET", f"/videos/{video_id}") as answer:
            assert "content-length" not in answer.headers
            size = sum(len(chunk) for chunk in answer.iter_bytes())
    assert size > 2 * 1024 * 1024


def test_clock_offset_moves_timestamps_and_the_date_header() -> None:
    with FakeServer(FakeOptions(job_seconds=0.0, clock_offset=-86400)) as server:
        with client(server) as c:
            answer = create(c)
        date = email.utils.parsedate_to_datetime(answer.headers["date"]).timestamp()
    assert abs(date - (time.time() - 86400)) < 5
    assert abs(answer.json()["created_at"] - (time.time() - 86400)) < 5


def test_fault_mix_draws_each_kind() -> None:
    assert _fault_mix("429=0.1,drop=0.05") == {"429": 0.1, "drop": 0.05}
    for bad in ("429=2", "teapot=0.1", "500=0.6,503=0.6"):
        with pytest.raises(argparse.ArgumentTypeError):
            _fault_mix(bad)
    options = FakeOptions(job_seconds=0.0, seed=3, fault_mix={"429": 0.5, "drop": 0.5})
    with FakeServer(options) as server, client(server) as c:
        kinds = set()
        for _ in range(20):
            try:
                kinds.add(c.get("/videos").status_code)
            except httpx.TransportError:
                kinds.add(0)
    assert kinds == {429, 0}


def test_content_redirect_to_a_cdn_that_counts_credentials() -> None:
    with FakeServer(FakeOptions(job_seconds=0.0)) as cdn, FakeServer(FakeOptions(
            job_seconds=0.0, video_bytes=100_000,
            content_redirect=cdn.base_url.removesuffix("/v1"))) as api, client(api) as c:
        video_id = create(c).json()["id"]
        moved = c.get(f"/videos/{video_id}/content")
        assert moved.status_code == 302
        target = moved.headers["location"]
        full = httpx.get(target, headers=AUTH)  # counted: it carries a key
        assert hashlib.sha256(full.content).hexdigest() == content_sha256(video_id, "video",
                                                                          100_000)
        body = httpx.get(target, headers={"Range": "bytes=10-"}).content
        assert len(body) == 100_000 - 10
        counters = cdn.backend.stats()["counters"]
    assert counters == {"cdn_requests": 2, "cdn_with_credentials": 1, "range_requests": 1}
