"""Run the sora benchmarks, print a table and write bench/RESULTS.md.

    .venv/bin/python bench/run.py            # every target at its full size (~10 min)
    .venv/bin/python bench/run.py --quick    # everything small (well under a minute)
    .venv/bin/python bench/run.py --only startup,store_size

Everything runs on loopback against `sora fake-server`, in throwaway SORA_HOMEs.
It measures; it never fails on a slow figure (only on an error).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import download_bench  # noqa: E402
import polling  # noqa: E402
import report  # noqa: E402
import runner_scale  # noqa: E402
import serve_bench  # noqa: E402
import startup  # noqa: E402
import store_size  # noqa: E402
import submission  # noqa: E402
from common import Section  # noqa: E402

SECTIONS: dict[str, Callable[[bool], Section]] = {
    "startup": startup.bench,
    "submission": submission.bench,
    "store_size": store_size.bench,
    "runner_scale": runner_scale.bench,
    "download": download_bench.bench,
    "polling": polling.bench,
    "serve": serve_bench.bench,
}


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--only", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, help="where to write the results "
                        "[default: bench/RESULTS.md, or bench/.work/RESULTS-quick.md]")
    args = parser.parse_args(argv)
    names = list(SECTIONS) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    out = args.out or (HERE / ".work" / "RESULTS-quick.md" if args.quick
                       else HERE / "RESULTS.md")
    started, load0 = time.monotonic(), _load()
    sections: list[Section] = []
    failed = False
    for name in names:
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            sections.append(SECTIONS[name](args.quick))
        except Exception as exc:  # report and go on: the other figures still count
            traceback.print_exc()
            failed = True
            broken = Section(name)
            broken.add("the benchmark itself", f"error: {type(exc).__name__}: {exc}", "", False)
            sections.append(broken)
        print(f"   {name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    print(report.console(sections))
    command = "python bench/run.py" + (" --quick" if args.quick else "") + (
        f" --only {args.only}" if args.only else "")
    text = report.markdown(sections, quick=args.quick, load=(load0, _load()),
                           seconds=time.monotonic() - started, command=command)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"\nwrote {out.name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
