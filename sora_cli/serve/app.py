"""The application: the API, the event stream, the saved files and the gallery page,
behind the gate (gate.py). Errors are the CLI's exception tree, each with its status.

| error | HTTP |
|---|---|
| BudgetExceeded (over `max_job_cost` / `max_daily_cost`) | 402 |
| InvalidInput (bad input: nothing recorded) | 422 |
| JobNotFound: none / an ambiguous prefix | 404 / 409 |
| AuthError (this server has no API key), StoreError | 503 |
| any other SoraError | 500 |

Every error body is `{"detail": "<one line>"}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from sora_cli import __version__
from sora_cli.config import Settings
from sora_cli.errors import (
    AmbiguousJobRef,
    AuthError,
    BudgetExceeded,
    InvalidInput,
    JobNotFound,
    SoraError,
    StoreError,
)
from sora_cli.serve import media, routes
from sora_cli.serve.contexts import ContextPool, Render
from sora_cli.serve.events import Hub
from sora_cli.serve.gate import Access, Gate
from sora_cli.services.context import Context
from sora_cli.services.gallery import Spend

STATIC: Final = Path(__file__).resolve().parent / "static"
PAGE_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'")


def http_status(exc: SoraError) -> int:
    if isinstance(exc, BudgetExceeded):
        return 402
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, AmbiguousJobRef):
        return 409
    if isinstance(exc, JobNotFound):
        return 404
    if isinstance(exc, AuthError | StoreError):
        return 503
    return 500


def create_app(settings: Settings, access: Access, render: Render, *, interval: float = 0.5,
               heartbeat: float = 15.0, on_ready: Callable[[], None] | None = None) -> FastAPI:
    """The application, showing jobs as `render` makes them (the CLI's `job_dict`);
    `on_ready` runs once it is started (and stops on a signal)."""
    pool = ContextPool(settings)
    hub = Hub(Context(settings), render, interval=interval, heartbeat=heartbeat)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await hub.stop()
            pool.close()

    app = FastAPI(title="sora", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/api/openapi.json",
                  description="The sora job store over HTTP. Jobs have the fields of "
                  "`sora status --json`.")
    app.state.pool, app.state.hub, app.state.access = pool, hub, access
    app.state.render = render
    app.state.spend = routes.Recent[Spend](ttl=2.0)
    app.include_router(routes.router)
    app.include_router(media.router)
    app.add_api_route("/api/events", _events, methods=["GET"],
                      summary="Server-sent events: one `job` event per change",
                      response_class=StreamingResponse)
    app.add_api_route("/", _page, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(SoraError, _sora_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_request)  # type: ignore[arg-type]
    app.add_middleware(Gate, access=access)
    return app


async def _events(request: Request) -> StreamingResponse:
    """`event: job` with the job's JSON for each change, `event: gone` with `{"id"}` for
    a job deleted while active; a `: keep-alive` comment every 15 s."""
    hub: Hub = request.app.state.hub
    return StreamingResponse(hub.stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


async def _page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8",
                        headers={"content-security-policy": PAGE_POLICY,
                                 "cache-control": "no-cache"})


async def _sora_error(request: Request, exc: SoraError) -> JSONResponse:
    line = " ".join(str(exc).split())
    return JSONResponse({"detail": line}, http_status(exc), headers={"cache-control": "no-store"})


async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "path"))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, 422,
                        headers={"cache-control": "no-store"})
