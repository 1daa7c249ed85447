"""The login emulator driven by msal (ConfidentialClientApplication) via the login override."""

from __future__ import annotations

import httpx
import jwt
import pytest

from .conftest import BOT_SCOPE


def test_client_credentials_token_then_cache(sandbox, msal_app) -> None:
    app = msal_app()
    first = app.acquire_token_for_client(scopes=BOT_SCOPE)
    assert first["token_type"] == "Bearer"
    assert first["token_source"] == "identity_provider"
    second = app.acquire_token_for_client(scopes=BOT_SCOPE)
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert sandbox.login.issued == 1
    paths = [r.path for r in sandbox.records.find("login")]
    tenant = sandbox.env()["TEAMS_TENANT_ID"]
    assert paths == [
        f"/login/{tenant}/v2.0/.well-known/openid-configuration",
        f"/login/{tenant}/oauth2/v2.0/token",
    ]


def test_token_is_signed_and_claims_are_entra_like(sandbox, msal_app) -> None:
    env = sandbox.env()
    token = msal_app().acquire_token_for_client(scopes=BOT_SCOPE)["access_token"]
    keys_url = f"{env['BROADCASTER_TEAMS_LOGIN_URL']}/{env['TEAMS_TENANT_ID']}/discovery/v2.0/keys"
    key = jwt.PyJWKClient(keys_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience="https://api.botframework.com"
    )
    assert claims["iss"] == f"https://sts.windows.net/{env['TEAMS_TENANT_ID']}/"
    assert claims["appid"] == env["TEAMS_APP_ID"]
    assert claims["tid"] == env["TEAMS_TENANT_ID"]
    assert claims["exp"] - claims["iat"] == 3599


def test_wrong_secret_is_an_error_dict(msal_app) -> None:
    result = msal_app(secret="not-the-secret").acquire_token_for_client(scopes=BOT_SCOPE)
    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215:")


def test_wrong_scope_is_invalid_scope(msal_app) -> None:
    result = msal_app().acquire_token_for_client(scopes=["https://api.botframework.com/read"])
    assert result["error"] == "invalid_scope"
    other = msal_app().acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert other["error"] == "invalid_resource"


def test_unknown_tenant_fails_discovery(msal_app) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        msal_app(tenant="00000000-0000-0000-0000-00000000dead")


def test_token_endpoint_wants_client_credentials_grant(sandbox) -> None:
    env = sandbox.env()
    url = f"{env['BROADCASTER_TEAMS_LOGIN_URL']}/{env['TEAMS_TENANT_ID']}/oauth2/v2.0/token"
    answer = httpx.post(url, data={"grant_type": "password", "client_id": env["TEAMS_APP_ID"]})
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_bot_framework_openid_metadata_and_keys(sandbox) -> None:
    env = sandbox.env()
    metadata = httpx.get(env["BROADCASTER_TEAMS_OPENID_URL"]).json()
    assert metadata["issuer"] == "https://api.botframework.com"
    assert metadata["jwks_uri"].startswith(sandbox.base_url)
    keys = httpx.get(metadata["jwks_uri"]).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA"
    assert "msteams" in keys[0]["endorsements"]
    assert keys[0]["kid"] == keys[0]["x5t"]
    assert keys[0]["x5c"]
