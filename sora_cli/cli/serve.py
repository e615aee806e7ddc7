"""`sora serve`: the job store over HTTP, and a gallery page (see sora_cli.serve).

FastAPI and uvicorn are imported inside the command, so no other command pays for them.
"""

from __future__ import annotations

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import open_context, warn_if_insecure
from sora_cli.cli.render import job_dict
from sora_cli.errors import SoraError

_SERVE_DEPS = frozenset({"fastapi", "starlette", "uvicorn", "pydantic"})


@app.command("serve")
def serve_cmd(
    tctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything "
                             "but loopback needs a token (SORA_SERVE_TOKEN)."),
    port: int = typer.Option(8765, "--port", help="Port; 0 picks a free one."),
    heartbeat: float = typer.Option(15.0, "--heartbeat", hidden=True,
                                    help="Seconds between keep-alive comments on /api/events."),
) -> None:
    """Serve the job store over HTTP: a JSON API (the --json field names), server-sent
    events, the saved videos, and a gallery page at /. Prints its base URL first; stops
    on Ctrl-C or SIGTERM. Needs the serve extra: pip install 'sora-cli[serve]'.

    \b
    sora serve                                   # http://127.0.0.1:8765
    curl -s localhost:8765/api/jobs/@last | jq .status
    curl -s -H 'Content-Type: application/json' -d '{"prompt": "a red fox"}' \\
        localhost:8765/api/task
    SORA_SERVE_TOKEN=$(openssl rand -hex 16) sora serve --host 0.0.0.0
    """
    ctx = open_context(tctx)
    try:
        from sora_cli.serve.server import run
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] not in _SERVE_DEPS:
            raise
        raise SoraError(f"sora serve needs FastAPI and uvicorn ({exc.name.split('.')[0]} is "
                        "missing): pip install 'sora-cli[serve]'") from None
    warn_if_insecure(ctx.settings)
    raise typer.Exit(run(ctx.settings, job_dict, host=host, port=port, heartbeat=heartbeat))
