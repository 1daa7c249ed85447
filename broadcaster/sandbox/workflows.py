"""Power Automate Workflows webhook emulator (Teams ``workflow`` mode).

The trigger "When a Teams webhook request is received" has an opaque URL authorised by its
``sig`` query parameter (Shared Access Signature); ``TEAMS_MORBYLANGA_WORKFLOW_URL`` is such a URL
on the sandbox. It takes a message with Adaptive Card attachments and answers ``202 Accepted``
with an empty body; the card is then posted by the flow bot. The real trigger accepts any JSON
and the flow run fails later, out of sight; the sandbox refuses a payload that would make the run
fail (no card, invalid card) with 400 so that a test can see it.
"""

from __future__ import annotations

import hmac
import threading
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from .connector import ADAPTIVE_CARD
from .credentials import WORKFLOW_QUERY_SP, WORKFLOW_QUERY_SV
from .exchange import Context, Emulator, EmulatorError, Incoming, retry_after_headers
from .faults import Fault

__all__ = ["WorkflowPost", "WorkflowsEmulator"]

_TRIGGER = "/powerautomate/automations/direct/workflows/{workflow_id}/triggers/manual/paths/invoke"


class WorkflowError(EmulatorError):
    """A Logic Apps / Power Automate error answer."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        """Describe the error."""
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    def response(self) -> Response:
        """``{"error": {"code", "message"}}``."""
        body = {"error": {"code": self.code, "message": self.message}}
        return JSONResponse(body, self.status, headers=retry_after_headers(self.retry_after))


@dataclass(frozen=True)
class WorkflowPost:
    """A message accepted by a workflow trigger."""

    workflow_id: str
    payload: dict[str, Any]
    received: float

    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Cards of the message."""
        return [a["content"] for a in self.payload.get("attachments", [])]


class WorkflowsEmulator(Emulator):
    """The sandbox's one Teams workflow trigger (Mörbylånga staff channel)."""

    platform = "workflows"
    mount = "/workflows"

    def __init__(self, ctx: Context) -> None:
        """Create the emulator for the workflow in the sandbox credentials."""
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._posts: list[WorkflowPost] = []

    def posts(self) -> list[WorkflowPost]:
        """Messages accepted, oldest first."""
        with self._lock:
            return list(self._posts)

    def reset(self) -> None:
        """Forget accepted messages."""
        with self._lock:
            self._posts.clear()

    def routes(self) -> list[BaseRoute]:
        """The trigger URL."""
        return [self.route(_TRIGGER, self._trigger, ["POST"])]

    def targets(self, incoming: Incoming) -> list[str]:
        """The workflow id."""
        workflow = incoming.path_params.get("workflow_id")
        return [workflow] if workflow else []

    def fault_response(self, fault: Fault) -> Response:
        """Logic Apps error JSON."""
        code = str(fault.code) if fault.code is not None else "ServiceUnavailable"
        message = fault.message or f"The workflow service answered {fault.status}."
        return WorkflowError(fault.status, code, message, fault.retry_after).response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """404."""
        return WorkflowError(404, "NotFound", "The requested resource was not found.").response()

    async def _trigger(self, incoming: Incoming) -> Response:
        workflow = incoming.path_params["workflow_id"]
        self._authorise(incoming, workflow)
        payload = incoming.json
        if not isinstance(payload, dict):
            raise WorkflowError(
                400, "InvalidRequestContent", "The request content is not valid JSON."
            )
        self._check(payload)
        with self._lock:
            self._posts.append(WorkflowPost(workflow, payload, self.ctx.clock()))
        return Response(status_code=202)

    def _authorise(self, incoming: Incoming, workflow: str) -> None:
        if workflow != self.ctx.credentials.workflow_id:
            raise WorkflowError(
                404, "WorkflowNotFound", f"The workflow '{workflow}' could not be found."
            )
        query = {k: v[-1] for k, v in incoming.query.items()}
        signature = query.get("sig")
        if not signature:
            raise WorkflowError(
                401,
                "DirectApiAuthorizationRequired",
                "The request must be authenticated only by Shared Access scheme.",
            )
        expected = self.ctx.credentials.workflow_signature(workflow)
        valid = (
            hmac.compare_digest(signature, expected)
            and query.get("sp") == WORKFLOW_QUERY_SP
            and query.get("sv") == WORKFLOW_QUERY_SV
        )
        if not valid:
            raise WorkflowError(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided authorization signature is not valid.",
            )

    def _check(self, payload: dict[str, Any]) -> None:
        attachments = payload.get("attachments")
        if not isinstance(attachments, list) or not attachments:
            raise WorkflowError(
                400,
                "TriggerInputSchemaMismatch",
                "The message needs an 'attachments' list with an Adaptive Card.",
            )
        for index, attachment in enumerate(attachments):
            if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD:
                raise WorkflowError(
                    400,
                    "TriggerInputSchemaMismatch",
                    f"attachments/{index}: contentType must be {ADAPTIVE_CARD}.",
                )
            problems = self.ctx.specs.card_problems(attachment.get("content"))
            if problems:
                raise WorkflowError(
                    400,
                    "InvalidTemplate",
                    f"attachments/{index}: invalid Adaptive Card: {problems[0]}",
                )
