"""`sora fake-server`: the local stand-in for every provider family, with faults.

Public: `FakeServer` (in-process: ``with FakeServer(FakeOptions(job_seconds=0.3)) as s``)
and `FakeOptions`; `python -m sora_cli.fake.server` runs it as a process. It imports
nothing of the product but `sora_cli.domain` and `sora_cli.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sora_cli.lazy import lazy_exports

if TYPE_CHECKING:
    from sora_cli.fake.options import FakeOptions
    from sora_cli.fake.server import FakeServer

__all__ = ["FakeOptions", "FakeServer"]

# Loaded on first use, so that `python -m sora_cli.fake.server` does not find its own
# module already imported by the package.
__getattr__ = lazy_exports(__name__, {"FakeOptions": "options", "FakeServer": "server"})
