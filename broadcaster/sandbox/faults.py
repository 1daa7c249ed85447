"""Fault injection: make a platform (or one page, number, chat, conversation) misbehave.

Kinds, and what the client sees (the same as against the real platform in that situation):

=========  ====================================================================================
``fail``   the next ``count`` requests get an error in the platform's own format with
           ``status`` (and ``Retry-After``); nothing is posted
``ratio``  each request fails like ``fail`` with probability ``ratio``
``latency`` each request is answered ``seconds`` late (the answer is normal)
``hang``   no answer until the client gives up (``seconds`` at most); with ``effect=True`` the
           request is carried out first, as when the platform is slow after doing the work
``drop``   the request is read and carried out (the post exists), then the connection is closed
           without an answer: "the request reached the platform, the answer is lost"
``down``   for ``seconds`` every request's connection is closed at once; nothing is carried out
=========  ====================================================================================

``platform="*"`` matches every platform; ``target=None`` every target of the platform.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

__all__ = ["PLATFORMS", "Fault", "FaultBook", "FaultKind", "FaultPlan"]

PLATFORMS = frozenset(
    {"facebook", "twilio", "telegram", "login", "botframework", "connector", "workflows", "cms"}
)


class FaultKind(StrEnum):
    """The kinds of fault the sandbox can inject."""

    FAIL = "fail"
    RATIO = "ratio"
    LATENCY = "latency"
    HANG = "hang"
    DROP = "drop"
    DOWN = "down"


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One injected fault. Build them with the :class:`FaultBook` helpers.

    Attributes:
        kind: What happens (see the module docstring).
        platform: A platform name, or ``*`` for all.
        target: Only requests about this page id, phone number, chat id, conversation id,
            tenant or client id, workflow id or CMS path; None for all.
        status: HTTP status of ``fail``/``ratio`` answers.
        count: How many requests it applies to; None means until removed (``down``: until
            ``seconds`` have passed).
        ratio: Probability for ``ratio``.
        retry_after: Seconds for the ``Retry-After`` header and platform fields (Telegram
            ``parameters.retry_after``).
        seconds: Delay for ``latency``, longest wait for ``hang``, duration of ``down``.
        code: Platform error code in the body (Graph ``error.code`` e.g. 32, Twilio ``code`` e.g.
            20429, Bot Connector ``error.code`` e.g. ``"Throttled"``); derived from ``status``
            when None.
        subcode: Graph ``error.error_subcode``.
        message: Error message in the body; a platform-typical one when None.
        effect: For ``hang``: carry the request out before hanging.
        id: Assigned by the :class:`FaultBook`.
    """

    kind: FaultKind
    platform: str
    target: str | None = None
    status: int = 503
    count: int | None = None
    ratio: float = 1.0
    retry_after: float | None = None
    seconds: float = 0.0
    code: int | str | None = None
    subcode: int | None = None
    message: str | None = None
    effect: bool = False
    id: str = ""

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from the JSON of ``POST /_sandbox/faults``.

        Raises:
            ValueError: Unknown keys or invalid values.
        """
        allowed = {f for f in cls.__dataclass_fields__ if f != "id"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if "kind" not in data or "platform" not in data:
            raise ValueError("a fault needs 'kind' and 'platform'")
        try:
            kind = FaultKind(data["kind"])
        except ValueError:
            raise ValueError(f"unknown fault kind {data['kind']!r}") from None
        return cls(**{**data, "kind": kind})

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {**asdict(self), "kind": self.kind.value}


def _problems(fault: Fault) -> list[str]:
    problems = []
    if fault.platform != "*" and fault.platform not in PLATFORMS:
        problems.append(f"unknown platform {fault.platform!r}")
    if fault.kind in (FaultKind.FAIL, FaultKind.RATIO) and not 400 <= fault.status <= 599:
        problems.append("status must be a 4xx or 5xx code")
    if not 0.0 <= fault.ratio <= 1.0:
        problems.append("ratio must be between 0 and 1")
    if fault.count is not None and fault.count < 1:
        problems.append("count must be at least 1")
    if fault.seconds < 0 or (fault.retry_after is not None and fault.retry_after < 0):
        problems.append("seconds and retry_after cannot be negative")
    if fault.kind is FaultKind.DOWN and fault.seconds <= 0:
        problems.append("down needs seconds > 0")
    return problems


@dataclass(frozen=True)
class FaultPlan:
    """What to do with one request: wait ``latency`` seconds, then apply ``terminal`` if any."""

    latency: float = 0.0
    terminal: Fault | None = None


@dataclass
class _Entry:
    fault: Fault
    remaining: int | None
    until: float | None = None
    hits: int = field(default=0)


# Which fault decides a request when several match: the one that leaves least of it standing.
_PRECEDENCE = (FaultKind.DOWN, FaultKind.FAIL, FaultKind.RATIO, FaultKind.HANG, FaultKind.DROP)


class FaultBook:
    """The faults of one sandbox; thread-safe (tests inject while the server runs)."""

    def __init__(self, rng: random.Random, clock: Callable[[], float] = time.time) -> None:
        """Create an empty book; ``rng`` decides ``ratio`` faults, ``clock`` times ``down``."""
        self._rng = rng
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> str:
        """Activate ``fault``; return its id (for :meth:`remove`)."""
        with self._lock:
            fault = replace(fault, id=f"F{next(self._ids)}")
            until = self._clock() + fault.seconds if fault.kind is FaultKind.DOWN else None
            self._entries[fault.id] = _Entry(fault, fault.count, until)
            return fault.id

    def fail(
        self,
        platform: str,
        *,
        status: int = 503,
        count: int | None = 1,
        target: str | None = None,
        retry_after: float | None = None,
        code: int | str | None = None,
        subcode: int | None = None,
        message: str | None = None,
    ) -> str:
        """Answer the next ``count`` requests with a platform error of ``status``."""
        return self.add(
            Fault(
                kind=FaultKind.FAIL,
                platform=platform,
                target=target,
                status=status,
                count=count,
                retry_after=retry_after,
                code=code,
                subcode=subcode,
                message=message,
            )
        )

    def ratio(
        self,
        platform: str,
        ratio: float,
        *,
        status: int = 503,
        target: str | None = None,
        count: int | None = None,
        retry_after: float | None = None,
        code: int | str | None = None,
    ) -> str:
        """Fail each request with probability ``ratio``."""
        return self.add(
            Fault(
                kind=FaultKind.RATIO,
                platform=platform,
                ratio=ratio,
                status=status,
                target=target,
                count=count,
                retry_after=retry_after,
                code=code,
            )
        )

    def latency(
        self, platform: str, seconds: float, *, target: str | None = None, count: int | None = None
    ) -> str:
        """Answer requests ``seconds`` late."""
        return self.add(
            Fault(
                kind=FaultKind.LATENCY,
                platform=platform,
                seconds=seconds,
                target=target,
                count=count,
            )
        )

    def hang(
        self,
        platform: str,
        *,
        seconds: float = 300.0,
        target: str | None = None,
        count: int | None = 1,
        effect: bool = False,
    ) -> str:
        """Do not answer until the client gives up (at most ``seconds``)."""
        return self.add(
            Fault(
                kind=FaultKind.HANG,
                platform=platform,
                seconds=seconds,
                target=target,
                count=count,
                effect=effect,
            )
        )

    def drop(self, platform: str, *, target: str | None = None, count: int | None = 1) -> str:
        """Carry the request out, then close the connection without answering."""
        return self.add(Fault(kind=FaultKind.DROP, platform=platform, target=target, count=count))

    def down(self, platform: str, seconds: float, *, target: str | None = None) -> str:
        """Close every connection at once for ``seconds``; nothing is carried out."""
        return self.add(
            Fault(kind=FaultKind.DOWN, platform=platform, seconds=seconds, target=target)
        )

    def remove(self, fault_id: str) -> bool:
        """Deactivate one fault; False if it was not active."""
        with self._lock:
            return self._entries.pop(fault_id, None) is not None

    def clear(self, platform: str | None = None) -> None:
        """Deactivate every fault, or those of one platform."""
        with self._lock:
            for key in [
                k for k, e in self._entries.items() if platform in (None, e.fault.platform)
            ]:
                del self._entries[key]

    def active(self) -> list[Fault]:
        """The faults still in force."""
        with self._lock:
            self._prune()
            return [e.fault for e in self._entries.values()]

    def plan(self, platform: str, targets: Iterable[str]) -> FaultPlan:
        """Decide (and count) the faults applied to one request to ``platform``.

        Args:
            platform: The emulator receiving the request.
            targets: Every name of the request's target (e.g. a chat's ``@name`` and numeric id).
        """
        names = set(targets)
        with self._lock:
            self._prune()
            matching = [
                e
                for e in self._entries.values()
                if e.fault.platform in ("*", platform)
                and (e.fault.target is None or e.fault.target in names)
            ]
            latency = sum(self._take(e) for e in matching if e.fault.kind is FaultKind.LATENCY)
            for kind in _PRECEDENCE:
                for entry in (e for e in matching if e.fault.kind is kind):
                    if kind is FaultKind.RATIO and self._rng.random() >= entry.fault.ratio:
                        continue
                    self._take(entry)
                    return FaultPlan(latency=latency, terminal=entry.fault)
            return FaultPlan(latency=latency)

    def _take(self, entry: _Entry) -> float:
        entry.hits += 1
        if entry.remaining is not None:
            entry.remaining -= 1
        return entry.fault.seconds

    def _prune(self) -> None:
        now = self._clock()
        for key, entry in list(self._entries.items()):
            expired = entry.until is not None and now >= entry.until
            if expired or entry.remaining == 0:
                del self._entries[key]
