"""What `sora submit --file PATH` does, until that option exists: read one prompt per
line, validate them all, record them in one transaction, wake the runner.

Run as its own process by the submission benchmark (so its start-up counts, as the
CLI's would): `python bench/submit_many.py PROMPTS.txt`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(path: str) -> int:
    os.umask(0o077)
    from sora_cli.config import load_settings
    from sora_cli.domain.jobs import VideoRequest
    from sora_cli.services.context import Context
    from sora_cli.services.submit import submit

    settings = load_settings()
    prompts = [line for line in Path(path).read_text().splitlines() if line.strip()]
    ctx = Context(settings)
    try:
        jobs = submit(ctx, [VideoRequest(prompt=p, model=settings.model, size=settings.size,
                                         seconds=settings.seconds) for p in prompts])
    finally:
        ctx.close()
    sys.stdout.write("".join(f"{job.id}\n" for job in jobs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
