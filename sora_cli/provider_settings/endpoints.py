"""`[providers.NAME]` tables that are not built-in providers: named endpoints of the
Videos contract (`api = "openai"`) and the settings of plug-in providers.

```toml
[providers.omni]                       # a vLLM-Omni box
api = "openai"                         # the Videos contract
base_url = "http://gpu-box:8091/v1"
api_key_env = "OMNI_KEY"               # optional: no key configured = no auth header
create_encoding = "multipart"          # auto (default) | json | multipart
seconds_type = "number"                # string (default) | number
list_params = { custom_llm_provider = "gemini" }
sizes = ["1280x720", "720x1280"]       # optional: what a submit may ask for
seconds = [5, 10]
models = ["Wan-AI/Wan2.2-T2V-A14B-Diffusers"]   # listed by `sora models`

[providers.echo]                       # a plug-in's settings (api: its entry point name,
api_key_env = "ECHO_KEY"               # the table's name by default); other keys are
colour = "blue"                        # handed to the plug-in as options
```

Keys come from the environment variable the table names (never from the table), so
an endpoint's key is never written in a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from sora_cli.domain.providers import (
    BUILTIN,
    ENCODINGS,
    OPENAI,
    SECONDS_TYPES,
    EndpointDialect,
    valid_provider_name,
)
from sora_cli.domain.text import mask_url
from sora_cli.errors import InvalidInput

CONTRACT: Final = "openai"  # `api` of a named endpoint of the Videos contract
ENDPOINT_KEYS: Final = ("api", "base_url", "api_key_env", "create_encoding", "seconds_type",
                        "list_params", "sizes", "seconds", "models", "max_in_flight",
                        "creates_per_minute")
PLUGIN_KEYS: Final = ("api", "base_url", "api_key_env", "max_in_flight", "creates_per_minute")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_PARAM: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_SIZE: Final = re.compile(r"[1-9][0-9]{0,4}x[1-9][0-9]{0,4}")
_MODEL: Final = re.compile(r"[^\s:]{1,200}")


def is_extra_table(name: str, table: Any) -> bool:
    """A table this module reads: not a built-in provider's own settings."""
    return name not in BUILTIN or (isinstance(table, Mapping) and "api" in table)


def read_extra(name: str, table: Any, origin: str, warnings: list[str]) -> dict[str, Any]:
    """One endpoint's or plug-in's table, checked (InvalidInput for what cannot work)."""
    where = f"{origin}: [providers.{name}]"
    if not isinstance(table, Mapping):
        raise InvalidInput(f"{where} must be a table")
    if name in BUILTIN:
        raise InvalidInput(f"{where}: {name} is a built-in provider; give the endpoint "
                           "another name")
    if not valid_provider_name(name):
        raise InvalidInput(f"{where}: a provider name is lower-case letters, digits, - and _ "
                           "(at most 32, a letter first)")
    api = table.get("api", name)
    if not isinstance(api, str) or not valid_provider_name(api) or api in (
            set(BUILTIN) - {CONTRACT}):
        raise InvalidInput(f"{where} api must be \"openai\" (the Videos contract) or a "
                           f"plug-in's name (got {api!r})")
    known = ENDPOINT_KEYS if api == CONTRACT else PLUGIN_KEYS
    values: dict[str, Any] = {"api": api}
    options: dict[str, Any] = {}
    for key, value in table.items():
        if key == "api":
            continue
        if key == "api_key":
            warnings.append(f"{where}: api_key ignored: name the variable that holds the key "
                            "with api_key_env")
        elif key in known:
            values[key] = _checked(key, value, where)
        elif api == CONTRACT:
            warnings.append(f"{where}: unknown setting {key!r} ignored")
        else:
            options[key] = value  # the plug-in's own
    if api == CONTRACT and "base_url" not in values:
        raise InvalidInput(f"{where} needs base_url (the server's /v1 URL)")
    if options:
        values["options"] = options
    return values


def _checked(key: str, value: Any, where: str) -> Any:
    if key in ("max_in_flight", "creates_per_minute"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{where} {key} must be a whole number of at least 1")
        return value
    if key == "list_params":
        if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and _PARAM.fullmatch(k) and isinstance(v, str | int)
                and not isinstance(v, bool) for k, v in value.items()):
            raise InvalidInput(f"{where} list_params must be a table of names to strings")
        return tuple((k, str(v)) for k, v in value.items())
    if key in ("sizes", "seconds", "models"):
        return _list(key, value, where)
    if not isinstance(value, str):
        raise InvalidInput(f"{where} {key} must be a string (got {value!r})")
    if key == "base_url" and not value.startswith(("http://", "https://")):
        raise InvalidInput(f"{where} base_url must start with http:// or https:// "
                           f"(got {mask_url(value)!r})")
    if key == "api_key_env" and _ENV_NAME.fullmatch(value) is None:
        raise InvalidInput(f"{where} api_key_env must name an environment variable "
                           f"(got {value!r})")
    choices = {"create_encoding": ENCODINGS, "seconds_type": SECONDS_TYPES}.get(key)
    if choices is not None and value not in choices:
        raise InvalidInput(f"{where} {key} must be one of {', '.join(choices)} "
                           f"(got {value!r})")
    return value


def _list(key: str, value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{where} {key} must be a non-empty list")
    if key == "seconds":
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 3600
                   for v in value):
            raise InvalidInput(f"{where} seconds must be whole numbers of seconds")
        return tuple(value)
    pattern = _SIZE if key == "sizes" else _MODEL
    if not all(isinstance(v, str) and pattern.fullmatch(v) for v in value):
        what = "WIDTHxHEIGHT strings" if key == "sizes" else "model names"
        raise InvalidInput(f"{where} {key} must be {what}")
    return tuple(value)


def dialect(values: Mapping[str, Any]) -> EndpointDialect:
    return EndpointDialect(
        create_encoding=values.get("create_encoding", "auto"),
        seconds_type=values.get("seconds_type", "string"),
        list_params=values.get("list_params", ()), sizes=values.get("sizes"),
        seconds=values.get("seconds"), models=values.get("models", ()))


def caps_env(name: str, cap: str) -> str:
    """The variable that overrides a cap of a configured provider (SORA_OMNI_MAX_IN_FLIGHT)."""
    return f"SORA_{name.upper().replace('-', '_')}_{cap.upper()}"


__all__ = ["CONTRACT", "OPENAI", "caps_env", "dialect", "is_extra_table", "read_extra"]
