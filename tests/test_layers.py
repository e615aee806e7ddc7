"""The layer rules that import-linter cannot state: no private name of another library."""

from __future__ import annotations

import ast
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
