"""A provider plug-in end to end: the example package under tests/plugins/sora_echo is
registered in the `sora_cli.providers` entry-point group (a `.dist-info` written to a
temporary directory on PYTHONPATH: no network, no pip) and a job goes through it in real
`sora` processes and a detached runner, against the plug-in's own fake (its fake.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import SORA, Sora, job_events, make_env

pytestmark = pytest.mark.e2e

PLUGIN_SRC = Path(__file__).parents[1] / "plugins" / "sora_echo"
ECHO_KEY = "echo-test-key-0123456789abcdef"
sys.path.insert(0, str(PLUGIN_SRC))
from sora_echo.fake import EchoFake, content  # noqa: E402


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PYTHONPATH on which the plug-in is installed as far as importlib.metadata can
    tell: its sources, and a .dist-info with its entry point (as pip would write it)."""
    site = tmp_path_factory.mktemp("site")
    info = site / "sora_echo-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sora-echo\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text('[sora_cli.providers]\necho = sora_echo\n')
    return f"{site}:{PLUGIN_SRC}"


@pytest.fixture
def echo() -> Iterator[EchoFake]:
    with EchoFake(ECHO_KEY) as fake:
        yield fake


def plugin_sora(tmp_path: Path, plugin_path: str, config: str = "") -> Sora:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    if config:
        (home / "config.toml").write_text(config)
    work = tmp_path / "work"
    work.mkdir()
    env = make_env(home, "unused", PYTHONPATH=plugin_path, ECHO_KEY=ECHO_KEY)
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        env.pop(name)
    return Sora(home, env, work)


@pytest.fixture
def sora(tmp_path: Path, plugin_path: str, echo: EchoFake) -> Iterator[Sora]:
    s = plugin_sora(tmp_path, plugin_path, f'[providers.echo]\nbase_url = "{echo.base_url}"\n')
    yield s
    s.stop_runner()


def test_a_job_runs_through_the_plugin(sora: Sora, echo: EchoFake) -> None:
    job_id = sora.ok("submit", "-m", "echo:echo-1", "a paper boat", "-p", "style=ink").strip()
    r = sora.run("wait", job_id, "--download", "-o", "boat.mp4", "--timeout", "60")
    assert r.returncode == 0, r.stderr
    job = sora.job(job_id)
    assert (job["status"], job["provider"], job["model"]) == ("completed", "echo", "echo-1")
    expected = hashlib.sha256(content(job["remote_id"])).hexdigest()
    assert job["sha256"] == expected
    assert hashlib.sha256((sora.cwd / "boat.mp4").read_bytes()).hexdigest() == expected
    assert echo.creates == [{"text": "a paper boat", "model": "echo-1", "style": "ink"}]


def test_a_failed_render_fails_the_job_with_the_plugins_message(sora: Sora) -> None:
    job_id = sora.ok("submit", "-m", "echo:echo-1", "something forbidden").strip()
    r = sora.run("wait", job_id, "--timeout", "60")
    assert r.returncode == 1 and "refused by the echo filter" in r.stderr


def test_an_unanswered_create_through_a_plugin_without_list_is_never_resent(
        sora: Sora, echo: EchoFake) -> None:
    echo.drop_next_create = True
    job_id = sora.ok("submit", "-m", "echo:echo-1", "lost on the way back").strip()
    assert sora.run("wait", job_id, "--timeout", "60").returncode == 1
    job = sora.job(job_id)
    assert job["error"]["code"] == "create_unconfirmed" and len(echo.creates) == 1
    assert "create_unknown" in [e["kind"] for e in job_events(sora, job_id)]


def test_models_lists_an_installed_plugin_without_any_config(tmp_path: Path,
                                                              plugin_path: str) -> None:
    s = plugin_sora(tmp_path, plugin_path)
    rows = [json.loads(line) for line in s.ok("models", "--json").splitlines()]
    mine = [r for r in rows if r["provider"] == "echo"]
    assert [(r["model"], r["kind"]) for r in mine] == [("echo-1", "plugin")]
    assert "example plug-in" in mine[0]["description"]
    r = s.run("submit", "-m", "echo:echo-1", "no key", env={"ECHO_KEY": ""})
    assert r.returncode == 4 and "ECHO_KEY" in r.stderr
    r = s.run("submit", "-m", "nosuch:model", "x")
    assert r.returncode == 2 and "unknown provider 'nosuch'" in r.stderr


@pytest.mark.parametrize("args", [("--help",), ("list",), ("status", "nothing"),
                                  ("submit", "--dry-run", "a fox", "-m", "sora-2")])
def test_startup_never_scans_entry_points(tmp_path: Path, plugin_path: str,
                                          args: tuple[str, ...]) -> None:
    """Entry points are read only when a name is neither built in nor configured."""
    s = plugin_sora(tmp_path, plugin_path)
    s.run("list")  # the store exists (creating it imports the database libraries)
    code = "import sys; from sora_cli.__main__ import main; sys.argv[0] = 'sora'; main()"
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args],
                       capture_output=True, text=True, env=s.env, cwd=s.cwd, timeout=60)
    assert r.returncode in (0, 3), r.stderr[-2000:]
    assert "importlib.metadata" not in r.stderr and "sora_echo" not in r.stderr
    assert Path(SORA).exists()
