"""Settings: env beats the config file beats defaults; the API key stays private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sora_cli.config import (
    DEFAULT_BASE_URL,
    Settings,
    ensure_home,
    insecure_base_url,
    load_settings,
)
from sora_cli.domain.text import mask_key
from sora_cli.errors import ExitCode, InvalidInput, StoreError

KEY = "sk-test-0123456789abcdefWXYZ"


def write_config(home: Path, text: str, mode: int = 0o600) -> Path:
    path = home / "config.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def load(home: Path, *, warn: list[str] | None = None, **env: str) -> Settings:
    return load_settings({"SORA_HOME": str(home), **env}, warn)


# --- sources and precedence -----------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    warnings: list[str] = []
    s = load(tmp_path, warn=warnings)
    assert warnings == []
    assert s.home == tmp_path and s.config_file is None and s.api_key is None
    assert (s.base_url, s.model, s.size, s.seconds) == (DEFAULT_BASE_URL, "sora-2",
                                                        "720x1280", 4)
    assert (s.max_in_flight, s.lease_seconds, s.auth_style) == (4, 60.0, "bearer")
    assert s.db_path == tmp_path / "sora.db"
    assert s.videos_dir == tmp_path / "videos"


def test_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_MODEL", "sora-2-pro")
    s = load_settings()
    assert s.home == tmp_path  # the autouse fixture's SORA_HOME
    assert s.model == "sora-2-pro"


def test_file_beats_defaults(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'model = "sora-2-pro"\nseconds = 8\nlease_seconds = 30\n'
                                 'max_in_flight = 2\nbase_url = "https://example.test/v1"\n')
    s = load(tmp_path)
    assert s.config_file == cfg
    assert (s.model, s.seconds, s.lease_seconds, s.max_in_flight) == ("sora-2-pro", 8, 30.0, 2)
    assert isinstance(s.seconds, int) and isinstance(s.lease_seconds, float)
    assert s.base_url == "https://example.test/v1"
    assert s.size == "720x1280"  # not in the file: default


def test_env_beats_file(tmp_path: Path) -> None:
    write_config(tmp_path, 'model = "sora-2-pro"\nseconds = 8\nlease_seconds = 30\n'
                           'size = "1280x720"\n')
    s = load(tmp_path, SORA_MODEL="other", SORA_SECONDS="12", SORA_LEASE_SECONDS="2.5")
    assert (s.model, s.seconds, s.lease_seconds) == ("other", 12, 2.5)
    assert s.size == "1280x720"  # only in the file


def test_empty_env_value_does_not_override(tmp_path: Path) -> None:
    write_config(tmp_path, "seconds = 8\n")
    assert load(tmp_path, SORA_SECONDS="").seconds == 8


def test_sdk_env_names(tmp_path: Path) -> None:
    s = load(tmp_path, OPENAI_API_KEY=KEY, OPENAI_BASE_URL="http://127.0.0.1:9/v1",
             OPENAI_ORG_ID="org-1", OPENAI_PROJECT_ID="proj-1")
    assert (s.api_key, s.base_url, s.organization, s.project) == (
        KEY, "http://127.0.0.1:9/v1", "org-1", "proj-1")


def test_sora_names_beat_sdk_names_beat_file(tmp_path: Path) -> None:
    write_config(tmp_path, 'api_key = "from-file"\nbase_url = "https://file.test"\n'
                           'organization = "org-file"\n')
    s = load(tmp_path, OPENAI_API_KEY="from-sdk-env", SORA_API_KEY="from-sora-env",
             OPENAI_BASE_URL="https://sdk.test")
    assert (s.api_key, s.base_url, s.organization) == ("from-sora-env", "https://sdk.test",
                                                        "org-file")


def test_sora_config_names_the_file(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("seconds = 12\n")
    write_config(tmp_path, "seconds = 8\n")  # ignored: SORA_CONFIG wins
    s = load(tmp_path, SORA_CONFIG=str(other))
    assert (s.seconds, s.config_file) == (12, other)


def test_missing_sora_config_file_is_a_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    s = load(tmp_path, warn=warnings, SORA_CONFIG=str(tmp_path / "typo.toml"))
    assert s.config_file is None
    assert len(warnings) == 1 and "typo.toml" in warnings[0]


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The detached runner starts in another directory: a relative path would name
    # another store there.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text("seconds = 8\n")
    s = load_settings({"SORA_HOME": "rel/home", "SORA_CONFIG": "c.toml"})
    assert s.home == tmp_path / "rel" / "home" and s.home.is_absolute()
    assert s.config_file == tmp_path / "c.toml" and s.seconds == 8


# --- bad input ----------------------------------------------------------------------------


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "seconds = = 8\n")
    with pytest.raises(InvalidInput) as info:
        load(tmp_path)
    assert str(cfg) in str(info.value) and "not valid TOML" in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_non_utf8_config_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_bytes(b'model = "\xff"\n')
    with pytest.raises(InvalidInput, match="not valid TOML"):
        load(tmp_path)


def test_unreadable_config_path_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(InvalidInput, match="cannot read config file"):
        load(tmp_path)


@pytest.mark.parametrize("line", ["seconds = \"eight\"", "seconds = 2.5", "seconds = true",
                                  "lease_seconds = \"soon\"", "lease_seconds = false",
                                  "max_retries = [1]", "poll_max_seconds = nan",
                                  "request_timeout = inf"])
def test_bad_number_in_file(tmp_path: Path, line: str) -> None:
    cfg = write_config(tmp_path, line + "\n")
    with pytest.raises(InvalidInput, match="must be a") as info:
        load(tmp_path)
    assert str(cfg) in str(info.value)


@pytest.mark.parametrize(("name", "value"), [
    ("SORA_SECONDS", "abc"), ("SORA_SECONDS", "8.0"), ("SORA_MAX_IN_FLIGHT", "two"),
    ("SORA_LEASE_SECONDS", "x"), ("SORA_LEASE_SECONDS", "nan"),
    ("SORA_REQUEST_TIMEOUT", "inf"),
])
def test_bad_number_in_env(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings({"SORA_HOME": str(tmp_path), name: value})
    assert name in str(info.value) and "must be a" in str(info.value)


def test_string_setting_must_be_a_string(tmp_path: Path) -> None:
    write_config(tmp_path, "model = 5\n")
    with pytest.raises(InvalidInput, match="model must be a string"):
        load(tmp_path)


@pytest.mark.parametrize(("name", "value"), [
    ("SORA_MAX_IN_FLIGHT", "0"), ("SORA_CREATES_PER_MINUTE", "0"),
    ("SORA_POLL_MIN_SECONDS", "0"), ("SORA_POLL_MIN_SECONDS", "30"),  # above the max (20)
    ("SORA_LEASE_SECONDS", "0"), ("SORA_LEASE_SECONDS", "-1"), ("SORA_REQUEST_TIMEOUT", "0"),
    ("SORA_IDLE_EXIT_SECONDS", "-1"), ("SORA_MAX_RETRIES", "-1"),
    ("SORA_RECONCILE_PAUSE_SECONDS", "-1"), ("SORA_SETTLE_MAX_SECONDS", "-0.5"),
    ("OPENAI_BASE_URL", "ftp://x"), ("OPENAI_BASE_URL", "api.openai.com"),
])
def test_out_of_range_values_are_refused(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(InvalidInput):
        load_settings({"SORA_HOME": str(tmp_path), name: value})


def test_zero_idle_and_retries_are_allowed(tmp_path: Path) -> None:
    s = load(tmp_path, SORA_IDLE_EXIT_SECONDS="0", SORA_MAX_RETRIES="0")
    assert (s.idle_exit_seconds, s.max_retries) == (0.0, 0)


def test_the_reconcile_pauses_are_settings(tmp_path: Path) -> None:
    assert (load(tmp_path).reconcile_pause_seconds, load(tmp_path).settle_max_seconds) == (
        2.0, 10.0)
    write_config(tmp_path, "reconcile_pause_seconds = 0.5\n")
    s = load(tmp_path, SORA_SETTLE_MAX_SECONDS="0")
    assert (s.reconcile_pause_seconds, s.settle_max_seconds) == (0.5, 0.0)


def test_unknown_key_is_a_warning(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'modle = "sora-2-pro"\nseconds = 8\n[api]\nx = 1\n')
    warnings: list[str] = []
    s = load(tmp_path, warn=warnings)
    assert s.seconds == 8 and s.model == "sora-2"
    assert len(warnings) == 2
    assert "'modle'" in warnings[0] and str(cfg) in warnings[0]
    assert "'api'" in warnings[1]


@pytest.mark.parametrize("style", ["bearer", "azure"])
def test_auth_style_accepted(tmp_path: Path, style: str) -> None:
    assert load(tmp_path, SORA_AUTH_STYLE=style).auth_style == style


@pytest.mark.parametrize("style", ["Bearer", "basic", "api-key"])
def test_auth_style_validated(tmp_path: Path, style: str) -> None:
    with pytest.raises(InvalidInput, match="auth_style"):
        load(tmp_path, SORA_AUTH_STYLE=style)


# --- the API key -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o444])
def test_api_key_in_a_readable_file_is_ignored(tmp_path: Path, mode: int) -> None:
    cfg = write_config(tmp_path, f'api_key = "{KEY}"\nseconds = 8\n', mode)
    warnings: list[str] = []
    s = load(tmp_path, warn=warnings)
    assert s.api_key is None
    assert s.seconds == 8  # the rest of the file still counts
    assert len(warnings) == 1 and str(cfg) in warnings[0] and "chmod 600" in warnings[0]
    assert KEY not in warnings[0]


@pytest.mark.parametrize("mode", [0o660, 0o602, 0o622])
def test_every_setting_of_a_file_others_can_write_is_ignored(tmp_path: Path, mode: int) -> None:
    cfg = write_config(tmp_path, f'api_key = "{KEY}"\nseconds = 8\nbase_url = "http://x/v1"\n',
                       mode)
    warnings: list[str] = []
    s = load(tmp_path, warn=warnings)
    assert (s.api_key, s.seconds, s.base_url) == (None, 4, DEFAULT_BASE_URL)
    assert len(warnings) == 1 and str(cfg) in warnings[0] and "writable by others" in warnings[0]


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_api_key_in_a_private_file_is_used(tmp_path: Path, mode: int) -> None:
    write_config(tmp_path, f'api_key = "{KEY}"\n', mode)
    warnings: list[str] = []
    assert load(tmp_path, warn=warnings).api_key == KEY
    assert warnings == []


def test_readable_file_without_key_gives_no_warning(tmp_path: Path) -> None:
    write_config(tmp_path, "seconds = 8\n", 0o644)
    warnings: list[str] = []
    assert load(tmp_path, warn=warnings).seconds == 8
    assert warnings == []


def test_key_is_masked_and_kept_out_of_repr(tmp_path: Path) -> None:
    s = load(tmp_path, OPENAI_API_KEY=KEY)
    public = s.public_dict()
    assert public["api_key"] == "sk-...WXYZ" == s.masked_key()
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in str(public)
    assert public["home"] == str(tmp_path) and public["seconds"] == 4
    assert set(public) >= {"home", "config_file", "base_url", "model", "lease_seconds"}


def test_mask_key() -> None:
    assert mask_key(None) is None and mask_key("") is None
    assert mask_key("short-key") == "***"
    assert mask_key("sk-abcdefghijkl") == "***"  # under 20 characters: nothing shown
    assert mask_key("sk-abcdefghijklmnopqrs") == "sk-...pqrs"


# --- the data dir ----------------------------------------------------------------------------


def test_ensure_home_makes_private_dirs(tmp_path: Path) -> None:
    home = tmp_path / "a" / "b" / "home"
    ensure_home(home)
    for d in (home, home / "videos"):
        assert d.is_dir() and stat.S_IMODE(d.stat().st_mode) == 0o700
    ensure_home(home)  # again: fine


def test_ensure_home_under_a_regular_file_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create data dir"):
        ensure_home(blocker / "home")
    with pytest.raises(StoreError, match="cannot create data dir"):
        ensure_home(blocker)  # a file where the dir should be
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_ensure_home_in_an_unwritable_parent_fails(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError, match="cannot create data dir"):
            ensure_home(parent / "home")
    finally:
        parent.chmod(0o700)


@pytest.mark.parametrize(("url", "insecure"), [
    ("https://api.openai.com/v1", False),
    ("http://127.0.0.1:8000/v1", False),
    ("http://localhost:8000/v1", False),
    ("http://[::1]:8000/v1", False),
    ("http://127.0.0.2:8000/v1", False),
    ("http://api.example.com/v1", True),
    ("http://localhost.example.com/v1", True),
    ("http://10.0.0.5/v1", True),
    ("https://10.0.0.5/v1", False),
])
def test_insecure_base_url(url: str, insecure: bool) -> None:
    assert insecure_base_url(url) is insecure
