"""``broadcaster sandbox``: the platform emulators, for crisis exercises (krisövningar)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from broadcaster.cli._common import fail, state

__all__ = ["register"]

DEFAULT_PORT = 8765  # kept equal to broadcaster.sandbox.DEFAULT_PORT (a test checks)


def sandbox(
    ctx: typer.Context,
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="Loopback port (0: any free port)."),
    ] = DEFAULT_PORT,
    env_file: Annotated[
        Path | None,
        typer.Option("--env-file", metavar="FILE", help="Also write the .env to this file."),
    ] = None,
) -> None:
    """Run local emulators of every platform; prints a complete .env for them on stdout.

    Save the output as the workspace's .env to run the whole flow against the sandbox.
    Stops cleanly on Ctrl-C.
    """
    from broadcaster.sandbox import serve

    if env_file is not None and (env_file.is_dir() or not env_file.parent.is_dir()):
        # Checked before the emulators start, so a typo does not end in a traceback later.
        fail(f"--env-file {env_file}: give a file in an existing folder")
    specs = state(ctx).environ.get("BROADCASTER_SPECS_DIR") or None
    serve(port=port, env_file=env_file, specs_dir=Path(specs) if specs else None)


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(sandbox)
