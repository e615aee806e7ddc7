"""The fake's fal and Replicate families as sora's tests rely on them: their own paths,
auth schemes and error shapes, the subpath rule, cancels, the lists, the CDN origin."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from inproc import MakeServer
from waits import wait_until

from sora_cli.fake.server import FakeServer, Fault

KLING = "fal-ai/kling-video/v2.1/master/text-to-video"


@pytest.fixture
def server(make_server: MakeServer) -> FakeServer:
    return make_server(job_seconds=0.3, api_key="key", list_page_size=2)


def call(method: str, url: str, body: Any = None, auth: str | None = "Key key",
         ) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_fal_auth_paths_and_the_subpath_rule(server: FakeServer) -> None:
    fal = server.urls()["fal"]
    assert call("POST", f"{fal}/{KLING}", {"prompt": "x"}, auth="Bearer key")[0] == 401
    assert call("POST", f"{fal}/{KLING}", {"prompt": "x"}, auth="Key other")[0] == 401
    status, made, headers = call("POST", f"{fal}/{KLING}", {"prompt": "x"})
    assert status == 200 and headers["x-fal-request-id"] == made["request_id"]
    assert made["status_url"] == f"{fal}/fal-ai/kling-video/requests/{made['request_id']}/status"
    built = f"{fal}/{KLING}/requests/{made['request_id']}/status"  # from the whole endpoint id
    assert call("GET", built)[0] == 404
    assert call("GET", made["status_url"])[1]["status"] in ("IN_QUEUE", "IN_PROGRESS")
    bad = call("POST", f"{fal}/{KLING}", {"prompt": "x", "aspect_ratio": "4:3"})
    assert bad[0] == 422 and bad[1]["detail"][0]["loc"] == ["body", "aspect_ratio"]


def test_fal_cancel_only_while_queued_and_the_platform_list(server: FakeServer) -> None:
    fal, platform = server.urls()["fal"], server.urls()["fal_platform"]
    queued = call("POST", f"{fal}/{KLING}", {"prompt": "stop"})[1]
    assert call("PUT", queued["cancel_url"])[:2] == (202, {"status": "CANCELLATION_REQUESTED"})
    done = call("POST", f"{fal}/{KLING}", {"prompt": "go", "duration": "5"})[1]
    listing = f"{platform}/models/requests/by-endpoint?endpoint_id={KLING}&expand=payloads"
    assert call("GET", listing)[1]["items"][0]["request_id"] == queued["request_id"]  # ended
    wait_until(lambda: call("GET", done["status_url"])[1]["status"] == "COMPLETED",
               what="the fal request to complete")
    assert call("PUT", done["cancel_url"])[:2] == (400, {"status": "ALREADY_COMPLETED"})
    items = call("GET", listing)[1]["items"]
    assert {i["request_id"] for i in items} == {queued["request_id"], done["request_id"]}
    mine = next(i for i in items if i["request_id"] == done["request_id"])
    assert mine["json_input"] == {"prompt": "go", "duration": "5"}
    assert call("GET", listing, auth=None)[0] == 401
    result = call("GET", done["response_url"])[1]
    assert result["video"]["url"].startswith(server.cdn_url + "/cdn/")


def test_replicate_paths_errors_and_pages(server: FakeServer) -> None:
    rep = server.urls()["replicate"]
    create = f"{rep}/v1/models/google/veo-3/predictions"
    assert call("POST", create, {"input": {"prompt": "x"}}, auth="Key key")[0] == 401
    made = [call("POST", create, {"input": {"prompt": f"p{n}"}}, auth="Bearer key")
            for n in range(3)]
    assert {m[0] for m in made} == {201}
    status, problem, _ = call("POST", create, {"input": {"prompt": "x", "duration": 7}},
                              auth="Bearer key")
    assert status == 422 and problem["status"] == 422 and "duration" in problem["detail"]
    first = call("GET", f"{rep}/v1/predictions", auth="Bearer key")[1]
    assert [p["id"] for p in first["results"]] == [made[2][1]["id"], made[1][1]["id"]]
    assert first["next"].startswith(rep)
    second = call("GET", first["next"], auth="Bearer key")[1]
    assert [p["id"] for p in second["results"]] == [made[0][1]["id"]] and not second["next"]
    missing = call("GET", f"{rep}/v1/predictions/nosuchid", auth="Bearer key")
    assert missing[0] == 404 and missing[1]["status"] == 404


def test_faults_strike_every_family_in_its_own_shape(server: FakeServer) -> None:
    urls = server.urls()
    server.add_faults(Fault("error", "create", status=503), Fault("error", "create", status=429))
    assert call("POST", f"{urls['fal']}/{KLING}", {"prompt": "x"})[:2] == (
        503, {"detail": "The server is overloaded or not ready yet."})
    status, problem, _ = call("POST", f"{urls['replicate']}/v1/models/google/veo-3/predictions",
                              {"input": {"prompt": "x"}}, auth="Bearer key")
    assert status == 429 and problem["status"] == 429 and problem["title"]
    assert server.backend.stats()["creates"] == 0


def test_the_cdn_is_another_origin_that_counts_credentials(server: FakeServer) -> None:
    made = call("POST", f"{server.urls()['fal']}/{KLING}", {"prompt": "x"})[1]
    wait_until(lambda: call("GET", made["status_url"])[1]["status"] == "COMPLETED",
               what="the fal request to complete")
    url = call("GET", made["response_url"])[1]["video"]["url"]
    assert url.split("/")[2] != server.root_url.split("/")[2]  # another port: another origin
    for auth in (None, "Key key"):
        request = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
        with urllib.request.urlopen(request, timeout=10) as answer:
            data = answer.read()
            assert hashlib.sha256(data).hexdigest() == server.expected_sha256(made["request_id"])
    counters = server.backend.stats()["counters"]
    assert (counters["cdn_requests"], counters["cdn_with_credentials"]) == (2, 1)
