"""Teams ``workflow`` mode: the update's card POSTed to a Power Automate Workflows webhook.

The replacement for the retired Office 365 connectors (PLATFORMS §5): the flow "When a Teams
webhook request is received" posts the card in its channel. It is one-way: nothing comes back to
edit or delete, so a correction is a new card, and nothing can be asked afterwards, so a lost
answer goes to a person rather than risking a second card (``can_verify`` and
``blind_resend_ok`` False).

The webhook URL is authorised by the ``sig`` in its query: whoever has it can post in the channel.
It is a secret (``webhook_url = "env:NAME"``) and appears in no error, log line or receipt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from broadcaster.channels.base import ChannelContext, Receipt, Rendered
from broadcaster.channels.teams_card import TeamsCardChannel, card_attachment
from broadcaster.channels.teams_http import LoopClient, network_error, retry_after
from broadcaster.config import TargetConfig, TeamsWorkflowTarget
from broadcaster.errors import (
    AuthError,
    InputError,
    PermanentError,
    RateLimited,
    TransientError,
    UnknownOutcome,
)
from broadcaster.rendering.message import Message

if TYPE_CHECKING:
    import httpx

__all__ = ["TeamsWorkflowChannel"]

#: Logic Apps / Power Automate error codes that need a person, with the fix.
_WORKFLOW_FIXES: dict[str, str] = {
    "DirectApiAuthorizationRequired": "the webhook URL has lost its signature (sig=): copy the "
    "whole URL from the flow's trigger into {env}",
    "DirectApiInvalidAuthorizationSignature": "the webhook URL's signature was refused (the "
    "flow was re-created or its key rolled): copy the new URL from the flow's trigger",
    "WorkflowNotFound": "the flow does not exist any more (deleted, or its owner left): create "
    "it again and copy its URL",
    "WorkflowTriggerIsNotEnabled": "the flow is turned off: turn it on in Power Automate",
    "TriggerInputSchemaMismatch": "the flow refused the message: {detail}",
    "InvalidTemplate": "the flow refused the card: {detail}",
}


class TeamsWorkflowChannel(TeamsCardChannel):
    """Posts the update's card through a Teams Workflows webhook (one-way)."""

    mode: ClassVar[str | None] = "workflow"
    can_update = False
    can_delete = False
    call_timeout_seconds = 30.0

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, TeamsWorkflowTarget):
            raise InputError(
                f"target {target.id}: the Teams workflow adapter serves mode 'workflow' only"
            )
        self.workflow_target = target
        self._http = LoopClient(context.http_transport, self.call_timeout_seconds)

    def where_posted(self) -> str:
        """The Teams channel the workflow posts in (its id is not known here)."""
        return f"the Teams channel that the workflow of target {self.target.id} posts to"

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """POST the card to the flow; it answers 202 and posts it in the channel itself."""
        import httpx

        if rendered.card is None:
            raise PermanentError(self.name, "nothing to post: the card was not rendered")
        payload = {"type": "message", "attachments": [card_attachment(rendered.card)]}
        client = await self._http.get()
        url = self.workflow_target.webhook_url.get_secret_value()
        try:
            answer = await client.post(url, json=payload)
        except httpx.HTTPError as exc:
            # str(exc) may carry the URL; only the kind of failure is told.
            raise network_error(
                self.name, exc, "posting the card to the workflow", repeatable=False
            ) from None
        if answer.is_success:
            # The flow gives no id for what it posts; the delivery key names it instead.
            return Receipt(f"workflow:{message.idempotency_key}")
        raise self._error(answer)

    async def check_online(self) -> list[str]:
        """Nothing to ask: the webhook has no read-only request, and a POST would post a card.

        ``check`` already made sure the URL is set; whether the flow is on shows on first use.
        """
        return []

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    def _error(self, answer: httpx.Response) -> Exception:
        status = answer.status_code
        code, detail = _workflow_error(answer)
        fix = _WORKFLOW_FIXES.get(code)
        if status in (401, 403) or (fix is not None and status < 500 and status != 429):
            reason = fix or "the webhook refused the request: copy the URL from the flow again"
            reason = reason.format(env="the variable named by webhook_url", detail=detail)
            error_type = AuthError if status in (401, 403, 404) else PermanentError
            return error_type(
                self.name, f"Teams workflow of target {self.target.id}: {reason} ({status} {code})"
            )
        if status == 429:
            return RateLimited(
                self.name, "the workflow service asked to slow down", retry_after(answer)
            )
        if status == 503:
            return TransientError(
                self.name, "the workflow service is unavailable (503)", retry_after(answer)
            )
        if status >= 500 or status == 408:
            # The body was sent: a gateway error or a timeout may hide an accepted run.
            return UnknownOutcome(
                self.name, f"the workflow service answered {status}; the card may have been posted"
            )
        return PermanentError(
            self.name, f"the workflow refused the card ({status} {code or 'no code'}): {detail}"
        )


def _workflow_error(answer: httpx.Response) -> tuple[str, str]:
    """Code and message of a Logic Apps error (``{"error": {"code", "message"}}``)."""
    try:
        data = answer.json()
    except ValueError:
        return "", answer.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:300]
    return "", answer.reason_phrase
