"""The fal and Replicate adapters on httpx.MockTransport: what they send, how they read
every answer (hostile ones too), and that credentials never leave the provider's origin."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.errors import AmbiguousCreate, ApiError, TransportError
from sora_cli.providers.base import CreateRequest, ImageInput, RemoteState
from sora_cli.providers.download import download_from
from sora_cli.providers.endpoint import EndpointSettings
from sora_cli.providers.fal import adapter as fal
from sora_cli.providers.replicate.adapter import ReplicateApi, ReplicateProvider
from sora_cli.providers.wire import Attempt

QUEUE = "https://queue.fal.test"
PLATFORM = "https://api.fal.test/v1"
REPLICATE = "https://api.replicate.test"
KLING = "fal-ai/kling-video/v2.1/master/text-to-video"
Handler = Callable[[httpx.Request], httpx.Response]


def job(provider: str = "fal", model: str = KLING, **kw: Any) -> Job:
    fields: dict[str, Any] = {"prompt": "a fox", "size": "1280x720", "seconds": 5,
                              "status": JobStatus.RUNNING, "created_at": 1.0, "updated_at": 1.0,
                              "provider": provider,
                              "params": {"duration": "5", "aspect_ratio": "16:9"}, **kw}
    return Job(id="abcd2345", model=model, **fields)


def fal_provider(handler: Handler) -> fal.FalProvider:
    transport = httpx.MockTransport(handler)
    settings = EndpointSettings(QUEUE, "fal-key", timeout=5, max_retries=1)
    return fal.FalProvider(
        fal.FalApi(settings, transport=transport, sleep=_no_sleep),
        fal.FalApi(replace(settings, base_url=PLATFORM), transport=transport, sleep=_no_sleep))


def replicate_provider(handler: Handler) -> ReplicateProvider:
    return ReplicateProvider(ReplicateApi(EndpointSettings(REPLICATE, "r8-key", timeout=5,
                                                           max_retries=1),
                                          transport=httpx.MockTransport(handler),
                                          sleep=_no_sleep))


async def _no_sleep(seconds: float) -> None:
    return None


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def attempts() -> tuple[list[Attempt], Callable[[Attempt], None]]:
    seen: list[Attempt] = []
    return seen, seen.append


URLS = {"request_id": "req-1", "status_url": f"{QUEUE}/fal-ai/kling-video/requests/req-1/status",
        "response_url": f"{QUEUE}/fal-ai/kling-video/requests/req-1",
        "cancel_url": f"{QUEUE}/fal-ai/kling-video/requests/req-1/cancel"}


# --- fal ---------------------------------------------------------------------------------


def test_fal_submit_sends_the_input_with_its_key_and_keeps_the_urls() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={**URLS, "queue_position": 3},
                              headers={"x-fal-request-id": "req-1"})

    seen, record = attempts()
    image = ImageInput(name="a.png", data=b"\x89PNG....", mime="image/png")
    created = run(fal_provider(handler).create(
        CreateRequest(job(model="fal-ai/kling-video/v2.1/pro/image-to-video", params={}),
                      image), on_attempt=record))
    assert created.remote_id == "req-1"
    assert created.handle == {k: URLS[k] for k in fal.URL_KEYS}
    assert created.polled is not None and created.polled.queue_position == 3
    request = sent[0]
    assert str(request.url) == f"{QUEUE}/fal-ai/kling-video/v2.1/pro/image-to-video"
    assert request.headers["authorization"] == "Key fal-key"
    body = json.loads(request.content)
    assert body["prompt"] == "a fox"
    assert body["image_url"].startswith("data:image/png;base64,")
    assert seen[0].request_id == "req-1"  # x-fal-request-id is the request id


@pytest.mark.parametrize("answer", [
    {**URLS, "status_url": "https://elsewhere.test/fal-ai/kling-video/requests/req-1/status"},
    {**URLS, "request_id": "../../etc"},
    {k: v for k, v in URLS.items() if k != "cancel_url"},
])
def test_fal_submit_answered_unusably_is_ambiguous(answer: dict[str, Any]) -> None:
    provider = fal_provider(lambda r: httpx.Response(200, json=answer))
    with pytest.raises(AmbiguousCreate) as raised:
        run(provider.create(CreateRequest(job()), on_attempt=lambda a: None))
    assert raised.value.http_status == 200  # it answered: never sent again (create_unconfirmed)


def fal_poll(status: dict[str, Any], result: httpx.Response | None = None) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status"):
            assert request.url.params["logs"] == "0"
            return httpx.Response(200 if status["status"] == "COMPLETED" else 202, json=status)
        assert result is not None
        return result

    return run(fal_provider(handler).poll(job(remote_id="req-1", remote_handle=URLS),
                                          on_attempt=lambda a: None))


def test_fal_states_and_the_queue_position() -> None:
    p = fal_poll({"status": "IN_QUEUE", "queue_position": 4})
    assert (p.state, p.queue_position) == (RemoteState.QUEUED, 4)
    assert fal_poll({"status": "IN_PROGRESS", "logs": None}).state is RemoteState.RUNNING
    done = fal_poll({"status": "COMPLETED"}, httpx.Response(200, json={
        "video": {"url": "https://v3.fal.test/files/x.mp4", "content_type": "video/mp4"}}))
    assert (done.state, done.result) == (RemoteState.COMPLETED, "https://v3.fal.test/files/x.mp4")
    other = fal_poll({"status": "COMPLETED"}, httpx.Response(200, json={
        "videos": [{"url": "https://cdn.test/a.png", "content_type": "image/png"},
                   {"url": "https://cdn.test/b.mp4", "content_type": "video/mp4"}]}))
    assert other.result == "https://cdn.test/b.mp4"  # the first video/* file object


def test_fal_failures_carry_the_providers_message() -> None:
    p = fal_poll({"status": "COMPLETED", "error": "Request timed out",
                  "error_type": "request_timeout"})
    assert p.state is RemoteState.FAILED and p.error is not None
    assert (p.error.code, p.error.message) == ("request_timeout", "Request timed out")
    refused = fal_poll({"status": "COMPLETED"}, httpx.Response(422, json={"detail": [
        {"loc": ["body", "prompt"], "msg": "flagged by a content checker",
         "type": "content_policy_violation"}]}))
    assert refused.state is RemoteState.FAILED and refused.error is not None
    assert refused.error.message == "prompt: flagged by a content checker"
    assert refused.error.code == "content_policy_violation"
    gone = fal_poll({"status": "COMPLETED"}, httpx.Response(404, json={"detail": "gone"}))
    assert gone.state is RemoteState.GONE
    for unusable in ({"video": {"url": "javascript:alert(1)"}}, {"video": "x"}):
        p = fal_poll({"status": "COMPLETED"}, httpx.Response(200, json=unusable))
        assert p.state is RemoteState.FAILED and p.error is not None
        assert p.error.code == "no_video"
    with pytest.raises(ApiError) as unreadable:  # not JSON: the runner asks again
        fal_poll({"status": "COMPLETED"}, httpx.Response(200, json=[]))
    assert unreadable.value.http_status == 200
    with pytest.raises(TransportError):  # a server error is not the request failing
        fal_poll({"status": "COMPLETED"}, httpx.Response(500, json={"detail": "oops"}))


def test_fal_cancel_says_when_the_request_already_ran() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "PUT" and str(request.url) == URLS["cancel_url"]
        return httpx.Response(400, json={"status": "ALREADY_COMPLETED"})

    note = run(fal_provider(handler).cancel(job(remote_id="req-1", remote_handle=URLS)))
    assert "already ran" in note


def listed(*items: dict[str, Any]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models/requests/by-endpoint"
        assert request.url.params["endpoint_id"] == KLING
        assert request.url.params["expand"] == "payloads"
        return httpx.Response(200, json={"items": list(items), "has_more": False})
    return handler


def item(rid: str, sent_at: float, **input_: Any) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent_at))
    return {"request_id": rid, "endpoint_id": KLING, "sent_at": stamp,
            "json_input": {"prompt": "a fox", "duration": "5", "aspect_ratio": "16:9",
                           **input_}}


def test_fal_finds_an_unanswered_submit_in_the_platform_list() -> None:
    started = time.time() - 60
    provider = fal_provider(listed(item("older", started - 600), item("other", started + 5,
                                                                       prompt="a cat"),
                                   item("mine", started + 3), item("taken", started + 2)))
    found = run(provider.find_created(
        CreateRequest(job(status=JobStatus.SUBMITTING, create_started_at=started)),
        taken=lambda rid: rid == "taken", on_attempt=lambda a: None))
    assert found.created is not None and found.created.remote_id == "mine"
    assert found.created.handle == {k: v.replace("req-1", "mine") for k, v in URLS.items()
                                    if k != "request_id"}


def test_fal_never_concludes_from_a_missing_request(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = fal_provider(listed())
    request = CreateRequest(job(status=JobStatus.SUBMITTING, create_started_at=time.time()))
    found = run(provider.find_created(request, taken=lambda r: False, on_attempt=lambda a: 0))
    assert found.later and found.created is None  # it may still be running: look again
    monkeypatch.setattr(fal, "LIST_WAIT", 0.0)
    found = run(provider.find_created(request, taken=lambda r: False, on_attempt=lambda a: 0))
    assert found.undecided is not None and KLING in found.undecided


def test_results_on_another_origin_are_fetched_without_credentials(tmp_path: Any) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "queue.fal.test":
            return httpx.Response(302, headers={"location": "https://cdn.test/v.mp4"})
        return httpx.Response(200, content=b"video bytes" * 100)  # over the 1 KiB minimum

    provider = fal_provider(handler)
    for url in ("https://v3.fal.test/v.mp4", f"{QUEUE}/own/v.mp4"):
        j = job(remote_id="req-1", remote_handle={**URLS, "result": url})
        saved = run(download_from(lambda offset, j=j: provider.open_result(j, offset=offset),
                                  tmp_path / "v.mp4", name="req-1", path="/v.mp4"))
        assert saved.bytes == 1100
        (tmp_path / "v.mp4").unlink()
    assert [(r.url.host, "authorization" in r.headers) for r in seen] == [
        ("v3.fal.test", False), ("queue.fal.test", True), ("cdn.test", False)]


# --- Replicate -----------------------------------------------------------------------------


def prediction(status: str, **kw: Any) -> dict[str, Any]:
    return {"id": "p1", "model": "google/veo-3", "version": "hidden", "status": status,
            "input": {"prompt": "a fox", "duration": 8}, "created_at": "2026-01-01T00:00:00Z",
            **kw}


def test_replicate_create_posts_the_input_to_the_model() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json=prediction("starting"))

    created = run(replicate_provider(handler).create(
        CreateRequest(job("replicate", "google/veo-3", params={"duration": 8})),
        on_attempt=lambda a: None))
    assert created.remote_id == "p1" and created.polled.state is RemoteState.QUEUED
    assert str(sent[0].url) == f"{REPLICATE}/v1/models/google/veo-3/predictions"
    assert sent[0].headers["authorization"] == "Bearer r8-key"
    assert json.loads(sent[0].content) == {"input": {"prompt": "a fox", "duration": 8}}


@pytest.mark.parametrize(("answer", "state", "result"), [
    (prediction("processing"), RemoteState.RUNNING, None),
    (prediction("succeeded", output="https://replicate.delivery/x.mp4",
                completed_at="2026-01-01T00:01:00Z"), RemoteState.COMPLETED,
     "https://replicate.delivery/x.mp4"),
    (prediction("succeeded", output=["https://replicate.delivery/a.mp4"]),
     RemoteState.COMPLETED, "https://replicate.delivery/a.mp4"),
    (prediction("succeeded", output=None, data_removed=True), RemoteState.GONE, None),
    (prediction("failed", error="NSFW content detected"), RemoteState.FAILED, None),
    (prediction("aborted"), RemoteState.CANCELLED, None),
    (prediction("succeeded", output="ftp://x/y.mp4"), RemoteState.FAILED, None),
])
def test_replicate_states(answer: dict[str, Any], state: RemoteState, result: str | None) -> None:
    p = run(replicate_provider(lambda r: httpx.Response(200, json=answer)).poll(
        job("replicate", "google/veo-3", remote_id="p1"), on_attempt=lambda a: None))
    assert (p.state, p.result) == (state, result)
    if answer.get("completed_at") and state is RemoteState.COMPLETED:
        assert p.expires_at == pytest.approx(1767225660 + 3600, abs=5)  # an hour after the end
    if state is RemoteState.FAILED and answer.get("error"):
        assert p.error is not None and p.error.message == "NSFW content detected"


def test_replicate_reconciles_through_the_list_and_follows_only_its_own_cursor() -> None:
    started = time.time() - 30

    def stamp(at: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(at))

    pages = {
        "": {"next": f"{REPLICATE}/v1/predictions?cursor=2", "results": [
            {**prediction("processing"), "id": "newer", "created_at": stamp(started + 20),
             "input": {"prompt": "other"}},
            {**prediction("starting"), "id": "mine", "created_at": stamp(started + 2)}]},
        "2": {"next": "https://evil.test/v1/predictions?cursor=3", "results": [
            {**prediction("starting"), "id": "twin", "created_at": stamp(started + 1)}]},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "api.replicate.test"
        return httpx.Response(200, json=pages[request.url.params.get("cursor", "")])

    request = CreateRequest(job("replicate", "google/veo-3", params={"duration": 8},
                                status=JobStatus.SUBMITTING, create_started_at=started))
    with pytest.raises(Exception, match="another origin"):
        run(replicate_provider(handler).find_created(request, taken=lambda r: False,
                                                     on_attempt=lambda a: None))
    pages["2"]["next"] = None
    found = run(replicate_provider(handler).find_created(request, taken=lambda r: False,
                                                         on_attempt=lambda a: None))
    assert found.created is not None and found.created.remote_id == "twin"  # the earliest
    assert found.others == ("mine",)
