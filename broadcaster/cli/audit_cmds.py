"""``broadcaster audit``: the append-only record of who did what."""

from __future__ import annotations

from typing import Any

import typer

from broadcaster.cli._common import JsonOption, OptionalIdArgument, emit_json, state, stdout
from broadcaster.cli.tables import WideOption

__all__ = ["register"]


def audit(
    ctx: typer.Context,
    announcement_id: OptionalIdArgument = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
) -> None:
    """Show the audit log (of one announcement, or all)."""
    from datetime import datetime

    from rich.markup import escape

    from broadcaster.cli.tables import Column, Fit, cell_time, print_table
    from broadcaster.privacy import mask_phone_numbers
    from broadcaster.reports import audit_log

    app = state(ctx).app()
    document = audit_log(app, announcement_id)
    if as_json:
        emit_json(document)
        return
    if not document["events"]:
        stdout().print("The audit log is empty.")
        return
    timezone = app.config.broadcaster.timezone
    columns = (
        Column("when"),
        Column("who", Fit.SHRINK, min_width=8),
        Column("what"),
        Column("id"),
        Column("rev"),
        Column("details", Fit.SHRINK, min_width=12, give=2),
    )
    rows = [
        [
            cell_time(datetime.fromisoformat(event["at"]), timezone),
            escape(event["actor"]),
            event["action"],
            str(event["announcement_id"] or ""),
            str(event["revision"] or ""),
            escape(mask_phone_numbers(_details_text(event["details"]))),
        ]
        for event in document["events"]
    ]
    print_table(stdout(), columns, rows, wide=wide)


def _details_text(details: dict[str, Any]) -> str:
    """``key=value, ...``; a proof in words (its signature is in ``audit --json``)."""
    from broadcaster.identity import describe_proof

    shown = []
    for key, value in details.items():
        if key == "content_hash":
            continue
        if key == "proof" and isinstance(value, dict):
            shown.append(describe_proof(value))
        else:
            shown.append(f"{key}={value}")
    return ", ".join(shown)


def register(app: typer.Typer) -> None:
    """Add this command to the root app."""
    app.command()(audit)
