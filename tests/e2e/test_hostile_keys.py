"""Issue 13, keys and who may steer sora: keys that cannot be sent, keys a server echoes,
keys in tracebacks, a runner without a key, a shared data dir, credentials in URLs.
Real `sora` processes against `sora fake-server` with hostile faults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sora_cli.domain.jobs import VideoRequest
from sora_cli.store.repository import Store

from .conftest import MakeFake, MakeSora
from .harness import (
    TEST_KEY,
    Sora,
    provider_env,
    quick_fake,
    runner_pid,
    vertex_env,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.e2e
SECRET_PART = "secret-key-0123456789"  # in every key below: never in any output or file


def no_secret_anywhere(s: Sora, *outputs: str, secret: str = SECRET_PART) -> None:
    for text in outputs:
        assert secret not in text, text
    for path in (p for p in s.home.rglob("*") if p.is_file()):
        assert secret.encode() not in path.read_bytes(), path


def queued_job(s: Sora, prompt: str) -> str:
    """A job recorded without starting a runner (as a crashed `submit` would leave it)."""
    s.ok("list")  # creates the store
    with Store.open(s.home / "sora.db") as store:
        (job,) = store.add_jobs([VideoRequest(prompt)])
    return job.id


# -- point 1: keys are checked when loaded -----------------------------------------------------


def test_a_key_that_cannot_be_sent_is_refused_when_loaded(make_fake: MakeFake,
                                                          make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    bad = f"sk-e2e-é-{SECRET_PART}"
    s = make_sora(fake, OPENAI_API_KEY=bad)
    outputs = []
    for args in (("submit", "a clip"), ("import", "video_" + "a" * 32), ("list",),
                 ("-v", "status", "@last")):
        r = s.run(*args)
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 4, (args, r.stderr)
        last = r.stderr.splitlines()[-1]
        assert last.startswith("sora: OPENAI_API_KEY is not a usable API key"), r.stderr
        assert args[0] == "-v" or len(r.stderr.splitlines()) == 1, r.stderr
    s.env["OPENAI_API_KEY"] = TEST_KEY
    assert s.ok("list", "-q") == ""  # nothing recorded
    assert fake.stats()["requests"] == 0
    no_secret_anywhere(s, *outputs, secret=bad)


def test_a_trailing_newline_on_the_key_is_stripped_with_a_note(make_fake: MakeFake,
                                                               make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake, OPENAI_API_KEY=TEST_KEY + "\r\n")  # $(cat key.txt) of a CRLF file
    r = s.run("submit", "a key from a CRLF file")
    assert r.returncode == 0, r.stderr
    assert "OPENAI_API_KEY" in r.stderr and "newline" in r.stderr
    job_id = r.stdout.strip()
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    assert s.job(job_id)["status"] == "completed"


# -- point 4: whatever the server echoes, the key is masked before it is stored ----------------


def test_a_server_echoing_the_key_anywhere_gets_it_masked(make_fake: MakeFake,
                                                         make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    key = f"sk-e2e-{SECRET_PART}"
    echo = {"x-request-id": "{api_key}"}
    s = make_sora(fake, OPENAI_API_KEY=key, SORA_MAX_RETRIES="0")
    # an error answer whose code, message and request id echo the key
    fake.faults({"action": "body", "route": "create", "status": 400, "prompt": "refused",
                 "headers": echo, "text": json.dumps({"error": {
                     "message": "bad key {api_key}", "code": "{api_key}", "type": "x"}})})
    refused = s.ok("submit", "refused").strip()
    assert s.run("wait", refused, "--timeout", "60").returncode == 1
    # a video that failed on the server, its error and request id echoing the key
    fake.faults({"action": "patch", "route": "retrieve", "headers": echo, "fields": {
        "status": "failed", "error": {"code": "{api_key}", "message": "no {api_key}"}}})
    failed = s.ok("submit", "failed remotely").strip()
    assert s.run("wait", failed, "--timeout", "60").returncode == 1
    # a remote status that is the key
    fake.faults({"action": "patch", "route": "retrieve", "fields": {"status": "{api_key}"}})
    fine = s.ok("submit", "a status that is a key").strip()
    assert s.run("wait", fine, "--timeout", "60").returncode == 0
    outputs = [s.ok("list", "--json"), s.ok("status", refused, failed, fine)]
    for job_id in (refused, failed, fine):
        outputs.append(s.ok("logs", job_id, "--json"))
    r = s.run("-v", "wait", refused, failed)
    outputs.append(r.stdout + r.stderr)
    assert "***" in s.job(refused)["error"]["code"] + s.job(failed)["error"]["code"]
    s.stop_runner()
    no_secret_anywhere(s, *outputs)


# The direct providers: each key variable checked when loaded, and whatever credential a
# request carried (a key, Kling's signed token, Google's access token) masked when echoed.
DIRECT_MODELS = {"runway": "runway:gen4.5", "luma": "luma:ray-2",
                 "minimax": "minimax:MiniMax-Hailuo-2.3", "kling": "kling:kling-v2-1-master",
                 "vertex": "vertex:veo-3.1-generate-001"}
DIRECT_KEYS = {"RUNWAYML_API_SECRET": "runway", "LUMAAI_API_KEY": "luma",
               "MINIMAX_API_KEY": "minimax", "KLING_ACCESS_KEY": "kling",
               "KLING_SECRET_KEY": "kling"}
KLING_JWT_HEAD = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}
GOOGLE_TOKEN = "ya29."  # how the fake's (and Google's) access tokens begin


def nothing_anywhere(s: Sora, outputs: list[str], secrets: list[str]) -> None:
    """No secret in the outputs or in any file of the home but the videos (media bytes
    could hold any short string by chance)."""
    for secret in secrets:
        for text in outputs:
            assert secret not in text, (secret, text)
        for path in (p for p in s.home.rglob("*") if p.is_file()
                     and p.suffix not in (".mp4", ".webp")):
            assert secret.encode() not in path.read_bytes(), (secret, path)


@pytest.mark.parametrize("variable", list(DIRECT_KEYS))
def test_a_direct_providers_key_that_cannot_be_sent_is_refused_when_loaded(
        make_fake: MakeFake, make_sora: MakeSora, variable: str) -> None:
    fake = quick_fake(make_fake)
    bad = f"key-é-{SECRET_PART}"
    s = make_sora(fake, **{**provider_env(fake), variable: bad})
    outputs = []
    for args in (("submit", "-m", DIRECT_MODELS[DIRECT_KEYS[variable]], "a clip"), ("list",)):
        r = s.run(*args)
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 4, (args, r.stderr)
        assert r.stderr.splitlines()[-1].startswith(
            f"sora: {variable} is not a usable API key"), r.stderr
    assert fake.stats()["requests"] == 0
    s.env[variable] = provider_env(fake)[variable]
    assert s.ok("list", "-q") == ""  # nothing recorded
    nothing_anywhere(s, outputs, [bad, SECRET_PART])


def test_google_credentials_are_a_path_not_a_key(make_fake: MakeFake, make_sora: MakeSora,
                                                 tmp_path: Path) -> None:
    """GOOGLE_APPLICATION_CREDENTIALS names a file: a path with a space is no bad key."""
    fake = quick_fake(make_fake)
    where = tmp_path / "my keys"
    where.mkdir()
    s = make_sora(fake, **provider_env(fake), **vertex_env(fake, where))
    assert " " in s.env["GOOGLE_APPLICATION_CREDENTIALS"]
    job_id = s.ok("submit", "-m", DIRECT_MODELS["vertex"], "from a spaced path").strip()
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0


@pytest.mark.parametrize("provider", list(DIRECT_MODELS))
def test_a_direct_provider_echoing_its_credential_gets_it_masked(
        make_fake: MakeFake, make_sora: MakeSora, tmp_path: Path, provider: str) -> None:
    fake = quick_fake(make_fake, "--kling-keys", f"ak-{SECRET_PART}:sk-{SECRET_PART}")
    env = {**provider_env(fake), "KLING_ACCESS_KEY": f"ak-{SECRET_PART}",
           "KLING_SECRET_KEY": f"sk-{SECRET_PART}"}
    for variable, owner in DIRECT_KEYS.items():
        if owner == provider and not variable.startswith("KLING"):
            env[variable] = f"{provider}-{SECRET_PART}"
    if provider == "vertex":
        env.update(vertex_env(fake, tmp_path))
    s = make_sora(fake, SORA_MAX_RETRIES="0", **env)
    model = DIRECT_MODELS[provider]
    echo = {"x-request-id": "{api_key}"}
    fake.faults({"action": "error", "route": "create", "status": 400, "prompt": "refused",
                 "headers": echo, "text": "a bad credential: {api_key}"})
    refused = s.ok("submit", "-m", model, "refused").strip()
    assert s.run("wait", refused, "--timeout", "60").returncode == 1
    fake.faults({"action": "error", "route": "retrieve", "status": 503, "times": 2,
                 "headers": echo, "text": "not now, {api_key}"})
    polled = s.ok("submit", "-m", model, "echoed while polling").strip()
    assert s.run("wait", polled, "--timeout", "60").returncode == 0
    outputs = [s.ok("list", "--json"), s.ok("status", refused, polled)]
    for job_id in (refused, polled):
        outputs.append(s.ok("logs", job_id, "--json"))
    r = s.run("-v", "wait", refused, polled)
    outputs.append(r.stdout + r.stderr)
    assert "***" in s.job(refused)["error"]["message"]
    assert any("***" in line for line in s.ok("logs", polled).splitlines())
    s.stop_runner()
    nothing_anywhere(s, outputs, [SECRET_PART, KLING_JWT_HEAD, GOOGLE_TOKEN])


# -- point 5: -v tracebacks are redacted too ---------------------------------------------------


def test_verbose_tracebacks_never_show_the_key(make_fake: MakeFake, make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    key = f"sk-e2e-{SECRET_PART}"
    s = make_sora(fake, OPENAI_API_KEY=key)
    job_id = s.ok("submit", "saved, then fetched again").strip()
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    (s.home / "videos" / f"{job_id}.mp4").unlink()
    s.stop_runner()
    # an illegal header value: httpx quotes it, key and all, in its exception
    r = s.run("-v", "download", job_id, "-o", "again.mp4", env={"OPENAI_API_KEY": key + "\n"})
    no_secret_anywhere(s, r.stdout + r.stderr)


# -- point 3: a runner without the key ---------------------------------------------------------


def test_a_runner_without_the_key_leaves_jobs_alone_and_hands_them_over(
        make_fake: MakeFake, make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake, SORA_IDLE_EXIT_SECONDS="4")
    keyless = {"OPENAI_API_KEY": ""}
    job_id = queued_job(s, "waiting for a key")
    assert s.run("runner", "start", env=keyless).returncode == 0  # a runner without the key
    wait_for(lambda: runner_pid(s), 10, "the keyless runner")
    log = s.home / "runner.log"
    wait_for(lambda: "OPENAI_API_KEY" in log.read_text(), 10, "the runner to say it has no key")
    state = json.loads(s.ok("runner", "status", "--json", env=keyless))
    assert "OPENAI_API_KEY" in state["missing_keys"]
    assert "OPENAI_API_KEY" in s.ok("runner", "status", env=keyless)
    waiting = json.loads(s.ok("status", job_id, "--json", env=keyless))
    assert waiting["status"] == "queued" and fake.stats()["requests"] == 0
    # a command with the key hands the work over; the job proceeds
    assert s.run("status", job_id).returncode == 0
    done = wait_job(s, job_id, lambda j: j["status"] == "completed", 60, "the handed-over job")
    assert done["create_attempts"] == 1
    assert log.read_text().count("no API key for openai (OPENAI_API_KEY)") == 1  # said once
    # and a keyless runner with nothing it can do idles out
    s.stop_runner()
    other = queued_job(s, "still waiting")
    assert s.run("runner", "start", env=keyless).returncode == 0
    wait_for(lambda: runner_pid(s), 10, "a keyless runner")
    wait_for(lambda: not json.loads(s.ok("runner", "status", "--json", env=keyless))["running"],
             20, "the keyless runner to idle out")
    assert json.loads(s.ok("status", other, "--json", env=keyless))["status"] == "queued"


def test_a_runner_without_klings_secret_leaves_its_jobs_and_hands_them_over(
        make_fake: MakeFake, make_sora: MakeSora) -> None:
    """Kling needs both keys: a runner with the access key alone is one without Kling's
    credentials, and says which."""
    fake = quick_fake(make_fake)
    s = make_sora(fake, SORA_IDLE_EXIT_SECONDS="4", **provider_env(fake))
    no_secret = {"KLING_SECRET_KEY": ""}
    s.ok("list")
    with Store.open(s.home / "sora.db") as store:
        (job,) = store.add_jobs([VideoRequest("waiting for a secret", "kling-v2-1-master", "",
                                              5, provider="kling", params={"duration": "5"})])
    assert s.run("runner", "start", env=no_secret).returncode == 0
    wait_for(lambda: runner_pid(s), 10, "the runner without the secret")
    log = s.home / "runner.log"
    said = "no credentials for kling (KLING_ACCESS_KEY and KLING_SECRET_KEY)"
    wait_for(lambda: said in log.read_text(), 10, "the runner to say what it lacks")
    state = json.loads(s.ok("runner", "status", "--json", env=no_secret))
    assert "KLING_ACCESS_KEY" in state["missing_keys"]
    waiting = json.loads(s.ok("status", job.id, "--json", env=no_secret))
    assert waiting["status"] == "queued" and fake.stats()["requests"] == 0
    assert s.run("status", job.id).returncode == 0  # with both keys: the work is handed over
    done = wait_job(s, job.id, lambda j: j["status"] == "completed", 60, "the handed-over job")
    assert done["create_attempts"] == 1
    assert log.read_text().count(said) == 1


# -- point 11: a data dir or config file others can write --------------------------------------


def test_a_data_dir_others_can_write_is_refused(make_fake: MakeFake, make_sora: MakeSora,
                                                tmp_path: Path) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    s.ok("list")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    s.home.chmod(0o777)
    (s.home / "runner.log").unlink(missing_ok=True)
    (s.home / "runner.log").symlink_to(victim)  # planted by another user
    for args in (("submit", "a clip"), ("list",), ("runner", "start")):
        r = s.run(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and "chmod 700" in r.stderr, r.stderr
    assert victim.read_text() == "precious"
    s.home.chmod(0o700)
    (s.home / "runner.log").unlink()
    if os.geteuid() == 0:  # a home owned by someone else
        os.chown(s.home, 65534, 65534)
        r = s.run("list")
        assert r.returncode == 1 and "owned by" in r.stderr, r.stderr
        os.chown(s.home, 0, 0)
    assert s.run("list").returncode == 0


def test_every_setting_of_a_config_file_others_can_write_is_ignored(
        make_fake: MakeFake, make_sora: MakeSora) -> None:
    good, evil = quick_fake(make_fake), quick_fake(make_fake)
    s = make_sora(good)
    del s.env["OPENAI_BASE_URL"]
    s.home.mkdir(mode=0o700)
    config = s.home / "config.toml"
    config.write_text(f'base_url = "{evil.base_url}"\nmodel = "sora-2-pro"\n')
    config.chmod(0o622)  # others may write it: anyone could point sora elsewhere
    r = s.run("config", "show", "--json")
    assert r.returncode == 0 and "writable by others" in r.stderr, r.stderr
    shown = json.loads(r.stdout)
    assert shown["base_url"] == "https://api.openai.com/v1" and shown["model"] == "sora-2"
    s.env["OPENAI_BASE_URL"] = good.base_url
    job_id = s.ok("submit", "never to the evil server").strip()
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0
    assert evil.stats()["requests"] == 0


# -- point 15: credentials in the base URL -----------------------------------------------------


def test_credentials_in_the_base_url_are_never_shown(make_fake: MakeFake,
                                                     make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    url = fake.base_url.replace("http://", f"http://gateway:{SECRET_PART}@")
    s = make_sora(url)
    outputs = [s.ok("config", "show"), s.ok("config", "show", "--json")]
    job_id = s.ok("submit", "through a gateway").strip()
    r = s.run("wait", job_id, "--timeout", "60")
    outputs.append(r.stdout + r.stderr)
    assert "***" in outputs[0]
    s.stop_runner()
    no_secret_anywhere(s, *outputs)
