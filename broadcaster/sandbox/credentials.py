"""The credentials and ids the sandbox accepts, and the ``.env`` lines that hand them out.

The ids are those of the reference configuration (``examples/broadcaster.toml``), so a workspace
made by ``broadcaster init`` runs against the sandbox with nothing but the printed ``.env``.
Secrets are random per run; a ``seed`` makes them reproducible for tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "APPROVER_OBJECT_IDS",
    "BORGHOLM_PAGE_ID",
    "CMS_PATH",
    "CREDENTIAL_ENV_NAMES",
    "EXERCISE_ENV_NAMES",
    "FACEBOOK_APP_ID",
    "MORBYLANGA_PAGE_ID",
    "PAGE_NAMES",
    "TEAMS_CHANNEL_IDS",
    "TELEGRAM_CHAT",
    "URL_ENV_NAMES",
    "Credentials",
    "environment",
]

#: The sandbox's Facebook app (public, like a real app id; its secret is ``fb_app_secret``).
FACEBOOK_APP_ID: Final = "333333333333333"
BORGHOLM_PAGE_ID: Final = "111111111111111"
MORBYLANGA_PAGE_ID: Final = "222222222222222"
PAGE_NAMES: Final = MappingProxyType(
    {BORGHOLM_PAGE_ID: "Borgholms kommun", MORBYLANGA_PAGE_ID: "Mörbylånga kommun"}
)
TEAMS_CHANNEL_IDS: Final = (
    "19:crisis-approvers@thread.tacv2",
    "19:borgholm-staff@thread.tacv2",
)
TELEGRAM_CHAT: Final = "@olandkris"
APPROVER_OBJECT_IDS: Final = (
    "00000000-0000-0000-0000-000000000001",
    "00000000-0000-0000-0000-000000000002",
    "00000000-0000-0000-0000-000000000003",
)

URL_ENV_NAMES: Final = (
    "BROADCASTER_FACEBOOK_API_URL",
    "BROADCASTER_TWILIO_API_URL",
    "BROADCASTER_TELEGRAM_API_URL",
    "BROADCASTER_TEAMS_LOGIN_URL",
    "BROADCASTER_TEAMS_OPENID_URL",
    "BROADCASTER_TEAMS_SERVICE_URL",
)
CREDENTIAL_ENV_NAMES: Final = (
    "FB_BORGHOLM_PAGE_TOKEN",
    "FB_MORBYLANGA_PAGE_TOKEN",
    "FB_APP_SECRET",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TEAMS_APP_ID",
    "TEAMS_APP_PASSWORD",
    "TEAMS_TENANT_ID",
    "TEAMS_MORBYLANGA_WORKFLOW_URL",
    "MORBYLANGA_CMS_WEBHOOK_SECRET",
    "TELEGRAM_BOT_TOKEN",
)
#: What makes a workspace an exercise against this sandbox: exercise mode, the address everything
#: must go to (broadcaster refuses to load a workspace that would call anything else), and the
#: CMS webhook's URL, with its token, for a website target written
#: ``url = "env:MORBYLANGA_CMS_WEBHOOK_URL"`` (its secret is ``MORBYLANGA_CMS_WEBHOOK_SECRET``).
EXERCISE_ENV_NAMES: Final = (
    "BROADCASTER_EXERCISE",
    "BROADCASTER_SANDBOX_URL",
    "MORBYLANGA_CMS_WEBHOOK_URL",
)
#: Where the CMS emulator listens (any collection path under /cms/ is accepted, with the token).
CMS_PATH: Final = "/cms/api/broadcaster"

_ALNUM = string.ascii_letters + string.digits
_WORKFLOW_PATH = (
    "/workflows/powerautomate/automations/direct/workflows/{id}/triggers/manual/paths/invoke"
)
WORKFLOW_QUERY_SP = "/triggers/manual/run"
WORKFLOW_QUERY_SV = "1.0"


def _source(seed: int | None) -> Callable[[int], bytes]:
    if seed is None:
        return secrets.token_bytes
    # Reproducible credentials are for tests only; the default path uses `secrets`.
    return random.Random(seed).randbytes  # noqa: S311


def _text(raw: Callable[[int], bytes], length: int, alphabet: str = _ALNUM) -> str:
    return "".join(alphabet[b % len(alphabet)] for b in raw(length))


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """Every secret the sandbox accepts; one instance per sandbox run."""

    borgholm_page_token: str
    morbylanga_page_token: str
    fb_app_secret: str
    twilio_account_sid: str
    twilio_auth_token: str
    teams_app_id: str
    teams_app_password: str
    teams_tenant_id: str
    workflow_id: str
    workflow_key: str
    cms_secret: str
    telegram_bot_token: str
    #: The token the CMS's URL carries (``?token=``), as a real CMS's webhook URL may.
    cms_token: str

    @classmethod
    def generate(cls, seed: int | None = None) -> Credentials:
        """Make a fresh set: random, or reproducible from ``seed``."""
        raw = _source(seed)
        bot_id = 7_000_000_000 + int.from_bytes(raw(4)) % 999_999_999
        return cls(
            borgholm_page_token="EAAB" + _text(raw, 180),
            morbylanga_page_token="EAAB" + _text(raw, 180),
            fb_app_secret=raw(16).hex(),
            twilio_account_sid="AC" + raw(16).hex(),
            twilio_auth_token=raw(16).hex(),
            teams_app_id=str(uuid.UUID(bytes=raw(16), version=4)),
            teams_app_password=_text(raw, 3) + "8Q~" + _text(raw, 34, _ALNUM + "~._-"),
            teams_tenant_id=str(uuid.UUID(bytes=raw(16), version=4)),
            workflow_id=raw(16).hex(),
            workflow_key=raw(32).hex(),
            cms_secret=_text(raw, 40),
            telegram_bot_token=f"{bot_id}:AA" + _text(raw, 33, _ALNUM + "_-"),
            # Drawn last, so that a seed still gives every earlier credential it gave before.
            cms_token=_text(raw, 32),
        )

    @property
    def page_tokens(self) -> dict[str, str]:
        """Page id -> the page access token accepted for it."""
        return {
            BORGHOLM_PAGE_ID: self.borgholm_page_token,
            MORBYLANGA_PAGE_ID: self.morbylanga_page_token,
        }

    @property
    def telegram_bot_id(self) -> int:
        """The numeric bot id, the part of the token before the colon."""
        return int(self.telegram_bot_token.split(":", 1)[0])

    def workflow_signature(self, workflow_id: str) -> str:
        """The ``sig`` query value that authorises a POST to one workflow's trigger URL."""
        message = f"{workflow_id}|{WORKFLOW_QUERY_SP}|{WORKFLOW_QUERY_SV}".encode()
        digest = hmac.new(bytes.fromhex(self.workflow_key), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def workflow_url(self, base_url: str) -> str:
        """The Power Automate Workflows trigger URL (``TEAMS_MORBYLANGA_WORKFLOW_URL``)."""
        path = _WORKFLOW_PATH.format(id=self.workflow_id)
        query = (
            "api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
            f"&sig={self.workflow_signature(self.workflow_id)}"
        )
        return f"{base_url.rstrip('/')}{path}?{query}"

    def cms_url(self, base_url: str) -> str:
        """The CMS webhook's URL with its token (``MORBYLANGA_CMS_WEBHOOK_URL``)."""
        return f"{base_url.rstrip('/')}{CMS_PATH}?token={self.cms_token}"


def environment(base_url: str, credentials: Credentials) -> dict[str, str]:
    """The ``.env`` for a sandbox at ``base_url``: URL overrides, credentials, exercise settings.

    Args:
        base_url: ``http://127.0.0.1:PORT`` of the running sandbox.
        credentials: The credentials it accepts.

    Returns:
        An ordered mapping, in the order printed: the DESIGN §4 URL overrides, the credentials,
        then :data:`EXERCISE_ENV_NAMES`.
    """
    root = base_url.rstrip("/")
    c = credentials
    return {
        "BROADCASTER_FACEBOOK_API_URL": f"{root}/graph/",
        "BROADCASTER_TWILIO_API_URL": f"{root}/twilio",
        "BROADCASTER_TELEGRAM_API_URL": f"{root}/telegram",
        "BROADCASTER_TEAMS_LOGIN_URL": f"{root}/login",
        "BROADCASTER_TEAMS_OPENID_URL": f"{root}/botframework/v1/.well-known/openidconfiguration",
        "BROADCASTER_TEAMS_SERVICE_URL": f"{root}/connector/emea/",
        "FB_BORGHOLM_PAGE_TOKEN": c.borgholm_page_token,
        "FB_MORBYLANGA_PAGE_TOKEN": c.morbylanga_page_token,
        "FB_APP_SECRET": c.fb_app_secret,
        "TWILIO_ACCOUNT_SID": c.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": c.twilio_auth_token,
        "TEAMS_APP_ID": c.teams_app_id,
        "TEAMS_APP_PASSWORD": c.teams_app_password,
        "TEAMS_TENANT_ID": c.teams_tenant_id,
        "TEAMS_MORBYLANGA_WORKFLOW_URL": c.workflow_url(root),
        "MORBYLANGA_CMS_WEBHOOK_SECRET": c.cms_secret,
        "TELEGRAM_BOT_TOKEN": c.telegram_bot_token,
        "BROADCASTER_EXERCISE": "1",
        "BROADCASTER_SANDBOX_URL": root,
        "MORBYLANGA_CMS_WEBHOOK_URL": c.cms_url(root),
    }
