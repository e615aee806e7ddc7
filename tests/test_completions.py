"""completions/ holds what `sora completions SHELL` prints; a stale file fails here.

Regenerate with:  for sh in bash zsh fish; do sora completions $sh > completions/sora.$sh; done
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sora_cli.cli.manage import SHELLS, completion_script
from sora_cli.domain.providers import BUILTIN

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("shell", SHELLS)
def test_shipped_completion_scripts_are_current(shell: str) -> None:
    shipped = (ROOT / "completions" / f"sora.{shell}").read_text()
    assert shipped == completion_script(shell) + "\n", (
        f"completions/sora.{shell} is stale: regenerate it (see this file's docstring)")


def test_completion_answers_commands_and_options(tmp_path: Path) -> None:
    sora = str(Path(sys.executable).with_name("sora"))
    env = {**os.environ, "SORA_HOME": str(tmp_path), "_SORA_COMPLETE": "complete_bash",
           "COMP_CWORD": "2", "COMP_WORDS": "sora submit --si"}
    r = subprocess.run([sora], env=env, capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["plain,--size"]  # click's bash protocol: TYPE,VALUE lines
    env.update(COMP_CWORD="1", COMP_WORDS="sora wa")
    r = subprocess.run([sora], env=env, capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["plain,wait", "plain,watch"]


def test_model_and_provider_complete_with_named_endpoints(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[providers.omni]\napi = "openai"\nbase_url = "http://gpu-box:8091/v1"\n'
        'models = ["Wan-AI/Wan2.2-T2V-A14B-Diffusers"]\n')
    sora = str(Path(sys.executable).with_name("sora"))
    env = {**os.environ, "SORA_HOME": str(tmp_path), "_SORA_COMPLETE": "complete_bash",
           "COMP_CWORD": "3", "COMP_WORDS": "sora submit --model om"}
    r = subprocess.run([sora], env=env, capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["plain,omni:", "plain,omni:Wan-AI/Wan2.2-T2V-A14B-Diffusers"]
    env.update(COMP_WORDS="sora models --provider ")
    r = subprocess.run([sora], env=env, capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == [f"plain,{name}" for name in (*BUILTIN, "omni")]
