"""Helpers for the sandbox tests: a loopback HTTP receiver and the real SDK clients.

Every client is built from ``sandbox.env()`` alone (the DESIGN §4 overrides and the credentials),
the way the channel adapters will build them; nothing of ours is patched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import facebook
import httpx
import msal
import pytest
from telegram import Bot
from telegram.request import HTTPXRequest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from broadcaster.channels._rewrite import graph_session, msal_http_client
from broadcaster.sandbox import BORGHOLM_PAGE_ID, TEAMS_CHANNEL_IDS, Sandbox

APPROVERS = TEAMS_CHANNEL_IDS[0]
GRAPH_VERSION = "v23.0"
BOT_SCOPE = ["https://api.botframework.com/.default"]


# ---------------------------------------------------------------------------------------------
# A loopback receiver for Twilio status callbacks and for the bot endpoint Teams clicks reach


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every request; answers with ``status`` and ``body``."""

    url: str = ""
    status: int = 200
    body: bytes = b""
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} of {count} requests arrived")
            return list(self.requests)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = self.rfile.read(length)
            with receiver.arrived:
                receiver.requests.append(
                    Received(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                receiver.arrived.notify_all()
            self.send_response(receiver.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(receiver.body)))
            self.end_headers()
            self.wfile.write(receiver.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 that records what it receives."""
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


# ---------------------------------------------------------------------------------------------
# facebook-sdk


@dataclass
class Page:
    """One Facebook Page seen through facebook-sdk's GraphAPI, as the adapter will use it."""

    graph: facebook.GraphAPI
    page_id: str
    proof: str

    def post(self, **fields: Any) -> dict[str, Any]:
        return self.graph.put_object(self.page_id, "feed", appsecret_proof=self.proof, **fields)

    def edit(self, post_id: str, message: str) -> dict[str, Any]:
        return self.graph.request(
            f"{self.graph.version}/{post_id}",
            post_args={"message": message, "appsecret_proof": self.proof},
        )

    def delete(self, post_id: str) -> dict[str, Any]:
        # GraphAPI.delete_object() cannot carry appsecret_proof; request() can.
        return self.graph.request(
            f"{self.graph.version}/{post_id}", {"appsecret_proof": self.proof}, method="DELETE"
        )

    def feed(self, **args: Any) -> dict[str, Any]:
        return self.graph.get_connections(self.page_id, "feed", appsecret_proof=self.proof, **args)

    def get(self, node: str, **args: Any) -> dict[str, Any]:
        return self.graph.get_object(node, appsecret_proof=self.proof, **args)


PageFactory = Callable[..., Page]


@pytest.fixture
def fb_page(sandbox: Sandbox) -> Iterator[PageFactory]:
    """Build :class:`Page` clients: ``fb_page(page_id=..., token=..., timeout=...)``."""
    sessions = []

    def make(
        page_id: str = BORGHOLM_PAGE_ID,
        token: str | None = None,
        timeout: float = 5.0,
        app_secret: str | None = None,
    ) -> Page:
        env = sandbox.env()
        names = {
            "111111111111111": "FB_BORGHOLM_PAGE_TOKEN",
            "222222222222222": "FB_MORBYLANGA_PAGE_TOKEN",
        }
        token = token if token is not None else env[names[page_id]]
        session = graph_session(env["BROADCASTER_FACEBOOK_API_URL"], timeout=timeout)
        sessions.append(session)
        graph = facebook.GraphAPI(access_token=token, timeout=timeout, session=session)
        graph.version = GRAPH_VERSION  # facebook-sdk 3.1.0 rejects two-digit versions in __init__
        secret = (app_secret or env["FB_APP_SECRET"]).encode()
        proof = hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()
        return Page(graph, page_id, proof)

    yield make
    for session in sessions:
        session.close()


# ---------------------------------------------------------------------------------------------
# twilio


@pytest.fixture
def twilio_client(sandbox: Sandbox) -> Iterator[Callable[..., Client]]:
    """Build twilio ``Client`` objects pointed at the sandbox: ``twilio_client(timeout=...)``."""
    clients: list[TwilioHttpClient] = []

    def make(timeout: float = 5.0, auth_token: str | None = None) -> Client:
        env = sandbox.env()
        http = TwilioHttpClient(timeout=timeout)
        clients.append(http)
        client = Client(
            env["TWILIO_ACCOUNT_SID"], auth_token or env["TWILIO_AUTH_TOKEN"], http_client=http
        )
        client.api.base_url = env["BROADCASTER_TWILIO_API_URL"]
        return client

    yield make
    for http in clients:
        if http.session is not None:
            http.session.close()


# ---------------------------------------------------------------------------------------------
# python-telegram-bot


@pytest.fixture
def telegram_bot(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Bot]:
    """Build PTB ``Bot`` objects: ``telegram_bot(token=..., read_timeout=...)``."""
    # PTB 22 warns (PTBDeprecationWarning) inside RetryAfter() unless it may use timedelta, and
    # our warnings are errors; opting in is what PTB asks its users to do.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")

    def make(token: str | None = None, read_timeout: float = 5.0) -> Bot:
        env = sandbox.env()
        request = HTTPXRequest(read_timeout=read_timeout, connect_timeout=2.0)
        return Bot(
            token or env["TELEGRAM_BOT_TOKEN"],
            base_url=f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot",
            request=request,
        )

    return make


# ---------------------------------------------------------------------------------------------
# msal


@pytest.fixture
def msal_app(sandbox: Sandbox) -> Iterator[Callable[..., msal.ConfidentialClientApplication]]:
    """Build msal apps for the bot: ``msal_app(secret=..., tenant=..., timeout=...)``."""
    clients = []

    def make(
        secret: str | None = None, tenant: str | None = None, timeout: float = 5.0
    ) -> msal.ConfidentialClientApplication:
        env = sandbox.env()
        http = msal_http_client(env["BROADCASTER_TEAMS_LOGIN_URL"], timeout=timeout)
        clients.append(http)
        return msal.ConfidentialClientApplication(
            env["TEAMS_APP_ID"],
            client_credential=secret or env["TEAMS_APP_PASSWORD"],
            authority=f"https://login.microsoftonline.com/{tenant or env['TEAMS_TENANT_ID']}",
            http_client=http,
            instance_discovery=False,
        )

    yield make
    for http in clients:
        http.close()


# ---------------------------------------------------------------------------------------------
# Bot Connector through httpx (our Teams adapter's client), with a token from msal

CARD: dict[str, Any] = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    "body": [{"type": "TextBlock", "text": "Godkänn utskick", "wrap": True, "weight": "Bolder"}],
    "actions": [
        {
            "type": "Action.Execute",
            "title": "Godkänn",
            "verb": "approve",
            "data": {"announcement": 7, "hash": "abc123"},
        },
        {
            "type": "Action.Execute",
            "title": "Avslå",
            "verb": "reject",
            "data": {"announcement": 7, "hash": "abc123"},
        },
    ],
    "msteams": {"width": "Full"},
}


def card_activity(card: dict[str, Any] = CARD) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


Connector = Callable[..., httpx.Response]


@pytest.fixture
def connector(sandbox, msal_app) -> Connector:
    """``connector(method, path, json=..., token=...)`` against BROADCASTER_TEAMS_SERVICE_URL."""
    token = msal_app().acquire_token_for_client(scopes=BOT_SCOPE)["access_token"]
    service = sandbox.env()["BROADCASTER_TEAMS_SERVICE_URL"]

    def call(method: str, path: str, token: str | None = token, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs.setdefault("timeout", 5)
        return httpx.request(method, service + path, headers=headers, **kwargs)

    return call


def start_thread(
    connector: Connector, activity: dict[str, Any], channel: str = APPROVERS
) -> dict[str, Any]:
    """Create a channel thread the way the Teams adapter will (POST /v3/conversations)."""
    answer = connector(
        "POST",
        "v3/conversations",
        json={
            "isGroup": True,
            "channelData": {"channel": {"id": channel}},
            "activity": activity,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()
