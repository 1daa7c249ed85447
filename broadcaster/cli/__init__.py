"""The ``broadcaster`` command (the officer's interface, DESIGN §5)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from broadcaster import __version__
from broadcaster.cli import announcement_cmds as announcement_cmds
from broadcaster.cli import approval_cmds as approval_cmds
from broadcaster.cli import audit_cmds as audit_cmds
from broadcaster.cli import deadletters_cmd as deadletters_cmd
from broadcaster.cli import demo_cmd as demo_cmd
from broadcaster.cli import dispatch_cmds as dispatch_cmds
from broadcaster.cli import lists_cmds as lists_cmds
from broadcaster.cli import sandbox_cmd as sandbox_cmd
from broadcaster.cli import serve_cmd as serve_cmd
from broadcaster.cli import workspace_cmds as workspace_cmds
from broadcaster.cli._common import CliState
from broadcaster.cli._help import HelpfulGroup

__all__ = ["app", "main"]

app = typer.Typer(
    name="broadcaster",
    cls=HelpfulGroup,
    help="Write one crisis update, have it approved, and fan it out to every channel.",
    no_args_is_help=True,
    # Plain help: Rich's panels would triple the time a command's --help takes (see _help.py;
    # the root page is printed without Typer at all, see broadcaster/help_cache.py).
    rich_markup_mode=None,
    add_completion=False,
    # Tracebacks with local variables could print secrets; our own errors never reach here.
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"broadcaster {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="The workspace's broadcaster.toml "
            "(default: BROADCASTER_CONFIG, else ./broadcaster.toml).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    ctx.obj = CliState(config_option=config, environ=dict(os.environ), cwd=Path.cwd())


for module in (
    workspace_cmds,
    announcement_cmds,
    approval_cmds,
    dispatch_cmds,
    serve_cmd,
    deadletters_cmd,
    audit_cmds,
    lists_cmds,
    sandbox_cmd,
    demo_cmd,
):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
