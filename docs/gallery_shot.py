"""Make docs/gallery.png: `sora serve` in front of `sora fake-server`, a few jobs, and a
screenshot of the gallery in headless Chromium (Debian's /usr/bin/chromium).

    .venv/bin/python docs/gallery_shot.py [OUT.png]

Takes about half a minute: the jobs run for real against the fake, one is left running
so that its progress bar shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

SORA = str(Path(sys.executable).with_name("sora"))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
JOBS = [
    {"prompt": "a lighthouse at dawn, slow dolly in", "label": "coast", "seconds": 8},
    {"prompt": "waves on black sand, drone shot", "label": "coast", "size": "1280x720"},
    {"prompt": "a corgi surfing at sunset", "label": "pets", "model": "sora-2-pro",
     "size": "1280x720"},
    {"prompt": "a paper boat on a rainy street", "label": "city"},
    {"prompt": "a forbidden scene", "label": "city"},
]


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="sora-shot-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORA_", "OPENAI_"))}
    fake, base = start([SORA, "fake-server", "--port", "0", "--job-seconds", "12",
                        "--fail-prompt", "forbidden", "--idle-exit", "120"], env)
    env.update(SORA_HOME=str(home), OPENAI_BASE_URL=base, OPENAI_API_KEY="sk-shot",
               SORA_SAVE_THUMBNAILS="1", SORA_POLL_MIN_SECONDS="0.2",
               SORA_IDLE_EXIT_SECONDS="5", SORA_MAX_DAILY_COST="10")
    serve, url = start([SORA, "serve", "--port", "0"], env)
    try:
        ids = [post(f"{url}/api/jobs", job)["id"] for job in JOBS]
        deadline = time.monotonic() + 120
        while any(get(f"{url}/api/jobs/{i}")["status"] not in ("completed", "failed")
                  for i in ids):
            assert time.monotonic() < deadline, "the jobs did not finish"
            time.sleep(0.5)
        running = post(f"{url}/api/jobs", {"prompt": "a red fox in the snow, close up",
                                           "label": "pets"})["id"]
        while get(f"{url}/api/jobs/{running}")["progress"] < 30:
            time.sleep(0.3)
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            browser = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1280, "height": 800})
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector(f'li.card[data-id="{ids[0]}"] video')
            for job_id in ids[:4]:
                page.eval_on_selector(f'li.card[data-id="{job_id}"] video',
                                      "v => new Promise(r => { v.muted = true; "
                                      "v.ontimeupdate = () => { if (v.currentTime > 1) { "
                                      "v.pause(); v.ontimeupdate = null; r(); } }; "
                                      "v.play(); })")
            page.wait_for_timeout(500)  # let the players draw the frame
            page.fill("#prompt", "a hot-air balloon over the valley at first light")
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        for proc in (serve, fake):
            proc.terminate()
            proc.wait(timeout=20)
        subprocess.run([SORA, "runner", "stop"], env=env, capture_output=True)
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else
         Path(__file__).resolve().parent / "gallery.png")
