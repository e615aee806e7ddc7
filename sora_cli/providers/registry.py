"""Which module serves which provider, imported only when a job of that provider is
worked (or a command needs it): `sora status` and `sora list` import none of them.

Each adapter module has ``make(settings, **http) -> Provider`` (``http``: the
`HttpApi` options tests inject, such as ``transport``).
"""

from __future__ import annotations

import importlib
from types import TracebackType
from typing import Any, Final

from sora_cli.config import Settings
from sora_cli.errors import InvalidInput, SoraError
from sora_cli.providers.base import Provider

MODULES: Final = {
    "openai": "sora_cli.providers.openai.adapter",
    "fal": "sora_cli.providers.fal.adapter",
    "replicate": "sora_cli.providers.replicate.adapter",
    "vertex": "sora_cli.providers.vertex.adapter",
    "kling": "sora_cli.providers.kling.adapter",
}
# Providers whose credentials are checked by code of their own (Google's ADC, found by
# google-auth): ``module.check_credentials(settings)`` raises AuthError (exit 4).
CREDENTIAL_CHECKS: Final = {"vertex": "sora_cli.providers.vertex.auth"}


def make_adapter(name: str, settings: Settings, **http: Any) -> Provider:
    module = MODULES.get(name)
    if module is None:
        raise InvalidInput(f"no adapter for provider {name!r} (providers: {', '.join(MODULES)})")
    adapter: Provider = importlib.import_module(module).make(settings, **http)
    return adapter


def check_credentials(name: str, settings: Settings) -> None:
    """AuthError (exit 4) when a provider checked by its own code has no credentials."""
    module = CREDENTIAL_CHECKS.get(name)
    if module is not None:
        importlib.import_module(module).check_credentials(settings)


class Adapters:
    """A process's adapters, made on first use and closed together."""

    def __init__(self, settings: Settings, *, made: dict[str, Provider] | None = None,
                 **http: Any) -> None:
        self._settings = settings
        self._made: dict[str, Provider] = dict(made or {})
        self._http = http
        self._checked: dict[str, bool] = {}

    def get(self, name: str) -> Provider:
        adapter = self._made.get(name)
        if adapter is None:
            adapter = self._made[name] = make_adapter(name, self._settings, **self._http)
        return adapter

    def workable(self) -> tuple[str, ...]:
        """The providers this process can work: the ones with a key (or an adapter
        given ready-made). A job of another provider is left untouched."""
        names = [n for n in self._settings.provider_names()
                 if (p := self._settings.provider(n)) is not None and p.has_key
                 and self._credentials_found(n)]
        return tuple(dict.fromkeys([*self._made, *names]))

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
