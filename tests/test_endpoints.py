"""Named endpoints of the Videos contract: their config tables, the submit rules, and the
adapter's dialect handling against httpx.MockTransport (no network, no real sleeps)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from sora_cli.config import Settings, load_settings
from sora_cli.domain.jobs import Job, JobStatus
from sora_cli.domain.models import Defaults, Draft, resolve
from sora_cli.domain.providers import EndpointDialect
from sora_cli.errors import AmbiguousCreate, ApiError, InvalidInput
from sora_cli.providers.base import CreateRequest, RemoteState
from sora_cli.providers.openai.endpoint import EndpointProvider, InProcess, make_endpoint
from sora_cli.services.providers import request_defaults
from sora_cli.store.repository import Store

BASE = "http://gpu-box.test/v1"
Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def settings_with(tmp_path: Path, table: str, **env: str) -> Settings:
    (tmp_path / "config.toml").write_text(table)
    return load_settings({"SORA_HOME": str(tmp_path), **env})


OMNI = f'[providers.omni]\napi = "openai"\nbase_url = "{BASE}"\n'


# -- config ------------------------------------------------------------------------------


def test_a_table_with_api_openai_is_a_named_endpoint(tmp_path: Path) -> None:
    s = settings_with(tmp_path, OMNI + 'api_key_env = "OMNI_KEY"\nseconds_type = "number"\n'
                      'list_params = { custom_llm_provider = "gemini" }\nsizes = ["832x480"]\n'
                      'seconds = [5]\nmax_in_flight = 2\n', OMNI_KEY="k-omni")
    p = s.provider("omni")
    assert p is not None and p.is_endpoint and p.api_key == "k-omni" and p.key_required
    assert p.max_in_flight == 2 and p.base_url == BASE
    assert s.provider_names()[-1] == "omni"
    assert s.endpoint_dialects()["omni"] == EndpointDialect(
        seconds_type="number", list_params=(("custom_llm_provider", "gemini"),),
        sizes=("832x480",), seconds=(5,))
    assert "k-omni" not in json.dumps(s.public_dict())


def test_an_endpoint_without_api_key_env_needs_no_key(tmp_path: Path) -> None:
    p = settings_with(tmp_path, OMNI).provider("omni")
    assert p is not None and p.api_key is None and not p.key_required


@pytest.mark.parametrize(("extra", "message"), [
    ('create_encoding = "xml"\n', "create_encoding must be one of auto, json, multipart"),
    ('seconds_type = "float"\n', "seconds_type must be one of string, number"),
    ('api_key_env = "NOT A VAR"\n', "api_key_env must name an environment variable"),
    ('list_params = ["x"]\n', "list_params must be a table"),
    ('sizes = ["big"]\n', "sizes must be WIDTHxHEIGHT strings"),
    ('seconds = ["5"]\n', "seconds must be whole numbers"),
    ('max_in_flight = 0\n', "max_in_flight must be a whole number of at least 1"),
])
def test_bad_endpoint_settings_are_one_clear_line(tmp_path: Path, extra: str,
                                                  message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        settings_with(tmp_path, OMNI + extra)


def test_an_endpoint_needs_a_base_url_and_a_name_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="needs base_url"):
        settings_with(tmp_path, '[providers.omni]\napi = "openai"\n')
    with pytest.raises(InvalidInput, match="built-in provider"):
        settings_with(tmp_path, f'[providers.fal]\napi = "openai"\nbase_url = "{BASE}"\n')


def test_an_api_key_in_an_endpoint_table_is_ignored_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(OMNI + 'api_key = "sk-in-the-file"\n')
    warnings: list[str] = []
    s = load_settings({"SORA_HOME": str(tmp_path)}, warnings)
    assert s.provider("omni") is not None and s.provider("omni").api_key is None  # type: ignore[union-attr]
    assert any("api_key_env" in w for w in warnings)


# -- what a submit records ----------------------------------------------------------------


def test_a_model_of_an_endpoint_is_sent_without_its_prefix(tmp_path: Path) -> None:
    s = settings_with(tmp_path, OMNI)
    req = resolve(Draft("a heron", model="omni:Wan-AI/Wan2.2-T2V-A14B-Diffusers",
                        seconds=5, size="1280x720"), request_defaults(s))
    assert (req.provider, req.model, req.size, req.seconds) == (
        "omni", "Wan-AI/Wan2.2-T2V-A14B-Diffusers", "1280x720", 5)
    bare = resolve(Draft("a heron", model="omni:wan"), request_defaults(s))
    assert (bare.size, bare.seconds) == ("", 0)  # not given: the server's defaults


def test_sora_serve_resolves_a_named_endpoint_as_the_cli_does(tmp_path: Path) -> None:
    from sora_cli.serve.body import parse_request

    s = settings_with(tmp_path, OMNI + 'sizes = ["832x480"]\n')
    req = parse_request({"prompt": "a heron", "model": "omni:wan", "size": "832x480"}, s)
    assert (req.provider, req.model, req.size) == ("omni", "wan", "832x480")
    with pytest.raises(InvalidInput, match="omni takes --size 832x480"):
        parse_request({"prompt": "a heron", "model": "omni:wan", "size": "1280x720"}, s)


def test_restricted_sizes_and_seconds_are_checked_before_recording() -> None:
    defaults = Defaults(known=("openai", "omni"), endpoints={
        "omni": EndpointDialect(sizes=("832x480",), seconds=(5, 10))})
    with pytest.raises(InvalidInput, match="omni takes --size 832x480"):
        resolve(Draft("x", model="omni:m", size="1280x720"), defaults)
    with pytest.raises(InvalidInput, match="omni takes --seconds 5, 10"):
        resolve(Draft("x", model="omni:m", seconds=4), defaults)
    with pytest.raises(InvalidInput, match="WIDTHxHEIGHT"):
        resolve(Draft("x", model="omni:m", size="wide"), defaults)
    assert resolve(Draft("x", model="omni:m", seconds=10), defaults).seconds == 10


# -- the adapter --------------------------------------------------------------------------


def video(video_id: str = "gemini::operations/abc", **extra: Any) -> dict[str, Any]:
    return {"id": video_id, "status": "queued", "created_at": 1_760_000_000, **extra}


class Server:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(request) if callable(reply) else reply


def endpoint(server: Server, dialect: EndpointDialect | None = None, *, key: str = "",
             memory: InProcess | None = None) -> EndpointProvider:
    s = Settings(home=Path("/nonexistent"), max_retries=0)
    from sora_cli.provider_settings import ProviderSettings

    p = ProviderSettings("omni", BASE, "OMNI_KEY" if key else "", key or None, api="openai",
                         dialect=dialect or EndpointDialect(), key_required=bool(key))
    return make_endpoint(s, p, memory, transport=httpx.MockTransport(server))


def job(**changes: Any) -> Job:
    base = Job(id="j1", prompt="a heron", model="Wan-AI/Wan2.2", size="832x480", seconds=5,
               status=JobStatus.SUBMITTING, created_at=1.0, updated_at=1.0, provider="omni",
               create_started_at=1_760_000_000.0)
    return replace(base, **changes)


def create(adapter: EndpointProvider, request: CreateRequest | None = None) -> Any:
    async def go() -> Any:
        try:
            return await adapter.create(request or CreateRequest(job()), on_attempt=lambda a: None)
        finally:
            await adapter.aclose()
    return asyncio.run(go())


def refused(status: int) -> httpx.Response:
    return httpx.Response(status, json={"detail": [{"loc": ["body", "prompt"],
                                                    "msg": "Field required"}]})


def test_a_json_create_refused_with_422_is_sent_once_more_as_a_form_and_remembered() -> None:
    server = Server(refused(422), httpx.Response(200, json=video()))
    memory = InProcess()
    created = create(endpoint(server, memory=memory), None)
    assert created.remote_id == "gemini::operations/abc"
    first, second = server.requests
    assert first.headers["content-type"] == "application/json"
    assert second.headers["content-type"].startswith("multipart/form-data")
    assert b'name="prompt"' in second.content and b"a heron" in second.content
    assert "authorization" not in first.headers and "authorization" not in second.headers
    server2 = Server(httpx.Response(200, json=video()))
    create(endpoint(server2, memory=memory))
    (only,) = server2.requests  # learned: a form at once
    assert only.headers["content-type"].startswith("multipart/form-data")


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_other_refusals_are_not_resent(status: int) -> None:
    server = Server(httpx.Response(status, json={"error": {"message": "no"}}))
    with pytest.raises((ApiError, AmbiguousCreate)):
        create(endpoint(server))
    assert len(server.requests) == 1


def test_a_fixed_json_encoding_never_falls_back_and_a_failed_form_is_not_remembered() -> None:
    server = Server(refused(415))
    with pytest.raises(ApiError):
        create(endpoint(server, EndpointDialect(create_encoding="json")))
    assert len(server.requests) == 1
    memory = InProcess()
    server = Server(refused(422), refused(422))
    with pytest.raises(ApiError):
        create(endpoint(server, memory=memory))
    assert len(server.requests) == 2 and memory.recall("encoding") is None
    assert not any(k for k in memory._facts)


def test_an_unanswered_form_after_a_refusal_is_ambiguous_not_resent() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset")
    server = Server(refused(415), drop)
    with pytest.raises(AmbiguousCreate):
        create(endpoint(server))
    assert len(server.requests) == 2


def test_seconds_as_a_number_and_a_key_only_when_configured() -> None:
    server = Server(httpx.Response(200, json=video()))
    create(endpoint(server, EndpointDialect(seconds_type="number"), key="k-omni-123"))
    (request,) = server.requests
    assert json.loads(request.content)["seconds"] == 5
    assert request.headers["authorization"] == "Bearer k-omni-123"
    server = Server(httpx.Response(200, json=video()))
    create(endpoint(server), CreateRequest(job(size="", seconds=0)))
    body = json.loads(server.requests[0].content)
    assert "size" not in body and "seconds" not in body  # not given: the server's defaults


def poll(adapter: EndpointProvider, remote_id: str) -> Any:
    async def go() -> Any:
        try:
            return await adapter.poll(job(remote_id=remote_id), on_attempt=lambda a: None)
        finally:
            await adapter.aclose()
    return asyncio.run(go())


@pytest.mark.parametrize(("word", "state"), [
    ("processing", RemoteState.RUNNING), ("pending", RemoteState.QUEUED),
    ("in_progress", RemoteState.RUNNING), ("cancelled", RemoteState.CANCELLED),
    ("expired", RemoteState.GONE), ("warming up", RemoteState.RUNNING)])
def test_documented_status_synonyms(word: str, state: RemoteState) -> None:
    p = poll(endpoint(Server(httpx.Response(200, json=video(status=word)))), "a/b")
    assert p.state is state and p.remote_status == word


def test_an_opaque_id_is_one_segment_and_a_completed_video_names_its_result() -> None:
    server = Server(httpx.Response(200, json=video(status="completed")))
    p = poll(endpoint(server), "gemini::operations/abc")
    assert server.requests[0].url.raw_path == b"/v1/videos/gemini%3A%3Aoperations%2Fabc"
    assert p.result == "/videos/gemini%3A%3Aoperations%2Fabc/content"


def find(adapter: EndpointProvider) -> Any:
    async def go() -> Any:
        try:
            return await adapter.find_created(CreateRequest(job()), taken=lambda _: False,
                                              on_attempt=lambda a: None)
        finally:
            await adapter.aclose()
    return asyncio.run(go())


@pytest.mark.parametrize("status", [404, 405])
def test_no_list_means_undecided_and_is_remembered(status: int) -> None:
    memory = InProcess()
    server = Server(httpx.Response(status, json={"detail": "Not Found"}))
    found = find(endpoint(server, EndpointDialect(
        list_params=(("custom_llm_provider", "gemini"),)), memory=memory))
    assert found.created is None and "not sent again" in (found.undecided or "")
    assert server.requests[0].url.params["custom_llm_provider"] == "gemini"
    server = Server(httpx.Response(500))
    assert find(endpoint(server, memory=memory)).undecided
    assert server.requests == []  # remembered: not asked again


def test_a_list_that_does_not_say_the_prompt_cannot_clear_a_resend() -> None:
    listed = {"object": "list", "data": [{"id": "v1", "status": "queued",
                                          "created_at": 1_760_000_100}], "has_more": False}
    found = find(endpoint(Server(httpx.Response(200, json=listed))))
    assert found.created is None and "without its prompt" in (found.undecided or "")


def test_the_store_keeps_what_was_learned_for_every_runner(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "sora.db")
    server = Server(refused(422), httpx.Response(200, json=video()))
    create(endpoint(server, memory=store))  # type: ignore[arg-type]
    again = Store.open(tmp_path / "sora.db")
    assert [v for k, v in again._conn.execute(
        "SELECT key, value FROM meta WHERE key LIKE 'learned:%'").fetchall()] == ["multipart"]
    assert again.recall(endpoint(Server(refused(422)))._key("encoding")) == "multipart"


def test_a_key_to_a_plain_http_endpoint_elsewhere_is_warned_about(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sora_cli.cli.common import warn_if_insecure

    s = settings_with(tmp_path, '[providers.omni]\napi = "openai"\nbase_url = '
                      '"http://gpu-box.invalid:8091/v1"\napi_key_env = "OMNI_KEY"\n',
                      OMNI_KEY="k-omni-123")
    warn_if_insecure(s, ["omni", "omni"])
    err = capsys.readouterr().err
    assert err.count("omni (http://gpu-box.invalid:8091/v1) is plain http") == 1
    assert "OMNI_KEY" in err and "k-omni-123" not in err
    keyless = settings_with(tmp_path, '[providers.omni]\napi = "openai"\nbase_url = '
                            '"http://gpu-box.invalid:8091/v1"\n')
    warn_if_insecure(keyless, ["omni"])
    assert "omni" not in capsys.readouterr().err


def test_a_list_refused_for_good_fails_the_job_instead_of_waiting_forever() -> None:
    memory = InProcess()
    server = Server(httpx.Response(400, json={"error": {
        "message": "custom_llm_provider is required to list videos"}}))
    found = find(endpoint(server, memory=memory))
    assert found.created is None and "custom_llm_provider is required" in (found.undecided or "")
    assert "list_params" in (found.undecided or "") and not memory._facts  # not remembered
    with pytest.raises(ApiError):  # a rate limit: the runner looks again later
        find(endpoint(Server(httpx.Response(429, json={"error": {"message": "slow"}}))))


def test_sora_import_takes_an_endpoints_opaque_id(tmp_path: Path) -> None:
    from clirun import CURRENT, sora

    from sora_cli.fake.server import FakeOptions, FakeServer

    options = FakeOptions(job_seconds=30, dialect="vllm-omni", quirks=("opaque-ids",))
    with FakeServer(options) as server, httpx.Client(base_url=server.base_url) as c:
        made = c.post("/videos", files={"prompt": (None, "a heron"), "model": (None, "wan")})
        remote_id = made.json()["id"]
        assert "::operations/" in remote_id
        (tmp_path / "config.toml").write_text(
            f'[providers.omni]\napi = "openai"\nbase_url = "{server.base_url}"\n')
        r = sora("import", f"omni:{remote_id}", "--json")
        assert r.exit_code == 0, r.output
        job = json.loads(r.stdout)
        assert (job["provider"], job["remote_id"], job["prompt"]) == ("omni", remote_id, "a heron")
        assert CURRENT[0].kicks == [tmp_path]  # the runner is asked to wait for it
        again = sora("import", f"omni:{remote_id}")
        assert again.exit_code == 0 and "already in the store" in again.stderr


def test_sora_models_masks_a_password_in_an_endpoints_url(tmp_path: Path) -> None:
    from clirun import sora

    (tmp_path / "config.toml").write_text(
        '[providers.omni]\napi = "openai"\nbase_url = "https://me:pw-0123456789@gw.test/v1"\n')
    (tmp_path / "config.toml").chmod(0o600)
    r = sora("models", "--provider", "omni", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert "pw-0123456789" not in r.stdout and row["base_url"] == "https://***@gw.test/v1"


def test_a_plug_ins_key_is_checked_and_masked_as_every_key_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from sora_cli.domain.text import scrub
    from sora_cli.errors import AuthError
    from sora_cli.providers import plugins, registry

    monkeypatch.setattr(plugins, "installed", lambda: {"echo": None})
    monkeypatch.setattr(plugins, "load", lambda api: SimpleNamespace(key_env="ECHO_KEY"))
    s = load_settings({"SORA_HOME": str(tmp_path)})
    key = "echo-key-0123456789abcdef"
    found = plugins.provider_settings(s, "echo", {"ECHO_KEY": key + "\n"})
    assert found is not None and found.api_key == key  # one trailing newline dropped
    assert key not in scrub(f"the server said {key}")
    with pytest.raises(AuthError, match="ECHO_KEY is not a usable API key"):
        plugins.provider_settings(s, "echo", {"ECHO_KEY": "two words"})
    monkeypatch.setenv("ECHO_KEY", "two words")
    assert "echo" not in registry.Adapters(s).workable()  # its jobs wait; nothing crashes
