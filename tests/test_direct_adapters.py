"""sora's Runway, Luma and MiniMax adapters against the fake (in-process): what they
send, how they read every state, errors inside 200s, fresh result URLs, and how an
unanswered create is (or is never) found again."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sora_cli.config import load_settings
from sora_cli.domain.catalogue import find_model, map_request
from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.errors import AmbiguousCreate, ApiError, AuthError, CannotSend, InvalidInput
from sora_cli.fake.server import FakeOptions, FakeServer, Fault
from sora_cli.providers.base import CreateRequest, ImageInput, Polled, RemoteState
from sora_cli.providers.download import download_from
from sora_cli.providers.registry import make_adapter
from sora_cli.providers.wire import Attempt

KEYS = {"RUNWAYML_API_SECRET": "key_r", "LUMAAI_API_KEY": "luma_k", "MINIMAX_API_KEY": "mm_k"}
MakeServer = Callable[..., FakeServer]


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


def adapter(server: FakeServer, provider: str, tmp_path: Path, **env: str) -> Any:
    urls = server.urls()
    settings = load_settings({"SORA_HOME": str(tmp_path), **KEYS,
                              f"SORA_{provider.upper()}_BASE_URL": str(urls[provider]),
                              "SORA_MAX_RETRIES": "2", **env})
    return make_adapter(provider, settings)


def job(provider: str, model: str, prompt: str = "a heron", *, seconds: int | None = None,
        size: str | None = None, image: bool = False, **fields: Any) -> Job:
    info = find_model(provider, model)
    assert info is not None
    mapped = map_request(info, seconds=seconds, size=size, image=image)
    now = time.time()
    return Job(id="j" + str(int(now * 1e6))[-7:], prompt=prompt, model=model, size=mapped.size,
               seconds=mapped.seconds, status=JobStatus.SUBMITTING, created_at=now,
               updated_at=now, provider=provider, params=mapped.fields,
               create_started_at=now, **fields)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def log() -> tuple[list[Attempt], Callable[[Attempt], None]]:
    seen: list[Attempt] = []
    return seen, seen.append


async def until_done(a: Any, j: Job, timeout: float = 10) -> Polled:
    deadline = time.monotonic() + timeout
    while True:
        p: Polled = await a.poll(j, on_attempt=lambda _: None)
        if p.state not in (RemoteState.QUEUED, RemoteState.RUNNING):
            return p
        assert time.monotonic() < deadline, p
        await asyncio.sleep(0.05)


async def created_and_done(a: Any, request: CreateRequest) -> tuple[Job, Polled]:
    made = await a.create(request, on_attempt=lambda _: None)
    j = dataclasses.replace(request.job, remote_id=made.remote_id, status=JobStatus.RUNNING)
    p = await until_done(a, j)
    return dataclasses.replace(j, remote_handle={"result": p.result}), p


async def save(a: Any, j: Job, dest: Path) -> str:
    saved = await download_from(lambda offset: a.open_result(j, offset=offset), dest,
                                name=str(j.remote_id), path=a.result_path(j))
    await a.aclose()
    return saved.sha256


# --- Runway -------------------------------------------------------------------------------


def test_runway_sends_text_or_image_to_video_and_saves_the_result(
        make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server()
    a = adapter(server, "runway", tmp_path)
    t2v = job("runway", "gen4.5", seconds=7, size="720x1280")
    assert a.where(t2v).endswith("/runway/v1/text_to_video")

    async def go() -> tuple[Polled, str, dict[str, Any]]:
        j, p = await created_and_done(a, CreateRequest(t2v))
        sha = await save(a, j, tmp_path / "t2v.mp4")
        image = ImageInput(name="a.png", data=b"\x89PNG....", mime="image/png")
        i2v = job("runway", "gen4_turbo", size="960x960", image=True)
        b = adapter(server, "runway", tmp_path)
        made = await b.create(CreateRequest(i2v, image), on_attempt=lambda _: None)
        await b.aclose()
        return p, sha, server.urls() | {"i2v": made.remote_id}

    p, sha, ids = run(go())
    assert p.state is RemoteState.COMPLETED and p.remote_status == "SUCCEEDED"
    assert p.result is not None and p.result.startswith(server.cdn_url)
    stats = server.backend.stats()
    assert stats["counters"].get("cdn_with_credentials", 0) == 0
    sent = server.backend.remote.get("runway", ids["i2v"])
    assert sent is not None and sent.input == {
        "model": "gen4_turbo", "promptText": "a heron", "duration": 5, "ratio": "960:960",
        "promptImage": "data:image/png;base64,iVBORy4uLi4="}
    assert len(sha) == 64


def test_runway_reads_every_state_and_its_failure(make_server: MakeServer,
                                                  tmp_path: Path) -> None:
    server = make_server(job_seconds=2, fail_prompt="forbidden")
    a = adapter(server, "runway", tmp_path)

    async def go() -> tuple[list[Polled], Polled]:
        made = [await a.create(CreateRequest(job("runway", "gen4.5", f"clip {n}")),
                               on_attempt=lambda _: None) for n in range(3)]
        first = [await a.poll(job("runway", "gen4.5", remote_id=m.remote_id),
                              on_attempt=lambda _: None) for m in made]
        bad = await a.create(CreateRequest(job("runway", "gen4.5", "something forbidden")),
                             on_attempt=lambda _: None)
        failed = await until_done(a, job("runway", "gen4.5", remote_id=bad.remote_id))
        await a.aclose()
        return first, failed

    first, failed = run(go())
    assert [p.remote_status for p in first] == ["PENDING", "PENDING", "THROTTLED"]
    assert all(p.state is RemoteState.QUEUED and p.poll_after == 5.0 for p in first)
    assert failed.state is RemoteState.FAILED and failed.error is not None
    assert failed.error.code == "SAFETY.INPUT.TEXT"
    assert "content moderation" in failed.error.message


def test_a_stale_runway_url_is_renewed_by_reading_the_task_again(
        make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server(url_seconds=1)
    a = adapter(server, "runway", tmp_path)

    async def go() -> tuple[str, int]:
        j, p = await created_and_done(a, CreateRequest(job("runway", "gen4.5")))
        assert p.result is not None
        expires = int(p.result.split("Expires=")[1].split("&")[0])
        while time.time() < expires:  # the stored URL goes stale
            await asyncio.sleep(0.05)
        reads = server.backend.stats()["requests_by_route"].get("retrieve", 0)
        sha = await save(a, j, tmp_path / "late.mp4")
        return sha, server.backend.stats()["requests_by_route"]["retrieve"] - reads

    sha, rereads = run(go())
    assert rereads == 1  # one fresh read of the task, then the download
    assert sha == server.expected_sha256(server.backend.remote.listed("runway")[0].id)


def test_runway_cancel_and_an_unanswered_create(make_server: MakeServer,
                                                tmp_path: Path) -> None:
    server = make_server(job_seconds=30)
    server.add_faults(Fault("create_then_drop", "create"))
    a = adapter(server, "runway", tmp_path)

    async def go() -> str:
        with pytest.raises(AmbiguousCreate):
            await a.create(CreateRequest(job("runway", "gen4.5")), on_attempt=lambda _: None)
        made = await a.create(CreateRequest(job("runway", "gen4.5", "stop")),
                              on_attempt=lambda _: None)
        note: str = await a.cancel(job("runway", "gen4.5", remote_id=made.remote_id))
        await a.aclose()
        return note

    assert "cancelled" in run(go())
    assert server.create_count("a heron") == 1  # sent once: never re-sent by the adapter
    assert "find_created" not in a.capabilities


# --- Luma ---------------------------------------------------------------------------------


def test_luma_creates_polls_saves_and_imports(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server()
    a = adapter(server, "luma", tmp_path)
    j0 = job("luma", "ray-flash-2", seconds=9, size="3840x2160")
    url = "https://example.com/first.jpg"

    async def go() -> tuple[Polled, Any]:
        j, p = await created_and_done(a, CreateRequest(j0, ImageInput(url=url)))
        await save(a, j, tmp_path / "luma.mp4")
        b = adapter(server, "luma", tmp_path)
        looked = await b.lookup(str(j.remote_id))
        await b.aclose()
        return p, looked

    p, looked = run(go())
    assert p.state is RemoteState.COMPLETED and p.remote_status == "completed"
    assert looked.prompt == "a heron" and looked.model == "ray-flash-2"
    assert looked.params == {"generation_type": "video", "duration": "9s", "aspect_ratio": "16:9",
                             "resolution": "4k"}
    sent = server.backend.remote.listed("luma")[0].input
    assert sent["keyframes"] == {"frame0": {"type": "image", "url": url}}
    local = CreateRequest(j0, ImageInput(name="a.png", data=b"x", mime="image/png"))
    with pytest.raises(CannotSend, match="URL only"):
        run(adapter(server, "luma", tmp_path).create(local, on_attempt=lambda _: None))


def test_luma_finds_an_unanswered_create_in_its_list(make_server: MakeServer,
                                                     tmp_path: Path) -> None:
    server = make_server(job_seconds=5)
    server.add_faults(Fault("create_then_drop", "create", prompt="lost"))
    a = adapter(server, "luma", tmp_path)
    lost = job("luma", "ray-2", "lost", seconds=5)

    async def go() -> Any:
        for n in range(3):  # others, made before and after: not it
            await a.create(CreateRequest(job("luma", "ray-2", f"other {n}")),
                           on_attempt=lambda _: None)
        with pytest.raises(AmbiguousCreate):
            await a.create(CreateRequest(lost), on_attempt=lambda _: None)
        await a.create(CreateRequest(job("luma", "ray-2", "lost", seconds=9)),
                       on_attempt=lambda _: None)  # same prompt, another duration
        found = await a.find_created(CreateRequest(lost), taken=lambda _: False,
                                     on_attempt=lambda _: None)
        none = await a.find_created(CreateRequest(job("luma", "ray-2", "never sent")),
                                    taken=lambda _: False, on_attempt=lambda _: None)
        taken = await a.find_created(CreateRequest(lost), taken=lambda _: True,
                                     on_attempt=lambda _: None)
        await a.aclose()
        return found, none, taken

    found, none, taken = run(go())
    made = [j for j in server.backend.remote.listed("luma") if j.prompt == "lost"
            and j.input.get("duration") == "5s"]
    assert found.created is not None and found.created.remote_id == made[0].id
    assert found.others == ()
    assert none.created is None and none.undecided is None and not none.later  # absent
    assert taken.created is None and taken.undecided is None


def test_a_luma_list_that_cannot_be_read_is_unknown_never_absent(
        make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server()
    server.add_faults(Fault("error", "list", status=500, times=10))
    a = adapter(server, "luma", tmp_path, SORA_MAX_RETRIES="0")
    with pytest.raises(ApiError):
        run(a.find_created(CreateRequest(job("luma", "ray-2")), taken=lambda _: False,
                           on_attempt=lambda _: None))


def test_luma_gives_up_deciding_past_its_page_limit(make_server: MakeServer, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(job_seconds=30)
    a = adapter(server, "luma", tmp_path)
    monkeypatch.setattr("sora_cli.providers.luma.adapter.PAGE", 2)
    monkeypatch.setattr("sora_cli.providers.luma.adapter.MAX_LIST_PAGES", 2)

    async def go() -> Any:
        for n in range(5):
            await a.create(CreateRequest(job("luma", "ray-2", f"busy {n}")),
                           on_attempt=lambda _: None)
        found = await a.find_created(CreateRequest(job("luma", "ray-2", "unseen")),
                                     taken=lambda _: False, on_attempt=lambda _: None)
        await a.aclose()
        return found

    found = run(go())
    assert found.created is None and found.undecided is not None
    assert "not sent again" in found.undecided


# --- MiniMax ------------------------------------------------------------------------------


def test_minimax_runs_through_the_file_hop_with_a_fresh_url_each_time(
        make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server()
    a = adapter(server, "minimax", tmp_path)

    async def go() -> tuple[Polled, str, str]:
        j, p = await created_and_done(a, CreateRequest(job("minimax", "MiniMax-Hailuo-02",
                                                           size="910x512")))
        first = second = await a.download_url(str(p.result))
        deadline = time.monotonic() + 5  # the signed URL's expiry is whole seconds
        while second == first and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            second = await a.download_url(str(p.result))
        await save(a, j, tmp_path / "mm.mp4")
        return p, first, second

    p, first, second = run(go())
    assert p.state is RemoteState.COMPLETED and p.remote_status == "Success"
    assert p.result is not None and p.result.isdigit()  # the file id is kept, not a URL
    assert first != second and first.startswith(server.cdn_url)
    assert server.backend.stats()["counters"].get("cdn_with_credentials", 0) == 0


def test_minimax_errors_inside_200s(make_server: MakeServer, tmp_path: Path) -> None:
    server = make_server(fail_prompt="forbidden")
    a = adapter(server, "minimax", tmp_path, SORA_MAX_RETRIES="1")

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        server.add_faults(Fault("error", "create", status=429))  # 1002: made nothing
        seen, record = log()
        made = await a.create(CreateRequest(job("minimax", "MiniMax-Hailuo-2.3", "rate")),
                              on_attempt=record)
        out["retried"] = [(x.http_status, x.error is not None) for x in seen]
        out["made"] = made.remote_id
        with pytest.raises(ApiError) as invalid:  # 2013: refused, not ambiguous
            await a.create(CreateRequest(dataclasses.replace(
                job("minimax", "MiniMax-Hailuo-2.3"), params={"duration": 7})),
                on_attempt=lambda _: None)
        out["invalid"] = invalid.value
        server.add_faults(Fault("create_then_error", "create", status=500))  # 1000
        with pytest.raises(AmbiguousCreate):
            await a.create(CreateRequest(job("minimax", "MiniMax-Hailuo-2.3", "unknown")),
                           on_attempt=lambda _: None)
        bad = await a.create(CreateRequest(job("minimax", "MiniMax-Hailuo-2.3",
                                               "something forbidden")),
                             on_attempt=lambda _: None)
        out["failed"] = await until_done(a, job("minimax", "MiniMax-Hailuo-2.3",
                                                remote_id=bad.remote_id))
        wrong = adapter(server, "minimax", tmp_path, MINIMAX_API_KEY="mm_k")
        server.options.api_key = "other"
        with pytest.raises(AuthError):
            await wrong.poll(job("minimax", "MiniMax-Hailuo-2.3", remote_id=made.remote_id),
                             on_attempt=lambda _: None)
        await wrong.aclose()
        await a.aclose()
        return out

    out = run(go())
    assert out["retried"] == [(200, True), (200, False)]  # 1002, then the task
    assert out["invalid"].code == "2013" and not isinstance(out["invalid"], AmbiguousCreate)
    assert "invalid params" in out["invalid"].message
    assert server.create_count("unknown") == 1
    failed: Polled = out["failed"]
    assert failed.state is RemoteState.FAILED and failed.error is not None
    assert failed.error.message == ("MiniMax reported the task as Fail: output new_sensitive "
                                    "(1027)")
    assert server.create_count("rate") == 1


def test_minimax_treats_failed_and_unknown_words_as_the_cli_and_docs_disagree() -> None:
    from sora_cli.providers.minimax.adapter import polled
    from sora_cli.providers.wire import Answer

    def state(body: dict[str, Any]) -> Polled:
        return polled(Answer(body, None, None))

    assert state({"status": "Failed", "base_resp": {"status_code": 0,
                                                    "status_msg": "success"}}).error is not None
    assert state({"status": "Failed"}).state is RemoteState.FAILED
    assert state({"status": "Unknown"}).state is RemoteState.RUNNING  # keep polling
    assert state({"status": "Success", "file_id": "../x"}).state is RemoteState.FAILED
    assert state({"status": "Success", "file_id": 123}).result == "123"


# --- the catalogue's mapping --------------------------------------------------------------


def test_sizes_and_lengths_map_as_each_model_takes_them() -> None:
    gen45 = find_model("runway", "gen4.5")
    assert gen45 is not None
    assert map_request(gen45, seconds=None, size=None).fields == {"duration": 5,
                                                                    "ratio": "1280:720"}
    with pytest.raises(InvalidInput, match="only with --image"):
        map_request(gen45, seconds=None, size="1584x672")
    with pytest.raises(InvalidInput, match="takes --size 1280x720"):
        map_request(gen45, seconds=None, size="1920x1080")
    ray = find_model("luma", "ray-2")
    assert ray is not None
    assert map_request(ray, seconds=9, size="540x960").fields == {
        "duration": "9s", "aspect_ratio": "9:16", "resolution": "540p"}
    hailuo = find_model("minimax", "MiniMax-Hailuo-2.3")
    assert hailuo is not None
    assert map_request(hailuo, seconds=10, size="1366x768").fields == {
        "duration": 10, "resolution": "768P"}
    with pytest.raises(InvalidInput, match="at most 6 s"):
        map_request(hailuo, seconds=10, size="1080x1920")


def test_luma_cancel_deletes_and_says_what_is_not_known(make_server: MakeServer,
                                                        tmp_path: Path) -> None:
    server = make_server(job_seconds=30)
    a = adapter(server, "luma", tmp_path)

    async def go() -> tuple[str, str]:
        made = await a.create(CreateRequest(job("luma", "ray-2")), on_attempt=lambda _: None)
        j = job("luma", "ray-2", remote_id=made.remote_id)
        first = await a.cancel(j)
        again = await a.cancel(j)
        await a.aclose()
        return first, again

    first, again = run(go())
    assert "deleted the generation" in first and "not documented" in first
    assert again == "Luma no longer has the generation"
    assert all(j.deleted for j in server.backend.remote.listed("luma"))
