"""``broadcaster audit``: the append-only record of who did what."""

from __future__ import annotations

import typer

from broadcaster.cli._common import JsonOption, OptionalIdArgument, emit_json, state, stdout

__all__ = ["register"]


def audit(
    ctx: typer.Context,
    announcement_id: OptionalIdArgument = None,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log (of one announcement, or all)."""
    from datetime import datetime

    from rich.table import Table

    from broadcaster.reports import audit_log
    from broadcaster.timeutil import format_local

    app = state(ctx).app()
    document = audit_log(app, announcement_id)
    if as_json:
        emit_json(document)
        return
    timezone = app.config.broadcaster.timezone
    table = Table("when", "who", "what", "id", "rev", "details")
    for event in document["events"]:
        details = ", ".join(f"{k}={v}" for k, v in event["details"].items() if k != "content_hash")
        table.add_row(
            format_local(datetime.fromisoformat(event["at"]), timezone),
            event["actor"],
            event["action"],
            str(event["announcement_id"] or ""),
            str(event["revision"] or ""),
            details,
        )
    stdout().print(table if document["events"] else "The audit log is empty.")


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(audit)
