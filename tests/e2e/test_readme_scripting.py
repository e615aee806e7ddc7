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

from .harness import FakeProc, MakeFake, MakeSora, Sora

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"^```(sh|make) scripting\n(.*?)^```$", re.M | re.S)


def blocks(kind: str) -> list[str]:
    return [body for k, body in BLOCK.findall(README.read_text()) if k == kind]


@pytest.fixture
def quick(make_fake: MakeFake, make_sora: MakeSora) -> tuple[Sora, FakeProc]:
    fake = make_fake("--job-seconds", "0.5", "--poll-after-ms", "100")
    return make_sora(fake, SORA_CREATES_PER_MINUTE="600", SORA_MAX_IN_FLIGHT="8"), fake


def test_the_readme_has_the_scripting_examples() -> None:
    sh = "\n".join(blocks("sh"))
    assert "xargs" in sh and "jq" in sh and "--label" in sh
    assert len(blocks("make")) == 1 and "sora submit" in blocks("make")[0]


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("make")), reason="needs jq, make")
def test_the_readme_scripting_examples_run(quick: tuple[Sora, FakeProc]) -> None:
    s, fake = quick
    (s.cwd / "prompts.txt").write_text("a corgi surfing at sunset\na lighthouse at dawn\n"
                                       "a paper boat on a rainy street\n")
    (s.cwd / "prompts").mkdir()
    for name in ("fox", "whale"):
        (s.cwd / "prompts" / f"{name}.txt").write_text(f"a {name} in the snow\n")

    for n, script in enumerate(blocks("sh"), start=1):
        r = s.shell("set -eo pipefail\n" + script)
        assert r.returncode == 0, f"README scripting block {n} failed: {r.stderr}"
        assert "failed:" not in r.stdout, r.stdout
    assert len(list((s.cwd / "out").glob("*.mp4"))) == 3  # the xargs fan-out
    assert len(list((s.cwd / "out" / "batch-7").glob("*.mp4"))) == 3
    assert (s.cwd / "fox.mp4").stat().st_size > 0
    animals = [json.loads(x) for x in s.ok("list", "--label", "animals", "--json").split("\n")
               if x]
    assert {(j["prompt"], j["seconds"], j["status"]) for j in animals} == {
        ("a red fox", 8, "completed"), ("a blue whale", 8, "completed")}

    (s.cwd / "Makefile").write_text(blocks("make")[0])
    r = s.shell("make -j4")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (s.cwd / "videos").iterdir()) == ["fox.mp4", "whale.mp4"]
    creates = fake.stats()["creates"]
    r = s.shell("make -j4")  # everything is made: nothing submitted again
    assert r.returncode == 0 and "Nothing to be done" in r.stdout
    assert fake.stats()["creates"] == creates
    assert len(s.ok("list", "-q", "--label", "make").split()) == 2
