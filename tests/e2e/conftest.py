"""End-to-end tests: their fixtures (`make_fake`, `make_sora`, `fake`, `sora`) are in
tests/conftest.py, shared with the `sora serve` tests; the harness is harness.py."""

from __future__ import annotations

from .harness import MakeFake, MakeSora

__all__ = ["MakeFake", "MakeSora"]
