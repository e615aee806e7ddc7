"""The parts of `sora serve` with no server around them: the token setting, the gate's
rules, the submit body, and the change feed over a real store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sora_cli.config import Settings, load_settings
from sora_cli.domain.jobs import JobStatus, VideoRequest
from sora_cli.errors import InvalidInput
from sora_cli.serve.body import parse_request
from sora_cli.serve.gate import Access, is_loopback
from sora_cli.services.context import Context
from sora_cli.services.gallery import ChangeFeed, provider_of

from .conftest import free_env

TOKEN = "a-serve-token-0123456789"


def write_config(home: Path, text: str, mode: int) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("mode", "counted"), [(0o600, True), (0o400, True), (0o644, False),
                                               (0o640, False)])
def test_serve_token_counts_only_from_a_private_config_file(tmp_path: Path, mode: int,
                                                            counted: bool) -> None:
    write_config(tmp_path, f'serve_token = "{TOKEN}"\nseconds = 8\n', mode)
    warnings: list[str] = []
    s = load_settings({"SORA_HOME": str(tmp_path)}, warnings)
    assert s.serve_token == (TOKEN if counted else None) and s.seconds == 8
    assert bool(warnings) != counted
    assert all("serve_token" in w and "chmod 600" in w and TOKEN not in w for w in warnings)


def test_serve_token_from_the_environment_is_masked(tmp_path: Path) -> None:
    s = load_settings({"SORA_HOME": str(tmp_path), "SORA_SERVE_TOKEN": TOKEN})
    assert s.serve_token == TOKEN
    assert s.public_dict()["serve_token"] == "***" and TOKEN not in repr(s)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.com", False), ("localhost.evil.example", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_host_off_loopback_needs_a_token() -> None:
    with pytest.raises(InvalidInput, match="SORA_SERVE_TOKEN"):
        Access.for_bind("0.0.0.0", None)
    access = Access.for_bind("0.0.0.0", TOKEN)
    assert access.bearer_ok(f"Bearer {TOKEN}") and access.bearer_ok(f"bearer  {TOKEN} ")
    assert not access.bearer_ok(None) and not access.bearer_ok(TOKEN)
    assert not access.bearer_ok(f"Basic {TOKEN}") and not access.bearer_ok(f"Bearer {TOKEN}x")
    assert access.media_key and access.key_ok(access.media_key) and not access.key_ok(TOKEN)
    again = Access.for_bind("0.0.0.0", TOKEN)
    assert again.media_key != access.media_key  # per process: a restart revokes old keys
    open_ = Access.for_bind("127.0.0.1", None)
    assert open_.bearer_ok(None) and not open_.key_ok("anything")


def test_non_loopback_bind_without_token_refuses_to_start(tmp_path: Path) -> None:
    env = {**free_env(), "SORA_HOME": str(tmp_path / "home")}
    sora = [str(Path(sys.executable).with_name("sora")), "serve", "--port", "0"]
    r = subprocess.run([*sora, "--host", "0.0.0.0"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("sora: --host 0.0.0.0 is not")
    write_config(tmp_path / "home", f'serve_token = "{TOKEN}"\n', 0o644)  # others can read it
    r = subprocess.run([*sora, "--host", "0.0.0.0"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "ignoring serve_token" in r.stderr and r.stdout == ""


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(home=tmp_path, **kw)  # type: ignore[arg-type]


def test_the_body_takes_the_fields_and_the_config_defaults(tmp_path: Path) -> None:
    s = settings(tmp_path, model="sora-2-pro", size="1280x720", seconds=8)
    req = parse_request({"prompt": "a fox"}, s)
    assert (req.prompt, req.model, req.size, req.seconds, req.label) == (
        "a fox", "sora-2-pro", "1280x720", 8, None)
    req = parse_request({"prompt": "a fox", "seconds": "12", "size": "1792x1024",
                         "label": "L", "model": None, "params": {}}, s)
    assert (req.seconds, req.size, req.label, req.model) == (12, "1792x1024", "L", "sora-2-pro")
    req = parse_request({"prompt": "a fox", "model": "kling", "seconds": 10,
                         "params": {"cfg_scale": 0.4}}, s)  # a provider's model, as the CLI
    assert (req.provider, req.seconds, req.params) == (
        "fal", 10, {"duration": "10", "cfg_scale": 0.4})


@pytest.mark.parametrize(("body", "message"), [
    ({}, '"prompt" is required'),
    ("a fox", "one JSON object"),
    ({"prompt": "x", "image": "/etc/passwd"}, "unknown field 'image'"),
    ({"prompt": "x", "seconds": True}, '"seconds" must be a whole number'),
    ({"prompt": "x", "seconds": 5}, "--seconds must be one of 4, 8, 12"),
    ({"prompt": "x", "size": 720}, "'size' must be a string"),
    ({"prompt": "x", "params": [24]}, '"params" must be a JSON object'),
    ({"prompt": "x", "model": "fal:fal-ai/veo3", "seconds": 5}, "takes --seconds 4, 6, 8"),
    ({"prompt": "x", "model": "nosuch:gen4"}, "unknown provider 'nosuch'"),
    ({"prompt": "x", "label": ""}, "--label must be one line"),
])
def test_bad_bodies_say_what_is_wrong(tmp_path: Path, body: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        parse_request(body, settings(tmp_path))


def test_provider_of_a_model_reference() -> None:
    assert provider_of("sora-2") == "openai" and provider_of("fal:kling-2") == "fal"


def test_the_change_feed_sees_every_change_once(tmp_path: Path) -> None:
    ctx = Context(settings(tmp_path))
    try:
        store = ctx.store
        (old,) = store.add_jobs([VideoRequest(prompt="old")])
        feed = ChangeFeed(ctx)
        assert feed.poll().jobs == []  # the first poll only looks
        assert feed.poll().jobs == []
        (new,) = store.add_jobs([VideoRequest(prompt="new")])
        assert [j.id for j in feed.poll().jobs] == [new.id]
        store.transition(old.id, JobStatus.SUBMITTING, now=old.created_at + 5)
        store.update(old.id, progress=40)
        changes = feed.poll()
        assert [(j.id, j.status, j.progress) for j in changes.jobs] == [
            (old.id, JobStatus.SUBMITTING, 40)]
        store.transition(new.id, JobStatus.CANCELLED)
        assert [(j.id, j.status) for j in feed.poll().jobs] == [(new.id, JobStatus.CANCELLED)]
        assert feed.poll().jobs == []  # final and unchanged: not again
        (flash,) = store.add_jobs([VideoRequest(prompt="gone in a flash")])
        store.transition(flash.id, JobStatus.CANCELLED)  # created and final between polls
        assert [j.id for j in feed.poll().jobs] == [flash.id]
        store.delete_jobs([old.id])  # deleted while active: said once, by id
        changes = feed.poll()
        assert changes.jobs == [] and changes.gone == [old.id] and changes.active == 0
    finally:
        ctx.close()


def test_the_servers_reads_go_through_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """Every SELECT that browsing, the spend and the change feed run on a 2,000-job store:
    no full scan (a walk of an index that stops at a LIMIT is fine)."""
    import sqlite3

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    import store_size

    from sora_cli.services.gallery import browse, find_job, spend

    ids, _ = store_size.build(tmp_path, 2000)
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    ctx = Context(settings(tmp_path))
    try:
        feed = ChangeFeed(ctx)
        feed.poll()
        feed.poll()
        find_job(ctx, ids[1000])
        for kw in ({}, {"statuses": ["completed", "failed"]}, {"label": "x"},
                   {"provider": "openai"}, {"before": ids[1500]},
                   {"statuses": ["completed"], "before": ids[1500]}):
            browse(ctx, limit=24, **kw)  # type: ignore[arg-type]
        spend(ctx)
    finally:
        ctx.close()
    selects = [s for s in dict.fromkeys(statements) if s.lstrip().upper().startswith("SELECT")
               and "sqlite_master" not in s and "meta" not in s]
    assert len(selects) >= 10
    check = connect(tmp_path / "sora.db")
    plans = [(sql, "; ".join(r[-1] for r in check.execute(f"EXPLAIN QUERY PLAN {sql}")))
             for sql in selects]
    check.close()
    assert store_size.full_scans(plans) == []


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_without_the_serve_extra_it_says_what_to_install(tmp_path: Path, missing: str) -> None:
    code = (f"import sys; sys.modules[{missing!r}] = None; sys.argv = ['sora', 'serve']; "
            "from sora_cli.cli.main import main; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**free_env(), "SORA_HOME": str(tmp_path)})
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("sora: sora serve needs FastAPI and uvicorn (" + missing
                        + " is missing): pip install 'sora-cli[serve]'\n")
