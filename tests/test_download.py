"""Saving videos: atomic, hashed, resumed after truncation; never a half file at dest."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import random
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sora_cli.errors import ApiError, SoraError, TransportError
from sora_cli.providers import download
from sora_cli.providers.download import Saved, download_to
from sora_cli.providers.openai.client import ApiSettings, Attempt, VideosClient

BASE = "http://api.test/v1"
VIDEO = random.Random(3).randbytes(300_000)
SHA = hashlib.sha256(VIDEO).hexdigest()
Handler = Callable[[httpx.Request, int], httpx.Response]


def full(request: httpx.Request, n: int) -> httpx.Response:
    return httpx.Response(200, content=VIDEO, headers={"content-length": str(len(VIDEO))})


def cut_at(size: int, *, fail: bool = False) -> httpx.Response:
    """A 200 announcing the whole video but ending (or failing) after ``size`` bytes."""
    async def body() -> AsyncIterator[bytes]:
        yield VIDEO[:size]
        if fail:
            raise httpx.ReadError("connection reset")
    return httpx.Response(200, content=body(), headers={"content-length": str(len(VIDEO))})


def ranged(request: httpx.Request) -> httpx.Response:
    start = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
    return httpx.Response(206, content=VIDEO[start:], headers={
        "content-range": f"bytes {start}-{len(VIDEO) - 1}/{len(VIDEO)}"})


class Sleeps(list[float]):
    async def __call__(self, delay: float) -> None:
        self.append(delay)


class Fake:
    """A content endpoint: ``handler(request, n)`` answers the n-th request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request, len(self.requests))


def fetch(tmp_path: Path, fake: Fake | Handler, **kw: Any) -> Saved:
    server = fake if isinstance(fake, Fake) else Fake(fake)

    async def go() -> Saved:
        settings = ApiSettings(base_url=BASE, api_key="sk-test-key-1234567890")
        async with VideosClient(settings, transport=httpx.MockTransport(server)) as client:
            kw.setdefault("sleep", Sleeps())
            return await download_to(client, "video_abc", tmp_path / "out.mp4", **kw)
    return asyncio.run(go())


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir())


def test_happy_path(tmp_path: Path) -> None:
    progress: list[tuple[int, int | None]] = []
    server = Fake(full)
    saved = fetch(tmp_path, server, on_progress=lambda d, t: progress.append((d, t)))
    requests = server.requests
    assert saved == Saved(tmp_path / "out.mp4", len(VIDEO), SHA)
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO
    assert stat.S_IMODE((tmp_path / "out.mp4").stat().st_mode) == 0o600
    assert leftovers(tmp_path) == ["out.mp4"]
    assert len(requests) == 1 and "range" not in requests[0].headers
    assert requests[0].url.path == "/v1/videos/video_abc/content"
    assert progress[-1] == (len(VIDEO), len(VIDEO))
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


@pytest.mark.parametrize("fail", [False, True], ids=["short-body", "read-error"])
def test_truncated_body_resumes_with_range(tmp_path: Path, fail: bool) -> None:
    sleeps, seen = Sleeps(), list[Attempt]()
    server = Fake(lambda r, n: cut_at(100_000, fail=fail) if n == 1 else ranged(r))
    saved = fetch(tmp_path, server, sleep=sleeps, on_attempt=seen.append)
    requests = server.requests
    assert requests[1].headers["range"] == "bytes=100000-"
    assert saved.sha256 == SHA and saved.bytes == len(VIDEO)
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO
    assert len(sleeps) == 1 and 0.375 < sleeps[0] <= 0.5
    assert [(a.attempt, a.retry_in is not None, a.error is None) for a in seen] == [
        (1, True, False), (2, False, True)]


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path) -> None:
    server = Fake(lambda r, n: cut_at(100_000) if n == 1 else full(r, n))
    saved = fetch(tmp_path, server)
    requests = server.requests
    assert requests[1].headers["range"] == "bytes=100000-"
    assert saved.sha256 == SHA and saved.bytes == len(VIDEO)
    assert (tmp_path / "out.mp4").read_bytes() == VIDEO


def test_several_truncations(tmp_path: Path) -> None:
    def handler(request: httpx.Request, n: int) -> httpx.Response:
        if n == 1:
            return cut_at(50_000)
        answer = ranged(request)
        if n < 4:  # serve 50,000 more bytes each time, then the rest
            start = int(request.headers["range"][6:-1])
            return httpx.Response(206, content=VIDEO[start:start + 50_000],
                                  headers=dict(answer.headers))
        return answer
    server = Fake(handler)
    saved = fetch(tmp_path, server)
    requests = server.requests
    assert [r.headers.get("range") for r in requests] == [
        None, "bytes=50000-", "bytes=100000-", "bytes=150000-"]
    assert saved.sha256 == SHA


def test_unknown_size_accepts_what_came(tmp_path: Path) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield VIDEO[:5000]
    saved = fetch(tmp_path, lambda r, n: httpx.Response(200, content=body()),
                     on_progress=lambda d, t: None)
    assert saved.bytes == 5000 and saved.sha256 == hashlib.sha256(VIDEO[:5000]).hexdigest()


def test_404_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ApiError) as caught:
        fetch(tmp_path, lambda r, n: httpx.Response(404, json={"error": {"message": "gone"}}))
    assert caught.value.message == (
        "video_abc is no longer available on the server (expired or deleted)")
    assert caught.value.code == "expired_or_missing" and caught.value.http_status == 404
    assert leftovers(tmp_path) == []


def test_retryable_status_waits_for_the_hint(tmp_path: Path) -> None:
    sleeps = Sleeps()
    busy = httpx.Response(503, headers={"retry-after-ms": "2000"})
    saved = fetch(tmp_path, lambda r, n: busy if n == 1 else full(r, n), sleep=sleeps)
    assert sleeps == [2.0] and saved.sha256 == SHA


def test_gives_up_after_max_attempts_and_cleans_up(tmp_path: Path) -> None:
    sleeps, server = Sleeps(), Fake(lambda r, n: cut_at(100_000))
    with pytest.raises(TransportError, match="stopped at 100000 of 300000 bytes"):
        fetch(tmp_path, server, sleep=sleeps, max_attempts=3)
    assert len(server.requests) == 3 and len(sleeps) == 2
    assert leftovers(tmp_path) == []


def test_disk_full_removes_the_partial_file(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int, data: bytes | memoryview) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(download, "_write_all", no_space)
    with pytest.raises(SoraError) as caught:
        fetch(tmp_path, full)
    assert type(caught.value) is SoraError
    assert str(caught.value) == f"cannot write {tmp_path / 'out.mp4'}: No space left on device"
    assert leftovers(tmp_path) == []


def test_previous_file_at_dest_survives_a_failed_download(tmp_path: Path) -> None:
    (tmp_path / "out.mp4").write_bytes(b"old")
    with pytest.raises(ApiError):
        fetch(tmp_path, lambda r, n: httpx.Response(403, json={}))
    assert (tmp_path / "out.mp4").read_bytes() == b"old"
    assert leftovers(tmp_path) == ["out.mp4"]


def test_a_file_at_the_old_partial_name_is_someone_elses(tmp_path: Path) -> None:
    theirs = tmp_path / "out.mp4.partial"  # the temp file has a random name now
    theirs.write_bytes(b"not ours")
    theirs.chmod(0o644)
    saved = fetch(tmp_path, full)
    assert saved.sha256 == SHA and leftovers(tmp_path) == ["out.mp4", "out.mp4.partial"]
    assert theirs.read_bytes() == b"not ours"
    assert stat.S_IMODE((tmp_path / "out.mp4").stat().st_mode) == 0o600


def test_attempts_are_reported(tmp_path: Path) -> None:
    seen: list[Attempt] = []
    busy = httpx.Response(500, headers={"x-request-id": "req_1", "retry-after": "1"})
    fetch(tmp_path, lambda r, n: busy if n == 1 else full(r, n), on_attempt=seen.append)
    assert seen[0] == Attempt("GET", "/videos/video_abc/content", 1, 500, "req_1",
                              "HTTP 500: the server answered Internal Server Error", 1.0)
    assert seen[1] == Attempt("GET", "/videos/video_abc/content", 2, 200, None, None, None)
