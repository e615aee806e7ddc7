"""`sora fake-server`: the local stand-in for every provider family, with faults.

Public: `FakeServer` (in-process: ``with FakeServer(FakeOptions(job_seconds=0.3)) as s``)
and `FakeOptions`; `python -m sora_cli.fake.server` runs it as a process. It imports
nothing of the product but `sora_cli.domain` and `sora_cli.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sora_cli.fake.options import FakeOptions
    from sora_cli.fake.server import FakeServer

__all__ = ["FakeOptions", "FakeServer"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `python -m sora_cli.fake.server` does not find its
    # own module already imported by the package.
    if name == "FakeServer":
        from sora_cli.fake.server import FakeServer

        return FakeServer
    if name == "FakeOptions":
        from sora_cli.fake.options import FakeOptions

        return FakeOptions
    raise AttributeError(name)
