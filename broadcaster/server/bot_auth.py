"""Is a request to ``/api/messages`` from Bot Framework, for our bot? (PLATFORMS §5)

A request is taken as Bot Framework's only when its ``Authorization: Bearer`` JWT is, in order:

1. RS256 (``none``, HS256 and every other algorithm are refused before any key is looked up);
2. from an accepted issuer: ``https://api.botframework.com``, whose keys are named by Bot
   Framework's OpenID metadata (``BROADCASTER_TEAMS_OPENID_URL``, default
   ``https://login.botframework.com/v1/.well-known/openidconfiguration``), or the bot's own tenant
   in Entra ID (``https://sts.windows.net/{tenant}/``, ``https://login.microsoftonline.com/
   {tenant}/v2.0``), whose keys are named by the tenant's metadata under
   ``BROADCASTER_TEAMS_LOGIN_URL`` (default ``https://login.microsoftonline.com``);
3. signed by a key of that issuer's JWKS (see :mod:`.bot_keys` for caching and refetching);
4. for the audience ``[teams_bot] app_id``, within ``exp`` / ``nbf`` give or take 5 minutes,
   with ``exp``, ``iss`` and ``aud`` present; a tenant token's ``tid``, if any, is the tenant;
5. carrying a ``serviceurl`` claim equal to the activity's ``serviceUrl`` (a trailing slash
   aside), so that a token for one service URL cannot make the bot call another;
6. when the key lists ``endorsements``, signed by a key endorsed for the activity's
   ``channelId``.

Anything else raises :class:`BotRefusal` with the precise reason (for the audit log, not for the
caller): ``status`` 401, or 503 when the keys needed could not be fetched, which is never taken as
a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from broadcaster.config import Config
from broadcaster.platform_urls import LOGIN_URL, TEAMS_LOGIN_URL_VAR, rewrite_url
from broadcaster.server.bot_keys import KeysUnavailable, OpenIdKeys
from broadcaster.server.context import BotCaller

__all__ = [
    "BOT_FRAMEWORK_ISSUER",
    "DEFAULT_OPENID_URL",
    "OPENID_URL_VAR",
    "SHOWN_CHARS",
    "SKEW_S",
    "BotAuthSettings",
    "BotAuthenticator",
    "BotRefusal",
    "shown",
]

OPENID_URL_VAR = "BROADCASTER_TEAMS_OPENID_URL"
DEFAULT_OPENID_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
#: Clock skew allowed on ``exp`` and ``nbf`` (Bot Framework's own validators allow 5 minutes).
SKEW_S = 300
#: Metadata and key requests give up after this long.
FETCH_TIMEOUT_S = 10.0
#: Untrusted values (claims, activity fields) are cut to this many characters in logs and audit.
SHOWN_CHARS = 200


class BotRefusal(Exception):
    """The request is not taken as Bot Framework's; ``reason`` says why (for the audit log)."""

    def __init__(self, reason: str, *, status: int = 401) -> None:
        """Describe the refusal: 401, or 503 when the keys could not be fetched."""
        super().__init__(reason)
        self.reason = reason
        self.status = status
        #: ``issuer`` and ``audience`` the token claims, unverified (empty if not a JWT).
        self.claimed: dict[str, str] = {}


@dataclass(frozen=True, kw_only=True)
class BotAuthSettings:
    """Who the bot is and where the keys that sign its requests are published."""

    app_id: str
    tenant_id: str
    openid_url: str = DEFAULT_OPENID_URL
    login_url: str = LOGIN_URL

    @classmethod
    def from_workspace(cls, config: Config, env: Mapping[str, str]) -> BotAuthSettings | None:
        """The settings of ``[teams_bot]`` and the environment; None without ``[teams_bot]``."""
        bot = config.teams_bot
        if bot is None:
            return None
        return cls(
            app_id=bot.app_id.get_secret_value(),
            tenant_id=bot.tenant_id.get_secret_value(),
            openid_url=env.get(OPENID_URL_VAR) or DEFAULT_OPENID_URL,
            login_url=(env.get(TEAMS_LOGIN_URL_VAR) or LOGIN_URL).rstrip("/"),
        )

    @property
    def tenant_issuers(self) -> frozenset[str]:
        """The issuers of the tenant's own Entra tokens (v1 and v2)."""
        return frozenset(
            {
                f"https://sts.windows.net/{self.tenant_id}/",
                f"{LOGIN_URL}/{self.tenant_id}/v2.0",
            }
        )


@dataclass
class BotAuthenticator:
    """Verifies the bearer tokens of requests to ``/api/messages``; one per server."""

    settings: BotAuthSettings
    #: Seconds for the key cache's intervals (tests move it by hand).
    clock: Callable[[], float] = time.monotonic
    timeout_s: float = FETCH_TIMEOUT_S
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self._botframework = OpenIdKeys(s.openid_url, self._http, self.clock)
        # The tenant's metadata names the public login host; an override root replaces it.
        self._tenant = OpenIdKeys(
            f"{s.login_url}/{s.tenant_id}/v2.0/.well-known/openid-configuration",
            self._http,
            self.clock,
            rewrite=lambda url: rewrite_url(url, LOGIN_URL, s.login_url),
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections to the metadata hosts."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def verify(
        self,
        authorization: str | None,
        activity: Mapping[str, Any],
        *,
        client_ip: str | None = None,
    ) -> BotCaller:
        """The verified caller of a request with header ``authorization`` carrying ``activity``.

        Raises:
            BotRefusal: The token is missing or fails a check (see the module docstring).
        """
        token = _bearer(authorization)
        claimed = _claimed(token)
        try:
            claims = await self._verified_claims(token, activity)
        except BotRefusal as refusal:
            refusal.claimed = claimed
            raise
        return BotCaller(claims=claims, client_ip=client_ip)

    async def _verified_claims(self, token: str, activity: Mapping[str, Any]) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise BotRefusal("the bearer token is not a JWT") from None
        if header.get("alg") != "RS256":
            raise BotRefusal(f"the token's algorithm is {shown(header.get('alg'))}, not RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise BotRefusal("the token names no signing key (kid)")
        keys = self._keys_of(issuer)
        try:
            published = await keys.get(kid)
        except KeysUnavailable as exc:
            raise BotRefusal(f"the signing keys could not be fetched: {exc}", status=503) from None
        if published is None:
            raise BotRefusal(f"signed by an unknown key: kid {shown(kid)} is not published")
        claims = self._decode(token, published.key, str(issuer))
        self._check_bindings(claims, activity, issuer)
        endorsed = published.endorsements
        channel = activity.get("channelId")
        if endorsed is not None and isinstance(channel, str) and channel not in endorsed:
            raise BotRefusal(f"the signing key is not endorsed for channel {shown(channel)}")
        return claims

    def _keys_of(self, issuer: Any) -> OpenIdKeys:
        if issuer == BOT_FRAMEWORK_ISSUER:
            return self._botframework
        if issuer in self.settings.tenant_issuers:
            return self._tenant
        raise BotRefusal(
            f"issuer {shown(issuer)} is neither Bot Framework nor tenant {self.settings.tenant_id}"
        )

    def _decode(self, token: str, key: jwt.PyJWK, issuer: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.settings.app_id,
                issuer=issuer,
                leeway=SKEW_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise BotRefusal("the token has expired (more than 5 minutes ago)") from None
        except jwt.ImmatureSignatureError:
            raise BotRefusal("the token is not valid yet (nbf more than 5 minutes ahead)") from None
        except jwt.InvalidAudienceError:
            raise BotRefusal("the token is for another audience than [teams_bot] app_id") from None
        except jwt.InvalidSignatureError:
            raise BotRefusal("the signature does not match the published key") from None
        except jwt.PyJWTError as exc:
            raise BotRefusal(f"the token is invalid: {exc}") from None
        return claims

    def _check_bindings(
        self, claims: Mapping[str, Any], activity: Mapping[str, Any], issuer: Any
    ) -> None:
        if issuer != BOT_FRAMEWORK_ISSUER and claims.get("tid", self.settings.tenant_id) != (
            self.settings.tenant_id
        ):
            raise BotRefusal(f"the token's tid {shown(claims.get('tid'))} is another tenant")
        claimed_url = claims.get("serviceurl")
        service_url = activity.get("serviceUrl")
        if not isinstance(claimed_url, str) or not claimed_url:
            raise BotRefusal("the token has no serviceurl claim")
        if not isinstance(service_url, str) or _url(claimed_url) != _url(service_url):
            raise BotRefusal(
                f"the token's serviceurl {shown(claimed_url)} is not the activity's "
                f"serviceUrl {shown(service_url)}"
            )


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise BotRefusal("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BotRefusal("the Authorization header is not a Bearer token")
    return token.strip()


def _claimed(token: str) -> dict[str, str]:
    """What the token says about itself, unverified, for the audit log (never for a decision)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    said = {"issuer": claims.get("iss"), "audience": claims.get("aud")}
    return {name: shown(value, quote=False) for name, value in said.items() if value is not None}


def shown(value: Any, *, quote: bool = True) -> str:
    """An untrusted value for a log or audit line: printable, quoted, and cut short."""
    text = repr(value) if quote else (value if isinstance(value, str) else repr(value))
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _url(url: str) -> str:
    return url.rstrip("/")
