"""The approval-card clicks ``/api/messages`` hands on (the :class:`CardActionHandler`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from broadcaster.app import App
from broadcaster.approval_teams import TeamsApprovals
from broadcaster.server.context import BotCaller

__all__ = ["ApprovalCardActions", "Wakeable"]


@runtime_checkable
class Wakeable(Protocol):
    """A worker in this process that can be told to look for due jobs now."""

    def wake(self) -> None:
        """Look for due jobs now."""
        ...


class ApprovalCardActions:
    """Decides from approval cards: the verified caller's click, answered with a card."""

    def __init__(self, app: App, wake: Callable[[], None] | None = None) -> None:
        self._approvals = TeamsApprovals(app)
        self._wake = wake

    async def __call__(self, activity: dict[str, Any], caller: BotCaller) -> dict[str, Any]:
        """The invoke response body for a click whose token was verified."""
        answer = await self._approvals.act(activity, caller.client_ip)
        if self._wake is not None:
            # A decision queues the card's update and maybe the fan-out: the worker beside
            # this server starts on them now, not at its next poll.
            self._wake()
        return answer
