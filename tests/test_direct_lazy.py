"""`sora --help`, `sora status` and `sora list` import nothing of the direct providers
(Runway, Luma, MiniMax, Vertex, Kling: their adapters, their official clients, google-auth)
nor httpx, even with their jobs in the store and their credentials set: adapters are
imported only when a job of theirs is worked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sora_cli.domain.jobs import JobStatus, VideoRequest
from sora_cli.store.repository import Store

PROBE = """
import json, sys
import sora_cli.runner.spawn as spawn
spawn.ensure_runner = lambda *a: True  # no runner: it would work the jobs
from sora_cli.__main__ import main
sys.argv = ["sora", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
loaded = [m for m in sys.modules if m == "httpx" or m.startswith(
    ("sora_cli.providers.runway", "sora_cli.providers.luma", "sora_cli.providers.minimax",
     "sora_cli.providers.vertex", "sora_cli.providers.kling", "runwayml", "lumaai", "google",
     "cryptography"))]
print("LOADED " + json.dumps(sorted(loaded)), file=sys.stderr)
"""


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, list[str]]:
    ids = []
    with Store.open(tmp_path / "sora.db") as store:
        for provider, model in (("runway", "gen4.5"), ("luma", "ray-2"),
                                ("minimax", "MiniMax-Hailuo-2.3"),
                                ("vertex", "veo-3.1-generate-001"),
                                ("kling", "kling-v2-1-master")):
            (job,) = store.add_jobs([VideoRequest("x", model, "", 5, provider=provider)])
            store.transition(job.id, JobStatus.SUBMITTING)
            store.transition(job.id, JobStatus.RUNNING, remote_id=f"r{len(ids)}")
            ids.append(job.id)
    return tmp_path, ids


@pytest.mark.parametrize("args", [["--help"], ["list"], ["status"], ["status", "0"],
                                  ["models"]])
def test_no_provider_module_is_imported(home: tuple[Path, list[str]], args: list[str]) -> None:
    path, ids = home
    argv = [ids[0] if a == "0" else a for a in args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "OPENAI_"))}
    nowhere = "http://127.0.0.1:9"  # were a runner started after all, it reaches nothing
    env.update(SORA_RUNWAY_BASE_URL=nowhere, SORA_LUMA_BASE_URL=nowhere,
               SORA_MINIMAX_BASE_URL=nowhere, SORA_VERTEX_BASE_URL=nowhere,
               SORA_KLING_BASE_URL=nowhere)
    env.update(SORA_HOME=str(path), RUNWAYML_API_SECRET="k",
               LUMAAI_API_KEY="k", MINIMAX_API_KEY="k", OPENAI_API_KEY="sk-x",
               KLING_ACCESS_KEY="ak", KLING_SECRET_KEY="sk", SORA_VERTEX_PROJECT="p1",
               GOOGLE_APPLICATION_CREDENTIALS=str(path / "sa.json"))
    r = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True,
                       text=True, env=env, timeout=60)
    line = [x for x in r.stderr.splitlines() if x.startswith("LOADED ")]
    assert line, r.stderr
    assert json.loads(line[0].removeprefix("LOADED ")) == [], (r.stdout, r.stderr)
    assert not (path / "runner.log").exists()  # and no runner was started
