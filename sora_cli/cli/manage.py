"""`sora runner ...`, `sora config show`, `sora completions` and `sora fake-server`."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import JSON_OPT, note, open_context, out
from sora_cli.cli.render import iso
from sora_cli.errors import InvalidInput, SoraError
from sora_cli.runner.spawn import ensure_runner, runner_alive, runner_info

runner_app = typer.Typer(help="The background runner that sends, polls and downloads jobs.",
                         no_args_is_help=True)
config_app = typer.Typer(help="Effective configuration.", no_args_is_help=True)
app.add_typer(runner_app, name="runner")
app.add_typer(config_app, name="config")

SHELLS = ("bash", "zsh", "fish")
LIVE_WITHIN = 10.0  # seconds: a runner beats every 2 s (or lease/3); silent longer, it is gone


def runner_state(ctx: Any) -> dict[str, Any]:
    info = runner_info(ctx.settings.lock_path)
    state: dict[str, Any] = {"running": info is not None, "pid": None, "jobs_in_flight": 0,
                             "started_at": None, "runner_id": None, "heartbeat_at": None}
    state["fleet"] = fleet_state(ctx, None if info is None else info.get("runner_id"))
    if info is None:
        return state
    state.update(pid=info.get("pid"), runner_id=info.get("runner_id"),
                 started_at=iso(info.get("started_at")))
    for row in ctx.store.runners():
        if row["runner_id"] == info.get("runner_id"):
            state.update(jobs_in_flight=row["jobs_in_flight"],
                         heartbeat_at=iso(row["heartbeat_at"]))
    return state


def fleet_state(ctx: Any, local_id: str | None) -> list[dict[str, Any]]:
    """Every live runner of the store (all machines sharing it), this one marked."""
    s = ctx.settings
    if not s.database_url and not s.db_path.exists():
        return []  # no store yet: nothing runs, and nothing is created just to say so
    return [{"runner_id": r["runner_id"], "host": r["host"], "pid": r["pid"], "leases": r["leases"],
             "jobs_in_flight": r["jobs_in_flight"], "heartbeat_at": iso(r["heartbeat_at"]),
             "started_at": iso(r["started_at"]), "local": r["runner_id"] == local_id}
            for r in ctx.store.fleet(stale_after=LIVE_WITHIN)]


@runner_app.command("status")
def runner_status(tctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Is a runner alive for this store, and what is it doing? With a shared
    (PostgreSQL) store, also every live runner of the fleet, on every machine.

    \b
    sora runner status --json | jq '.fleet[] | {host, pid, leases}'
    """
    ctx = open_context(tctx)
    state = runner_state(ctx)
    if as_json:
        import json  # not at the top: `sora --help` never needs it

        out(json.dumps(state))
        return
    if state["running"]:
        out(f"running: pid {state['pid']}, {state['jobs_in_flight']} job(s) in flight, "
            f"since {state['started_at']}")
    else:
        out("not running")
    fleet = state["fleet"]
    if ctx.settings.database_url or any(not r["local"] for r in fleet):
        out(f"fleet: {len(fleet)} live runner(s)")
        for r in fleet:
            out(f"  {r['host']}  pid {r['pid']}  {r['leases']} lease(s)  heartbeat "
                f"{r['heartbeat_at']}  {r['runner_id']}{'  (local)' if r['local'] else ''}")


@runner_app.command("start")
def runner_start(tctx: typer.Context) -> None:
    """Start a runner for this store now (normally submit does it on demand).

    \b
    sora runner start && sora runner status
    """
    s = open_context(tctx).settings
    note("runner started" if ensure_runner(s.home, s.lock_path, s.log_path)
         else "a runner is already running")


@runner_app.command("stop")
def runner_stop(
    tctx: typer.Context,
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for it to exit."),
) -> None:
    """Stop the runner gracefully; jobs in flight are left to resume later.

    Note that any later command that finds unfinished jobs starts a runner again.

    \b
    sora runner stop --timeout 10
    """
    ctx = open_context(tctx)
    info = runner_info(ctx.settings.lock_path)
    if info is None or not isinstance(info.get("pid"), int):
        note("no runner is running")
        return
    try:
        os.kill(info["pid"], signal.SIGTERM)
    except ProcessLookupError:
        note("no runner is running")
        return
    deadline = time.monotonic() + timeout
    while runner_alive(ctx.settings.lock_path):
        if time.monotonic() > deadline:
            raise SoraError(f"the runner (pid {info['pid']}) did not stop within {timeout:g} s")
        time.sleep(0.05)
    note(f"runner stopped (pid {info['pid']})")


@runner_app.command("serve", hidden=True)
def runner_serve() -> None:
    """Run the runner in the foreground (what the detached process runs)."""
    from sora_cli.config import load_settings
    from sora_cli.runner.process import serve

    raise typer.Exit(serve(load_settings()))


@config_app.command("show")
def config_show(tctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Print the effective settings (env beats config file beats defaults); key masked.

    \b
    sora config show --json | jq .base_url
    """
    settings = open_context(tctx).settings
    data = {**settings.public_dict(), "db_path": str(settings.db_path)}
    if as_json:
        import json

        out(json.dumps(data))
    else:
        for key, value in data.items():
            out(f"{key} = {'' if value is None else value}")


def completion_script(shell: str) -> str:
    from typer._click.shell_completion import get_completion_class
    from typer._completion_classes import completion_init
    from typer.main import get_command

    completion_init()
    cls = get_completion_class(shell)
    if cls is None or shell not in SHELLS:
        raise InvalidInput(f"unknown shell {shell!r}: use one of {', '.join(SHELLS)}")
    return cls(get_command(app), {}, "sora", "_SORA_COMPLETE").source()


@app.command("completions")
def completions_cmd(shell: str = typer.Argument(..., help="bash, zsh or fish.")) -> None:
    """Print the shell completion script.

    \b
    sora completions bash > ~/.local/share/bash-completion/completions/sora
    """
    out(completion_script(shell))


@app.command("fake-server", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def fake_server_cmd(tctx: typer.Context) -> None:
    """A local stand-in for the Videos API, for offline use and tests (--help for options).

    \b
    sora fake-server --port 8765 --job-seconds 5 &
    OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=test sora submit "a fox"
    """
    import contextlib
    import inspect
    import textwrap

    from sora_cli.fake.server import main

    if {"-h", "--help"} & set(tctx.args):  # argparse's help, then our examples
        with contextlib.suppress(SystemExit):
            main(["--help"])
        examples = inspect.cleandoc((fake_server_cmd.__doc__ or "").split("\b")[-1])
        out("\nexamples:\n" + textwrap.indent(examples, "  "))
        return
    raise typer.Exit(main(list(tctx.args)))
