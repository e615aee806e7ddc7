"""The JSON API under `/api`: jobs in the `--json` shape, newest first, and the spend.

The original service's paths (`POST /api/task`, `GET /api/task/{id}`) answer like their
`/api/jobs` twins. Plain functions: FastAPI runs them on its worker threads, each with
its own store connection (see contexts.py). Errors are the CLI's, with an HTTP status
(see app.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from sora_cli import __version__
from sora_cli.domain.jobs import ALLOWED_SECONDS, SIZES_PRO, Job, JobStatus
from sora_cli.errors import InvalidInput
from sora_cli.serve.body import SCHEMA, parse_request
from sora_cli.serve.contexts import Render
from sora_cli.services.context import Context
from sora_cli.services.gallery import (
    MAX_PAGE,
    Spend,
    browse,
    cancel_job,
    find_job,
    retry_job,
    spend,
)
from sora_cli.services.submit import submit

router = APIRouter(prefix="/api")
T = TypeVar("T")


def context(request: Request) -> Context:
    pool = request.app.state.pool
    ctx: Context = pool.get()
    return ctx


CTX = Depends(context)


def renderer(request: Request) -> Render:
    render: Render = request.app.state.render
    return render


RENDER = Depends(renderer)


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None


def api_json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status, headers={"cache-control": "no-store"})


def one_job(render: Render, job: Job, status: int = 200) -> JSONResponse:
    return api_json(render(job), status)


_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": SCHEMA}}}}


@router.post("/task", summary="Submit a job (the original service's path)", status_code=201,
             openapi_extra=_BODY)
@router.post("/jobs", summary="Submit a job", status_code=201, openapi_extra=_BODY)
def create_job(data: Any = Depends(json_body), ctx: Context = CTX,
               render: Render = RENDER) -> JSONResponse:
    """Record a job (a runner sends it) and answer 201 with it; bad input 422 with the
    CLI's message and nothing recorded; over a budget 402."""
    (job,) = submit(ctx, [parse_request(data, ctx.settings)])
    return one_job(render, job, 201)


@router.get("/jobs", summary="List jobs, newest first")
def list_jobs(ctx: Context = CTX, render: Render = RENDER, status: list[str] = Query([]),
              label: str | None = None, provider: str | None = None, q: str | None = None,
              limit: int = 50, before: str | None = None) -> JSONResponse:
    """A page of jobs; `next_before` (the last id, when the page is full) asks for the
    next page. `status` repeats or takes a comma-separated list; `q` searches prompts."""
    statuses = [s for value in status for s in value.split(",") if s.strip()]
    jobs = browse(ctx, statuses=statuses, label=label, provider=provider, search=q,
                  before=before, limit=limit)
    return api_json({"jobs": [render(j) for j in jobs],
                     "next_before": jobs[-1].id if len(jobs) == limit else None})


@router.get("/task/{ref}", summary="One job (the original service's path)")
@router.get("/jobs/{ref}", summary="One job")
def get_job(ref: str, ctx: Context = CTX, render: Render = RENDER) -> JSONResponse:
    """By id, unique prefix (4+ characters), remote `video_` id or `@last`: 404 for none,
    409 for an ambiguous prefix."""
    return one_job(render, find_job(ctx, ref))


@router.post("/jobs/{ref}/cancel", summary="Cancel a job")
def cancel(ref: str, ctx: Context = CTX, render: Render = RENDER) -> JSONResponse:
    """A job not sent yet never will be; one already sent stops being tracked (the remote
    job may still run and be billed). 409 for a finished job."""
    job = find_job(ctx, ref)
    if job.status.is_final:
        return api_json({"detail": f"job {job.id} is already {job.status}"}, 409)
    job, _ = cancel_job(ctx, job.id)
    return one_job(render, job)


@router.post("/jobs/{ref}/retry", summary="Retry a failed or cancelled job", status_code=201)
def retry(ref: str, ctx: Context = CTX, render: Render = RENDER) -> JSONResponse:
    """A new job with the same request (`retry_of` = the old id): 201 with it."""
    return one_job(render, retry_job(ctx, ref), 201)


class Recent(Generic[T]):
    """A value computed at most once per `ttl` seconds, or again as soon as `key` changes;
    askers at the same moment share one computation."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entry: tuple[float, object, T] | None = None

    def get(self, key: object, compute: Callable[[], T]) -> T:
        with self._lock:
            now = time.monotonic()
            if self._entry is None or self._entry[1] != key or now - self._entry[0] > self.ttl:
                self._entry = (now, key, compute())
            return self._entry[2]


@router.get("/spend", summary="Today's and the total estimated spend")
def spend_now(request: Request, ctx: Context = CTX) -> JSONResponse:
    """Computed at most every 2 s (it adds up every completed job), and again after any
    change the event stream saw."""
    state = request.app.state
    s: Spend = state.spend.get(state.hub.generation, lambda: spend(ctx))
    return api_json({"today_usd": s.today_usd, "total_usd": s.total_usd,
                     "completed_jobs": s.completed_jobs, "unpriced_jobs": s.unpriced_jobs,
                     "max_daily_cost": s.max_daily_cost, "max_job_cost": s.max_job_cost})


@router.get("/info", summary="Defaults for the submit form, and the media key")
def info(request: Request, ctx: Context = CTX) -> JSONResponse:
    """`access` is the read-only key for `?access=` on the media and event routes (null
    without a token)."""
    s = ctx.settings
    return api_json({
        "version": __version__, "access": request.app.state.access.media_key,
        "defaults": {"model": s.model, "size": s.size, "seconds": int(s.seconds)},
        "models": ["sora-2", "sora-2-pro"], "sizes": list(SIZES_PRO),
        "seconds": list(ALLOWED_SECONDS), "statuses": [st.value for st in JobStatus],
        "max_page": MAX_PAGE,
    })
