"""`sora import`: import remote videos made elsewhere, so the runner saves them in time."""

from __future__ import annotations

import typer

from sora_cli.cli.app import app
from sora_cli.cli.common import (
    JSON_OPT,
    QUIET_OPT,
    note,
    open_context,
    print_jobs,
    warn_if_insecure,
)


@app.command("import")
def import_cmd(
    tctx: typer.Context,
    video_ids: list[str] = typer.Argument(None, metavar="VIDEO_ID...", help="Remote video "
                                          "ids (video_...), or PROVIDER:ID of another provider "
                                          "that can look a job up (replicate:..., a named "
                                          "endpoint's omni:...).",
                                          show_default=False),
    remote_list: bool = typer.Option(False, "--remote-list", help="Every video the remote "
                                     "list shows (not failed or expired) that no job has."),
    as_json: bool = JSON_OPT,
    quiet: bool = QUIET_OPT,
) -> None:
    """Import remote videos created elsewhere (another tool, a lost store) as jobs: the
    runner waits for them and saves them before they expire. Prints the new job ids;
    videos already in the store are skipped with a note.

    \b
    sora import video_68d7512d07848190b3e45da0ecbebcde
    sora import replicate:gm3qorzdhgbfurvjtvhg6dckhu
    sora import --remote-list -q | xargs sora wait --download -o recovered/
    """
    from sora_cli.services.remote import import_videos

    ctx = open_context(tctx)
    warn_if_insecure(ctx.settings, [i.partition(":")[0] for i in video_ids or [] if ":" in i])
    result = import_videos(ctx, video_ids or [], remote_list=remote_list)
    for line in result.notes:
        note(line)
    print_jobs(result.jobs, as_json=as_json, quiet=True)
    if not result.jobs:
        note("nothing imported")
