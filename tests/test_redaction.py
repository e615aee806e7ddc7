"""Issue 13 without processes: one redaction for everything stored or printed, keys
checked when loaded and never echoed, database URLs masked whatever their shape, text
fields without NUL, stdin that is not UTF-8, a runner that cannot be dumped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import sora
from typer.testing import CliRunner

from sora_cli.cli.main import app
from sora_cli.config import Settings, load_settings
from sora_cli.domain.jobs import JobError, JobStatus, VideoRequest
from sora_cli.domain.text import mask_url
from sora_cli.errors import AuthError
from sora_cli.store.repository import Store

SECRET = "Zq9-secret-0123456789"
KEY = f"sk-{SECRET}"


def write_config(home: Path, text: str) -> None:
    path = home / "config.toml"
    path.write_text(text)
    path.chmod(0o600)


# -- point 1: keys checked when loaded -------------------------------------------------------


@pytest.mark.parametrize("key", [f"sk-é-{SECRET}", f"sk-{SECRET} x", f"sk-\x1b{SECRET}",
                                 f"sk-{SECRET}\n\n", f"sk-\n{SECRET}", " ", "\t"])
def test_a_key_that_cannot_be_sent_exits_4_naming_the_variable(tmp_path: Path,
                                                                key: str) -> None:
    with pytest.raises(AuthError) as caught:
        load_settings({"SORA_HOME": str(tmp_path), "OPENAI_API_KEY": key})
    assert "OPENAI_API_KEY" in str(caught.value) and SECRET not in str(caught.value)
    assert caught.value.exit_code == 4


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_one_trailing_newline_is_stripped_with_a_note(tmp_path: Path, end: str) -> None:
    warnings: list[str] = []
    s = load_settings({"SORA_HOME": str(tmp_path), "OPENAI_API_KEY": KEY + end}, warnings)
    assert s.api_key == KEY
    assert len(warnings) == 1 and "OPENAI_API_KEY" in warnings[0] and SECRET not in warnings[0]


def test_a_key_in_the_config_file_is_checked_too(tmp_path: Path) -> None:
    write_config(tmp_path, f'api_key = "sk-ü-{SECRET}"\n')
    with pytest.raises(AuthError, match="api_key") as caught:
        load_settings({"SORA_HOME": str(tmp_path)})
    assert SECRET not in str(caught.value)


def test_the_store_masks_every_configured_secret_whatever_the_origin(tmp_path: Path) -> None:
    Settings(home=tmp_path, api_key=KEY,
             database_url=f"postgresql://u:db-{SECRET}@h/db?sslpassword=ssl-{SECRET}")
    with Store.open(tmp_path / "sora.db") as store:
        (job,) = store.add_jobs([VideoRequest("a prompt")])
        store.log(job.id, "http", message=f"Illegal header value b'Bearer {KEY}'",
                  request_id=KEY)
        store.transition(job.id, JobStatus.FAILED, error=JobError(
            KEY, f"UnicodeEncodeError('ascii', 'Bearer {KEY}') db-{SECRET} ssl-{SECRET}",
            request_id=f"req-{KEY}"))
    for path in tmp_path.iterdir():
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# -- point 5: -v tracebacks go through the redaction -------------------------------------------


def test_verbose_traceback_is_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    sora("list")

    def boom(*args: object, **kwargs: object) -> None:
        try:
            raise ValueError(f"Illegal header value b'Bearer {KEY}\\n'")
        except ValueError as exc:
            raise RuntimeError(f"unexpected: {KEY}") from exc

    monkeypatch.setattr("sora_cli.cli.jobs.resolve_all", boom)
    r = sora("-v", "status", "abcd")
    assert r.exit_code == 1
    assert "Traceback" in r.stderr and "***" in r.stderr and SECRET not in r.stderr
    r = sora("status", "abcd")  # without -v: one line, no traceback
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1 and SECRET not in r.stderr


# -- point 6: config typos never echo a secret -------------------------------------------------


@pytest.mark.parametrize("line", [
    f'api_key = ["{KEY}"]',
    f"api_key = {{ value = \"{KEY}\" }}",
    f'database_url = ["postgresql://u:{SECRET}@h/db"]',
    f'database_url = "mysql://u:{SECRET}@h/db"',
    f'database_url = "u:{SECRET}@h/db"',
    f'base_url = "ftp://u:{SECRET}@h/v1"',
])
def test_config_typos_never_print_a_secret(tmp_path: Path, line: str) -> None:
    write_config(tmp_path, line + "\n")
    r = sora("config", "show")
    assert r.exit_code == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1 and SECRET not in r.stdout + r.stderr


# -- point 13: database URLs masked whatever their shape ---------------------------------------


@pytest.mark.parametrize("url", [
    f"postgresql://u:{SECRET}@[::1/db",
    f"postgresql://u:PG%zz{SECRET}@h/db",
    f"postgresql://u:p@{SECRET}@h/db",
    f"postgresql://u:ab/{SECRET}@h/db",
    f"postgresql://u:a?b#{SECRET}@h/db",
    f"postgresql://u@h/db?password={SECRET}",
    f"postgresql://u@h/db?%70assword={SECRET}",
    f"postgresql://u@h/db?sslmode=require&sslpassword={SECRET}",
    f"postgresql://u@h/db?PassWord={SECRET}&x=1",
    f"postgresql://u:{SECRET}@h:99999/db",
    f"postgresql://u:{SECRET}@h:port/db",
])
def test_database_url_masking(url: str) -> None:
    shown = mask_url(url)
    assert shown is not None and SECRET not in shown and shown.startswith("postgresql://")


def test_well_formed_database_url_keeps_what_helps() -> None:
    assert mask_url("postgresql://sora:pw@db.internal:5433/team?options=-csearch_path%3Dsora"
                    ) == "postgresql://***@db.internal:5433/team?options=-csearch_path%3Dsora"
    assert mask_url("postgresql://db.internal/sora") == "postgresql://db.internal/sora"


@pytest.mark.parametrize("url", [
    f"postgresql://u:{SECRET}@[::1/db",
    f"postgresql://u:PG%zz{SECRET}@127.0.0.1:9/db",
    f"postgresql://u:p@{SECRET}@127.0.0.1:9/db",
    f"postgresql://u@127.0.0.1:9/db?%70assword={SECRET}",
])
def test_a_database_url_never_reaches_a_message(url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_DATABASE_URL", url)
    for args in (("list",), ("config", "show"), ("-v", "status", "@last")):
        r = CliRunner().invoke(app, list(args))
        assert SECRET not in r.stdout + r.stderr, (args, r.stdout + r.stderr)


@pytest.mark.parametrize(("args", "stdin"), [
    (("submit", "-"), "a prompt with a \x00 in it"),
    (("submit", "--file", "-"), '{"prompt": "a \\u0000 NUL"}\n'),
    (("submit", "--file", "-", "--label", "x"), '{"prompt": "fine", "label": "a\\u0000b"}\n'),
    (("submit", "--file", "-"), '{"prompt": "fine", "image": "a\\u0000.png"}\n'),
])
def test_nul_in_a_text_field_exits_2(args: tuple[str, ...], stdin: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    r = sora(*args, input=stdin)
    assert r.exit_code == 2 and "NUL" in r.stderr, r.stderr
    assert sora("list", "-q").stdout == ""


@pytest.mark.postgres
def test_nul_in_a_prompt_exits_2_on_postgresql(pg_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("SORA_DATABASE_URL", pg_url)
    r = sora("submit", "-", input="a \x00 b")
    assert r.exit_code == 2 and "NUL" in r.stderr, r.stderr


# -- point 15: stdin that is not UTF-8 ---------------------------------------------------------


@pytest.mark.parametrize("args", [("submit", "-"), ("submit", "--file", "-"), ("status", "-")])
def test_invalid_utf8_on_stdin_exits_2_naming_the_line(args: tuple[str, ...],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    r = sora(*args, input=b"fine\nalso fine\nnot \xff\xfe fine\n")
    assert r.exit_code == 2, r.stderr
    assert "line 3" in r.stderr and "UTF-8" in r.stderr and len(r.stderr.splitlines()) == 1


# -- point 15: the runner process cannot be dumped ---------------------------------------------


def test_hardened_process_is_not_dumpable() -> None:
    code = ("import ctypes, resource; from sora_cli.runner.process import harden; harden(); "
            "libc = ctypes.CDLL(None); print(libc.prctl(3, 0, 0, 0, 0), "
            "resource.getrlimit(resource.RLIMIT_CORE))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ}).stdout.split(maxsplit=1)
    assert out == ["0", "(0, 0)\n"]
