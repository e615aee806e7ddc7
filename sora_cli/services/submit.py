"""What `submit` means: every request validated, images prepared, the budget checked,
all recorded in one transaction, and a runner woken."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sora_cli.domain.batch import BatchLine, check_request
from sora_cli.domain.jobs import Job, VideoRequest
from sora_cli.errors import InvalidInput
from sora_cli.services.context import Context, require_key
from sora_cli.services.spending import enforce_budget, spent_today
from sora_cli.store.repository import Store


def submit(ctx: Context, requests: Sequence[VideoRequest], *, force: bool = False,
           origins: Sequence[str] | None = None) -> list[Job]:
    """Validate every request, then record them all (one transaction) and wake a runner.

    A submit that would cross the budget (`max_job_cost`, `max_daily_cost`) is refused
    (exit 2, nothing recorded) unless `force`; the check runs inside the recording
    transaction, so parallel submits cannot together overshoot. `origins` say where each
    request came from (a batch's "FILE line N"), for the messages."""
    for req in requests:
        check_request(req)  # bad input (exit 2) is reported before a missing key (exit 4)
    for provider in dict.fromkeys(req.provider for req in requests):
        require_key(ctx.settings, provider)
    s = ctx.settings
    check = None
    if not force and (s.max_job_cost is not None or s.max_daily_cost is not None):
        def check(store: Store) -> None:
            enforce_budget(s, requests, spent=spent_today(store), origins=origins)
    jobs = ctx.store.add_jobs(requests, check=check)
    ctx.kick_runner()
    return jobs


def preview(ctx: Context, requests: Sequence[VideoRequest], *, force: bool = False,
            origins: Sequence[str] | None = None) -> None:
    """What `submit --dry-run` checks (the requests, the budget): records nothing, needs
    no key, and creates no store."""
    for req in requests:
        check_request(req)
    s = ctx.settings
    if force or (s.max_job_cost is None and s.max_daily_cost is None):
        return
    spent = spent_today(ctx.store) if s.db_path.exists() else 0.0
    enforce_budget(s, requests, spent=spent, origins=origins)


def with_images(items: Sequence[BatchLine], *, fit: bool, home: Path,
                 source: str | None) -> list[VideoRequest]:
    """The requests with each image checked (and fitted with --fit) and kept under `home`."""
    if not any(i.request.image is not None for i in items):
        if fit:
            raise InvalidInput("--fit goes with --image")
        return [i.request for i in items]
    from sora_cli.services.images import prepare_image  # only jobs with an image pay for it

    kept: dict[tuple[str, str], str] = {}  # the same image for many lines: checked once
    requests: list[VideoRequest] = []
    for item in items:
        req = item.request
        if req.image is not None:
            # the OpenAI contract wants an image of exactly the video's size; the others
            # take any size (the model fits it, or sets the video's aspect by it)
            exact = req.size if req.provider == "openai" else None
            key = (req.image, exact or "")
            try:
                if fit and exact is None:
                    raise InvalidInput(f"--fit resizes to the exact --size of an OpenAI-contract "
                                       f"model; {req.provider} models take the image as it is")
                if key not in kept:
                    if exact is None:
                        inline_limit(req.provider, req.image)  # before a copy is kept
                    kept[key] = prepare_image(req.image, size=exact, fit=fit, home=home)
            except InvalidInput as exc:
                where = f"{source} line {item.line}: " if source is not None else ""
                raise InvalidInput(f"{where}{exc}") from None
            req = replace(req, image=kept[key])
        requests.append(req)
    return requests


def inline_limit(provider: str, path: str) -> None:
    """A local image for a provider that takes it inline (a data URI) must fit its limit."""
    from sora_cli.domain.images import is_url
    from sora_cli.domain.providers import BUILTIN

    limit = BUILTIN[provider].inline_image_bytes if provider in BUILTIN else 0
    try:
        size = Path(path).expanduser().stat().st_size if not is_url(path) else 0
    except OSError:
        return  # prepare_image says what is wrong with it
    if size > limit:
        raise InvalidInput(f"image {path} is {size} bytes; {provider} takes a local image "
                           f"inline up to {limit} bytes: give its URL instead")
