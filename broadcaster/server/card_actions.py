"""The approval-card clicks ``/api/messages`` hands on (the :class:`CardActionHandler`)."""

from __future__ import annotations

from typing import Any

from broadcaster.app import App
from broadcaster.approval_teams import TeamsApprovals
from broadcaster.server.context import BotCaller

__all__ = ["ApprovalCardActions"]


class ApprovalCardActions:
    """Decides from approval cards: the verified caller's click, answered with a card."""

    def __init__(self, app: App) -> None:
        self._approvals = TeamsApprovals(app)

    async def __call__(self, activity: dict[str, Any], caller: BotCaller) -> dict[str, Any]:
        """The invoke response body for a click whose token was verified."""
        return await self._approvals.act(activity, caller.client_ip)
