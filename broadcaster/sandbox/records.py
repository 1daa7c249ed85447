"""What the emulators received and sent, inspectable from Python and over HTTP.

Every request that reaches an emulator becomes one :class:`Record` (``direction="in"``), including
those a fault answered or swallowed; what the sandbox itself sends (Twilio status callbacks, Teams
clicks) is recorded with ``direction="out"``. The recorder is shared between the server's thread
and the test's thread, so it locks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Direction", "Record", "Recorder"]

Direction = Literal["in", "out"]


@dataclass
class Record:
    """One HTTP exchange seen by the sandbox.

    Attributes:
        seq: Position in the recorder, from 1.
        platform: ``facebook``, ``twilio``, ``telegram``, ``login``, ``botframework``,
            ``connector``, ``workflows``, ``cms`` or ``teams`` (clicks sent as Teams).
        direction: ``in`` for requests received, ``out`` for requests the sandbox sent.
        method: HTTP method.
        url: Full URL (for ``in``: as received by the sandbox).
        path: Path without the query.
        query: Query parameters, every value kept.
        headers: Request headers, names in lower case.
        body: Request body decoded as UTF-8 (invalid bytes replaced).
        form: Form fields when the body was form-encoded, else None.
        json: Parsed JSON when the body was JSON, else None.
        target: The platform object the request was about (page id, phone number, chat id,
            conversation id, ...), used to match faults.
        at: Unix time the request was received or sent.
        status: HTTP status answered; None when no answer was given (drop, hang, down, or an
            outgoing request that failed).
        response: The answer's body (parsed JSON when it was JSON).
        fault: The kind of fault applied, if any.
        note: Free text, e.g. why an outgoing request failed.
    """

    seq: int
    platform: str
    direction: Direction
    method: str
    url: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    form: dict[str, list[str]] | None = None
    json: Any = None
    target: str | None = None
    at: float = 0.0
    status: int | None = None
    response: Any = None
    fault: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy of the record."""
        return asdict(self)

    def field(self, name: str) -> str | None:
        """The last value of form field ``name`` (or JSON key, or query parameter), if any."""
        if self.form and name in self.form:
            return self.form[name][-1]
        if isinstance(self.json, dict) and name in self.json:
            value = self.json[name]
            return value if isinstance(value, str) else str(value)
        values = self.query.get(name)
        return values[-1] if values else None


class Recorder:
    """Thread-safe, append-only list of :class:`Record` (until :meth:`clear`)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """Create an empty recorder reading the time from ``clock``."""
        self._clock = clock
        self._records: list[Record] = []
        self._seq = 0
        self._changed = threading.Condition()

    def add(self, **fields: Any) -> Record:
        """Append a record built from ``fields`` (see :class:`Record`) and return it."""
        with self._changed:
            self._seq += 1
            fields.setdefault("at", self._clock())
            record = Record(seq=self._seq, **fields)
            self._records.append(record)
            self._changed.notify_all()
            return record

    def finish(self, record: Record, **fields: Any) -> None:
        """Set the outcome fields (``status``, ``response``, ``fault``, ``note``) of a record."""
        with self._changed:
            for name, value in fields.items():
                setattr(record, name, value)
            self._changed.notify_all()

    def find(
        self,
        platform: str | None = None,
        *,
        target: str | None = None,
        direction: Direction | None = None,
        method: str | None = None,
    ) -> list[Record]:
        """Records in arrival order, optionally only those matching every given filter."""
        with self._changed:
            records = list(self._records)
        return [
            r
            for r in records
            if (platform is None or r.platform == platform)
            and (target is None or r.target == target)
            and (direction is None or r.direction == direction)
            and (method is None or r.method == method.upper())
        ]

    def wait_for(
        self, predicate: Callable[[Record], bool], *, count: int = 1, timeout: float = 5.0
    ) -> list[Record]:
        """Block until at least ``count`` records satisfy ``predicate``; return them.

        Raises:
            TimeoutError: Fewer matched within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self._records if predicate(r)]
                remaining = deadline - time.monotonic()
                if len(found) >= count:
                    return found
                if remaining <= 0:
                    raise TimeoutError(f"{len(found)} of {count} expected records after {timeout}s")
                self._changed.wait(remaining)

    def __len__(self) -> int:
        with self._changed:
            return len(self._records)

    def clear(self) -> None:
        """Forget every record (sequence numbers keep counting)."""
        with self._changed:
            self._records.clear()
