"""The comparison for the runner benchmark: the official `openai` SDK doing the same
work, the way its docs show it (`create_and_poll`, then `download_content`), one
thread per job in flight.

`python bench/sdk_worker.py BASE_URL JOBS IN_FLIGHT OUT_DIR` prints the seconds it took.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def main(base_url: str, jobs: int, in_flight: int, out_dir: str) -> int:
    from openai import OpenAI

    started = time.perf_counter()
    client = OpenAI(base_url=base_url, api_key="sk-bench-key", max_retries=5)
    out = Path(out_dir)

    def one(n: int) -> str:
        video = client.videos.create_and_poll(prompt=f"a red fox in the snow, take {n}",
                                              model="sora-2", seconds="4", size="720x1280")
        if video.status != "completed":
            raise RuntimeError(f"{video.id} ended {video.status}")
        client.videos.download_content(video.id).write_to_file(out / f"{video.id}.mp4")
        return video.id

    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        done = list(pool.map(one, range(jobs)))
    client.close()
    print(f"{time.perf_counter() - started:.3f} {len(done)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
