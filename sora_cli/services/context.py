"""The one composition point of the services: a `Context` holds the settings, the job
store (opened on first use) and the hooks a test replaces (starting the runner, the
clock, sleeping). Every service is a plain function over a Context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sora_cli.config import Settings, ensure_home, keyed_providers, missing_keys
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
        process has the key for: the runner gets the same environment) and none is alive.
        A live runner that lacks a key this process has, while there is work for it (one
        started where the key was not set), is stopped first: the work goes on."""
        s = self.settings
        keyed = keyed_providers(s)  # with a key, or needing none (a keyless endpoint)
        if not self.store.has_active(providers=keyed) and not self._plugin_work():
            return False
        self._hand_over(keyed)
        return self.hooks.start_runner(self.settings)

    def _hand_over(self, keyed: list[str]) -> None:
        from sora_cli.runner.spawn import hand_over, runner_info

        info = runner_info(self.settings.lock_path)
        lacking = set(info.get("missing_keys") or []) if info is not None else set()
        ours = [n for n in keyed if (p := self.settings.provider(n)) and p.key_env in lacking]
        if ours and self.store.has_active(providers=ours):
            hand_over(self.settings.lock_path, lacking - set(missing_keys(self.settings)))

    def _plugin_work(self) -> bool:
        """Unfinished jobs of a provider neither built in nor configured (a plug-in's):
        whether its key is set is the plug-in's to say, and loading it here would put
        provider modules on every command's path, so the runner is started and leaves
        alone what it cannot work."""
        return self.store.has_active(others_than=self.settings.provider_names())


def require_key(settings: Settings, provider: str = "openai") -> None:
    """AuthError (exit 4) naming the variable when `provider` has no key (a named
    endpoint or a plug-in without a key variable needs none)."""
    found = settings.provider(provider)
    if found is None or (found.api and not found.is_endpoint):  # a plug-in's: ask it
        from sora_cli.providers.plugins import provider_settings

        found = provider_settings(settings, provider)
    if found is None:
        raise InvalidInput(f"unknown provider {provider!r}")
    if found.has_key:  # its credentials (or it needs none)
        info = BUILTIN.get(provider)
        if info is not None and info.credentials == ADC:
            # Google's ADC is found by google-auth, the adapter's optional extra: it looks
            # (and exits 4 with what is missing) before anything is recorded.
            from sora_cli.providers.registry import check_credentials

            check_credentials(provider, settings)
        return
    if provider == "openai":
        raise AuthError("no API key: set OPENAI_API_KEY (or api_key in the config file)")
    if found.api:
        raise AuthError(f"no API key for {provider}: set {found.key_env}")
    if found.key_hint() != found.key_env:  # a key pair, Google's credentials
        raise AuthError(f"no credentials for {provider}: set {found.key_hint()} (or the "
                        f"settings in [providers.{provider}] of a 0600 config file)")
    raise AuthError(f"no API key for {provider}: set {found.key_env} (or api_key in "
                    f"[providers.{provider}] of a 0600 config file)")
