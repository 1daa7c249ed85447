"""What every route of ``broadcaster serve`` shares: the App, the worker beside it, the limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from broadcaster.app import App
from broadcaster.delivery import SendObserver
from broadcaster.server.refusals import RefusalBudget

__all__ = [
    "DEFAULT_DATABASE_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "BotCaller",
    "CardActionHandler",
    "ServerContext",
    "WorkerProbe",
]

#: Request bodies larger than this are refused with 413 (a Twilio status callback is < 1 KB).
DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: A database that has not answered ``/healthz`` or ``/metrics`` within this long counts as
#: unavailable (the answer is 503, not a hung request).
DEFAULT_DATABASE_TIMEOUT_S = 5.0


class WorkerProbe(Protocol):
    """The queue worker running in the server's process, as the routes see it."""

    @property
    def state(self) -> str:
        """``running``, ``starting``, ``stopped`` or ``failed``."""
        ...

    def observe_sends(self, observer: SendObserver) -> None:
        """Tell ``observer`` the channel and duration of every platform call from now on."""
        ...


@dataclass(frozen=True, kw_only=True)
class BotCaller:
    """A Bot Framework request whose bearer token was verified (``/api/messages``)."""

    #: The verified token's claims (``iss``, ``aud``, ``serviceurl``, ...).
    claims: dict[str, Any]
    #: The address the request came from, for the audit log (None when unknown).
    client_ip: str | None


class CardActionHandler(Protocol):
    """Answers an ``adaptiveCard/action`` invoke (a click on an approval card's button)."""

    async def __call__(self, activity: dict[str, Any], caller: BotCaller) -> dict[str, Any]:
        """The invoke response body: ``{"statusCode": 200, "type": ..., "value": ...}``."""
        ...


@dataclass
class ServerContext:
    """Built once per server; each route family takes what it needs from it."""

    app: App
    #: The worker in this process (None: ``serve --no-worker``; it runs elsewhere).
    worker: WorkerProbe | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Longest a route waits for the database before answering 503.
    database_timeout: float = DEFAULT_DATABASE_TIMEOUT_S
    #: Who answers approval-card clicks arriving at ``/api/messages`` (None: nobody yet).
    card_actions: CardActionHandler | None = None
    #: Which refused, unauthenticated requests are audited one by one (the rest are counted).
    refusals: RefusalBudget = field(default_factory=RefusalBudget)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list, repr=False)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` when the server shuts down (after the last request was answered)."""
        self._closers.append(closer)

    async def aclose(self) -> None:
        """Run the closers, newest first; one failing does not keep the others from running."""
        closers, self._closers = self._closers[::-1], []
        first: BaseException | None = None
        for closer in closers:
            try:
                await closer()
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first
