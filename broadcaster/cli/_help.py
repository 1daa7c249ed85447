"""Plain, complete help: every command with its whole one-line summary.

The root app uses Click's plain help formatter instead of Rich's panels: ``--help`` is typed
often and Rich's renderer costs more than the rest of the command. Click shortens each command's
summary to fit one line and ends it with "..."; here the summary wraps instead, so nothing is cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from broadcaster.cli._common import ErrorReportingGroup

if TYPE_CHECKING:
    from typer._click import Context, HelpFormatter

__all__ = ["HelpfulGroup"]

#: Longer than any first sentence of a command's docstring: Click cuts the summary at this length.
_SUMMARY_LIMIT = 200


class HelpfulGroup(ErrorReportingGroup):
    """The root command group: our error handling, and command summaries that wrap."""

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """List the commands with their full summaries (wrapped by the formatter)."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(_SUMMARY_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
