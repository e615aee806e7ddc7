"""Which module serves which provider, imported only when a job of that provider is
worked (or a command needs it): `sora status` and `sora list` import none of them.

Each adapter module has ``make(settings, **http) -> Provider`` (``http``: the
`HttpApi` options tests inject, such as ``transport``). A named endpoint of the Videos
contract (`[providers.NAME] api = "openai"`) is the contract's adapter with its dialect
(openai/endpoint.py); any other name is a plug-in's (plugins.py), looked up only then.
"""

from __future__ import annotations

import importlib
from types import TracebackType
from typing import Any, Final

from sora_cli.config import Settings
from sora_cli.errors import AuthError, InvalidInput, SoraError
from sora_cli.providers.base import Memory, PluginConfig, Provider
from sora_cli.providers.plugins import installed, load, provider_settings

MODULES: Final = {
    "openai": "sora_cli.providers.openai.adapter",
    "fal": "sora_cli.providers.fal.adapter",
    "replicate": "sora_cli.providers.replicate.adapter",
    "runway": "sora_cli.providers.runway.adapter",
    "luma": "sora_cli.providers.luma.adapter",
    "minimax": "sora_cli.providers.minimax.adapter",
    "vertex": "sora_cli.providers.vertex.adapter",
    "kling": "sora_cli.providers.kling.adapter",
}
# Providers whose credentials are checked by code of their own (Google's ADC, found by
# google-auth): ``module.check_credentials(settings)`` raises AuthError (exit 4).
CREDENTIAL_CHECKS: Final = {"vertex": "sora_cli.providers.vertex.auth"}


def make_adapter(name: str, settings: Settings, memory: Memory | None = None,
                 **http: Any) -> Provider:
    module = MODULES.get(name)
    if module is not None:
        adapter: Provider = importlib.import_module(module).make(settings, **http)
        return adapter
    found = provider_settings(settings, name)
    if found is None:
        raise InvalidInput(f"no adapter for provider {name!r} (providers: "
                           f"{', '.join([*settings.provider_names(), *installed()])})")
    if found.is_endpoint:
        from sora_cli.providers.openai.endpoint import make_endpoint

        return make_endpoint(settings, found, memory, **http)
    config = PluginConfig(name, found.base_url or None, found.api_key,
                          timeout=settings.request_timeout, max_retries=settings.max_retries,
                          ca_bundle=settings.ca_bundle, options=dict(found.options))
    made: Provider = load(found.api).make(config, **http)
    return made


def _usable(settings: Settings, name: str) -> bool:
    try:
        found = provider_settings(settings, name)
    except (InvalidInput, AuthError):  # a broken plug-in or an unusable key: its jobs wait
        return False
    return found is not None and found.has_key  # a key (pair), Google's, or none needed


def check_credentials(name: str, settings: Settings) -> None:
    """AuthError (exit 4) when a provider checked by its own code has no credentials."""
    module = CREDENTIAL_CHECKS.get(name)
    if module is not None:
        importlib.import_module(module).check_credentials(settings)


class Adapters:
    """A process's adapters, made on first use and closed together."""

    def __init__(self, settings: Settings, *, made: dict[str, Provider] | None = None,
                 memory: Memory | None = None, **http: Any) -> None:
        self._settings = settings
        self._made: dict[str, Provider] = dict(made or {})
        self._memory = memory
        self._http = http
        self._workable: tuple[str, ...] | None = None
        self._checked: dict[str, bool] = {}

    def get(self, name: str) -> Provider:
        adapter = self._made.get(name)
        if adapter is None:
            adapter = self._made[name] = make_adapter(name, self._settings, self._memory,
                                                      **self._http)
        return adapter

    def workable(self) -> tuple[str, ...]:
        """The providers this process can work: the ones with credentials, or that need
        none (named endpoints without one, plug-ins without a key variable), and adapters
        given ready-made. A job of another provider is left untouched. Asked often by
        the runner's loop: worked out once (plug-ins installed later need a new runner)."""
        if self._workable is None:
            names = [*self._settings.provider_names(), *installed()]
            usable = [n for n in dict.fromkeys(names)
                      if _usable(self._settings, n) and self._credentials_found(n)]
            self._workable = tuple(dict.fromkeys([*self._made, *usable]))
        return self._workable

    def _credentials_found(self, name: str) -> bool:
        """Once per process, for a provider whose credentials its own code finds."""
        if name not in CREDENTIAL_CHECKS:
            return True
        if name not in self._checked:
            try:
                check_credentials(name, self._settings)
            except SoraError:
                self._checked[name] = False
            else:
                self._checked[name] = True
        return self._checked[name]

    async def aclose(self) -> None:
        for adapter in self._made.values():
            await adapter.aclose()

    async def __aenter__(self) -> Adapters:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
