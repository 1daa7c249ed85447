"""Microsoft identity emulators: the Entra token endpoint, and Bot Framework's OpenID metadata.

``/login`` stands in for ``https://login.microsoftonline.com`` (``BROADCASTER_TEAMS_LOGIN_URL``):
tenant OpenID discovery, JWKS, and the client-credentials grant that issues RS256 access tokens
for the Bot Connector (``aud=https://api.botframework.com``, v1 issuer ``sts.windows.net``). Its
discovery document names the public ``https://login.microsoftonline.com`` URLs, because msal
refuses anything else; the msal ``http_client`` of :mod:`broadcaster.channels._rewrite` sends them
here. Errors are Entra's ``{"error", "error_description": "AADSTS...", "error_codes", ...}``.

``/botframework`` serves what Bot Framework publishes for bots to check inbound requests
(``BROADCASTER_TEAMS_OPENID_URL``): the OpenID metadata and the JWKS of the key that signs the
sandbox's "act as Teams" requests (endorsed for ``msteams``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from .exchange import Context, Emulator, EmulatorError, Incoming, retry_after_headers
from .faults import Fault
from .keys import SigningKey

__all__ = [
    "BOT_CONNECTOR_AUDIENCE",
    "BOT_FRAMEWORK_ISSUER",
    "BotFrameworkEmulator",
    "EntraError",
    "LoginEmulator",
]

PUBLIC_LOGIN = "https://login.microsoftonline.com"
BOT_CONNECTOR_AUDIENCE = "https://api.botframework.com"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
_TOKEN_LIFETIME_S = 3599
_FAULT_ERRORS = {400: "invalid_request", 401: "invalid_client", 429: "temporarily_unavailable"}


class EntraError(EmulatorError):
    """An Entra ID (AADSTS) error answer."""

    def __init__(
        self, status: int, error: str, number: int, text: str, retry_after: float | None = None
    ) -> None:
        """Describe the error: OAuth ``error``, AADSTS ``number`` and its ``text``."""
        super().__init__(text)
        self.status, self.error, self.number, self.text = status, error, number, text
        self.retry_after = retry_after

    def response(self) -> Response:
        """Entra's error JSON."""
        trace = str(uuid.uuid4())
        body = {
            "error": self.error,
            "error_description": f"AADSTS{self.number}: {self.text} Trace ID: {trace} "
            f"Correlation ID: {uuid.uuid4()} Timestamp: {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [self.number],
            "timestamp": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
            "error_uri": f"{PUBLIC_LOGIN}/error?code={self.number}",
        }
        return JSONResponse(body, self.status, headers=retry_after_headers(self.retry_after))


def _tenant_not_found(tenant: str) -> EntraError:
    return EntraError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud.",
    )


class LoginEmulator(Emulator):
    """``login.microsoftonline.com`` for the sandbox's one tenant and one app registration."""

    platform = "login"
    mount = "/login"

    def __init__(self, ctx: Context) -> None:
        """Create the emulator with its own token signing key."""
        super().__init__(ctx)
        self.key = SigningKey("login.microsoftonline.com (broadcaster sandbox)")
        self.issued = 0

    def reset(self) -> None:
        """Nothing to forget but the count of issued tokens."""
        self.issued = 0

    def routes(self) -> list[BaseRoute]:
        """Discovery, keys and the token endpoint."""
        return [
            self.route("/common/discovery/instance", self._instance, ["GET"]),
            self.route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid, ["GET"]),
            self.route("/{tenant}/discovery/v2.0/keys", self._keys, ["GET"]),
            self.route("/{tenant}/discovery/keys", self._keys, ["GET"]),
            self.route("/{tenant}/oauth2/v2.0/token", self._token, ["POST"]),
        ]

    def targets(self, incoming: Incoming) -> list[str]:
        """The tenant, then the client id."""
        names = [incoming.path_params.get("tenant", "common")]
        client = incoming.field("client_id") or _basic(incoming.headers)[0]
        return [*names, client] if client else names

    def fault_response(self, fault: Fault) -> Response:
        """Entra error JSON."""
        error = fault.code if isinstance(fault.code, str) else None
        error = error or _FAULT_ERRORS.get(fault.status, "temporarily_unavailable")
        number = fault.code if isinstance(fault.code, int) else 50196
        text = fault.message or "The server is temporarily unable to service your request."
        return EntraError(fault.status, error, number, text, fault.retry_after).response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """Entra's answer for an endpoint it does not have."""
        return EntraError(404, "invalid_request", 900561, "The endpoint does not exist.").response()

    async def _instance(self, incoming: Incoming) -> Response:
        tenant = self.ctx.credentials.teams_tenant_id
        return JSONResponse(
            {
                "tenant_discovery_endpoint": f"{PUBLIC_LOGIN}/{tenant}/v2.0/.well-known/"
                "openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {
                        "preferred_network": "login.microsoftonline.com",
                        "preferred_cache": "login.windows.net",
                        "aliases": ["login.microsoftonline.com"],
                    }
                ],
            }
        )

    async def _openid(self, incoming: Incoming) -> Response:
        tenant = self._tenant(incoming)
        root = f"{PUBLIC_LOGIN}/{tenant}"
        return JSONResponse(
            {
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    async def _keys(self, incoming: Incoming) -> Response:
        if incoming.path_params["tenant"] != "common":
            self._tenant(incoming)
        return JSONResponse({"keys": [self.key.jwk()]})

    async def _token(self, incoming: Incoming) -> Response:
        tenant = self._tenant(incoming)
        form = {k: v[-1] for k, v in (incoming.form or {}).items()}
        if form.get("grant_type") != "client_credentials":
            raise EntraError(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
            )
        self._check_client(incoming, form, tenant)
        self._check_scope(form.get("scope", ""), tenant)
        self.issued += 1
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": _TOKEN_LIFETIME_S,
                "ext_expires_in": _TOKEN_LIFETIME_S,
                "access_token": self.access_token(),
            }
        )

    def access_token(self, *, lifetime_s: int = _TOKEN_LIFETIME_S) -> str:
        """A Bot Connector access token for the sandbox's app, as the token endpoint issues."""
        c = self.ctx.credentials
        now = int(self.ctx.clock())
        service_principal = str(uuid.uuid5(uuid.NAMESPACE_URL, c.teams_app_id))
        issuer = f"https://sts.windows.net/{c.teams_tenant_id}/"
        return self.key.sign(
            {
                "aud": BOT_CONNECTOR_AUDIENCE,
                "iss": issuer,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime_s,
                "aio": secrets.token_urlsafe(24),
                "appid": c.teams_app_id,
                "appidacr": "1",
                "idp": issuer,
                "oid": service_principal,
                "sub": service_principal,
                "tid": c.teams_tenant_id,
                "uti": secrets.token_urlsafe(16),
                "ver": "1.0",
            }
        )

    def _tenant(self, incoming: Incoming) -> str:
        tenant = incoming.path_params["tenant"]
        if tenant != self.ctx.credentials.teams_tenant_id:
            raise _tenant_not_found(tenant)
        return tenant

    def _check_client(self, incoming: Incoming, form: dict[str, str], tenant: str) -> None:
        basic_id, basic_secret = _basic(incoming.headers)
        client_id = form.get("client_id") or basic_id
        secret = form.get("client_secret") or basic_secret
        c = self.ctx.credentials
        if client_id != c.teams_app_id:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'.",
            )
        if not secret:
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: "
                "'client_assertion' or 'client_secret'.",
            )
        if not secrets.compare_digest(secret, c.teams_app_password):
            raise EntraError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )

    def _check_scope(self, scope: str, tenant: str) -> None:
        wanted = f"{BOT_CONNECTOR_AUDIENCE}/.default"
        if scope == wanted:
            return
        if not scope.endswith("/.default"):
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        resource = scope.removesuffix("/.default")
        raise EntraError(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {resource} was not found in the tenant named {tenant}.",
        )


def _basic(headers: dict[str, str]) -> tuple[str, str]:
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return unquote_plus(user), unquote_plus(password)


class BotFrameworkEmulator(Emulator):
    """``login.botframework.com``: OpenID metadata and keys for validating Teams' requests."""

    platform = "botframework"
    mount = "/botframework"

    def __init__(self, ctx: Context) -> None:
        """Create the emulator with the key that signs requests sent as Teams."""
        super().__init__(ctx)
        self.key = SigningKey("api.botframework.com (broadcaster sandbox)", ("msteams",))

    def reset(self) -> None:
        """Nothing to forget."""

    def routes(self) -> list[BaseRoute]:
        """Metadata and keys."""
        return [
            self.route("/v1/.well-known/openidconfiguration", self._metadata, ["GET"]),
            self.route("/v1/.well-known/keys", self._keys, ["GET"]),
        ]

    def fault_response(self, fault: Fault) -> Response:
        """A plain JSON error (the metadata host has no documented error format)."""
        body = {"error": {"code": str(fault.code or fault.status), "message": fault.message or ""}}
        return JSONResponse(body, fault.status, headers=retry_after_headers(fault.retry_after))

    def unknown_path(self, incoming: Incoming) -> Response:
        """404."""
        return JSONResponse({"error": {"code": "NotFound", "message": "Not found"}}, 404)

    def metadata(self) -> dict[str, Any]:
        """The OpenID metadata document (its ``jwks_uri`` is the sandbox's own keys URL)."""
        return {
            "issuer": BOT_FRAMEWORK_ISSUER,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": f"{self.ctx.base_url}{self.mount}/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    async def _metadata(self, incoming: Incoming) -> Response:
        return JSONResponse(self.metadata())

    async def _keys(self, incoming: Incoming) -> Response:
        return JSONResponse({"keys": [self.key.jwk()]})
