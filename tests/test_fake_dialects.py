"""`sora fake-server --dialect`: the differences each dialect plays, on the wire."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sora_cli.fake.server import FakeOptions, FakeServer


@pytest.fixture
def omni() -> Iterator[FakeServer]:
    with FakeServer(FakeOptions(job_seconds=0.2, dialect="vllm-omni")) as server:
        yield server


@pytest.fixture
def lite() -> Iterator[FakeServer]:
    with FakeServer(FakeOptions(job_seconds=5, dialect="litellm", api_key="k")) as server:
        yield server


def test_vllm_omni_takes_forms_only_and_answers_a_minimal_create(omni: FakeServer) -> None:
    with httpx.Client(base_url=omni.base_url) as c:  # no key: it checks none
        refused = c.post("/videos", json={"prompt": "x", "model": "Wan"})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "prompt"]
        made = c.post("/videos", files={"prompt": (None, "x"), "model": (None, "Wan"),
                                        "fps": (None, "16"), "seed": (None, "7")})
        assert made.status_code == 200 and set(made.json()) == {"id", "status", "created_at"}
        video_id = made.json()["id"]
        assert c.get(f"/videos/{video_id}").json()["model"] == "Wan"
        assert c.post(f"/videos/{video_id}/remix", json={"prompt": "y"}).status_code == 404
        assert c.get("/videos").json()["data"][0]["id"] == video_id
    assert omni.create_count() == 1


def test_vllm_omni_checks_a_bearer_key_only_when_given_one() -> None:
    with FakeServer(FakeOptions(dialect="vllm-omni", api_key="s3cret")) as server, \
            httpx.Client(base_url=server.base_url) as c:
        assert c.get("/videos").status_code == 401
        assert c.get("/videos", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_litellm_ids_statuses_lists_and_numeric_seconds(lite: FakeServer) -> None:
    auth = {"Authorization": "Bearer k"}
    with httpx.Client(base_url=lite.base_url, headers=auth) as c:
        veo = c.post("/videos", json={"prompt": "x", "model": "gemini/veo-3.1", "seconds": 8})
        assert veo.status_code == 200, veo.text
        video_id = veo.json()["id"]
        assert video_id.startswith("gemini::operations/")
        segment = httpx.URL(f"{lite.base_url}/videos/").join(
            video_id.replace(":", "%3A").replace("/", "%2F"))
        assert c.get(segment).json()["status"] in ("queued", "processing")
        assert c.get("/videos").status_code == 400  # custom_llm_provider is required
        assert c.get("/videos", params={"custom_llm_provider": "gemini"}).status_code == 404
        sora = c.post("/videos", json={"prompt": "y", "model": "openai/sora-2"}).json()
        listed = c.get("/videos", params={"custom_llm_provider": "openai"}).json()["data"]
        assert [v["id"] for v in listed] == [sora["id"]] and sora["id"].startswith("openai::")


def test_the_openai_dialect_still_refuses_a_numeric_seconds() -> None:
    with FakeServer(FakeOptions(api_key="k")) as server, \
            httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer k"}) as c:
        answer = c.post("/videos", json={"prompt": "x", "model": "sora-2", "seconds": 8})
        assert answer.status_code == 400


def test_quirks_add_processing_opaque_ids_and_no_list_to_a_dialect() -> None:
    options = FakeOptions(job_seconds=5, dialect="vllm-omni",
                          quirks=("processing", "opaque-ids", "no-list"))
    with FakeServer(options) as server, httpx.Client(base_url=server.base_url) as c:
        assert c.post("/videos", json={"prompt": "x", "model": "Wan"}).status_code == 422
        made = c.post("/videos", files={"prompt": (None, "x"), "model": (None, "Wan-AI/Wan")})
        assert set(made.json()) == {"id", "status", "created_at"}  # still vLLM-Omni's
        video_id = made.json()["id"]
        assert video_id.startswith("Wan-AI::operations/")
        segment = httpx.URL(f"{server.base_url}/videos/").join(
            video_id.replace(":", "%3A").replace("/", "%2F"))
        assert c.get(segment).json()["status"] == "processing"
        assert c.get("/videos").status_code == 404
