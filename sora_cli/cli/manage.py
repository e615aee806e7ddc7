"""`sora runner ...`, `sora config show`, `sora completions` and `sora fake-server`."""

from __future__ import annotations

from typing import Any

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import JSON_OPT, note, open_context, out
from sora_cli.cli.render import iso
from sora_cli.errors import InvalidInput
from sora_cli.services import runner_control
from sora_cli.services.runner_control import RunnerStatus

runner_app = typer.Typer(help="The background runner that sends, polls and downloads jobs.",
                         no_args_is_help=True)
config_app = typer.Typer(help="Effective configuration.", no_args_is_help=True)
app.add_typer(runner_app, name="runner")
app.add_typer(config_app, name="config")

SHELLS = ("bash", "zsh", "fish")


def status_dict(st: RunnerStatus) -> dict[str, Any]:
    """`runner status --json`: stable field names, times as ISO 8601."""
    return {"running": st.running, "pid": st.pid, "jobs_in_flight": st.jobs_in_flight,
            "started_at": iso(st.started_at), "runner_id": st.runner_id,
            "heartbeat_at": iso(st.heartbeat_at), "missing_keys": list(st.missing_keys),
            "fleet": [{"runner_id": m.runner_id, "host": m.host, "pid": m.pid,
                       "leases": m.leases, "jobs_in_flight": m.jobs_in_flight,
                       "heartbeat_at": iso(m.heartbeat_at), "started_at": iso(m.started_at),
                       "local": m.local} for m in st.fleet]}


@runner_app.command("status")
def runner_status(tctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Is a runner alive for this store, and what is it doing? With a shared
    (PostgreSQL) store, also every live runner of the fleet, on every machine.

    \b
    sora runner status --json | jq '.fleet[] | {host, pid, leases}'
    """
    ctx = open_context(tctx)
    st = runner_control.runner_status(ctx)
    if as_json:
        import json  # not at the top: `sora --help` never needs it

        out(json.dumps(status_dict(st)))
        return
    if st.running:
        out(f"running: pid {st.pid}, {st.jobs_in_flight} job(s) in flight, "
            f"since {iso(st.started_at)}")
        if st.missing_keys:
            out(f"  without {', '.join(st.missing_keys)}: those jobs are left untouched "
                "(a command run with the key hands them to a new runner)")
    else:
        out("not running")
    if ctx.settings.database_url or any(not m.local for m in st.fleet):
        out(f"fleet: {len(st.fleet)} live runner(s)")
        for m in st.fleet:
            out(f"  {m.host}  pid {m.pid}  {m.leases} lease(s)  heartbeat "
                f"{iso(m.heartbeat_at)}  {m.runner_id}{'  (local)' if m.local else ''}")


@runner_app.command("start")
def runner_start(tctx: typer.Context) -> None:
    """Start a runner for this store now (normally submit does it on demand).

    \b
    sora runner start && sora runner status
    """
    started = runner_control.start(open_context(tctx))
    note("runner started" if started else "a runner is already running")


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
    pid = runner_control.stop(open_context(tctx), timeout=timeout)
    note("no runner is running" if pid is None else f"runner stopped (pid {pid})")


@runner_app.command("serve", hidden=True)
def runner_serve() -> None:
    """Run the runner in the foreground (what the detached process runs)."""
    from sora_cli.config import load_settings
    from sora_cli.runner.process import serve

    raise typer.Exit(serve(load_settings()))


@config_app.command("show")
def config_show(tctx: typer.Context, as_json: bool = JSON_OPT) -> None:
    """Print the effective settings (env beats config file beats defaults); keys masked.
    Each provider shows its base URL, its key variable and whether it has a key.

    \b
    sora config show --json | jq .base_url
    sora config show --json | jq '.providers | map_values(.has_key)'
    """
    settings = open_context(tctx).settings
    data = {**settings.public_dict(), "db_path": str(settings.db_path)}
    if as_json:
        import json

        out(json.dumps(data))
    else:
        for key, value in _flat(data):
            out(f"{key} = {'' if value is None else value}")


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """`providers.fal.base_url = ...`: nested tables as dotted keys."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.extend(_flat(value, f"{prefix}{key}."))
        else:
            out.append((f"{prefix}{key}", value))
    return out


def completion_script(shell: str) -> str:
    from click.shell_completion import get_completion_class
    from typer.main import get_command

    cls = get_completion_class(shell)
    if cls is None or shell not in SHELLS:
        raise InvalidInput(f"unknown shell {shell!r}: use one of {', '.join(SHELLS)}")
    return str(cls(get_command(app), {}, "sora", "_SORA_COMPLETE").source())


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
