"""The Videos API client against httpx.MockTransport: no network, no real sleeps."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest

from sora_cli.errors import (
    AmbiguousCreate,
    ApiError,
    AuthError,
    ExitCode,
    InvalidInput,
    TransportError,
)
from sora_cli.providers.openai.client import ApiSettings, Attempt, VideosClient, valid_video_id

BASE = "http://api.test/v1"
KEY = "sk-test-0123456789abcdefWXYZ"
Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def video_json(video_id: str = "video_abc", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": video_id, "object": "video", "model": "sora-2", "status": "queued",
        "progress": 0, "created_at": 1_760_000_000, "completed_at": None,
        "expires_at": None, "prompt": "a cat", "size": "720x1280", "seconds": "4",
        "remixed_from_video_id": None, "error": None,
    }
    return data | extra


def ok(data: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(200, json=video_json() if data is None else data,
                          headers={"x-request-id": "req_ok", **headers})


def err(status: int, message: str = "nope", *, code: str | None = None,
        headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": code}}
    return httpx.Response(status, json=body, headers={"x-request-id": f"req_{status}",
                                                      **(headers or {})})


class Server:
    """Scripted answers, one per request (the last one repeats); records requests."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply


class Sleeps(list[float]):
    async def __call__(self, delay: float) -> None:
        self.append(delay)


def run(server: Server, body: Callable[[VideosClient], Coroutine[Any, Any, Any]],
        sleeps: Sleeps | None = None, **settings: Any) -> Any:
    async def go() -> Any:
        opts = {"base_url": BASE, "api_key": KEY} | settings
        client = VideosClient(ApiSettings(**opts), transport=httpx.MockTransport(server),
                              sleep=sleeps if sleeps is not None else Sleeps())
        async with client:
            return await body(client)
    return asyncio.run(go())


def create(**kw: Any) -> Callable[[VideosClient], Coroutine[Any, Any, Any]]:
    return lambda c: c.create(prompt="a cat", model="sora-2", size="720x1280", seconds=4, **kw)


# -- requests -----------------------------------------------------------------------------


def test_bearer_headers_without_org_or_project() -> None:
    server = Server(ok())
    run(server, lambda c: c.retrieve("video_abc"))
    (request,) = server.requests
    assert str(request.url) == f"{BASE}/videos/video_abc"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "api-key" not in request.headers
    assert "openai-organization" not in request.headers
    assert "openai-project" not in request.headers
    assert request.headers["user-agent"].startswith("sora-cli/")
    assert request.headers["accept"] == "application/json"


def test_azure_headers_with_org_and_project() -> None:
    server = Server(ok())
    run(server, lambda c: c.retrieve("video_abc"), base_url=BASE + "/", auth_style="azure",
        organization="org_1", project="proj_1")
    (request,) = server.requests
    assert str(request.url) == f"{BASE}/videos/video_abc"
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    assert request.headers["openai-organization"] == "org_1"
    assert request.headers["openai-project"] == "proj_1"


def test_create_sends_seconds_as_a_string() -> None:
    server = Server(ok())
    answer = run(server, create())
    (request,) = server.requests
    assert request.method == "POST" and str(request.url) == f"{BASE}/videos"
    assert json.loads(request.content) == {"prompt": "a cat", "model": "sora-2",
                                           "size": "720x1280", "seconds": "4"}
    assert answer.value.id == "video_abc" and answer.request_id == "req_ok"


def test_video_parsing_tolerates_unknown_keys_and_statuses() -> None:
    data = video_json(status="preprocessing", progress="42", seconds=8, novel={"x": 1},
                      error={"code": "moderation_blocked", "message": "blocked"})
    answer = run(Server(ok(data, **{"openai-poll-after-ms": "2500"})),
                 lambda c: c.retrieve("video_abc"))
    video = answer.value
    assert (video.status, video.progress, video.seconds) == ("preprocessing", 42, "8")
    assert (video.error_code, video.error_message) == ("moderation_blocked", "blocked")
    assert video.created_at == 1_760_000_000 and video.completed_at is None
    assert answer.poll_after_ms == 2500


# -- error answers ------------------------------------------------------------------------


def test_400_carries_the_server_message_and_is_not_retried() -> None:
    server, sleeps = Server(err(400, "Inpaint image must match", code="bad_size")), Sleeps()
    with pytest.raises(ApiError) as caught:
        run(server, create(), sleeps)
    e = caught.value
    assert type(e) is ApiError
    assert (e.message, e.http_status, e.code, e.request_id) == (
        "Inpaint image must match", 400, "bad_size", "req_400")
    assert not e.retryable and len(server.requests) == 1 and sleeps == []
    assert str(e) == "Inpaint image must match (HTTP 400, request req_400)"


def test_401_is_an_auth_error_and_never_shows_the_key() -> None:
    server = Server(err(401, f"Incorrect API key provided: {KEY}."))
    with pytest.raises(AuthError) as caught:
        run(server, lambda c: c.retrieve("video_abc"))
    assert caught.value.exit_code == ExitCode.AUTH
    assert KEY not in str(caught.value) and "***" in str(caught.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize("body", [b"<html><body>Bad Request</body></html>", b"\xff\xfe",
                                  b'{"error": 3}', b"[1, 2]", b""])
def test_junk_error_bodies(body: bytes) -> None:
    server = Server(httpx.Response(400, content=body))
    with pytest.raises(ApiError) as caught:
        run(server, lambda c: c.retrieve("video_abc"))
    assert caught.value.http_status == 400 and caught.value.message


def test_plain_text_and_gateway_shapes() -> None:
    server = Server(httpx.Response(404, json={"detail": "no such video"}))
    with pytest.raises(ApiError) as caught:
        run(server, lambda c: c.retrieve("video_abc"))
    assert (caught.value.message, caught.value.code) == ("no such video", "not_found")


# -- retries ------------------------------------------------------------------------------


def test_429_honours_retry_after_ms() -> None:
    server, sleeps = Server(err(429, headers={"retry-after-ms": "1500"}), ok()), Sleeps()
    run(server, lambda c: c.retrieve("video_abc"), sleeps)
    assert sleeps == [1.5] and len(server.requests) == 2


def test_500_on_retrieve_is_retried_with_backoff() -> None:
    server, sleeps = Server(err(500), err(502), ok()), Sleeps()
    run(server, lambda c: c.retrieve("video_abc"), sleeps)
    assert len(server.requests) == 3
    assert 0.375 < sleeps[0] <= 0.5 and 0.75 < sleeps[1] <= 1.0


def test_should_retry_false_stops_a_500() -> None:
    server = Server(err(500, headers={"x-should-retry": "false"}), ok())
    with pytest.raises(ApiError) as caught:
        run(server, lambda c: c.retrieve("video_abc"))
    assert len(server.requests) == 1 and not caught.value.retryable


def test_should_retry_true_retries_a_400() -> None:
    server, sleeps = Server(err(400, headers={"x-should-retry": "true"}), ok()), Sleeps()
    run(server, lambda c: c.retrieve("video_abc"), sleeps)
    assert len(server.requests) == 2 and len(sleeps) == 1


def test_retry_after_above_120_s_is_not_waited_for() -> None:
    server, sleeps = Server(err(429, headers={"retry-after": "300"}), ok()), Sleeps()
    with pytest.raises(ApiError) as caught:
        run(server, lambda c: c.retrieve("video_abc"), sleeps)
    assert len(server.requests) == 1 and sleeps == []
    assert caught.value.retryable and caught.value.retry_after == 300.0


def test_max_retries_bound() -> None:
    server, sleeps = Server(err(503)), Sleeps()
    with pytest.raises(ApiError) as caught:
        run(server, lambda c: c.retrieve("video_abc"), sleeps, max_retries=3)
    assert len(server.requests) == 4 and len(sleeps) == 3
    assert caught.value.http_status == 503 and caught.value.retryable
    bases = [0.5, 1.0, 2.0]
    assert all(0.75 * b < s <= b for s, b in zip(sleeps, bases, strict=True))


def test_unreachable_server_is_a_transport_error_without_secrets() -> None:
    server, sleeps = Server(httpx.ConnectError("[Errno 111] Connection refused")), Sleeps()
    with pytest.raises(TransportError) as caught:
        run(server, lambda c: c.retrieve("video_abc"), sleeps)
    assert len(server.requests) == 6 and len(sleeps) == 5
    assert str(caught.value) == (
        "cannot reach http://api.test/v1: connection refused (after 6 attempts)")
    assert caught.value.sent is False and KEY not in str(caught.value)


def test_read_timeout_on_retrieve_is_retried() -> None:
    server = Server(httpx.ReadTimeout("timed out"), ok())
    assert run(server, lambda c: c.retrieve("video_abc")).value.id == "video_abc"
    assert len(server.requests) == 2


# -- create safety ------------------------------------------------------------------------


@pytest.mark.parametrize("first", [
    httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy"),
    err(429), err(408), err(409), err(400, headers={"x-should-retry": "true"}),
])
def test_create_retried_only_when_nothing_was_made(first: Reply) -> None:
    server = Server(first, ok())
    assert run(server, create()).value.id == "video_abc"
    assert len(server.requests) == 2


@pytest.mark.parametrize("first", [
    err(500), err(503, headers={"x-should-retry": "true"}), httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("peer closed"), httpx.ReadError("reset"),
    httpx.WriteError("broken pipe"), httpx.WriteTimeout("slow"),
    httpx.Response(200, content=b"<html>"),
])
def test_create_that_may_have_reached_the_server_is_never_resent(first: Reply) -> None:
    server, sleeps = Server(first, ok()), Sleeps()
    with pytest.raises(AmbiguousCreate) as caught:
        run(server, create(), sleeps)
    assert len(server.requests) == 1 and sleeps == []
    assert caught.value.sent is True and "not re-sent" in str(caught.value)


def test_ambiguous_create_keeps_status_and_request_id() -> None:
    with pytest.raises(AmbiguousCreate) as caught:
        run(Server(err(502, "upstream")), create())
    assert (caught.value.http_status, caught.value.request_id) == (502, "req_502")


def test_remix_follows_the_create_rules() -> None:
    server = Server(err(500), ok())
    with pytest.raises(AmbiguousCreate):
        run(server, lambda c: c.remix("video_abc", "now in the rain"))
    assert len(server.requests) == 1
    assert str(server.requests[0].url) == f"{BASE}/videos/video_abc/remix"
    assert json.loads(server.requests[0].content) == {"prompt": "now in the rain"}


def test_on_attempt_reports_every_attempt() -> None:
    seen: list[Attempt] = []
    server = Server(err(429, "slow down", headers={"retry-after-ms": "1500"}), ok())
    run(server, create(on_attempt=seen.append))
    assert seen == [
        Attempt("POST", "/videos", 1, 429, "req_429", "HTTP 429: slow down", 1.5),
        Attempt("POST", "/videos", 2, 200, "req_ok", None, None),
    ]


def test_on_attempt_reports_the_final_failure_without_retry() -> None:
    seen: list[Attempt] = []
    with pytest.raises(AmbiguousCreate):
        run(Server(httpx.ReadTimeout("slow")), create(on_attempt=seen.append))
    assert seen == [Attempt("POST", "/videos", 1, None, None,
                            "no answer within 60 s (read timeout)", None)]


# -- ids, listing, deleting -----------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", ".", "..", "video_\x1b[31m", "video_\n", " video",
                                 "video ", "video_\x00", "vid\u202eeo", "x" * 1025])
def test_invalid_ids_are_rejected_before_any_request(bad: str) -> None:
    """Ids are opaque: only control and format characters, edge spaces, the dot segments
    and lengths over 1024 are refused."""
    assert not valid_video_id(bad)
    server = Server(ok())
    for call in (lambda c: c.retrieve(bad), lambda c: c.delete(bad),
                 lambda c: c.remix(bad, "x")):
        with pytest.raises(InvalidInput):
            run(server, call)

    async def open_content(c: VideosClient) -> None:
        async with c.stream_content(bad):
            pass
    with pytest.raises(InvalidInput):
        run(server, open_content)
    assert server.requests == []


def test_gateway_ids_are_accepted() -> None:
    assert valid_video_id("video_68d7512d07848190b3e45da0ecbebcde054cdfb4")
    assert valid_video_id("task-01HZX")
    assert valid_video_id("gemini::operations/abc123")
    assert valid_video_id("vidéo ../x?y#z%2F")


@pytest.mark.parametrize("video_id", ["gemini::operations/abc", "../../etc/passwd",
                                      "a?b=c#d", "%2F..%2F", "vidéo x"])
def test_an_id_is_always_one_percent_encoded_path_segment(video_id: str) -> None:
    server = Server(ok(video_json(video_id)), ok(video_json(video_id)))
    run(server, lambda c: c.retrieve(video_id))
    run(server, lambda c: c.delete(video_id))
    for request in server.requests:
        raw = request.url.raw_path.decode()
        assert raw.startswith("/v1/videos/") and raw.count("/") == 3, raw
        assert not request.url.query
        assert urllib.parse.unquote(raw.removeprefix("/v1/videos/")) == video_id


def test_iter_recent_follows_the_cursor() -> None:
    pages = {
        None: {"object": "list", "data": [video_json("video_c"), video_json("video_b")],
               "first_id": "video_c", "last_id": "video_b", "has_more": True},
        "video_b": {"object": "list", "data": [video_json("video_a"), "junk"],
                    "first_id": "video_a", "last_id": "video_a", "has_more": False},
    }
    server = Server(lambda r: httpx.Response(200, json=pages[r.url.params.get("after")]))

    async def collect(c: VideosClient) -> list[str]:
        return [v.id async for v in c.iter_recent()]
    assert run(server, collect) == ["video_c", "video_b", "video_a"]
    assert [dict(r.url.params) for r in server.requests] == [
        {"limit": "100", "order": "desc"},
        {"limit": "100", "order": "desc", "after": "video_b"}]


def test_iter_recent_stops_at_max_pages() -> None:
    page = {"data": [video_json("video_x")], "last_id": "video_x", "has_more": True}
    server = Server(lambda r: httpx.Response(200, json=page | {
        "last_id": f"video_{len(server.requests)}"}))

    async def collect(c: VideosClient) -> int:
        return len([v async for v in c.iter_recent(max_pages=3)])
    assert run(server, collect) == 3 and len(server.requests) == 3


def test_delete() -> None:
    server = Server(httpx.Response(200, json={"id": "video_abc", "object": "video.deleted",
                                              "deleted": True}))
    assert run(server, lambda c: c.delete("video_abc")).value is True
    assert server.requests[0].method == "DELETE"


def test_too_large_json_is_refused_without_reading_it_all() -> None:
    sent = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(40):  # 40 MiB if read to the end
            sent.append(1)
            yield b" " * (1024 * 1024)

    server = Server(lambda r: httpx.Response(200, content=body()))
    with pytest.raises(ApiError, match="response too large"):
        run(server, lambda c: c.retrieve("video_abc"))
    assert len(sent) <= 11 and len(server.requests) == 1


def test_too_large_declared_json_is_refused_before_reading() -> None:
    huge = httpx.Response(200, headers={"content-length": str(11 * 1024 * 1024)},
                          content=b"{}")
    with pytest.raises(ApiError, match="response too large"):
        run(Server(huge), lambda c: c.retrieve("video_abc"))


# -- content ------------------------------------------------------------------------------


def content_server(location: str) -> Server:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(302, headers={"location": location})
        return httpx.Response(200, content=b"MP4DATA", headers={"content-length": "7"})
    return Server(reply)


async def read_all(c: VideosClient) -> bytes:
    async with c.stream_content("video_abc") as stream:
        assert (stream.status, stream.start, stream.total_size) == (200, 0, 7)
        return b"".join([chunk async for chunk in stream.chunks()])


def test_redirect_to_another_origin_drops_credentials() -> None:
    server = content_server("https://cdn.example/file.mp4?sig=1")
    assert run(server, read_all, organization="org_1") == b"MP4DATA"
    first, second = server.requests
    assert first.headers["authorization"] == f"Bearer {KEY}"
    assert first.url.params["variant"] == "video"
    assert str(second.url) == "https://cdn.example/file.mp4?sig=1"
    for name in ("authorization", "api-key", "openai-organization"):
        assert name not in second.headers


def test_redirect_within_the_origin_keeps_credentials() -> None:
    server = content_server("/v1/files/blob")
    assert run(server, read_all, auth_style="azure") == b"MP4DATA"
    assert server.requests[1].headers["api-key"] == KEY
    assert str(server.requests[1].url) == "http://api.test/v1/files/blob"


def test_redirect_loop_is_bounded() -> None:
    server = Server(httpx.Response(302, headers={"location": "/v1/again"}))
    with pytest.raises(ApiError, match="too many redirects"):
        run(server, read_all)
    assert len(server.requests) == 6


def test_ranged_content() -> None:
    server = Server(httpx.Response(206, content=b"DATA", headers={
        "content-range": "bytes 3-6/7", "x-request-id": "req_r"}))

    async def ranged(c: VideosClient) -> tuple[Any, ...]:
        async with c.stream_content("video_abc", variant="thumbnail", offset=3) as s:
            return s.status, s.start, s.total_size, s.request_id
    assert run(server, ranged) == (206, 3, 7, "req_r")
    assert server.requests[0].headers["range"] == "bytes=3-"
    assert server.requests[0].url.params["variant"] == "thumbnail"


def test_content_404_raises_not_found() -> None:
    server = Server(httpx.Response(404, json={"error": {"message": "Video not found"}}))
    with pytest.raises(ApiError) as caught:
        run(server, read_all)
    assert (caught.value.http_status, caught.value.code) == (404, "not_found")


# -- settings -----------------------------------------------------------------------------


def test_settings_repr_hides_the_key() -> None:
    settings = ApiSettings(base_url=BASE, api_key=KEY)
    assert KEY not in repr(settings) and KEY not in str(settings)
    assert "sk-...WXYZ" in repr(settings)
    assert "***" in repr(ApiSettings(base_url=BASE, api_key="short"))


def test_bad_base_url_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        VideosClient(ApiSettings(base_url="api.openai.com/v1", api_key=KEY))
