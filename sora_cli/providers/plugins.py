"""Provider plug-ins: packages that register a provider in the entry-point group
``sora_cli.providers`` (see `ProviderPlugin` in base.py and the README's "Writing a
provider").

Entry points are read only when a name is neither built in nor configured (a
`--model myprov:...`, `sora models`, a runner looking for work it can do), never at
start-up: this module imports nothing heavy, and the plug-in's own module is imported
only when its provider is used or listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Final

from sora_cli.config import Settings
from sora_cli.domain.providers import BUILTIN, CAPABILITIES, valid_provider_name
from sora_cli.domain.text import checked_key, register_secrets
from sora_cli.errors import InvalidInput
from sora_cli.provider_settings import ProviderSettings

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from sora_cli.providers.base import ProviderPlugin

GROUP: Final = "sora_cli.providers"


@cache
def installed() -> dict[str, EntryPoint]:
    """The plug-ins installed, by provider name (built-in names cannot be taken)."""
    from importlib.metadata import entry_points

    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        if valid_provider_name(ep.name) and ep.name not in BUILTIN:
            found.setdefault(ep.name, ep)
    return found


@cache
def load(api: str) -> ProviderPlugin:
    """The plug-in named `api`, loaded and checked (InvalidInput when it is unusable)."""
    ep = installed().get(api)
    if ep is None:
        raise InvalidInput(f"no provider plug-in {api!r} is installed (entry points of "
                           f"{GROUP}: {', '.join(installed()) or 'none'})")
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken plug-in is its problem: one clear line
        raise InvalidInput(f"the provider plug-in {api!r} ({ep.value}) cannot be loaded: "
                           f"{type(exc).__name__}: {exc}") from None
    caps = getattr(plugin, "capabilities", None)
    if not callable(getattr(plugin, "make", None)) or not isinstance(caps, frozenset):
        raise InvalidInput(f"the provider plug-in {api!r} ({ep.value}) has no make() or no "
                           "capabilities (see ProviderPlugin in sora_cli.providers.base)")
    unknown = caps - set(CAPABILITIES)
    if unknown:
        raise InvalidInput(f"the provider plug-in {api!r} declares unknown capabilities "
                           f"{', '.join(sorted(unknown))}")
    result: ProviderPlugin = plugin
    return result


def provider_settings(settings: Settings, name: str,
                      env: Mapping[str, str] | None = None) -> ProviderSettings | None:
    """A provider's settings: built-in or configured, else an installed plug-in's
    defaults (its key from the variable the plug-in names). None: no such provider."""
    env = os.environ if env is None else env
    found = settings.provider(name)
    if found is not None and (not found.api or found.is_endpoint):
        return found
    api = found.api if found is not None else name
    if found is None and name not in installed():
        return None
    plugin = load(api)
    key_env = (found.key_env if found is not None and found.key_env
               else getattr(plugin, "key_env", None) or "")
    base = found if found is not None else ProviderSettings(name, "", "", api=api)
    return replace(base, key_env=key_env, api_key=_key(env, key_env), key_required=bool(key_env))


def _key(env: Mapping[str, str], key_env: str) -> str | None:
    """A plug-in's key, checked as every key is (exit 4 when it cannot go in a header)
    and masked in whatever is stored or printed from now on."""
    value = env.get(key_env) if key_env else None
    if not value:
        return None
    key = checked_key(value, key_env, [])
    register_secrets([key])
    return key


def capabilities(settings: Settings, name: str) -> frozenset[str] | None:
    """What a provider can do, without making its adapter (None: unknown provider)."""
    info = BUILTIN.get(name)
    if info is not None:
        return info.capabilities
    found = settings.provider(name)
    if found is not None and found.is_endpoint:
        from sora_cli.domain.providers import ENDPOINT_CAPABILITIES

        return ENDPOINT_CAPABILITIES
    api = found.api if found is not None else name
    if found is None and name not in installed():
        return None
    return load(api).capabilities


def plugin_rows(settings: Settings) -> Iterable[tuple[str, str, ProviderPlugin]]:
    """(provider name, plug-in name, plug-in) of every usable plug-in provider: the
    config's plug-in tables and the installed plug-ins without one."""
    configured = {p.name: p.api for p in settings.providers if p.api and not p.is_endpoint}
    names = {**configured, **{n: n for n in installed() if n not in configured}}
    for name, api in names.items():
        if api in installed():
            yield name, api, load(api)
