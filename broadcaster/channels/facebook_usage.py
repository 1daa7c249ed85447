"""Graph's usage headers, and the pause they call for before Meta throttles a page.

Every Graph answer says how much of each call budget is used, in percent of a rolling hour:

* ``X-App-Usage`` — the app's budget, shared by every page we post to (pausing it pauses the
  whole channel);
* ``X-Page-Usage`` — one page's budget, shared by every app using that page's token;
* ``X-Business-Use-Case-Usage`` — per business object (the page), with
  ``estimated_time_to_regain_access`` in minutes once a budget is spent.

Above :data:`THRESHOLD` percent of any budget the target pauses for the time the header
estimates, or :data:`UNESTIMATED_PAUSE_S` when it gives none (the app and page headers never do).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from broadcaster.errors import RateScope

__all__ = ["THRESHOLD", "UNESTIMATED_PAUSE_S", "Budget", "UsageGate", "read_budgets"]

#: Percent of a budget above which we stop calling (Meta throttles at 100).
THRESHOLD = 90.0
#: Pause when a budget is nearly spent and the header gives no estimate: a few minutes of a
#: rolling hour lets the oldest calls age out without holding a crisis post back for long.
UNESTIMATED_PAUSE_S = 300.0
_FIELDS = ("call_count", "total_cputime", "total_time")
_SCOPES = {
    "x-app-usage": RateScope.CHANNEL,
    "x-page-usage": RateScope.TARGET,
    "x-business-use-case-usage": RateScope.TARGET,
}


@dataclass(frozen=True)
class Budget:
    """One budget's use as a header reported it."""

    header: str
    scope: RateScope
    percent: float
    #: Seconds until the budget is usable again, when the header estimates it.
    estimate_s: float | None = None

    def pause(self) -> float | None:
        """Seconds to pause before the next call, or None below the threshold."""
        if self.percent <= THRESHOLD:
            return None
        return self.estimate_s if self.estimate_s else UNESTIMATED_PAUSE_S


def read_budgets(headers: Mapping[str, str]) -> list[Budget]:
    """Every budget the answer's usage headers report; unreadable headers are skipped."""
    lowered = {name.lower(): value for name, value in headers.items()}
    budgets = []
    for name, scope in _SCOPES.items():
        raw = lowered.get(name)
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        budgets += [Budget(name, scope, *reading) for reading in _readings(data)]
    return budgets


def _readings(data: Any) -> Iterator[tuple[float, float | None]]:
    """(percent, estimate in seconds) of each budget in one header's JSON."""
    if isinstance(data, dict) and any(f in data for f in _FIELDS):
        yield _reading(data)
    elif isinstance(data, dict):  # business use case: {object id: [{type, call_count, ...}]}
        for entries in data.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    yield _reading(entry)


def _reading(entry: dict[str, Any]) -> tuple[float, float | None]:
    values = [entry.get(f) for f in _FIELDS]
    percent = max((float(v) for v in values if isinstance(v, int | float)), default=0.0)
    minutes = entry.get("estimated_time_to_regain_access")
    estimate = float(minutes) * 60 if isinstance(minutes, int | float) and minutes > 0 else None
    return percent, estimate


@dataclass(frozen=True)
class Pause:
    """A pause in force: its scope, the seconds left and why."""

    scope: RateScope
    remaining_s: float
    reason: str


class UsageGate:
    """One target's pauses, fed by every answer's headers (from any pool thread)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[RateScope, tuple[float, str]] = {}

    def observe(self, headers: Mapping[str, str]) -> None:
        """Record the pause an answer's usage headers call for (the later end wins)."""
        now = self._clock()
        for budget in read_budgets(headers):
            seconds = budget.pause()
            if seconds is None:
                continue
            reason = f"{budget.header} reports {budget.percent:g} % of a call budget used"
            with self._lock:
                current = self._until.get(budget.scope)
                if current is None or current[0] < now + seconds:
                    self._until[budget.scope] = (now + seconds, reason)

    def pause(self) -> Pause | None:
        """The pause in force, if any; the app-wide one first (it covers every page)."""
        now = self._clock()
        with self._lock:
            for scope in (RateScope.CHANNEL, RateScope.TARGET):
                until = self._until.get(scope)
                if until is None:
                    continue
                if until[0] <= now:
                    del self._until[scope]
                    continue
                return Pause(scope, until[0] - now, until[1])
        return None
