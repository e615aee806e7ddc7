"""What the commands ask about providers, whichever kind they are: built in, a named
endpoint of the Videos contract from the config, or a plug-in (looked up only when a
name is neither of the others). No adapter is made here and httpx is not imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sora_cli.config import Settings
from sora_cli.domain.models import Defaults
from sora_cli.domain.providers import BUILTIN
from sora_cli.domain.text import mask_url
from sora_cli.errors import InvalidInput

if TYPE_CHECKING:
    from sora_cli.provider_settings import ProviderSettings


def request_defaults(settings: Settings) -> Defaults:
    """What `submit` resolves a request with: the config's defaults and aliases, the
    providers a model reference may name, the named endpoints' dialects."""
    return Defaults(model=settings.model, size=settings.size, seconds=settings.seconds,
                    aliases=settings.alias_map(), known=KnownProviders(settings),
                    endpoints=settings.endpoint_dialects())


class KnownProviders:
    """The provider names a model reference may use: the built-in and configured ones,
    and, looked up only on a miss, the plug-ins installed (so a submit to a built-in or
    configured provider loads no provider module)."""

    def __init__(self, settings: Settings) -> None:
        self._names = tuple(settings.provider_names())

    def __contains__(self, name: object) -> bool:
        if name in self._names:
            return True
        from sora_cli.providers.plugins import installed

        return isinstance(name, str) and name in installed()

    def __iter__(self) -> Iterator[str]:
        from sora_cli.providers.plugins import installed

        return iter(dict.fromkeys([*self._names, *installed()]))

    def __len__(self) -> int:
        return len(list(iter(self)))


def can(settings: Settings, provider: str, capability: str) -> bool | None:
    """Whether `provider` declares `capability` (None: sora does not know the provider)."""
    try:
        from sora_cli.providers.plugins import capabilities

        caps = capabilities(settings, provider)
    except InvalidInput:  # a plug-in that no longer loads
        return None
    return None if caps is None else capability in caps


@dataclass(frozen=True)
class ProviderRow:
    """One provider as `sora models` lists it beside the catalogue."""

    name: str
    kind: str  # "endpoint" or "plugin"
    description: str
    models: tuple[str, ...]
    capabilities: tuple[str, ...]
    sizes: tuple[str, ...] = ()
    seconds: tuple[int, ...] = ()
    base_url: str | None = None
    problems: list[str] = field(default_factory=list)


def extra_providers(settings: Settings) -> list[ProviderRow]:
    """The named endpoints and plug-in providers (the built-in ones are the catalogue)."""
    from sora_cli.domain.providers import ENDPOINT_CAPABILITIES

    rows: list[ProviderRow] = []
    for p in settings.providers:
        if p.dialect is not None:
            d = p.dialect
            rows.append(ProviderRow(p.name, "endpoint", _endpoint_note(p), d.models,
                                    tuple(sorted(ENDPOINT_CAPABILITIES)), d.sizes or (),
                                    d.seconds or (), mask_url(p.base_url)))
    from sora_cli.providers.plugins import installed

    for p in settings.providers:
        if p.api and not p.is_endpoint and p.api not in installed():
            problem = (f"[providers.{p.name}] names the plug-in {p.api!r}, which is not "
                       "installed")
            rows.append(ProviderRow(p.name, "plugin", problem, (), (), problems=[problem]))
    try:
        from sora_cli.providers.plugins import plugin_rows

        plugins = list(plugin_rows(settings))
    except InvalidInput as exc:
        plugins = []
        rows.append(ProviderRow("-", "plugin", str(exc), (), (), problems=[str(exc)]))
    for name, api, plugin in plugins:
        note = str(getattr(plugin, "description", "") or "")
        if api != name:
            note = f"{note} (plug-in {api})".strip()
        rows.append(ProviderRow(name, "plugin", note, tuple(getattr(plugin, "models", ())),
                                tuple(sorted(plugin.capabilities))))
    return rows


def _endpoint_note(p: ProviderSettings) -> str:
    key = f"key from {p.key_env}" if p.key_env else "no key"
    assert p.dialect is not None
    return (f"Videos contract at {mask_url(p.base_url)} ({key}, create "
            f"{p.dialect.create_encoding})")


def provider_names(settings: Settings) -> list[str]:
    """Every provider `sora models --provider` takes."""
    return [*BUILTIN, *(r.name for r in extra_providers(settings) if not r.problems)]


def model_completions(settings: Settings, incomplete: str) -> list[str]:
    """What `--model` may be completed to: catalogued references and aliases, and every
    provider's prefix (named endpoints, plug-ins), with the models they name."""
    from sora_cli.domain.catalogue import SHIPPED, models

    refs = [*settings.alias_map(), *(m.id for m in models("openai"))]
    refs += [info.ref for name in SHIPPED for info in models(name)]
    for row in extra_providers(settings):
        if not row.problems:
            refs += [f"{row.name}:", *(f"{row.name}:{m}" for m in row.models)]
    refs += [f"{name}:" for name in BUILTIN if name != "openai"]
    return sorted({r for r in refs if r.startswith(incomplete)})
