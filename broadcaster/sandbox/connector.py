"""Bot Connector (Teams channel) emulator: create a thread, post, reply, update, delete.

Mounted at ``/connector``; ``BROADCASTER_TEAMS_SERVICE_URL=http://127.0.0.1:PORT/connector/emea/``
plays the part of ``https://smba.trafficmanager.net/emea/``. Every request needs
``Authorization: Bearer`` with an access token from the login emulator (checked like the real
service: RS256 signature against the login keys, audience ``https://api.botframework.com``, the
tenant's issuer, the app id, expiry with five minutes' leeway); otherwise 401. Activities are
checked against the ``Activity`` definition of the Connector swagger, and Adaptive Card
attachments against the Adaptive Card schema of their version (Teams renders up to 1.5; the
top-level ``msteams`` key is allowed). The bot is installed in the reference configuration's
channels; others answer 403 ``BotNotInConversationRoster``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from .credentials import TEAMS_CHANNEL_IDS
from .exchange import Context, Emulator, EmulatorError, Incoming, retry_after_headers
from .faults import Fault
from .keys import SigningKey
from .microsoft import BOT_CONNECTOR_AUDIENCE

__all__ = ["ADAPTIVE_CARD", "ConnectorEmulator", "ConnectorError", "StoredActivity"]

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_MAX_MESSAGE_BYTES = 28 * 1024
_CODES = {400: "BadArgument", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
          412: "PreconditionFailed", 429: "Throttled", 500: "ServiceError", 502: "BadGateway",
          503: "ServiceUnavailable", 504: "GatewayTimeout"}  # fmt: skip
_BASE = "/{region}/v3/conversations"


class ConnectorError(EmulatorError):
    """A Bot Connector error answer (``ErrorResponse``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Describe the error."""
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def response(self) -> Response:
        """``{"error": {"code", "message"}}``; a refused token gets the service's plain 401."""
        if self.status == 401:
            body: dict[str, Any] = {"message": "Authorization has been denied for this request."}
        else:
            body = {"error": {"code": self.code, "message": self.message}}
        return JSONResponse(body, self.status, headers=self.headers)


@dataclass
class StoredActivity:
    """An activity posted by the bot."""

    id: str
    channel_id: str
    conversation_id: str
    activity: dict[str, Any]
    created: float
    updated: float
    reply_to: str | None = None
    deleted: bool = False

    def card(self) -> dict[str, Any] | None:
        """The first Adaptive Card attached, if any."""
        for attachment in self.activity.get("attachments") or []:
            if isinstance(attachment, dict) and attachment.get("contentType") == ADAPTIVE_CARD:
                content = attachment.get("content")
                return content if isinstance(content, dict) else None
        return None


class ConnectorEmulator(Emulator):
    """Conversations API v3 for channel threads of the sandbox's tenant."""

    platform = "connector"
    mount = "/connector"

    def __init__(self, ctx: Context, login_key: SigningKey) -> None:
        """Create the emulator; ``login_key`` is the key whose tokens it accepts."""
        super().__init__(ctx)
        self._login_key = login_key
        self._lock = threading.Lock()
        self._activities: dict[str, StoredActivity] = {}
        self._last_id = 0
        self.channels: set[str] = set(TEAMS_CHANNEL_IDS)
        self.blocked: set[str] = set()

    # Python API -------------------------------------------------------------------------------

    def activities(
        self, channel_id: str | None = None, *, include_deleted: bool = False
    ) -> list[StoredActivity]:
        """Activities posted, oldest first, in one channel or all."""
        with self._lock:
            return [
                a
                for a in self._activities.values()
                if (channel_id is None or a.channel_id == channel_id)
                and (include_deleted or not a.deleted)
            ]

    def activity(self, activity_id: str) -> StoredActivity | None:
        """One posted activity by id."""
        with self._lock:
            return self._activities.get(activity_id)

    def block(self, channel_id: str) -> None:
        """Block the bot in a channel: writes answer 403 ``MessageWritesBlocked``."""
        self.blocked.add(channel_id)

    def reset(self) -> None:
        """Forget activities and blocks."""
        with self._lock:
            self._activities.clear()
            self.blocked.clear()
            self.channels = set(TEAMS_CHANNEL_IDS)

    # Emulator ---------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Conversations, activities, and one activity."""
        return [
            self.route(_BASE, self._create_conversation, ["POST"]),
            self.route(_BASE + "/{conversation_id}/activities", self._post, ["POST"]),
            self.route(
                _BASE + "/{conversation_id}/activities/{activity_id}",
                self._activity,
                ["POST", "PUT", "DELETE"],
            ),
        ]

    def targets(self, incoming: Incoming) -> list[str]:
        """The channel id, then the full conversation id and the activity id."""
        conversation = incoming.path_params.get("conversation_id")
        if conversation is None:
            data = incoming.json if isinstance(incoming.json, dict) else {}
            channel = ((data.get("channelData") or {}).get("channel") or {}).get("id")
            return [channel] if isinstance(channel, str) else []
        names = [conversation.split(";")[0], conversation]
        if "activity_id" in incoming.path_params:
            names.append(incoming.path_params["activity_id"])
        return names

    def fault_response(self, fault: Fault) -> Response:
        """``ErrorResponse`` JSON with ``Retry-After`` when given."""
        code = str(fault.code) if fault.code is not None else _CODES.get(fault.status, "Error")
        message = fault.message or f"The service answered {fault.status}."
        headers = retry_after_headers(fault.retry_after)
        error = ConnectorError(fault.status, code, message, headers)
        if fault.status == 401:
            return JSONResponse({"message": message}, 401, headers=headers)
        return error.response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """404 ``NotFound``."""
        return ConnectorError(404, "NotFound", f"No route for {incoming.path}").response()

    # Handlers ---------------------------------------------------------------------------------

    async def _create_conversation(self, incoming: Incoming) -> Response:
        self._authorise(incoming)
        params = self._json(incoming, "ConversationParameters")
        data = params.get("channelData") or {}
        channel = (data.get("channel") or {}).get("id")
        if not params.get("isGroup") or not isinstance(channel, str):
            raise ConnectorError(
                400,
                "BadArgument",
                "A channel conversation needs isGroup: true and channelData.channel.id.",
            )
        tenant = params.get("tenantId") or (data.get("tenant") or {}).get("id")
        if tenant is not None and tenant != self.ctx.credentials.teams_tenant_id:
            raise ConnectorError(403, "Forbidden", "The tenant does not match the bot's tenant.")
        activity = params.get("activity")
        if not isinstance(activity, dict):
            raise ConnectorError(400, "BadArgument", "Activity is required to start a thread.")
        self._conversation(channel)
        stored = self._store(channel, activity, root=None)
        body = {"id": stored.conversation_id, "activityId": stored.id}
        return JSONResponse(body, 201)

    async def _post(self, incoming: Incoming) -> Response:
        self._authorise(incoming)
        activity = self._json(incoming, "Activity")
        channel, root = self._conversation(incoming.path_params["conversation_id"])
        stored = self._store(channel, activity, root=root)
        return JSONResponse({"id": stored.id}, 201)

    async def _activity(self, incoming: Incoming) -> Response:
        self._authorise(incoming)
        channel, _ = self._conversation(incoming.path_params["conversation_id"])
        target = self.activity(incoming.path_params["activity_id"])
        if target is None or target.deleted or target.channel_id != channel:
            raise ConnectorError(404, "ActivityNotFound", "Unknown activity.")
        if incoming.method == "DELETE":
            with self._lock:
                target.deleted = True
            return Response(status_code=200)
        activity = self._json(incoming, "Activity")
        if incoming.method == "POST":
            stored = self._store(channel, activity, root=target.reply_to or target.id)
            return JSONResponse({"id": stored.id}, 201)
        self._check_message(activity)
        with self._lock:
            target.activity, target.updated = activity, self.ctx.clock()
        return JSONResponse({"id": target.id})

    # Helpers ----------------------------------------------------------------------------------

    def _authorise(self, incoming: Incoming) -> None:
        scheme, _, token = incoming.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ConnectorError(401, "Unauthorized", "missing bearer token")
        c = self.ctx.credentials
        issuers = [
            f"https://sts.windows.net/{c.teams_tenant_id}/",
            f"https://login.microsoftonline.com/{c.teams_tenant_id}/v2.0",
        ]
        try:
            claims = self._login_key.verify(
                token,
                audience=BOT_CONNECTOR_AUDIENCE,
                issuer=issuers,
                leeway=300,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise ConnectorError(401, "Unauthorized", str(error)) from None
        app = claims.get("appid") or claims.get("azp")
        if app != c.teams_app_id or claims.get("tid") != c.teams_tenant_id:
            raise ConnectorError(401, "Unauthorized", "token is for another app or tenant")

    def _json(self, incoming: Incoming, definition: str) -> dict[str, Any]:
        if len(incoming.body) > _MAX_MESSAGE_BYTES:
            raise ConnectorError(413, "MessageSizeTooBig", "Message size too large.")
        if not isinstance(incoming.json, dict):
            raise ConnectorError(400, "BadSyntax", "The request body is not a JSON object.")
        problems = self.ctx.specs.connector_problems(definition, incoming.json)
        if problems:
            raise ConnectorError(400, "BadArgument", problems[0])
        return incoming.json

    def _conversation(self, conversation_id: str) -> tuple[str, str | None]:
        channel, _, thread = conversation_id.partition(";")
        if channel not in self.channels:
            raise ConnectorError(
                403, "BotNotInConversationRoster", "The bot is not part of the conversation roster."
            )
        if channel in self.blocked:
            raise ConnectorError(
                403, "MessageWritesBlocked", "Thread is blocked for message writes."
            )
        if not thread:
            return channel, None
        root = thread.removeprefix("messageid=")
        found = self.activity(root)
        if found is None or found.channel_id != channel or found.reply_to is not None:
            raise ConnectorError(404, "ConversationNotFound", "Conversation not found.")
        return channel, root

    def _check_message(self, activity: dict[str, Any]) -> None:
        if activity.get("type") != "message":
            raise ConnectorError(400, "BadArgument", "Activity type must be 'message'.")
        attachments = activity.get("attachments") or []
        if not activity.get("text") and not attachments:
            raise ConnectorError(400, "BadArgument", "The activity has no text and no attachments.")
        for index, attachment in enumerate(attachments):
            if attachment.get("contentType") == ADAPTIVE_CARD:
                problems = self.ctx.specs.card_problems(attachment.get("content"))
                if problems:
                    raise ConnectorError(
                        400,
                        "BadArgument",
                        f"attachments/{index}: invalid Adaptive Card: {problems[0]}",
                    )

    def _store(self, channel: str, activity: dict[str, Any], root: str | None) -> StoredActivity:
        """Keep a new activity: a thread's first message (``root`` None) or a reply in it."""
        self._check_message(activity)
        now = self.ctx.clock()
        with self._lock:
            self._last_id = max(self._last_id + 1, int(now * 1000))
            activity_id = str(self._last_id)
            thread = f"{channel};messageid={root or activity_id}"
            stored = StoredActivity(
                activity_id, channel, thread, json.loads(json.dumps(activity)), now, now, root
            )
            self._activities[activity_id] = stored
        return stored
