"""`sora fake-server`: the local stand-in for every provider family, with faults.

Public: `FakeServer` (in-process: ``with FakeServer(FakeOptions(job_seconds=0.3)) as s``)
and `FakeOptions`; `python -m sora_cli.fake.server` runs it as a process. It imports
nothing of the product but `sora_cli.domain` and `sora_cli.errors`.
"""

from sora_cli.fake.options import FakeOptions
from sora_cli.fake.server import FakeServer

__all__ = ["FakeOptions", "FakeServer"]
