"""Abuse testing: the API key, where credentials go, TLS, what the server may make us
write or print, and how much of its answer we are willing to hold."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sora_cli.fake.media import media_bytes

from .conftest import MakeFake, MakeSora
from .harness import (
    TEST_KEY,
    assert_saved_once,
    job_events,
    proc_memory_kib,
    quick_fake,
    runner_pid,
    wait_for,
    wait_job,
)

pytestmark = pytest.mark.e2e

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# -- the API key ------------------------------------------------------------------------


def test_api_key_never_written_printed_or_in_argv(make_fake: MakeFake,
                                                  make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    # a server that echoes the key it was sent in its error messages
    fake.faults({"action": "error", "route": "create", "status": 400, "prompt": "leaky",
                 "text": "Invalid request from key {api_key}"})
    s = make_sora(fake)
    seen: list[str] = []

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        r = s.run(*args)
        seen.append(r.stdout + r.stderr)
        return r

    good = run("submit", "a fine clip").stdout.strip()
    pid = wait_for(lambda: runner_pid(s), 10, "the runner")
    assert TEST_KEY.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    bad = run("submit", "leaky").stdout.strip()
    assert run("wait", good, "--download", "-o", "good.mp4").returncode == 0
    assert run("-v", "wait", bad).returncode == 1
    job = s.job(bad)
    assert job["error"]["message"] == "Invalid request from key ***"  # redacted, not lost
    for args in (("status", bad, "--json"), ("-v", "status", bad), ("list", "--all", "--json"),
                 ("list",), ("config", "show"), ("config", "show", "--json"),
                 ("runner", "status", "--json"), ("-v", "download", bad), ("logs", bad),
                 ("logs", bad, "--json")):
        run(*args)
    # an error with a traceback (-v) whose server text carries the key
    fake.faults({"action": "error", "route": "content", "status": 401,
                 "text": "Incorrect API key provided: {api_key}"})
    (s.home / "videos" / f"{good}.mp4").unlink()
    r = run("-v", "download", good, "-o", "again.mp4")
    assert r.returncode == 4 and "Traceback" in r.stderr and "***" in r.stderr
    s.stop_runner()
    for text in seen:
        assert TEST_KEY not in text
    files = [p for p in s.home.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"sora.db", "runner.log"}
    for path in files:  # the store (and its WAL), events, the log, the lock file, videos
        assert TEST_KEY.encode() not in path.read_bytes(), path


def test_config_key_in_a_file_others_can_read_is_refused(make_fake: MakeFake,
                                                         make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    del s.env["OPENAI_API_KEY"]
    s.home.mkdir(mode=0o700)
    config = s.home / "config.toml"
    config.write_text(f'api_key = "{TEST_KEY}"\n')
    config.chmod(0o644)
    r = s.run("submit", "key from a shared file")
    assert r.returncode == 4
    assert "ignoring api_key" in r.stderr and "chmod 600" in r.stderr
    assert s.ok("list", "--all", "-q") == ""  # nothing recorded
    config.chmod(0o600)
    r = s.run("submit", "key from a private file")
    assert r.returncode == 0 and r.stderr == ""
    assert s.run("wait", r.stdout.strip(), "--timeout", "60").returncode == 0


# -- where credentials go ----------------------------------------------------------------------


def test_redirect_to_another_host_drops_the_credentials(make_fake: MakeFake,
                                                        make_sora: MakeSora) -> None:
    cdn = make_fake()
    api = quick_fake(make_fake, "--content-redirect", cdn.root)
    for style in ("bearer", "azure"):
        s = make_sora(api, SORA_AUTH_STYLE=style)
        job_id = s.ok("submit", f"served from elsewhere {style}").strip()
        assert s.run("wait", job_id, "--timeout", "60").returncode == 0  # the runner's download
        job = assert_saved_once(s, api, job_id)
        (s.home / "videos" / f"{job_id}.mp4").unlink()
        out = s.ok("download", job_id, "-o", "again.mp4")  # the CLI's own fetch
        assert hashlib.sha256((s.cwd / out.strip()).read_bytes()).hexdigest() == job["sha256"]
    counters = cdn.stats()["counters"]
    assert counters["cdn_requests"] == 4
    assert counters.get("cdn_with_credentials", 0) == 0
    assert api.stats()["counters"]["route:content"] == 4  # each went to the API first


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_verification_stays_on(make_fake: MakeFake, make_sora: MakeSora,
                                   certificate: tuple[str, str]) -> None:
    cert, key = certificate
    fake = quick_fake(make_fake, "--tls-cert", cert, "--tls-key", key, scheme="https")
    s = make_sora(fake, SORA_MAX_RETRIES="0")
    job_id = s.ok("submit", "an untrusted server").strip()
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1
    job = s.job(job_id)
    assert job["error"]["code"] == "unreachable"
    assert "certificate" in job["error"]["message"]


@pytest.mark.parametrize("how", ["SSL_CERT_FILE", "SORA_CA_BUNDLE"])
def test_custom_ca_bundle_is_honoured(make_fake: MakeFake, make_sora: MakeSora,
                                      certificate: tuple[str, str], how: str) -> None:
    cert, key = certificate
    fake = quick_fake(make_fake, "--tls-cert", cert, "--tls-key", key, scheme="https")
    s = make_sora(fake, **{how: cert})
    job_id = s.ok("submit", f"trusted by {how}").strip()
    r = s.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = s.job(job_id)
    assert job["sha256"] == hashlib.sha256(media_bytes(job["remote_id"], "video")).hexdigest()


@pytest.mark.parametrize(("url", "warns"), [
    ("http://sora-test.invalid/v1", True),
    ("https://sora-test.invalid/v1", False),
    ("http://127.0.0.1:9/v1", False),
])
def test_plain_http_to_another_host_gets_a_warning(make_sora: MakeSora, url: str,
                                                   warns: bool) -> None:
    s = make_sora(url, SORA_MAX_RETRIES="0", SORA_IDLE_EXIT_SECONDS="1")
    submitted = s.run("submit", "over the wire")
    assert submitted.returncode == 0
    download = s.run("download", "@last")
    for r in (submitted, download):
        assert ("plain http" in r.stderr) is warns, r.stderr
    s.ok("cancel", "@last")


# -- nothing from the server becomes a path --------------------------------------------------


def test_server_ids_are_validated_before_use(make_fake: MakeFake, make_sora: MakeSora,
                                             tmp_path: Path) -> None:
    fake = quick_fake(make_fake)
    # ids are opaque (`/` and `..` travel percent-encoded in one path segment), but one
    # with control characters is unusable: the create's answer is not trusted
    fake.faults({"action": "bad_id", "route": "create",
                 "text": "video_\x1b]0;pwn\x07../../../../escape"})
    s = make_sora(fake)
    job_id = s.ok("submit", "a hostile id").strip()
    assert s.run("wait", job_id, "--download", "--timeout", "60").returncode == 0
    job = assert_saved_once(s, fake, job_id)
    assert re.fullmatch(r"video_[0-9a-f]{32}", job["remote_id"])  # the real one, adopted
    assert any("unusable video id" in (e["message"] or "") for e in job_events(s, job_id))
    assert not [p for p in tmp_path.rglob("*escape*")]
    assert s.run("status", "video_../../escape").returncode == 3


def test_output_never_follows_a_symlink_nor_overwrites(make_fake: MakeFake,
                                                       make_sora: MakeSora,
                                                       tmp_path: Path) -> None:
    fake = quick_fake(make_fake)
    s = make_sora(fake)
    job_id = s.ok("submit", "a clip to protect").strip()
    job = wait_job(s, job_id, lambda j: j["status"] == "completed", 60)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.mp4"
    victim.write_bytes(b"precious")
    clips = s.cwd / "clips"
    clips.mkdir()
    link = clips / f"{job_id}.mp4"
    commands = (("wait", job_id, "--download", "-o", "clips/"), ("download", job_id, "-o",
                                                                 "clips/"))
    link.symlink_to(victim)  # a link to a file elsewhere: never written through
    for args in commands:
        r = s.run(*args)
        assert r.returncode != 0 and "exists" in r.stderr, r.stderr
    assert victim.read_bytes() == b"precious"
    link.unlink()
    planted = outside / "planted.mp4"
    link.symlink_to(planted)  # a dangling link: following it would create a file elsewhere
    for args in commands:
        r = s.run(*args)
        assert r.returncode != 0 and "exists" in r.stderr, r.stderr
    assert not planted.exists() and link.is_symlink()
    s.ok("download", job_id, "-o", "clips/", "--force")  # replaces the link itself
    assert not link.is_symlink() and not planted.exists()
    assert hashlib.sha256(link.read_bytes()).hexdigest() == job["sha256"]
    assert victim.read_bytes() == b"precious"
    # the CLI's own fetch (the runner's copy is gone) refuses a link as well
    (s.home / "videos" / f"{job_id}.mp4").unlink()
    fetched = s.cwd / "fetched.mp4"
    fetched.symlink_to(outside / "planted2.mp4")
    r = s.run("download", job_id, "-o", "fetched.mp4")
    assert r.returncode != 0 and "symbolic link" in r.stderr
    assert not (outside / "planted2.mp4").exists()


# -- what the server says is printed clean -----------------------------------------------------


def test_server_text_with_terminal_escapes_is_printed_clean(make_fake: MakeFake,
                                                            make_sora: MakeSora) -> None:
    fake = quick_fake(make_fake)
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mno\x9b1m good\x07 \x1b[0m"
    fake.faults({"action": "error", "route": "create", "status": 400, "text": evil})
    s = make_sora(fake)
    job_id = s.ok("submit", "escape me").strip()
    outputs = [s.run("wait", job_id, "--timeout", "60")]
    job = s.job(job_id)
    assert job["status"] == "failed" and job["error"]["message"] == "no good"
    for args in (("status", job_id), ("status", job_id, "--json"), ("list",),
                 ("list", "--json"), ("-v", "download", job_id)):
        outputs.append(s.run(*args))
    assert outputs[0].returncode == 1 and "no good" in outputs[0].stderr
    for r in outputs:
        assert not CONTROL.search(r.stdout + r.stderr), repr(r.stdout + r.stderr)


# -- limits ---------------------------------------------------------------------------------------


def test_huge_json_answer_is_refused_not_buffered(make_fake: MakeFake,
                                                  make_sora: MakeSora) -> None:
    fake = make_fake("--job-seconds", "1", "--poll-after-ms", "100")
    size = 300 * 1024 * 1024
    fake.faults({"action": "huge", "route": "retrieve", "size": size})
    s = make_sora(fake)
    job_id = s.ok("submit", "a very long answer").strip()
    pid = wait_for(lambda: runner_pid(s), 10, "the runner")
    wait_for(lambda: fake.stats()["faults_pending"] == 0
             and fake.stats()["counters"].get("route:retrieve", 0) >= 2, 30,
             "a poll after the huge answer")
    peak_mib = proc_memory_kib(pid, "VmHWM") / 1024
    assert peak_mib < 150, f"the runner peaked at {peak_mib:.0f} MiB"
    failed = [e for e in job_events(s, job_id) if e["kind"] == "poll_failed"]
    assert "too large" in failed[0]["message"]
    assert s.run("wait", job_id, "--timeout", "60").returncode == 0  # and the job goes on
    assert_saved_once(s, fake, job_id)
