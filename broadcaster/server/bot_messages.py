"""``POST /api/messages``: the Teams bot's messaging endpoint (Bot Framework activities).

In order, a request is:

1. refused with 413 when its body is over the server's limit, 400 when the body is not a JSON
   object (an activity);
2. refused with 401 ``{"error": "unauthorized"}`` unless its bearer token passes every check of
   :mod:`.bot_auth` (or 503 when the keys to check it cannot be fetched now); the precise reason,
   the client's IP, what the token claims (issuer, audience) and the activity's
   ``from.aadObjectId`` go to the log and the audit log (``bot_request_refused``), and nothing
   else happens. Without ``[teams_bot]`` every request is refused this way;
3. answered: an ``invoke`` named ``adaptiveCard/action`` (a click on an approval card) by the
   server's :class:`~.context.CardActionHandler`, whose invoke response is the 200 body (an
   error invoke response while there is none); another invoke with 501, as Bot Framework bots
   do; a ``message`` whose ``value`` carries a ``verb`` (the ``Action.Submit`` fallback older
   clients run instead of ``Action.Execute``) by the same handler, with an empty 200; any other
   activity (``message``, ``conversationUpdate``, ``installationUpdate``, ...) with an empty 200.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from broadcaster.server.bot_auth import (
    SHOWN_CHARS,
    BotAuthenticator,
    BotAuthSettings,
    BotRefusal,
    shown,
)
from broadcaster.server.context import BotCaller, ServerContext
from broadcaster.server.http import error_response
from broadcaster.store.audit import record_event
from broadcaster.store.database import is_unavailable

__all__ = ["ENDPOINT", "INVOKE_CARD_ACTION", "NOT_CONFIGURED", "routes"]

log = logging.getLogger("broadcaster.server.bot")

ENDPOINT = "/api/messages"
INVOKE_CARD_ACTION = "adaptiveCard/action"
NOT_CONFIGURED = "[teams_bot] is not configured"
_HOW_TO_CONFIGURE = (
    "add [teams_bot] (app_id, app_password, tenant_id of the bot's app registration) to "
    "broadcaster.toml to answer Teams"
)
#: The invoke response while nothing answers card clicks (the clicker sees an error, not a hang).
_NO_HANDLER = {
    "statusCode": 503,
    "type": "application/vnd.microsoft.error",
    "value": {
        "code": "ServiceUnavailable",
        "message": "Approvals from Teams are not available on this server yet; use the "
        "command line (broadcaster approve).",
    },
}


def routes(context: ServerContext) -> list[BaseRoute]:
    """The Bot Framework messaging route of this server."""
    endpoint = _BotMessages(context)
    context.on_close(endpoint.aclose)
    return [Route(ENDPOINT, endpoint.handle, methods=["POST"])]


class _BotMessages:
    def __init__(self, context: ServerContext) -> None:
        self.context = context
        app = context.app
        settings = BotAuthSettings.from_workspace(app.config, app.workspace.env)
        self.auth: BotAuthenticator | None = None
        if settings is None:
            # Not a problem for a workspace without Teams, so not a warning; a request is one.
            log.info("%s is off: every request is refused; %s", ENDPOINT, _HOW_TO_CONFIGURE)
        else:
            self.auth = BotAuthenticator(settings, clock=lambda: app.clock().timestamp())

    async def aclose(self) -> None:
        if self.auth is not None:
            await self.auth.aclose()

    async def handle(self, request: Request) -> Response:
        activity = _activity(await request.body())
        if activity is None:
            return error_response(400, "the body must be a JSON object (a Bot Framework activity)")
        client_ip = request.client.host if request.client else None
        if self.auth is None:
            log.warning("refused a request to %s: %s", ENDPOINT, _HOW_TO_CONFIGURE)
            return await self._refuse(BotRefusal(NOT_CONFIGURED), activity, client_ip)
        try:
            caller = await self.auth.verify(
                request.headers.get("authorization"), activity, client_ip=client_ip
            )
        except BotRefusal as refusal:
            return await self._refuse(refusal, activity, client_ip)
        return await self._answer(activity, caller)

    async def _answer(self, activity: dict[str, Any], caller: BotCaller) -> Response:
        kind, name = activity.get("type"), activity.get("name")
        submitted = _submitted_click(activity)
        if submitted is not None:
            return await self._submitted(submitted, caller)
        if kind != "invoke":
            log.debug("a %s activity needs no answer", shown(kind))
            return Response(status_code=200)
        if name != INVOKE_CARD_ACTION:
            log.debug("an invoke %s is not handled", shown(name))
            return error_response(501, "this invoke is not handled")
        handler = self.context.card_actions
        if handler is None:
            log.warning("a card action arrived but this server has no handler for card actions")
            return JSONResponse(_NO_HANDLER)
        return JSONResponse(await handler(activity, caller))

    async def _submitted(self, activity: dict[str, Any], caller: BotCaller) -> Response:
        """A click from a client without Universal Actions: decided alike, answered with 200.

        A message activity has no answer the client shows, so the clicker sees the outcome when
        the posted card is updated (a decision queues that); a refusal is in the audit log.
        """
        handler = self.context.card_actions
        if handler is None:
            log.warning("a card button was clicked but this server has no handler for it")
            return Response(status_code=200)
        answer = await handler(activity, caller)
        if answer.get("statusCode") != 200:
            log.info("a click from an older Teams client was refused: %s", answer.get("value"))
        return Response(status_code=200)

    async def _refuse(
        self, refusal: BotRefusal, activity: dict[str, Any], client_ip: str | None
    ) -> Response:
        refused = error_response(401, "unauthorized", {"WWW-Authenticate": "Bearer"})
        if refusal.status == 503:
            refused = error_response(
                503, "cannot verify the request now; try again", {"Retry-After": "5"}
            )
        app = self.context.app
        if not self.context.refusals.admit(ENDPOINT, client_ip, app.clock()):
            return refused  # counted; summarised once a minute (server/refusals.py)
        details: dict[str, Any] = {
            "endpoint": ENDPOINT,
            "reason": refusal.reason,
            "client_ip": client_ip,
            **refusal.claimed,
        }
        sender = activity.get("from")
        object_id = sender.get("aadObjectId") if isinstance(sender, dict) else None
        if isinstance(object_id, str):
            details["aad_object_id"] = object_id[:SHOWN_CHARS]
        log.warning(
            "refused a Bot Framework request from %s: %s",
            client_ip,
            refusal.reason,
            extra={"client_ip": client_ip},
        )
        try:
            await asyncio.to_thread(self._audit, details)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("could not audit the refusal: the database is unavailable")
        return refused

    def _audit(self, details: dict[str, Any]) -> None:
        app = self.context.app
        with app.store.write() as conn:
            record_event(
                conn, actor="teams", action="bot_request_refused", now=app.clock(), **details
            )


def _submitted_click(activity: dict[str, Any]) -> dict[str, Any] | None:
    """An ``Action.Submit`` click in the form of an ``adaptiveCard/action`` invoke, or None.

    Teams clients without Universal Actions run the ``Action.Submit`` fallback of our buttons:
    the click arrives as a ``message`` activity whose ``value`` is the button's data (with its
    ``verb``) merged with the card's inputs. The same click, then, as the invoke would carry it.
    """
    value = activity.get("value")
    if activity.get("type") != "message" or not isinstance(value, dict):
        return None
    verb = value.get("verb")
    if not isinstance(verb, str):
        return None
    data = {key: item for key, item in value.items() if key != "verb"}
    action = {"type": "Action.Submit", "verb": verb, "data": data}
    return {**activity, "type": "invoke", "name": INVOKE_CARD_ACTION, "value": {"action": action}}


def _activity(body: bytes) -> dict[str, Any] | None:
    """The activity in ``body``, or None when it is not a JSON object."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    return document if isinstance(document, dict) else None
