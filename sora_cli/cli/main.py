# ruff: noqa: I001  (the command modules are imported in --help order)
"""The `sora` program: the app with every command family registered, and its entry point."""

from __future__ import annotations

# Importing a command module registers its commands, in this order in --help.
from sora_cli.cli import submit  # noqa: F401
from sora_cli.cli import jobs, wait, download  # noqa: F401
from sora_cli.cli import watch, cost  # noqa: F401
from sora_cli.cli import remix, housekeeping, logs, importing  # noqa: F401
from sora_cli.cli import models, manage  # noqa: F401
from sora_cli.cli import serve  # noqa: F401
from sora_cli.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
