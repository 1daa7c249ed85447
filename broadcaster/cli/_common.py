"""What every command shares: the context object, common options, output and error handling.

Command modules import only Typer and the standard library at the top; services (SQLAlchemy,
Jinja2, platform SDKs) are imported inside the commands, so ``broadcaster --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from broadcaster.errors import BroadcastError, ConfigError

if TYPE_CHECKING:
    from rich.console import Console
    from typer._click.core import Context as ClickContext

    from broadcaster.app import App
    from broadcaster.workspace import Workspace

__all__ = [
    "AsOption",
    "CliState",
    "ErrorReportingGroup",
    "IdArgument",
    "JsonOption",
    "OptionalIdArgument",
    "emit_json",
    "fail",
    "parse_id",
    "state",
    "stderr",
    "stdout",
]

AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="NAME",
        help="Who you are (default: BROADCASTER_USER, else your OS user name).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]

#: The largest id the database can hold (a signed 64-bit integer on every backend).
MAX_ID = 2**63 - 1


def parse_id(text: str) -> int:
    """An id typed at the command line: a whole number from 1 to :data:`MAX_ID`.

    Checked here, once for every command, so that ``99999999999999999999`` is a usage error
    rather than an overflow deep in the database driver.
    """
    value = text.strip()
    # The length test comes first: int() of thousands of digits is slow, and refused by Python.
    if len(value) <= len(str(MAX_ID)) and value.isascii() and value.isdigit():
        number = int(value)
        if 1 <= number <= MAX_ID:
            return number
    raise typer.BadParameter(
        f"{text[:40]!r} is not an id: ids are whole numbers from 1 to {MAX_ID} "
        "(see `broadcaster list`)"
    )


IdArgument = Annotated[int, typer.Argument(metavar="ID", parser=parse_id)]
OptionalIdArgument = Annotated[int | None, typer.Argument(metavar="ID", parser=parse_id)]


@dataclass
class CliState:
    """Per-invocation state, stored on the Click context."""

    config_option: str | None
    environ: Mapping[str, str]
    cwd: Path
    _workspace: Workspace | None = field(default=None, repr=False)
    _app: App | None = field(default=None, repr=False)

    def workspace(self) -> Workspace:
        """The workspace named by --config / BROADCASTER_CONFIG / ./broadcaster.toml."""
        if self._workspace is None:
            from broadcaster.workspace import find_config, load_workspace

            path = find_config(self.config_option, self.environ, self.cwd)
            self._workspace = load_workspace(path, self.environ)
        return self._workspace

    def app(self) -> App:
        """The application context (opens and, if needed, migrates the database)."""
        if self._app is None:
            from broadcaster.app import open_app

            self._app = open_app(self.workspace())
        return self._app

    def person(self, explicit: str | None) -> str:
        """The acting person for this command."""
        from broadcaster.identity import current_person

        return current_person(explicit, self.environ)

    def close(self) -> None:
        """Release the database."""
        if self._app is not None:
            self._app.close()
            self._app = None


def state(ctx: typer.Context) -> CliState:
    """The CliState of this invocation (created by the root callback)."""
    found = ctx.find_object(CliState)
    if found is None:  # a command invoked without the root callback (tests of one command)
        found = CliState(config_option=None, environ=dict(os.environ), cwd=Path.cwd())
        ctx.obj = found
    return found


def stdout() -> Console:
    """A console for results."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    """A console for messages and errors (keeps stdout clean for --json and pipes)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(document: Any) -> None:
    """Print exactly one JSON document on stdout."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop with an error message (exit 2 = bad input by default)."""
    stderr().print(f"[bold red]error:[/] {_escape(message)}")
    raise typer.Exit(code)


class ErrorReportingGroup(TyperGroup):
    """Turns every BroadcastError into a message and its exit code; never a traceback."""

    def invoke(self, ctx: ClickContext) -> Any:
        """Run the command, mapping our errors to exit codes."""
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            console = stderr()
            console.print("[bold red]error:[/] the configuration has problems:")
            for problem in exc.problems:
                console.print(f"  {_escape(problem)}")
            raise typer.Exit(exc.exit_code) from None
        except BroadcastError as exc:
            lines = str(exc).splitlines() or [type(exc).__name__]
            console = stderr()
            console.print(f"[bold red]error:[/] {_escape(lines[0])}")
            for line in lines[1:]:
                console.print(f"  {_escape(line)}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            stderr().print("interrupted")
            raise typer.Exit(130) from None
        finally:
            found = ctx.find_object(CliState)
            if found is not None:
                found.close()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
