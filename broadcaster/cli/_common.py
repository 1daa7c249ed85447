"""What every command shares: the context object, common options, output and error handling.

Command modules import only Typer and the standard library at the top; services (SQLAlchemy,
Jinja2, platform SDKs) are imported inside the commands, so ``broadcaster --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from broadcaster.errors import BroadcastError, ConfigError, InputError

if TYPE_CHECKING:
    from rich.console import Console
    from typer._click.core import Context as ClickContext

    from broadcaster.app import App
    from broadcaster.identity import Claim
    from broadcaster.workspace import Workspace

__all__ = [
    "AsOption",
    "CliState",
    "ErrorReportingGroup",
    "IdArgument",
    "JsonOption",
    "OptionalIdArgument",
    "audit_refusal",
    "emit_json",
    "emit_result",
    "error_document",
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
        help="Who you are (default: BROADCASTER_USER, else your OS account). Approvers and "
        "authors must be proven: see `broadcaster approve --help`.",
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
    #: The command prints one JSON document on stdout (--json): messages go to stderr.
    json_output: bool = False

    def workspace(self) -> Workspace:
        """The workspace named by --config / BROADCASTER_CONFIG / ./broadcaster.toml."""
        if self._workspace is None:
            from broadcaster.cli._exercise import announce_exercise
            from broadcaster.workspace import find_config, load_workspace

            path = find_config(self.config_option, self.environ, self.cwd)
            self._workspace = load_workspace(path, self.environ)
            announce_exercise(self._workspace, json_output=self.json_output)
        return self._workspace

    def app(self) -> App:
        """The application context (opens and, if needed, migrates the database)."""
        if self._app is None:
            from broadcaster.app import open_app

            self._app = open_app(self.workspace())
        return self._app

    def person(self, explicit: str | None) -> str:
        """The acting person for a command that needs no proof (recorded as named)."""
        return self.claim(explicit).person

    def claim(self, explicit: str | None) -> Claim:
        """Who this command says is acting, and the OS account running it (to be proven)."""
        from broadcaster.identity import claim

        return claim(explicit, self.environ, self.workspace().config)

    def proven_person(
        self, explicit: str | None, doing: str, announcement_id: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The acting person and the proof of it; refused (and audited) when unproven."""
        from broadcaster.errors import IdentityError
        from broadcaster.identity import prove

        who = self.claim(explicit)
        try:
            return who.person, prove(self.workspace().config, who, doing=doing)
        except IdentityError as exc:
            audit_refusal(self.app(), who, doing, exc, announcement_id)
            raise

    def close(self) -> None:
        """Release the database."""
        if self._app is not None:
            self._app.close()
            self._app = None


def audit_refusal(
    app: App, who: Claim, doing: str, error: Exception, announcement_id: int | None = None
) -> None:
    """Record that ``who`` was not believed (the audit log keeps refusals too, issue 13)."""
    from broadcaster.store.audit import record_event

    with app.store.write() as conn:
        record_event(
            conn,
            actor=who.person,
            action="identity_refused",
            now=app.clock(),
            announcement_id=announcement_id,
            doing=doing,
            named_by=who.source,
            os_user=who.os_user,
            reason=str(error),
        )


def state(ctx: typer.Context) -> CliState:
    """The CliState of this invocation (created by the root callback)."""
    found = ctx.find_object(CliState)
    if found is None:  # a command invoked without the root callback (tests of one command)
        found = CliState(config_option=None, environ=dict(os.environ), cwd=Path.cwd())
        ctx.obj = found
    found.json_output = bool(ctx.params.get("as_json"))
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


def emit_result(as_json: bool, document: Mapping[str, Any], text: str) -> None:
    """A command's result: ``document`` as JSON with --json, else ``text`` (rich markup)."""
    if as_json:
        emit_json(document)
    else:
        stdout().print(text)


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop with an error message (exit 2 = bad input by default, 1 = refused).

    Raised as one of our errors, so that the group reports it like any other (as JSON too).
    """
    raise (InputError if code == 2 else BroadcastError)(message)


#: The flag that turns a command's output, errors included, into one JSON document.
JSON_FLAG = "--json"
_JSON_META = "broadcaster.json"


def wants_json(args: Sequence[str]) -> bool:
    """Whether ``--json`` is on the command line (before a ``--`` that ends the options)."""
    for arg in args:
        if arg == "--":
            return False
        if arg == JSON_FLAG:
            return True
    return False


def error_document(code: str, message: str, details: Sequence[str] = ()) -> dict[str, Any]:
    """``{"error": {"code", "message", "details"}}``: what --json prints when a command fails."""
    from broadcaster.privacy import mask_phone_numbers

    return {
        "error": {
            "code": code,
            "message": mask_phone_numbers(message),
            "details": [mask_phone_numbers(line) for line in details],
        }
    }


def error_code(error: BaseException) -> str:
    """A stable, script-friendly name for an error: ``NotFoundError`` -> ``not_found``."""
    name = type(error).__name__.removesuffix("Error") or type(error).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _report(document: dict[str, Any], as_json: bool) -> None:
    """Print an error document: on stdout as JSON for scripts, on stderr in words for people."""
    if as_json:
        emit_json(document)
    error = document["error"]
    console = stderr()
    console.print(f"[bold red]error:[/] {_escape(error['message'])}")
    for line in error["details"]:
        console.print(f"  {_escape(line)}")


def _broadcast_error_document(error: BroadcastError) -> dict[str, Any]:
    if isinstance(error, ConfigError):
        return error_document(error_code(error), "the configuration has problems:", error.problems)
    lines = str(error).splitlines() or [type(error).__name__]
    return error_document(error_code(error), lines[0], lines[1:])


def _click_error_document(error: Exception) -> tuple[dict[str, Any], int]:
    """A usage error of Click (bad option value, missing argument, unknown command) as JSON."""
    from typer._click.exceptions import ClickException, UsageError

    if isinstance(error, UsageError):
        return error_document("usage", error.format_message()), 2
    if isinstance(error, ClickException):
        return error_document("usage", error.format_message()), error.exit_code
    if isinstance(error, typer.Abort):
        return error_document("aborted", "aborted"), 1
    raise error


class ErrorReportingGroup(TyperGroup):
    """Turns every BroadcastError into a message and its exit code; never a traceback.

    With ``--json`` anywhere on the command line the message is also one JSON document on
    stdout, for Click's own usage errors as much as for ours, so a script can always parse it.
    """

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; with --json, errors Click reports itself become JSON too."""
        argv = list(sys.argv[1:] if args is None else args)
        if not wants_json(argv):
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        code = _exit_code_as_json(
            lambda: super(ErrorReportingGroup, self).main(
                argv, prog_name, complete_var, False, **extra
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: ClickContext | None = None,
        **extra: Any,
    ) -> ClickContext:
        """The root context, remembering whether this command line asked for JSON."""
        as_json = wants_json(args)
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta[_JSON_META] = as_json
        return ctx

    def invoke(self, ctx: ClickContext) -> Any:
        """Run the command, mapping our errors to exit codes."""
        as_json = bool(ctx.meta.get(_JSON_META))
        try:
            return super().invoke(ctx)
        except BroadcastError as exc:
            _report(_broadcast_error_document(exc), as_json)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _report(error_document("interrupted", "interrupted"), as_json)
            raise typer.Exit(130) from None
        finally:
            found = ctx.find_object(CliState)
            if found is not None:
                found.close()


def _exit_code_as_json(run: Callable[[], Any]) -> int:
    """Run Click in non-standalone mode and turn what it raises into a JSON error document."""
    from typer._click.exceptions import ClickException

    try:
        result = run()
    except (ClickException, typer.Abort) as exc:
        document, code = _click_error_document(exc)
        _report(document, as_json=True)
        return code
    except Exception as exc:
        # A bug: the script still gets its JSON, the person the traceback (raised on).
        emit_json(error_document("internal", f"unexpected {type(exc).__name__}: {exc}"))
        raise
    return result if isinstance(result, int) else 0


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
