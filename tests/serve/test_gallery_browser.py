"""The gallery page in a real headless Chromium (Debian's `chromium`, driven by
Playwright's sync API with `executable_path`; `playwright install` is never needed).

Without Chromium the tests are skipped, unless CI is set: then they fail."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import MakeServed, Served

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("SORA_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
        "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 60_000
ONLY = ("(id) => { const cards = [...document.querySelectorAll('li.card')]; "
        "return cards.length === 1 && cards[0].dataset.id === id; }")


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the browser test needs it in CI (CI is set): {reason}", pytrace=False)
    pytest.skip(f"{reason} (set CI to make this a failure)")


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install -e '.[dev]')")
    profile = tmp_path / "chromium-profile"  # a fresh profile: nothing carried over
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        try:
            tab = browser.new_page()
            tab.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            tab.on("console", lambda msg: errors.append(msg.text)
                   if msg.type == "error" and "Content Security Policy" in msg.text else None)
            yield tab
            assert errors == [], errors  # no script error on the page
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)


def wait_js(page: Any, function: str, arg: Any = None, what: str = "the page") -> Any:
    """Poll `function(arg)` in the page until it is truthy (a deadline, never a bare sleep).

    Not `page.wait_for_function`: that evaluates its predicate with eval(), which the
    page's Content-Security-Policy forbids, as it should."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not (value := page.evaluate(function, arg)):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {function}")
        page.wait_for_timeout(50)
    return value


def card(job_id: str) -> str:
    return f'li.card[data-id="{job_id}"]'


def submit_from_form(page: Any, prompt: str, label: str) -> str:
    """Submit through the form; the id of the card that appears for it."""
    page.fill("#prompt", prompt)
    page.fill("#label", label)
    page.click("#submit-form button[type=submit]")
    return str(wait_js(page, """(prompt) => [...document.querySelectorAll('li.card')]
             .find((c) => c.querySelector('.prompt').textContent === prompt)?.dataset.id""",
                       prompt, "the new card"))


def wait_playable(page: Any, job_id: str) -> dict[str, float]:
    """Play the card's video; its readyState and duration once it has data."""
    video = f"{card(job_id)} video"
    page.wait_for_selector(video)
    page.eval_on_selector(video, "v => { v.muted = true; return v.play(); }")
    wait_js(page, "(sel) => { const v = document.querySelector(sel); "
            "return v && v.readyState >= 2 && v.duration > 0; }", video, "the video to play")
    state: dict[str, float] = page.eval_on_selector(
        video, "v => ({readyState: v.readyState, duration: v.duration, width: v.videoWidth})")
    return state


def test_submit_watch_play_and_filter_in_the_gallery(make_served: MakeServed, page: Any,
                                                     tmp_path: Path) -> None:
    served = make_served(SORA_SAVE_THUMBNAILS="1")
    page.goto(served.url)
    wait_js(page, "() => document.querySelector('#model').value !== ''")  # info loaded

    first = submit_from_form(page, "a lighthouse at dawn, slow dolly in", "coast")
    statuses = [page.get_attribute(card(first), "data-status")]
    page.wait_for_selector(f"{card(first)}.active progress")  # a progress bar while it runs
    while statuses[-1] != "completed":  # each state the card goes through, live
        wait_js(page, "([sel, was]) => document.querySelector(sel).dataset.status !== was",
                [card(first), statuses[-1]], "the next status")
        statuses.append(page.get_attribute(card(first), "data-status"))
    assert statuses[0] in ("queued", "submitting", "running") and "running" in statuses
    assert not page.is_visible(f"{card(first)} progress")  # gone once finished

    state = wait_playable(page, first)
    assert state["readyState"] >= 2 and state["duration"] > 0 and state["width"] == 320
    poster = page.get_attribute(f"{card(first)} video", "poster")
    assert poster and poster.endswith(f"/api/jobs/{first}/thumbnail")

    hostile = '<img src=x onerror="document.body.dataset.owned=1">a fox'
    second = submit_from_form(page, hostile, "fields")
    page.wait_for_selector(f'{card(second)}[data-status="completed"] video')
    assert page.eval_on_selector(f"{card(second)} .prompt", "p => p.children.length") == 0
    assert page.get_attribute("body", "data-owned") is None  # shown as text, never run
    meta = page.text_content(f"{card(first)} .meta") or ""
    assert "openai / sora-2" in meta and "4 s" in meta and "~$0.40" in meta
    assert "label: coast" in meta
    wait_js(page, "() => document.querySelector('#spend-total').textContent === '~$0.80'",
            what="the spend at the top to count both")
    assert page.text_content("#spend-today") == "~$0.80"

    page.fill("#f-label", "coast")
    wait_js(page, ONLY, first, "only the first card")
    page.fill("#f-label", "")
    page.select_option("#f-status", "completed")
    wait_js(page, "() => document.querySelectorAll('li.card').length === 2", what="2 cards")
    page.fill("#f-search", "LIGHTHOUSE")
    wait_js(page, ONLY, first, "only the first card")
    page.fill("#f-search", "")
    wait_js(page, "() => document.querySelectorAll('li.card').length === 2", what="2 cards")
    wait_playable(page, first)  # so the shot shows a frame, not a black box

    assert page.is_hidden("#more")  # every job is on the page: no "Load more"

    shot = tmp_path / "gallery.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_the_page_asks_for_the_token_once(make_served: MakeServed, page: Any) -> None:
    served: Served = make_served(SORA_SERVE_TOKEN="a-token-for-the-browser")
    c = served.client()
    job = served.submit(c, prompt="a guarded corgi")
    served.wait_job(c, job["id"])
    page.goto(served.url)
    page.wait_for_selector("#token-form:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "token"  # focus goes to the field
    page.fill("#token", "a-token-for-the-browser")
    page.press("#token", "Enter")
    state = wait_playable(page, job["id"])  # <video src> with the read-only media key
    assert state["readyState"] >= 2
    assert page.is_hidden("#token-form")
    page.reload()  # kept for the tab: not asked again
    page.wait_for_selector(f"{card(job['id'])} video")
    assert page.is_hidden("#token-form")
