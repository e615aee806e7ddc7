"""Public names of a package, loaded on first use.

Each layer package names its public API in its `__init__` (``from sora_cli.store import
Store``), the way httpx does, but without importing it: importing
``sora_cli.store.rows`` must not pull in SQLModel through the package, and `sora --help`
must stay quick. Code inside sora imports from the defining module; the package names
are for plug-ins, scripts and readers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that loads `name` from the submodule
    `names[name]` the first time it is asked for, and caches it on the package."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
