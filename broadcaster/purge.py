"""Purging recipients' numbers from old deliveries (personal data is kept no longer than needed).

An SMS list's deliveries hold one phone number each. Once a send is history, the numbers are no
longer needed, but the history is: which announcement went out, when, to how many, and with what
outcome. :func:`purge_deliveries` keeps every row and writes a placeholder over its number, so
``status`` and ``audit`` tell the same story afterwards, with counts that do not change. The
member lists themselves are the administrator's to keep or delete (``lists delete``).
"""

from __future__ import annotations

from typing import Any

from broadcaster.app import App
from broadcaster.store.audit import record_event
from broadcaster.store.deliveries import purge_recipients, unfinished_recipients
from broadcaster.timeutil import parse_duration

__all__ = ["purge_deliveries"]


def purge_deliveries(app: App, actor: str, older_than: str) -> dict[str, Any]:
    """Purge the numbers of finished deliveries dispatched more than ``older_than`` ago.

    ``older_than`` is a duration such as ``30d`` (:func:`~broadcaster.timeutil.parse_duration`);
    a bad one is an InputError before anything is written. The purge and its audit event (counts
    only, never a number) commit together.
    """
    age = parse_duration(older_than)
    now = app.clock()
    cutoff = now - age
    with app.store.write() as conn:
        purged = purge_recipients(conn, dispatched_before=cutoff)
        kept = unfinished_recipients(conn, dispatched_before=cutoff)
        record_event(
            conn,
            actor=actor,
            action="deliveries_purged",
            now=now,
            older_than=older_than,
            dispatched_before=cutoff.isoformat(timespec="seconds"),
            purged=purged,
            unfinished=kept,
        )
    return {
        "older_than": older_than,
        "dispatched_before": cutoff.isoformat(timespec="seconds"),
        "purged": purged,
        # Deliveries as old that the queue may still send: they keep their number for now.
        "unfinished": kept,
    }
