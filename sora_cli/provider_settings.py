"""Per-provider settings: `[providers.NAME]` tables of the config file, their
environment variables, and `[aliases]`.

```toml
[providers.fal]
api_key = "..."            # only from a 0600 file; else FAL_KEY
base_url = "https://queue.fal.run"
max_in_flight = 4          # jobs of this provider the runner works at once
creates_per_minute = 10    # creates sent to it per minute

[aliases]
kling = "fal:fal-ai/kling-video/v2.1/master/text-to-video"
```

Strongest first: the environment (`SORA_FAL_BASE_URL`, `REPLICATE_BASE_URL` as the
official client reads it, the provider's key variable `FAL_KEY`, `SORA_FAL_MAX_IN_FLIGHT`
...), the table, the built-in defaults (domain/providers.py). The `openai` provider is
the top-level settings (`base_url`, `api_key`, OPENAI_*): its table takes only the caps.

A provider's own settings (`ProviderInfo.extras`: Vertex's `project`, `location`,
`storage_uri`; Kling's `secret_key`) come the same way: their variables, then the table;
a secret one only from a 0600 file, as `api_key`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sora_cli.domain.providers import ADC, BUILTIN, KEY_PAIR, OPENAI
from sora_cli.domain.text import mask_key
from sora_cli.errors import InvalidInput

TABLE_KEYS: Final = ("base_url", "api_key", "max_in_flight", "creates_per_minute",
                     "platform_url")
_CAPS: Final = ("max_in_flight", "creates_per_minute")


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    base_url: str
    key_env: str
    api_key: str | None = field(default=None, repr=False)
    max_in_flight: int | None = None  # None: the runner's own max_in_flight
    creates_per_minute: int | None = None  # None: the top-level creates_per_minute
    platform_url: str | None = None  # fal: the platform API (request lists)
    extras: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # ProviderInfo.extras

    def extra(self, key: str) -> str | None:
        return next((v for k, v in self.extras if k == key), None)

    @property
    def has_key(self) -> bool:
        """Its credentials are configured: the key (and the secret of a key pair); for
        ADC, a service-account file or a project (google-auth finds the rest)."""
        kind = BUILTIN[self.name].credentials if self.name in BUILTIN else None
        if kind == KEY_PAIR:
            return bool(self.api_key and self.extra("secret_key"))
        if kind == ADC:
            return bool(self.api_key or self.extra("project"))
        return bool(self.api_key)

    def key_hint(self) -> str:
        """What to set, for the message of a submit without credentials."""
        info = BUILTIN.get(self.name)
        if info is not None and info.credentials == KEY_PAIR:
            secret = info.extra("secret_key")
            return f"{self.key_env} and {secret.envs[0] if secret else 'a secret key'}"
        if info is not None and info.credentials == ADC:
            project = info.extra("project")
            return (f"{self.key_env} (a service-account file), or run `gcloud auth "
                    f"application-default login` and set {project.envs[0] if project else ''}")
        return self.key_env

    def public_dict(self) -> dict[str, Any]:
        secrets = {e.key for e in BUILTIN[self.name].extras if e.secret} \
            if self.name in BUILTIN else set()
        return {"base_url": self.base_url, "key_env": self.key_env,
                "api_key": mask_key(self.api_key), "has_key": self.has_key,
                "max_in_flight": self.max_in_flight,
                "creates_per_minute": self.creates_per_minute,
                **({"platform_url": self.platform_url} if self.platform_url else {}),
                **{k: mask_key(v) if k in secrets else v for k, v in self.extras}}


def read_tables(data: Any, origin: str, warnings: list[str], *,
                key_allowed: bool) -> dict[str, dict[str, Any]]:
    """The `[providers.NAME]` tables of a config file, checked; unknown names and keys
    are warned about and dropped, and so is `api_key` in a file others can read."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{origin}: [providers] must be a table of [providers.NAME] tables")
    out: dict[str, dict[str, Any]] = {}
    for name, table in data.items():
        if name not in BUILTIN:
            warnings.append(f"{origin}: unknown provider [providers.{name}] ignored "
                            f"(providers: {', '.join(BUILTIN)})")
            continue
        if not isinstance(table, Mapping):
            raise InvalidInput(f"{origin}: [providers.{name}] must be a table")
        values: dict[str, Any] = {}
        info = BUILTIN[name]
        for key, value in table.items():
            extra = info.extra(key)
            if extra is not None:
                if extra.secret and not key_allowed:
                    warnings.append(f"ignoring {key} of [providers.{name}] in {origin}: the "
                                    "file is readable by others (chmod 600 it)")
                elif not isinstance(value, str):
                    raise InvalidInput(f"{origin}: [providers.{name}] {key} must be a string")
                else:
                    values[key] = value
                continue
            if key not in TABLE_KEYS or (name == OPENAI and key not in _CAPS) or (
                    key == "api_key" and info.credentials == ADC):
                hint = (" (the openai provider's are the top-level base_url and api_key)"
                        if name == OPENAI else f" ({name} uses Application Default "
                        f"Credentials: {info.key_env})" if key == "api_key" else "")
                warnings.append(f"{origin}: unknown setting {key!r} in [providers.{name}] "
                                f"ignored{hint}")
                continue
            if key == "api_key" and not key_allowed:
                warnings.append(f"ignoring api_key of [providers.{name}] in {origin}: the "
                                "file is readable by others (chmod 600 it)")
                continue
            values[key] = _coerce(name, key, value, origin)
        out[name] = values
    return out


def read_aliases(data: Any, origin: str) -> dict[str, str]:
    if not isinstance(data, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InvalidInput(f"{origin}: [aliases] must map names to model references")
    return dict(data)


def _coerce(name: str, key: str, value: Any, origin: str) -> Any:
    where = f"{origin}: [providers.{name}] {key}"
    if key in _CAPS:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidInput(f"{where} must be a whole number")
        try:
            number = int(value)
        except ValueError:
            raise InvalidInput(f"{where} must be a whole number") from None
        if number < 1:
            raise InvalidInput(f"{where} must be at least 1")
        return number
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string" + ("" if key == "api_key"
                                                            else f" (got {value!r})"))
    if key in ("base_url", "platform_url") and not value.startswith(("http://", "https://")):
        raise InvalidInput(f"{where} must start with http:// or https:// (got {value!r})")
    return value


def build(tables: Mapping[str, Mapping[str, Any]], env: Mapping[str, str],
          ) -> tuple[ProviderSettings, ...]:
    """Every built-in provider but openai (that one is the top-level settings)."""
    out: list[ProviderSettings] = []
    for name, info in BUILTIN.items():
        if name == OPENAI:
            continue
        table = dict(tables.get(name, {}))
        base = _first_env(env, info.base_url_envs) or table.get("base_url") \
            or info.default_base_url
        platform = (_first_env(env, info.platform_url_envs) or table.get("platform_url")
                    or info.platform_url)
        caps = {cap: table.get(cap) for cap in _CAPS}
        for cap in _CAPS:
            variable = f"SORA_{name.upper()}_{cap.upper()}"
            if env.get(variable):
                caps[cap] = _coerce(name, cap, env[variable], variable)
        extras = tuple((e.key, value) for e in info.extras
                       if (value := _first_env(env, e.envs) or table.get(e.key) or e.default))
        out.append(ProviderSettings(
            name=name, base_url=_checked_url(base, info.base_url_envs),
            key_env=info.key_env, api_key=env.get(info.key_env) or table.get("api_key"),
            platform_url=_checked_url(platform, info.platform_url_envs) if platform else None,
            extras=extras, **caps))
    return tuple(out)


def openai_caps(tables: Mapping[str, Mapping[str, Any]], env: Mapping[str, str]
                ) -> dict[str, int | None]:
    table = tables.get(OPENAI, {})
    caps: dict[str, int | None] = {cap: table.get(cap) for cap in _CAPS}
    for cap in _CAPS:
        variable = f"SORA_OPENAI_{cap.upper()}"
        if env.get(variable):
            caps[cap] = _coerce(OPENAI, cap, env[variable], variable)
    return caps


def _first_env(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if env.get(name):
            return env[name]
    return None


def _checked_url(url: str, names: tuple[str, ...]) -> str:
    if not url.startswith(("http://", "https://")):
        where = names[0] if names else "base_url"
        raise InvalidInput(f"{where} must start with http:// or https:// (got {url!r})")
    return url
