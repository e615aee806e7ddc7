"""The one composition point of the services: a `Context` holds the settings, the job
store (opened on first use) and the hooks a test replaces (starting the runner, the
clock, sleeping). Every service is a plain function over a Context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sora_cli.config import Settings, ensure_home
from sora_cli.domain.providers import ADC, BUILTIN
from sora_cli.errors import AuthError, InvalidInput
from sora_cli.store.repository import Store


def start_runner(settings: Settings) -> bool:
    """Start a detached runner for this store unless one is alive (the default hook)."""
    from sora_cli.runner.spawn import ensure_runner

    return ensure_runner(settings.home, settings.lock_path, settings.log_path)


@dataclass(frozen=True)
class Hooks:
    """What a Context does to the world beyond the store; tests pass their own."""

    start_runner: Callable[[Settings], bool] = start_runner
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Context:
    settings: Settings
    warnings: list[str] = field(default_factory=list)
    hooks: Hooks = field(default_factory=Hooks)
    _store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            ensure_home(self.settings.home)
            self._store = Store.open(self.settings.store_location)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def kick_runner(self) -> bool:
        """Start a runner if there is unfinished work it could do (of a provider this
        process has the key for: the runner gets the same environment) and none is alive."""
        s = self.settings
        keyed = [n for n in s.provider_names() if (p := s.provider(n)) is not None and p.has_key]
        if not self.store.has_active(providers=keyed):
            return False
        return self.hooks.start_runner(self.settings)


def require_key(settings: Settings, provider: str = "openai") -> None:
    """AuthError (exit 4) naming the variable when `provider` has no key."""
    found = settings.provider(provider)
    if found is None:
        raise InvalidInput(f"unknown provider {provider!r}")
    if found.has_key:
        info = BUILTIN.get(provider)
        if info is not None and info.credentials == ADC:
            # Google's ADC is found by google-auth, the adapter's optional extra: it looks
            # (and exits 4 with what is missing) before anything is recorded.
            from sora_cli.providers.registry import check_credentials

            check_credentials(provider, settings)
        return
    if provider == "openai":
        raise AuthError("no API key: set OPENAI_API_KEY (or api_key in the config file)")
    raise AuthError(f"no credentials for {provider}: set {found.key_hint()} (or the "
                    f"settings in [providers.{provider}] of a 0600 config file)")
