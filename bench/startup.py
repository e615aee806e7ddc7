"""Target 1: whole-process start-up of sora commands against `import sqlite3, typer`.

All commands run round-robin in the same rounds, so a busy moment of the machine
hits every one of them alike; ratios are of medians.
"""

from __future__ import annotations

from pathlib import Path

from common import PY, SORA, Section, child_env, median, ratio, run, runner_lock, spread, temp_home

FLOOR = [PY, "-c", "import sqlite3, typer"]


def seed(home: Path, count: int) -> list[str]:
    """A store with `count` queued jobs; returns their ids."""
    from sora_cli.config import ensure_home
    from sora_cli.domain.jobs import VideoRequest
    from sora_cli.store.repository import Store

    ensure_home(home)
    with Store.open(home / "sora.db") as store:
        jobs = store.add_jobs([VideoRequest(prompt=f"a lighthouse at dawn, take {n}")
                               for n in range(count)])
    return [job.id for job in jobs]


def measure(commands: dict[str, list[str]], env: dict[str, str], rounds: int,
            warmup: int = 2) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each command, `rounds` times, round-robin."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for n in range(warmup + rounds):
        for name, argv in commands.items():
            proc = run(argv, env)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[1:])} exited {proc.returncode}")
            if n >= warmup:
                walls[name].append(proc.wall)
                cpus[name].append(proc.cpu)
    return walls, cpus


def bench(quick: bool) -> Section:
    section = Section("1. Start-up")
    rounds, warmup = (2, 1) if quick else (21, 2)
    with temp_home() as home:
        ids = seed(home, 60)
        env = child_env(home)
        listing = run([SORA, "list", "-n", "50"], env, capture=True).stdout.decode()
        rows = len(listing.splitlines()) - 1
        commands = {
            "floor": FLOOR,
            "python": [PY, "-c", "pass"],
            "--help": [SORA, "--help"],
            "status": [SORA, "status", ids[30]],
            "submit": [SORA, "submit", "a paper boat on a rainy street", "-q"],
            "list": [SORA, "list", "-n", "50"],
        }
        with runner_lock(home):  # "a runner is alive": submit and status start none
            walls, cpus = measure(commands, env, rounds, warmup)
    floor = walls["floor"]
    section.add("floor `python -c 'import sqlite3, typer'`", spread(floor))
    section.add("bare `python -c pass`", spread(walls["python"]))
    targets = (("--help", "sora --help", 1.5), ("status", "sora status ID", 2.0),
               ("submit", "sora submit PROMPT", 2.0), ("list", f"sora list ({rows} rows)", 2.5))
    for key, label, limit in targets:
        r = ratio(walls[key], floor)
        cpu_r = median(cpus[key]) / median(cpus["floor"])
        section.add(label, f"{r:.2f}x floor; {spread(walls[key])}", f"<= {limit}x floor",
                    r <= limit, f"CPU {cpu_r:.2f}x floor")
    section.notes.append(
        f"{rounds} rounds after {warmup} warm-up round(s), all commands round-robin; wall time of "
        "the whole process (fork to exit); a runner lock held by the bench stands for a "
        "live runner. Bytecode caches are warm, as after `pip install`.")
    return section
