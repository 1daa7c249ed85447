"""How many refused, unauthenticated requests are audited one by one (``serve``).

Every refused request (a forged Bot Framework token, a Twilio callback without a valid signature)
is evidence, and the first ones from an address are audited and logged one by one. A flood of
them, from a scanner or an attacker, must not become a flood of writes: each audit entry is a
write transaction, and on SQLite the worker sending a crisis text waits behind every one. So an
address gets :attr:`RefusalBudget.per_window` audited refusals per minute and endpoint; the
rest are counted, and once the minute is over one entry, ``requests_refused_unaudited``, says
how many were not written one by one (with the address, the endpoint and the time span) and one
log line says the same. The table of addresses is bounded: past :attr:`RefusalBudget.max_clients`
addresses in one minute, new ones share one entry, ``other addresses``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from broadcaster.app import App
from broadcaster.store.audit import record_event
from broadcaster.store.database import is_unavailable

__all__ = [
    "OTHER_ADDRESSES",
    "RefusalBudget",
    "Unaudited",
    "flush",
    "flush_every",
    "write_unaudited",
]

log = logging.getLogger("broadcaster.serve")

#: The shared entry of addresses beyond :attr:`RefusalBudget.max_clients`.
OTHER_ADDRESSES = "other addresses"


@dataclass(frozen=True, kw_only=True)
class Unaudited:
    """Refusals from one address at one endpoint that were counted, not audited one by one."""

    endpoint: str
    client_ip: str
    count: int
    first: datetime
    last: datetime


@dataclass
class _Window:
    started: datetime
    audited: int = 0
    counted: int = 0
    first: datetime | None = None
    last: datetime | None = None


class RefusalBudget:
    """Decides which refusals are audited one by one; remembers how many were not.

    Used from the server's event loop only (no lock).
    """

    def __init__(
        self,
        *,
        per_window: int = 20,
        window: timedelta = timedelta(minutes=1),
        max_clients: int = 1024,
    ) -> None:
        self.per_window = per_window
        self.window = window
        self.max_clients = max_clients
        self._windows: dict[tuple[str, str], _Window] = {}

    def admit(self, endpoint: str, client_ip: str | None, now: datetime) -> bool:
        """True: audit and log this refusal. False: it is counted for a summary."""
        key = (endpoint, client_ip or "unknown")
        current = self._windows.get(key)
        if current is not None and now - current.started >= self.window:
            if current.counted:
                return self._count(current, now)  # its summary is not written yet: keep it
            current = None
        if current is None:
            if len(self._windows) >= self.max_clients:
                key = (endpoint, OTHER_ADDRESSES)
                current = self._windows.setdefault(key, _Window(started=now))
            else:
                current = self._windows[key] = _Window(started=now)
        if current.audited < self.per_window:
            current.audited += 1
            return True
        return self._count(current, now)

    def _count(self, window: _Window, now: datetime) -> bool:
        window.counted += 1
        window.first = window.first or now
        window.last = now
        return False

    def take_due(self, now: datetime, *, everything: bool = False) -> list[Unaudited]:
        """The summaries of windows that are over (all of them with ``everything``), forgetting
        those windows; windows with nothing counted are forgotten without a summary."""
        due: list[Unaudited] = []
        for key, window in list(self._windows.items()):
            if not everything and now - window.started < self.window:
                continue
            del self._windows[key]
            if window.counted and window.first is not None and window.last is not None:
                endpoint, client_ip = key
                due.append(
                    Unaudited(
                        endpoint=endpoint,
                        client_ip=client_ip,
                        count=window.counted,
                        first=window.first,
                        last=window.last,
                    )
                )
        return due


def write_unaudited(app: App, summaries: list[Unaudited]) -> None:
    """Log and audit each summary (blocking: run it in a thread). The log line comes first, so
    a database that is away loses nothing a person could read."""
    for summary in summaries:
        log.warning(
            "refused %d more request(s) to %s from %s between %s and %s without auditing each",
            summary.count,
            summary.endpoint,
            summary.client_ip,
            summary.first.isoformat(timespec="seconds"),
            summary.last.isoformat(timespec="seconds"),
            extra={"client_ip": summary.client_ip},
        )
    if not summaries:
        return
    with app.store.write() as conn:
        for summary in summaries:
            record_event(
                conn,
                actor="unauthenticated",
                action="requests_refused_unaudited",
                now=app.clock(),
                endpoint=summary.endpoint,
                client_ip=summary.client_ip,
                count=summary.count,
                first=summary.first.isoformat(timespec="seconds"),
                last=summary.last.isoformat(timespec="seconds"),
            )


async def flush(app: App, budget: RefusalBudget, *, everything: bool = False) -> None:
    """Write the summaries that are due (all of them with ``everything``: at shutdown)."""
    due = budget.take_due(app.clock(), everything=everything)
    try:
        await asyncio.to_thread(write_unaudited, app, due)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        log.warning("could not audit %d refusal summaries: the database is unavailable", len(due))


async def flush_every(app: App, budget: RefusalBudget) -> None:
    """Write due summaries once per window, until cancelled."""
    seconds = budget.window.total_seconds()
    while True:
        await asyncio.sleep(seconds)
        await flush(app, budget)
