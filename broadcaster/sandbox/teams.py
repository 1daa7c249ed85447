"""Act as Teams: send the bot what Teams sends when someone clicks a button on its card.

A click on an ``Action.Execute`` button reaches the bot's messaging endpoint as an ``invoke``
activity named ``adaptiveCard/action`` whose ``value.action`` holds the button's ``verb`` and
``data``, from the clicking user (``from.aadObjectId`` is their Entra object id), with
``serviceUrl`` pointing at the Bot Connector. It carries ``Authorization: Bearer`` with a JWT
signed by Bot Framework: ``iss=https://api.botframework.com``, ``aud=<bot app id>`` and the
``serviceurl`` claim equal to the activity's ``serviceUrl``; here the signing key is the one the
sandbox publishes at ``BROADCASTER_TEAMS_OPENID_URL``'s ``jwks_uri``. Only loopback bots are called.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from .connector import ConnectorEmulator
from .credentials import TEAMS_CHANNEL_IDS
from .exchange import Context
from .keys import SigningKey
from .microsoft import BOT_FRAMEWORK_ISSUER
from .records import Record
from .twilio_delivery import LOOPBACK_HOSTS

__all__ = ["TeamsActor", "find_execute_action"]

_TOKEN_LIFETIME_S = 3600


def find_execute_action(node: Any, verb: str) -> dict[str, Any] | None:
    """The first ``Action.Execute`` with ``verb`` anywhere in a card (actions, action sets, ...)."""
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute" and node.get("verb") == verb:
            return node
        children: list[Any] = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = find_execute_action(child, verb)
        if found is not None:
            return found
    return None


_CLIENT_INFO = {
    "locale": "sv-SE",
    "country": "SE",
    "platform": "Web",
    "timezone": "Europe/Stockholm",
    "type": "clientInfo",
}


def _user(object_id: str, name: str) -> dict[str, str]:
    """A Teams user account: ``29:`` id, display name, Entra object id."""
    return {
        "id": f"29:1{uuid.uuid5(uuid.NAMESPACE_OID, object_id).hex}",
        "name": name,
        "aadObjectId": object_id,
    }


def _check_loopback(url: str) -> None:
    if urlsplit(url).hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"the sandbox only calls loopback addresses, not {url}")


class TeamsActor:
    """Sends signed activities to a bot as the Teams channel would."""

    def __init__(
        self,
        ctx: Context,
        key: SigningKey,
        connector: ConnectorEmulator,
        service_url: Callable[[], str],
    ) -> None:
        """Create the actor; ``service_url`` gives the Bot Connector root put in activities."""
        self._ctx = ctx
        self._key = key
        self._connector = connector
        self._service_url = service_url

    def token(self, service_url: str | None = None, *, audience: str | None = None) -> str:
        """A Bot Framework channel token for the sandbox's bot (or ``audience``)."""
        now = int(self._ctx.clock())
        claims = {
            "serviceurl": service_url or self._service_url(),
            "nbf": now,
            "exp": now + _TOKEN_LIFETIME_S,
            "iss": BOT_FRAMEWORK_ISSUER,
            "aud": audience or self._ctx.credentials.teams_app_id,
        }
        return self._key.sign(claims)

    def invoke(
        self,
        *,
        verb: str,
        user_object_id: str,
        activity_id: str | None = None,
        data: dict[str, Any] | None = None,
        conversation_id: str | None = None,
        user_name: str = "Sandbox User",
    ) -> dict[str, Any]:
        """The ``adaptiveCard/action`` invoke activity for a click.

        Args:
            verb: The ``Action.Execute`` verb clicked.
            user_object_id: The clicking user's Entra object id.
            activity_id: A card the bot posted through the connector emulator; the button must
                be on it, and its ``data`` is sent (updated with ``data``).
            data: The action data (inputs) when no ``activity_id`` is given, else additions.
            conversation_id: Conversation of the card when no ``activity_id`` is given
                (default: the reference approvers' channel).
            user_name: Display name of the user.

        Raises:
            LookupError: ``activity_id`` is unknown, has no card, or no button with ``verb``.
        """
        action_data, conversation, channel = self._source(activity_id, verb, conversation_id)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        tenant = self._ctx.credentials.teams_tenant_id
        action = {"type": "Action.Execute", "verb": verb, "data": {**action_data, **(data or {})}}
        activity: dict[str, Any] = {
            "name": "adaptiveCard/action",
            "type": "invoke",
            "timestamp": now,
            "localTimestamp": now,
            "id": f"f:{uuid.uuid4()}",
            "channelId": "msteams",
            "serviceUrl": self._service_url(),
            "from": _user(user_object_id, user_name),
            "conversation": {"isGroup": True, "conversationType": "channel",
                             "tenantId": tenant, "id": conversation},
            "recipient": {"id": f"28:{self._ctx.credentials.teams_app_id}", "name": "Broadcaster"},
            "entities": [_CLIENT_INFO],
            "channelData": {"channel": {"id": channel}, "tenant": {"id": tenant},
                            "source": {"name": "message"}},
            "value": {"action": action, "trigger": "manual"},
            "locale": "sv-SE",
            "localTimezone": "Europe/Stockholm",
        }  # fmt: skip
        if activity_id is not None:
            activity["replyToId"] = activity_id
            activity["channelData"]["legacy"] = {"replyToId": activity_id}
        return activity

    def _source(
        self, activity_id: str | None, verb: str, conversation_id: str | None
    ) -> tuple[dict[str, Any], str, str]:
        if activity_id is None:
            conversation = conversation_id or TEAMS_CHANNEL_IDS[0]
            return {}, conversation, conversation.split(";")[0]
        stored = self._connector.activity(activity_id)
        if stored is None or stored.deleted:
            raise LookupError(f"no posted activity {activity_id}")
        action = find_execute_action(stored.card(), verb)
        if action is None:
            raise LookupError(f"activity {activity_id} has no Action.Execute with verb {verb!r}")
        data = action.get("data")
        return (data if isinstance(data, dict) else {}), stored.conversation_id, stored.channel_id

    def _record(self, url: str, activity: dict[str, Any], headers: dict[str, str]) -> Record:
        return self._ctx.records.add(
            platform="teams",
            direction="out",
            method="POST",
            url=url,
            path=urlsplit(url).path,
            headers={k.lower(): v for k, v in headers.items()},
            json=activity,
            target=activity.get("replyToId") or activity["conversation"]["id"],
        )

    def _headers(self, activity: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(activity['serviceUrl'])}"}

    def send(
        self, bot_url: str, activity: dict[str, Any], *, timeout_s: float = 10.0
    ) -> httpx.Response:
        """POST ``activity`` to the bot's messaging endpoint, signed as Teams; return the answer."""
        _check_loopback(bot_url)
        headers = self._headers(activity)
        record = self._record(bot_url, activity, headers)
        with httpx.Client(timeout=timeout_s) as client:
            answer = client.post(bot_url, json=activity, headers=headers)
        self._ctx.records.finish(record, status=answer.status_code, response=answer.text)
        return answer

    async def send_async(
        self, bot_url: str, activity: dict[str, Any], *, timeout_s: float = 10.0
    ) -> httpx.Response:
        """:meth:`send` for code running in an event loop."""
        _check_loopback(bot_url)
        headers = self._headers(activity)
        record = self._record(bot_url, activity, headers)
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            answer = await client.post(bot_url, json=activity, headers=headers)
        self._ctx.records.finish(record, status=answer.status_code, response=answer.text)
        return answer

    def click(self, bot_url: str, *, timeout_s: float = 10.0, **invoke: Any) -> httpx.Response:
        """Click a card button: :meth:`invoke` (same keyword arguments) sent with :meth:`send`.

        Returns:
            The bot's HTTP answer (for ``adaptiveCard/action``: 200 with the invoke response).
        """
        return self.send(bot_url, self.invoke(**invoke), timeout_s=timeout_s)

    async def click_async(
        self, bot_url: str, *, timeout_s: float = 10.0, **invoke: Any
    ) -> httpx.Response:
        """:meth:`click` for code running in an event loop."""
        return await self.send_async(bot_url, self.invoke(**invoke), timeout_s=timeout_s)
