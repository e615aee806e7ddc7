"""The fake server's fault actions and options used by the crash, fault and abuse tests."""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import time
from collections.abc import Callable

import httpx
import pytest
from waits import wait_until

from sora_cli.fake.content import content_sha256
from sora_cli.fake.server import FakeServer, Fault, _fault_mix

AUTH = {"Authorization": "Bearer sk-test"}


@pytest.fixture
def instant(make_server: Callable[..., FakeServer]) -> FakeServer:
    """A fake whose jobs are done when created, with 200 kB videos (four 64 KiB blocks)."""
    return make_server(job_seconds=0.0, video_bytes=200_000)


def client(server: FakeServer, **kw: object) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=AUTH, **kw)  # type: ignore[arg-type]


def create(c: httpx.Client, prompt: str = "a fox") -> httpx.Response:
    return c.post("/videos", json={"prompt": prompt})


def test_stall_then_create_makes_the_video_after_the_client_gave_up(instant: FakeServer) -> None:
    instant.add_faults(Fault("stall_then_create", route="create", delay_ms=600))
    with client(instant, timeout=0.2) as c, pytest.raises(httpx.ReadTimeout):
        create(c, "late")
    assert instant.create_count("late") == 0
    wait_until(lambda: instant.create_count("late") == 1, 5, "the late create")


def test_bad_id_answers_a_hostile_id_for_a_real_video(instant: FakeServer) -> None:
    instant.add_faults(Fault("bad_id", route="create", text="video_../../x"))
    with client(instant) as c:
        assert create(c).json()["id"] == "video_../../x"
        listed = c.get("/videos").json()["data"]
    assert len(listed) == 1 and listed[0]["id"].startswith("video_")
    assert listed[0]["id"] != "video_../../x"


def test_error_text_can_echo_the_offered_key(instant: FakeServer) -> None:
    instant.add_faults(Fault("error", route="create", status=400, text="bad key {api_key}"))
    with client(instant) as c:
        answer = create(c)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "bad key sk-test"


def test_slow_content_paces_the_blocks(instant: FakeServer) -> None:
    with client(instant) as c:
        video_id = create(c).json()["id"]
        instant.add_faults(Fault("slow", route="content", delay_ms=100))
        started = time.monotonic()
        body = c.get(f"/videos/{video_id}/content").content
    assert time.monotonic() - started >= 0.3  # 4 blocks of 64 KiB, a pause after each
    assert len(body) == 200_000


def test_huge_answer_has_no_length_and_is_big(instant: FakeServer) -> None:
    with client(instant) as c:
        video_id = create(c).json()["id"]
        instant.add_faults(Fault("huge", route="retrieve", size=2 * 1024 * 1024))
        with c.stream("GET", f"/videos/{video_id}") as answer:
            assert "content-length" not in answer.headers
            size = sum(len(chunk) for chunk in answer.iter_bytes())
    assert size > 2 * 1024 * 1024


def test_clock_offset_moves_timestamps_and_the_date_header(
        make_server: Callable[..., FakeServer]) -> None:
    with client(make_server(job_seconds=0.0, clock_offset=-86400)) as c:
        answer = create(c)
    date = email.utils.parsedate_to_datetime(answer.headers["date"]).timestamp()
    assert abs(date - (time.time() - 86400)) < 5
    assert abs(answer.json()["created_at"] - (time.time() - 86400)) < 5


def test_fault_mix_draws_each_kind(make_server: Callable[..., FakeServer]) -> None:
    assert _fault_mix("429=0.1,drop=0.05") == {"429": 0.1, "drop": 0.05}
    for bad in ("429=2", "teapot=0.1", "500=0.6,503=0.6"):
        with pytest.raises(argparse.ArgumentTypeError):
            _fault_mix(bad)
    server = make_server(job_seconds=0.0, seed=3, fault_mix={"429": 0.5, "drop": 0.5})
    with client(server) as c:
        kinds = set()
        for _ in range(20):
            try:
                kinds.add(c.get("/videos").status_code)
            except httpx.TransportError:
                kinds.add(0)
    assert kinds == {429, 0}


def test_content_redirect_to_a_cdn_that_counts_credentials(
        make_server: Callable[..., FakeServer]) -> None:
    cdn = make_server(job_seconds=0.0)
    api = make_server(job_seconds=0.0, video_bytes=100_000,
                      content_redirect=cdn.base_url.removesuffix("/v1"))
    with client(api) as c:
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
