"""The provider side: the HTTP client of each provider family, retries, downloads.

A plug-in provider implements `Provider` (and any of the optional capabilities
`FindsCreated`, `Cancels`, `Deletes`, `LooksUp`) and answers with `Created`, `Polled` and
`Found`; its package registers a `ProviderPlugin`, whose ``make`` is handed a
`PluginConfig`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_cli.lazy import lazy_exports

if TYPE_CHECKING:
    from sora_cli.providers.base import (
        Cancels,
        Created,
        CreateRequest,
        Deletes,
        FindsCreated,
        Found,
        ImageInput,
        LooksUp,
        Memory,
        PluginConfig,
        Polled,
        Provider,
        ProviderPlugin,
        RemoteState,
        capable,
    )
    from sora_cli.providers.registry import Adapters, make_adapter

__all__ = [
    "Adapters", "Cancels", "CreateRequest", "Created", "Deletes", "FindsCreated", "Found",
    "ImageInput", "LooksUp", "Memory", "PluginConfig", "Polled", "Provider", "ProviderPlugin",
    "RemoteState", "capable", "make_adapter",
]

__getattr__ = lazy_exports(__name__, {
    "Adapters": "registry",
    "Cancels": "base",
    "CreateRequest": "base",
    "Created": "base",
    "Deletes": "base",
    "FindsCreated": "base",
    "Found": "base",
    "ImageInput": "base",
    "LooksUp": "base",
    "Memory": "base",
    "PluginConfig": "base",
    "Polled": "base",
    "Provider": "base",
    "ProviderPlugin": "base",
    "RemoteState": "base",
    "capable": "base",
    "make_adapter": "registry",
})
