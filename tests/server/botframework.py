"""Helpers for `/api/messages` tests: `serve` with a Teams bot configured against the sandbox,
activities and tokens made the way Bot Framework (or the bot's Entra tenant) makes them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from broadcaster.app import App, open_app
from broadcaster.sandbox import APPROVER_OBJECT_IDS
from broadcaster.sandbox.keys import SigningKey
from broadcaster.server.context import BotCaller, ServerContext
from broadcaster.server.runner import listen
from broadcaster.store.audit import AuditEvent, list_events
from broadcaster.workspace import load_workspace
from tests.conftest import FakeClock, set_database_url
from tests.server.conftest import Running, start_serve

BOT_FRAMEWORK = "https://api.botframework.com"
TEAMS_BOT = """
[teams_bot]
app_id = "env:TEAMS_APP_ID"
app_password = "env:TEAMS_APP_PASSWORD"
tenant_id = "env:TEAMS_TENANT_ID"
"""
APPROVER = APPROVER_OBJECT_IDS[0]
#: What a card action handler answers in these tests (the real one belongs to the approvals).
CARD_RESPONSE = {
    "statusCode": 200,
    "type": "application/vnd.microsoft.card.adaptive",
    "value": {"type": "AdaptiveCard", "version": "1.5", "body": []},
}


@dataclass
class CardActions:
    """A card action handler that records what reached it."""

    calls: list[tuple[dict[str, Any], BotCaller]] = field(default_factory=list)

    async def __call__(self, activity: dict[str, Any], caller: BotCaller) -> dict[str, Any]:
        self.calls.append((activity, caller))
        return CARD_RESPONSE


@dataclass
class BotServer:
    """`serve` for a workspace whose bot is the sandbox's, and the sandbox acting as Teams."""

    running: Running
    sandbox: Any
    clock: FakeClock
    card_actions: CardActions

    @property
    def app(self) -> App:
        return self.running.app

    @property
    def url(self) -> str:
        return f"{self.running.url}/api/messages"

    @property
    def context(self) -> ServerContext:
        context: ServerContext = self.running.service.server.config.app.state.context
        return context

    def activity(self, **changes: Any) -> dict[str, Any]:
        """A click on an approval card by the first approver, as Teams sends it."""
        return self.sandbox.teams.invoke(verb="approve", user_object_id=APPROVER) | changes

    def claims(self, **changes: Any) -> dict[str, Any]:
        """The claims of a Bot Framework channel token for the sandbox's bot, now."""
        now = int(time.time())
        claims = {
            "serviceurl": self.sandbox.env()["BROADCASTER_TEAMS_SERVICE_URL"],
            "nbf": now,
            "exp": now + 3600,
            "iss": BOT_FRAMEWORK,
            "aud": self.sandbox.credentials.teams_app_id,
        }
        return {**claims, **changes}

    def token(self, key: SigningKey | None = None, **changes: Any) -> str:
        """A token of :meth:`claims` signed by ``key`` (Bot Framework's by default)."""
        return (key or self.sandbox.botframework.key).sign(self.claims(**changes))

    def tenant_token(self, issuer: str, **changes: Any) -> str:
        """A token issued by the bot's own Entra tenant (signed with the tenant's key)."""
        tenant = self.sandbox.credentials.teams_tenant_id
        claims = {"iss": issuer, "tid": tenant, **changes}
        return self.token(self.sandbox.login.key, **claims)

    def post(
        self,
        activity: dict[str, Any] | None = None,
        token: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``activity`` with ``Authorization: Bearer token`` (no header if token is "")."""
        sent = dict(headers or {})
        token = self.token() if token is None else token
        if token:
            sent["Authorization"] = f"Bearer {token}"
        return httpx.post(self.url, json=activity or self.activity(), headers=sent, timeout=30)

    def refusals(self) -> list[AuditEvent]:
        with self.app.store.read() as conn:
            return list_events(conn, actions=["bot_request_refused"])

    def events(self) -> list[AuditEvent]:
        with self.app.store.read() as conn:
            return list_events(conn)

    def key_fetches(self, platform: str = "botframework") -> int:
        """How many times the sandbox was asked for the keys of ``platform``'s tokens."""
        return sum(r.path.endswith("/keys") for r in self.sandbox.records.find(platform))


def start_bot_server(
    workspace_dir: Path,
    database_url: str,
    sandbox: Any,
    *,
    teams_bot: bool = True,
) -> BotServer:
    """`serve` (no worker) for the workspace, with the sandbox's environment and a fake clock."""
    set_database_url(workspace_dir, database_url)
    path = workspace_dir / "broadcaster.toml"
    if teams_bot:
        path.write_text(path.read_text(encoding="utf-8") + TEAMS_BOT, encoding="utf-8")
    clock = FakeClock()
    app = open_app(load_workspace(path, sandbox.env()), clock=clock)
    running = start_serve(app, listen("127.0.0.1", 0))
    server = BotServer(running=running, sandbox=sandbox, clock=clock, card_actions=CardActions())
    server.context.card_actions = server.card_actions
    return server


def stop_bot_server(server: BotServer) -> None:
    server.running.stop()
    server.app.close()


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """An ``alg: none`` token naming a published key."""
    return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
