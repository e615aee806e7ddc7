"""Where sora keeps its state and what it is configured to do.

Sources, strongest first: environment variables, the config file, built-in
defaults. Every setting `key` can come from the env as `SORA_KEY`; the API
settings also read the official SDK's variables (OPENAI_API_KEY, OPENAI_BASE_URL,
OPENAI_ORG_ID, OPENAI_PROJECT_ID). The API key is kept out of every repr.
"""

from __future__ import annotations

import ipaddress
import math
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from sora_cli.domain.providers import BUILTIN, OPENAI, EndpointDialect
from sora_cli.domain.text import (
    checked_key,
    mask_key,
    mask_url,
    register_secrets,
    url_secrets,
)
from sora_cli.errors import InvalidInput, StoreError
from sora_cli.provider_settings import (
    ProviderSettings,
    openai_caps,
    read_aliases,
    read_tables,
)
from sora_cli.provider_settings import build as build_providers

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
APP_NAME: Final = "sora"


@dataclass(frozen=True)
class Settings:
    home: Path
    config_file: Path | None = None
    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    auth_style: str = "bearer"  # "bearer" (Authorization: Bearer) or "azure" (api-key header)
    organization: str | None = None
    project: str | None = None
    ca_bundle: str | None = None
    model: str = "sora-2"
    size: str = "720x1280"
    seconds: int = 4
    max_in_flight: int = 4
    creates_per_minute: int = 20
    poll_min_seconds: float = 1.0
    poll_max_seconds: float = 20.0
    idle_exit_seconds: float = 60.0
    lease_seconds: float = 60.0
    request_timeout: float = 60.0
    max_retries: int = 5
    # An unanswered create: the runner reads the remote list this long after the attempt
    # began, and re-sends only when a second look, min(request_timeout, settle_max_seconds)
    # later, still shows no matching video (a slow server may still make it).
    reconcile_pause_seconds: float = 2.0
    settle_max_seconds: float = 10.0
    max_daily_cost: float | None = None  # USD a day (estimated), None = no limit
    max_job_cost: float | None = None  # USD for one job (estimated), None = no limit
    save_thumbnails: bool = False  # the runner also saves videos/<id>.webp
    # A shared PostgreSQL store (None: the SQLite file in home); may hold a password.
    database_url: str | None = field(default=None, repr=False)
    shared_videos_dir: str | None = None  # where runners save videos (all machines see it)
    fleet_max_in_flight: int | None = None  # stored in the store for every runner; 0 clears
    # `sora serve`: the bearer token every request needs (required off loopback)
    serve_token: str | None = field(default=None, repr=False)
    # The other providers' settings (`[providers.NAME]`, their env variables); openai's
    # are the top-level ones above, plus its caps here.
    providers: tuple[ProviderSettings, ...] = ()
    openai_max_in_flight: int | None = None
    openai_creates_per_minute: int | None = None
    aliases: tuple[tuple[str, str], ...] = ()  # `[aliases]`: name -> model reference

    def provider(self, name: str) -> ProviderSettings | None:
        """One provider's settings (None for a provider sora does not know)."""
        if name == OPENAI:
            return ProviderSettings(
                OPENAI, self.base_url, BUILTIN[OPENAI].key_env, self.api_key,
                self.openai_max_in_flight, self.openai_creates_per_minute)
        for p in self.providers or _default_providers():
            if p.name == name:
                return p
        return None

    def provider_names(self) -> tuple[str, ...]:
        """The built-in providers, then the config's named endpoints and plug-in tables."""
        return (*BUILTIN, *(p.name for p in self.providers if p.api))

    def endpoint_dialects(self) -> dict[str, EndpointDialect]:
        """The named endpoints of the Videos contract, by name."""
        return {p.name: p.dialect for p in self.providers if p.dialect is not None}

    def alias_map(self) -> dict[str, str]:
        return dict(self.aliases)

    def __post_init__(self) -> None:
        # Whatever builds settings (the CLI, the runner, a test), every message stored or
        # printed from now on masks these (domain.text.scrub).
        register_secrets(self.secrets())

    def secrets(self) -> list[str]:
        """Every secret these settings hold: every provider's key and secret settings
        (Kling's secret key), the serve token, and passwords in URLs. (Google's tokens
        and a service account's private key are registered by the Vertex adapter as it
        reads them.)"""
        found = [k for k in (self.api_key, self.serve_token) if k]
        for p in self.providers:
            found += ([p.api_key] if p.api_key and not p.is_adc else []) \
                + list(p.secret_values()) + url_secrets(p.base_url)
        return found + url_secrets(self.database_url) + url_secrets(self.base_url)

    @property
    def db_path(self) -> Path:
        return self.home / "sora.db"

    @property
    def lock_path(self) -> Path:
        return self.home / "runner.lock"

    @property
    def log_path(self) -> Path:
        return self.home / "runner.log"

    @property
    def videos_dir(self) -> Path:
        return self.home / "videos"

    @property
    def save_dir(self) -> Path:
        """Where the runner saves videos: the shared directory when configured."""
        if self.shared_videos_dir:
            return Path(self.shared_videos_dir).expanduser().absolute()
        return self.videos_dir

    @property
    def store_location(self) -> Path | str:
        """The job store: a PostgreSQL URL when configured, else the SQLite file."""
        return self.database_url or self.db_path

    def masked_key(self) -> str | None:
        return mask_key(self.api_key)

    def public_dict(self) -> dict[str, Any]:
        """Every effective setting, JSON-ready, with the key masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "providers":
                value = {n: p.public_dict() for n in self.provider_names()
                         if (p := self.provider(n)) is not None}
            elif f.name == "aliases":
                value = dict(self.aliases)
            elif f.name in KEY_SETTINGS:
                value = mask_key(value)
            elif f.name == "serve_token":
                value = "***" if value else None  # no part of it: it is the whole secret
            elif f.name in ("database_url", "base_url"):
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return out


_INT_KEYS: Final = {"seconds", "max_in_flight", "creates_per_minute", "max_retries",
                    "fleet_max_in_flight"}
_FLOAT_KEYS: Final = {
    "poll_min_seconds", "poll_max_seconds", "idle_exit_seconds", "lease_seconds",
    "request_timeout", "max_daily_cost", "max_job_cost", "reconcile_pause_seconds",
    "settle_max_seconds",
}
_BOOL_KEYS: Final = {"save_thumbnails"}
_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off", "")
_STR_KEYS: Final = {
    "api_key", "base_url", "auth_style", "organization", "project", "ca_bundle",
    "model", "size", "database_url", "shared_videos_dir", "serve_token",
}
# Settings that count only from a config file nobody else can read (chmod 600).
SECRET_KEYS: Final = ("api_key", "serve_token")
KEY_SETTINGS: Final = frozenset({"api_key"})  # API keys: checked when loaded, never shown
SECRET_SETTINGS: Final = frozenset(SECRET_KEYS) | {"database_url"}  # never echoed
_SDK_ENV: Final = {
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "organization": "OPENAI_ORG_ID",
    "project": "OPENAI_PROJECT_ID",
}


def missing_keys(settings: Settings) -> list[str]:
    """The key variables (OPENAI_API_KEY, FAL_KEY...) these settings lack. A runner
    without a provider's key leaves its jobs untouched; a command that has the key, and
    finds such a runner with work for it, hands the work over (runner/spawn.hand_over).
    A named endpoint or plug-in table without `api_key_env` needs no key."""
    return sorted(p.key_env for n in settings.provider_names()
                  if (p := settings.provider(n)) is not None and _lacks_key(p))


def keys_missing_for(settings: Settings, jobs: Iterable[Any]) -> list[str]:
    """The key variables these settings lack for the providers of `jobs`."""
    wanted = {getattr(j, "provider", "openai") for j in jobs}
    return sorted(p.key_env for n in wanted
                  if (p := settings.provider(n)) is not None and _lacks_key(p))


def keyed_providers(settings: Settings) -> list[str]:
    """The providers these settings can work: credentials for each (a key, Kling's key
    pair, Google's service-account file or project), or none needed."""
    return [n for n in settings.provider_names()
            if (p := settings.provider(n)) is not None and not _lacks_key(p)]


def _lacks_key(p: ProviderSettings) -> bool:
    return not p.has_key


def default_home(env: Mapping[str, str]) -> Path:
    # Absolute, so that the path means the same store whatever the current directory.
    if env.get("SORA_HOME"):
        return Path(env["SORA_HOME"]).expanduser().absolute()
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False)


def _config_candidates(home: Path, env: Mapping[str, str]) -> list[Path]:
    if env.get("SORA_CONFIG"):
        return [Path(env["SORA_CONFIG"]).expanduser().absolute()]
    found = [home / "config.toml"]
    if not env.get("SORA_HOME"):
        from platformdirs import user_config_path

        found.append(user_config_path(APP_NAME, appauthor=False) / "config.toml")
    return found


def _read_toml(path: Path, warn: list[str]) -> dict[str, Any]:
    import tomllib

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        if not os.access(path.parent, os.R_OK | os.X_OK):  # the dir, not the file, is shut
            raise StoreError(f"cannot read {path.parent}: {exc.strerror}") from None
        raise InvalidInput(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from None
    info = path.stat()
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or info.st_uid != os.geteuid():
        # Anyone who can change it could send the keys elsewhere (a base_url): none counts.
        why = ("is writable by others (chmod 600 it)" if info.st_mode & 0o022
               else f"belongs to another user (uid {info.st_uid})")
        warn.append(f"ignoring every setting in {path}: the file {why}")
        return {}
    private = not path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    if not private:
        for key in SECRET_KEYS:
            if key in data:
                warn.append(f"ignoring {key} in {path}: the file is readable by others "
                            "(chmod 600 it)")
                data.pop(key)
    if "providers" in data:  # keys in its tables count only from a private file, too
        data["providers"] = read_tables(data["providers"], str(path), warn, key_allowed=private)
    if "aliases" in data:
        data["aliases"] = read_aliases(data["aliases"], str(path))
    return data


def _coerce(key: str, value: Any, origin: str) -> Any:
    if key in _BOOL_KEYS:  # TOML true/false, or env text such as 1/0, yes/no
        text = value.strip().lower() if isinstance(value, str) else None
        if isinstance(value, bool) or text in _TRUE + _FALSE:
            return value if isinstance(value, bool) else text in _TRUE
        raise InvalidInput(f"{origin}: {key} must be true or false (got {value!r})")
    try:
        if key in _INT_KEYS:
            if not isinstance(value, int | str) or isinstance(value, bool):
                raise ValueError  # 2.5 would silently become 2
            return int(value)
        if key in _FLOAT_KEYS:
            if isinstance(value, bool) or not math.isfinite(number := float(value)):
                raise ValueError
            return number
    except (TypeError, ValueError):
        kind = "a whole number" if key in _INT_KEYS else "a number"
        raise InvalidInput(f"{origin}: {key} must be {kind} (got {value!r})") from None
    if not isinstance(value, str):
        got = f"a TOML {_toml_kind(value)}" if key in SECRET_SETTINGS else repr(value)
        raise InvalidInput(f"{origin}: {key} must be a string (got {got})")
    return value


def _toml_kind(value: Any) -> str:
    """What a value is, without showing it (for secret settings)."""
    kinds = {list: "array", dict: "table", bool: "boolean", int: "integer", float: "float"}
    return next((name for t, name in kinds.items() if isinstance(value, t)), "value")


def load_settings(env: Mapping[str, str] | None = None, warn: list[str] | None = None) -> Settings:
    """Build the effective settings. `warn` collects non-fatal notes for stderr."""
    env = os.environ if env is None else env
    warnings = [] if warn is None else warn
    home = default_home(env)
    values: dict[str, Any] = {"home": home}
    origins: dict[str, str] = {}  # where each key came from, to name it in messages
    config_file = None
    tables: dict[str, Any] = {}
    for candidate in _config_candidates(home, env):
        data = _read_toml(candidate, warnings)
        if data or candidate.exists():
            config_file = candidate
            tables = data.pop("providers", {})
            values["aliases"] = tuple(data.pop("aliases", {}).items())
            for key, value in data.items():
                if key not in _INT_KEYS | _FLOAT_KEYS | _STR_KEYS | _BOOL_KEYS:
                    warnings.append(f"{candidate}: unknown setting {key!r} ignored")
                    continue
                values[key] = _coerce(key, value, str(candidate))
                origins[key] = f"{key} in {candidate}"
            break
    if config_file is None and env.get("SORA_CONFIG"):
        warnings.append(f"SORA_CONFIG names {env['SORA_CONFIG']}, which does not exist")
    values["config_file"] = config_file
    for key in _INT_KEYS | _FLOAT_KEYS | _STR_KEYS | _BOOL_KEYS:
        for name in (f"SORA_{key.upper()}", _SDK_ENV.get(key)):
            if name and env.get(name):
                values[key] = _coerce(key, env[name], name)
                origins[key] = name
                break
    register_secrets([env.get("PGPASSWORD"), *(values.get(k) for k in KEY_SETTINGS)])
    for key in KEY_SETTINGS & set(values):
        values[key] = checked_key(values[key], origins[key], warnings)
    values["providers"] = build_providers(tables, env, warnings)
    caps = openai_caps(tables, env)
    values["openai_max_in_flight"] = caps["max_in_flight"]
    values["openai_creates_per_minute"] = caps["creates_per_minute"]
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if s.auth_style not in ("bearer", "azure"):
        raise InvalidInput(f"auth_style must be 'bearer' or 'azure' (got {s.auth_style!r})")
    if s.max_in_flight < 1 or s.creates_per_minute < 1:
        raise InvalidInput("max_in_flight and creates_per_minute must be at least 1")
    if not 0 < s.poll_min_seconds <= s.poll_max_seconds:
        raise InvalidInput("poll_min_seconds must be > 0 and <= poll_max_seconds")
    if s.lease_seconds <= 0 or s.request_timeout <= 0:
        raise InvalidInput("lease_seconds and request_timeout must be > 0")
    if s.idle_exit_seconds < 0 or s.max_retries < 0:
        raise InvalidInput("idle_exit_seconds and max_retries must be 0 or more")
    if s.reconcile_pause_seconds < 0 or s.settle_max_seconds < 0:
        raise InvalidInput("reconcile_pause_seconds and settle_max_seconds must be 0 or more")
    if any(v is not None and v < 0 for v in (s.max_daily_cost, s.max_job_cost)):
        raise InvalidInput("max_daily_cost and max_job_cost must be 0 or more (USD)")
    if s.fleet_max_in_flight is not None and s.fleet_max_in_flight < 0:
        raise InvalidInput("fleet_max_in_flight must be 0 (no fleet limit) or more")
    if s.database_url and not s.database_url.startswith(("postgresql://", "postgres://")):
        raise InvalidInput("database_url must be a postgresql:// URL (got "
                           f"{mask_url(s.database_url)!r})")
    if not s.base_url.startswith(("http://", "https://")):
        raise InvalidInput("base_url must start with http:// or https:// (got "
                           f"{mask_url(s.base_url)!r})")


def _default_providers() -> tuple[ProviderSettings, ...]:
    """The providers' built-in settings (for Settings made without load_settings)."""
    return build_providers({}, {})


def ensure_home(home: Path) -> None:
    """Create the data dir 0700 (and videos/), or fail with one clear line. A data dir
    that others may write to, or that belongs to someone else, is refused: links planted
    there (runner.lock, runner.log, a video's name) would redirect sora's writes."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private_dir(home)
        (home / "videos").mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create data dir {home}: {exc.strerror}") from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise StoreError(f"data dir {home} is not writable")


def check_private_dir(home: Path) -> None:
    """StoreError (exit 1, one line saying how to fix it) unless `home` is ours and
    nobody else may write to it."""
    info = home.stat()
    if info.st_uid != os.geteuid():
        raise StoreError(f"data dir {home} is owned by another user (uid {info.st_uid}): "
                         "use a SORA_HOME of your own")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise StoreError(f"data dir {home} can be written by others (mode "
                         f"{stat.S_IMODE(info.st_mode):o}): chmod 700 {home}")


def insecure_base_url(base_url: str) -> bool:
    """True for plain http:// to anything but loopback (credentials would travel in clear)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    if parts.scheme != "http":
        return False
    if parts.hostname == "localhost":
        return False
    try:
        return not ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:  # a host name: not provably loopback
        return True


def is_terminal(stream: Any = None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
