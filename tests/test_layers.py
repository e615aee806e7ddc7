"""The layer rules that import-linter cannot state: no private name of another library."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from sora_cli.fake.pictures import _sniffed, picture

PACKAGE = Path(__file__).resolve().parent.parent / "sora_cli"
LIBRARIES = ("typer", "click", "httpx", "httpcore", "rich", "tenacity", "sqlmodel",
             "sqlalchemy", "platformdirs", "psycopg", "starlette", "fastapi", "uvicorn")


def private_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            parts, names = [], []
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARIES and any(
                        p.startswith("_") for p in alias.name.split(".")[1:]):
                    found.append(alias.name)
            continue
        else:
            continue
        if parts[0] not in LIBRARIES:
            continue
        if any(p.startswith("_") for p in parts[1:]) or any(
                n.startswith("_") and not n.startswith("__") for n in names):
            found.append(f"{node.module}: {', '.join(names)}")
    return found


def test_no_module_imports_a_private_name_of_another_library() -> None:
    offenders = {str(p.relative_to(PACKAGE)): uses for p in PACKAGE.rglob("*.py")
                 if (uses := private_uses(ast.parse(p.read_text())))}
    assert offenders == {}


def test_the_checker_sees_private_imports() -> None:
    tree = ast.parse("from typer._click import exceptions\nimport httpcore._async.http11\n"
                     "from typer.core import _TyperParameter\nfrom httpx import Client\n")
    assert len(private_uses(tree)) == 3


@pytest.mark.parametrize("data, size", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big")
     + (360).to_bytes(4, "big"), "640x360"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8X" + bytes(8) + (1279).to_bytes(3, "little")
     + (719).to_bytes(3, "little"), "1280x720"),
    (b"\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x11\x08" + (720).to_bytes(2, "big")
     + (1280).to_bytes(2, "big") + bytes(8), "1280x720"),
])
def test_the_fakes_own_image_reader(data: bytes, size: str) -> None:
    found = _sniffed(data)
    assert found is not None and found.size == size


def test_the_fake_reads_images_without_the_products_parser() -> None:
    assert picture(b"not an image") is None and _sniffed(b"GIF89a") is None


LAYERS = ("domain", "store", "providers", "runner", "services", "fake")


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_names_its_public_api_in_its_init(layer: str) -> None:
    package = importlib.import_module(f"sora_cli.{layer}")
    submodules = {m.name for m in pkgutil.iter_modules(package.__path__)}
    assert package.__all__ and not set(package.__all__) & submodules  # a name is never a module
    for name in package.__all__:
        value = getattr(package, name)
        home = getattr(value, "__module__", None)
        assert home is None or home.startswith(f"sora_cli.{layer}."), (name, home)
    assert not hasattr(package, "nothing_here")


def test_importing_a_layer_package_loads_none_of_its_modules() -> None:
    """Public names are loaded on first use: `sora --help` pays for none of them."""
    code = ("import sys, sora_cli.domain, sora_cli.store, sora_cli.providers, "
            "sora_cli.runner, sora_cli.services\n"
            "print(sorted(m for m in sys.modules if m.startswith('sora_cli.') and "
            "m.count('.') > 1 or m in ('httpx', 'sqlmodel', 'sqlalchemy', 'typer')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_plug_in_finds_the_provider_interface_at_the_package() -> None:
    from sora_cli.providers import Created, Polled, Provider
    from sora_cli.providers.base import Created as created
    from sora_cli.providers.base import Polled as polled

    assert (Created, Polled) == (created, polled) and Provider.__module__.endswith(".base")
