"""Target 2: submitting many prompts at once, and many submits one after another.

`sora submit --file` is measured when `sora submit --help` offers it; until then the
same work (validate every prompt, record them all in one transaction, wake the
runner) runs through sora's own `services.submit` in a process of its own
(`submit_many.py`), and the table says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from common import PY, SORA, Section, child_env, median, run, runner_lock, spread, temp_home

HERE = Path(__file__).resolve().parent


def has_file_option() -> bool:
    proc = run([SORA, "submit", "--help"], child_env(None), capture=True)
    return "--file" in proc.stdout.decode()


def template(home: Path) -> Path:
    """An empty store at the current schema, to copy for each trial."""
    from sora_cli.config import ensure_home
    from sora_cli.store.repository import Store

    ensure_home(home)
    Store.open(home / "sora.db").close()
    return home / "sora.db"


def batch(section: Section, prompts: int, rounds: int) -> None:
    with temp_home() as work:
        empty = template(work / "template")
        prompt_file = work / "prompts.txt"
        prompt_file.write_text("".join(f"a paper boat on a rainy street, take {n}\n"
                                       for n in range(prompts)))
        via_cli = has_file_option()
        cmd = ([SORA, "submit", "--file", str(prompt_file), "-q"] if via_cli
               else [PY, str(HERE / "submit_many.py"), str(prompt_file)])
        measured, inserts, startup = [], [], []
        for n in range(rounds):
            homes = [work / f"t{n}-{k}" for k in range(3)]
            for home in homes:
                home.mkdir(mode=0o700)
                (home / "videos").mkdir(mode=0o700)
                shutil.copy(empty, home / "sora.db")
            with runner_lock(homes[0]), runner_lock(homes[2]):
                proc = run(cmd, child_env(homes[0]))
                if proc.returncode != 0:
                    raise RuntimeError(f"batch submit exited {proc.returncode}")
                measured.append(proc.wall)
                base = run([PY, str(HERE / "insert_many.py"), str(homes[1] / "sora.db"),
                            str(prompt_file)], child_env(None), capture=True)
                inserts.append(float(base.stdout.decode()))
                startup.append(run([SORA, "submit", "one prompt", "-q"],
                                   child_env(homes[2])).wall)
    baseline = [i + median(startup) for i in inserts]
    r = median(measured) / median(baseline)
    label = ("sora submit --file" if via_cli else
             "batch submit (services.submit in one process; `submit --file` not there yet)")
    section.add(f"{label}, {prompts:,} prompts", f"{r:.2f}x; {spread(measured)}",
                "<= 3x (executemany + start-up)", r <= 3.0,
                f"executemany {spread(inserts)} + start-up {spread(startup)}")


def sequential(section: Section, count: int, edge: int) -> None:
    with temp_home() as home:
        template(home)
        walls = []
        with runner_lock(home):
            for n in range(count):
                proc = run([SORA, "submit", f"a red fox, take {n}", "-q"], child_env(home))
                if proc.returncode != 0:
                    raise RuntimeError(f"sora submit exited {proc.returncode}")
                walls.append(proc.wall)
    first, last = walls[:edge], walls[-edge:]
    r = median(last) / median(first)
    section.add(f"{count} sequential `sora submit`: last {edge} vs first {edge}",
                f"{r:.2f}x; {spread(last)} vs {spread(first)}",
                "no slower (<= 1.1x, the noise of this machine)", r <= 1.1)


def bench(quick: bool) -> Section:
    section = Section("2. Submission")
    batch(section, 200 if quick else 10_000, 1 if quick else 5)
    sequential(section, 12 if quick else 200, 3 if quick else 20)
    section.notes.append(
        "Batch: whole-process wall time against the time `executemany` took to insert the "
        "same rows (a job and its `created` event per prompt) in one transaction, plus the "
        "median start-up of `sora submit PROMPT` measured in the same rounds.")
    return section
