"""Teams ``bot`` mode: our bot posts the update's Adaptive Card as a new thread in a channel.

The bot authenticates with msal (client credentials, single tenant, scope
``https://api.botframework.com/.default``) and talks to the Bot Connector REST API v3 directly over
httpx (PLATFORMS §4 and §5): ``POST /v3/conversations`` starts the thread, ``PUT`` and ``DELETE`` of
its activity edit and retract it. The receipt keeps the service URL, the conversation id and the
activity id, all that editing needs.

One msal application per adapter, and the worker keeps one adapter per target: msal's token cache
lives in that object, so a token is fetched once and reused until it is close to expiry. msal is
blocking (``requests``), so every call to it runs in a thread.

The Bot Connector cannot list a channel's messages (reading them takes Microsoft Graph and other
permissions), so a post whose answer was lost cannot be verified, and a second card in a staff
channel is worse than a person checking: ``can_verify`` and ``blind_resend_ok`` are both False.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from broadcaster.channels._rewrite import LOGIN_URL, RewritingSession, msal_http_client
from broadcaster.channels.base import ChannelContext, Receipt, Rendered
from broadcaster.channels.teams_card import TeamsCardChannel, card_activity
from broadcaster.channels.teams_http import LoopClient, network_error, retry_after
from broadcaster.config import TargetConfig, TeamsBotSettings, TeamsBotTarget
from broadcaster.errors import (
    AuthError,
    ChannelError,
    InputError,
    PermanentError,
    RateLimited,
    TransientError,
    UnknownOutcome,
)
from broadcaster.platform_urls import TEAMS_LOGIN_URL_VAR
from broadcaster.rendering.message import Message

if TYPE_CHECKING:
    import httpx
    import msal

__all__ = ["SCOPE", "TeamsBotChannel"]

SCOPE = "https://api.botframework.com/.default"
SERVICE_URL_VAR = "BROADCASTER_TEAMS_SERVICE_URL"

#: Entra ID answers to a token request (AADSTS numbers) that a person must fix, with the fix.
_ENTRA_FIXES: dict[int, str] = {
    7000215: "its client secret was refused: create a new secret for the app registration in "
    "Entra ID and set it as [teams_bot] app_password",
    7000222: "its client secret has expired: create a new secret for the app registration in "
    "Entra ID and set it as [teams_bot] app_password",
    7000218: "no client secret was sent: set [teams_bot] app_password",
    700016: "the app id is not registered in the tenant: check [teams_bot] app_id and tenant_id",
    90002: "the tenant does not exist: check [teams_bot] tenant_id",
    900023: "the tenant id is malformed: check [teams_bot] tenant_id",
    7000112: "the app registration is disabled: enable it in Entra ID",
}
#: OAuth ``error`` values worth another try later; any other error needs a person.
_ENTRA_TRANSIENT = frozenset({"temporarily_unavailable", "server_error"})

#: Bot Connector error codes (``{"error": {"code"}}``) that need a person, with the fix.
_CONNECTOR_FIXES: dict[str, str] = {
    "MessageWritesBlocked": "the bot is blocked in channel {channel}: ask the team's owner to "
    "unblock it or install the app in the team again",
    "BotNotInConversationRoster": "the bot is not installed in the team of channel {channel}: "
    "add the app to that team",
    "ConversationNotFound": "channel {channel} does not exist: check channel_id of target {target}",
    "MessageSizeTooBig": "the card is too large for Teams: shorten the update",
}


class TeamsBotChannel(TeamsCardChannel):
    """Posts, edits and deletes the update's card in a Teams channel as our bot."""

    mode: ClassVar[str | None] = "bot"
    can_update = True
    can_delete = True
    # A send is at most two token requests and two connector requests (a refused token is
    # renewed once); each gets a quarter of the call's time, so a slow first request cannot
    # turn the second into an unknown outcome.
    call_timeout_seconds = 60.0

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, TeamsBotTarget):
            raise InputError(f"target {target.id}: the Teams bot adapter serves mode 'bot' only")
        if target.bot is None:
            raise InputError(f"target {target.id}: mode 'bot' needs a [teams_bot] section")
        self.bot_target = target
        self.settings: TeamsBotSettings = target.bot
        self.service_url = _with_slash(
            context.endpoints.get(SERVICE_URL_VAR) or self.settings.service_url
        )
        self._login_url = context.endpoints.get(TEAMS_LOGIN_URL_VAR)
        self._msal: msal.ConfidentialClientApplication | None = None
        self._session: RewritingSession | None = None
        self._msal_lock = threading.Lock()
        self._http = LoopClient(context.http_transport, self.call_timeout_seconds / 4)

    # What a person sees ---------------------------------------------------------------------

    @property
    def bot_label(self) -> str:
        """The bot as an administrator knows it: the start of its app id (never the secret)."""
        return f"Teams bot {self.settings.app_id.get_secret_value()[:8]}…"

    def where_posted(self) -> str:
        """The Teams channel the bot posts in."""
        return f"the Teams channel {self.bot_target.channel_id} (target {self.target.id})"

    # Posting --------------------------------------------------------------------------------

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """Start a new thread in the channel with the card."""
        return await self.start_thread(
            self.bot_target.channel_id, self._activity(message, rendered)
        )

    async def update(self, receipt: Receipt, message: Message, rendered: Rendered) -> Receipt:
        """Replace the posted card with this revision's (a PUT of the whole activity)."""
        await self.replace(receipt, self._activity(message, rendered))
        return receipt

    # The Bot Connector, for callers with their own activities (the approval cards) -----------

    async def start_thread(self, channel_id: str, activity: dict[str, Any]) -> Receipt:
        """Post ``activity`` as a new thread in channel ``channel_id``; its receipt."""
        tenant = self.settings.tenant_id.get_secret_value()
        body = {
            "isGroup": True,
            "bot": {"id": f"28:{self.settings.app_id.get_secret_value()}"},
            "tenantId": tenant,
            "channelData": {"channel": {"id": channel_id}, "tenant": {"id": tenant}},
            "activity": activity,
        }
        answer = await self._call(
            "POST", "v3/conversations", body, what="posting the card", repeatable=False
        )
        data = answer.json()
        conversation, activity_id = data.get("id"), data.get("activityId")
        if not isinstance(conversation, str) or not isinstance(activity_id, str):
            raise UnknownOutcome(
                self.name, "the Bot Connector answered without the new thread's ids"
            )
        return Receipt(
            activity_id, {"service_url": self.service_url, "conversation_id": conversation}
        )

    async def replace(self, receipt: Receipt, activity: dict[str, Any]) -> None:
        """Replace a posted activity with ``activity`` (a PUT of the whole activity)."""
        await self._call(
            "PUT",
            self._activity_path(receipt),
            {**activity, "id": receipt.platform_id},
            what="editing the card",
            repeatable=True,
            base=str(receipt.data.get("service_url") or self.service_url),
        )

    async def reply(self, receipt: Receipt, activity: dict[str, Any]) -> str:
        """Post ``activity`` as a reply in the thread of a posted activity; the reply's id."""
        answer = await self._call(
            "POST",
            self._activity_path(receipt),
            activity,
            what="replying in the thread",
            repeatable=False,
            base=str(receipt.data.get("service_url") or self.service_url),
        )
        reply_id = answer.json().get("id")
        return str(reply_id) if reply_id else ""

    async def delete(self, receipt: Receipt) -> None:
        """Remove the posted card; a card that is gone already counts as deleted."""
        await self._call(
            "DELETE",
            self._activity_path(receipt),
            None,
            what="deleting the card",
            repeatable=True,
            base=str(receipt.data.get("service_url") or self.service_url),
            gone_ok=True,
        )

    async def check_online(self) -> list[str]:
        """Whether the bot gets a Bot Framework token (the one thing to ask without posting)."""
        try:
            await self._token()
        except ChannelError as exc:
            return [str(exc)]
        return []

    async def aclose(self) -> None:
        """Close the HTTP clients (the connector's and msal's)."""
        await self._http.aclose()
        session = self._session
        if session is not None:
            session.close()

    # Bot Connector ----------------------------------------------------------------------------

    def _activity(self, message: Message, rendered: Rendered) -> dict[str, Any]:
        if rendered.card is None:
            raise PermanentError(self.name, "nothing to post: the card was not rendered")
        return card_activity(rendered.card, message.content.title)

    def _activity_path(self, receipt: Receipt) -> str:
        conversation_id = receipt.data.get("conversation_id")
        if not conversation_id:
            raise PermanentError(
                self.name,
                f"the receipt of Teams post {receipt.platform_id} has no conversation id; "
                "edit or delete the card in Teams by hand",
            )
        conversation = quote(str(conversation_id), safe="")
        return f"v3/conversations/{conversation}/activities/{quote(receipt.platform_id, safe='')}"

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        what: str,
        repeatable: bool,
        base: str | None = None,
        gone_ok: bool = False,
    ) -> httpx.Response:
        """One connector request; a refused token is renewed once and the request repeated."""
        import httpx

        url = _with_slash(base or self.service_url) + path
        client = await self._http.get()
        refreshed = False
        while True:
            token = await self._token(refresh=refreshed)
            try:
                answer = await client.request(
                    method, url, json=body, headers={"Authorization": f"Bearer {token}"}
                )
            except httpx.HTTPError as exc:
                raise network_error(self.name, exc, what, repeatable=repeatable) from None
            if answer.status_code == 401 and not refreshed:
                # A token the connector no longer accepts (revoked, keys rolled): msal would
                # hand out the same one from its cache, so it is dropped and fetched anew.
                refreshed = True
                continue
            if answer.is_success or (gone_ok and answer.status_code == 404):
                return answer
            raise self._error(answer, what, repeatable=repeatable)

    def _error(self, answer: httpx.Response, what: str, *, repeatable: bool) -> ChannelError:
        status = answer.status_code
        code, detail = _connector_error(answer)
        channel = self.bot_target.channel_id
        fix = _CONNECTOR_FIXES.get(code)
        if fix is not None:
            return PermanentError(
                self.name,
                f"{self.bot_label}: " + fix.format(channel=channel, target=self.target.id),
            )
        if status == 401:
            return AuthError(
                self.name,
                f"the Bot Connector refused the token of {self.bot_label} twice: check that "
                "[teams_bot] app_id is the Azure Bot's app registration and tenant_id its tenant",
            )
        if status == 429:
            return RateLimited(
                self.name, f"Teams asked to slow down while {what}", retry_after(answer)
            )
        if status in (412, 503) or (status >= 500 and repeatable):
            return TransientError(
                self.name, f"the Bot Connector answered {status} to {what}", retry_after(answer)
            )
        if status >= 500:
            return UnknownOutcome(
                self.name,
                f"the Bot Connector answered {status} to {what}; the card may have been posted",
            )
        return PermanentError(
            self.name, f"the Bot Connector refused {what} ({status} {code}): {detail}"
        )

    # Token ------------------------------------------------------------------------------------

    async def _token(self, *, refresh: bool = False) -> str:
        return await asyncio.to_thread(self._token_now, refresh)

    def _token_now(self, refresh: bool) -> str:
        """A Bot Framework access token from msal's cache or from Entra ID (blocking)."""
        import requests

        try:
            app = self._app()
            if refresh:
                _forget_tokens(app)
            result = app.acquire_token_for_client(scopes=[SCOPE])
        except ValueError as exc:  # msal: the tenant's OpenID configuration answered 4xx
            raise AuthError(
                self.name,
                f"{self.bot_label} cannot sign in: Entra ID does not know its tenant "
                f"({type(exc).__name__}); check [teams_bot] tenant_id",
            ) from None
        except (requests.RequestException, RuntimeError) as exc:
            raise TransientError(
                self.name,
                f"{self.bot_label}: Entra ID could not be reached for a token "
                f"({type(exc).__name__}); nothing was sent",
            ) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if isinstance(token, str):
            return token
        return self._token_refused(result if isinstance(result, dict) else {})

    def _token_refused(self, result: dict[str, Any]) -> str:
        error = str(result.get("error") or "unknown_error")
        numbers = [n for n in result.get("error_codes") or [] if isinstance(n, int)]
        if error in _ENTRA_TRANSIENT:
            raise TransientError(self.name, f"Entra ID could not issue a token now ({error})")
        fix = next((_ENTRA_FIXES[n] for n in numbers if n in _ENTRA_FIXES), None)
        code = f"AADSTS{numbers[0]}" if numbers else error
        if fix is None:
            fix = "Entra ID refused the token request: check the [teams_bot] section"
        raise AuthError(
            self.name, f"{self.bot_label} cannot get a Bot Framework token: {fix} ({code})"
        )

    def _app(self) -> msal.ConfidentialClientApplication:
        """The one msal application of this adapter, built on first use (it does network I/O)."""
        with self._msal_lock:
            if self._msal is None:
                import msal

                tenant = self.settings.tenant_id.get_secret_value()
                self._session = msal_http_client(
                    self._login_url, timeout=self.call_timeout_seconds / 4
                )
                self._msal = msal.ConfidentialClientApplication(
                    self.settings.app_id.get_secret_value(),
                    client_credential=self.settings.app_password.get_secret_value(),
                    authority=f"{LOGIN_URL}/{tenant}",
                    http_client=self._session,
                    # Only Entra's public cloud is used: nothing to discover, and discovery
                    # would ask login.microsoftonline.com even when a sandbox stands in for it.
                    instance_discovery=False,
                )
            return self._msal


def _forget_tokens(app: msal.ConfidentialClientApplication) -> None:
    """Drop the app's cached access tokens, so that the next request fetches a new one
    (``acquire_token_for_client`` refuses ``force_refresh``)."""
    cache = app.token_cache
    for item in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
        cache.remove_at(item)


def _connector_error(answer: httpx.Response) -> tuple[str, str]:
    """The connector's error code and message (``{"error": {"code", "message"}}``)."""
    try:
        data = answer.json()
    except ValueError:
        return "", answer.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")[:300]
    message = data.get("message") if isinstance(data, dict) else None
    return "", str(message or answer.reason_phrase)[:300]


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
