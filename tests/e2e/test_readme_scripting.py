"""The README's scripting examples, run as written against `sora fake-server`.

Every fenced block marked ```sh scripting runs in bash (in README order, in one
directory); the ```make scripting block is written to a Makefile and run with make.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from .harness import FakeProc, Sora

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```(sh|make) scripting\n(.*?)^```$", re.M | re.S)


def blocks(kind: str) -> list[str]:
    return [body for k, body in BLOCK.findall(README.read_text()) if k == kind]


def test_the_readme_has_the_scripting_examples() -> None:
    sh = "\n".join(blocks("sh"))
    assert "xargs" in sh and "jq" in sh and "--label" in sh
    assert len(blocks("make")) == 1 and "sora submit" in blocks("make")[0]


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("make")), reason="needs jq, make")
def test_the_readme_scripting_examples_run(sora: Sora, fake: FakeProc) -> None:
    (sora.cwd / "prompts.txt").write_text("a corgi surfing at sunset\na lighthouse at dawn\n"
                                       "a paper boat on a rainy street\n")
    (sora.cwd / "prompts").mkdir()
    for name in ("fox", "whale"):
        (sora.cwd / "prompts" / f"{name}.txt").write_text(f"a {name} in the snow\n")

    for n, script in enumerate(blocks("sh"), start=1):
        r = sora.shell("set -eo pipefail\n" + script)
        assert r.returncode == 0, f"README scripting block {n} failed: {r.stderr}"
        assert "failed:" not in r.stdout, r.stdout
    assert len(list((sora.cwd / "out").glob("*.mp4"))) == 3  # the xargs fan-out
    assert len(list((sora.cwd / "out" / "batch-7").glob("*.mp4"))) == 3
    assert (sora.cwd / "fox.mp4").stat().st_size > 0
    animals = [json.loads(x) for x in sora.ok("list", "--label", "animals", "--json").split("\n")
               if x]
    assert {(j["prompt"], j["seconds"], j["status"]) for j in animals} == {
        ("a red fox", 8, "completed"), ("a blue whale", 8, "completed")}

    (sora.cwd / "Makefile").write_text(blocks("make")[0])
    r = sora.shell("make -j4")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (sora.cwd / "videos").iterdir()) == ["fox.mp4", "whale.mp4"]
    creates = fake.stats()["creates"]
    r = sora.shell("make -j4")  # everything is made: nothing submitted again
    assert r.returncode == 0 and "Nothing to be done" in r.stdout
    assert fake.stats()["creates"] == creates
    assert len(sora.ok("list", "-q", "--label", "make").split()) == 2
