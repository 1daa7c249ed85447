"""Helpers for `broadcaster serve`: a workspace with SMS targets, the server on a real socket,
deliveries to call back about, and callbacks signed the way Twilio signs them."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from broadcaster.app import App, open_app
from broadcaster.authoring import DraftInput, create_draft
from broadcaster.model import DeliveryState
from broadcaster.sandbox.keys import SigningKey
from broadcaster.server.background import Background, serve_in_background
from broadcaster.server.runner import Service, listen
from broadcaster.store.deliveries import (
    Delivery,
    DeliveryUpdate,
    NewDelivery,
    create_deliveries,
    deliveries_for,
    get_deliveries,
    record_updates,
)
from broadcaster.workspace import load_workspace
from tests.conftest import set_database_url

if TYPE_CHECKING:
    from tests.server.botframework import BotServer

#: Behind a TLS proxy: what Twilio is told, not where the server listens.
PUBLIC = "https://broadcaster.example.se"
BORGHOLM_TOKEN = "b" * 32
MORBYLANGA_TOKEN = "m" * 32
SHARED_KEY = "shared-key-secret-" + "k" * 14
SECRETS = {
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": BORGHOLM_TOKEN,
    "TWILIO_MORBYLANGA_SID": "AC" + "2" * 32,
    "TWILIO_MORBYLANGA_TOKEN": MORBYLANGA_TOKEN,
    "TWILIO_SHARED_KEY": SHARED_KEY,
}
RECIPIENT = "+46701234567"

SMS_TARGETS = """
[[targets]]
id = "sms-borgholm"
channel = "sms"
organisation = "borgholm"
list = "borgholm-residents"
sender = "Borgholm"
account_sid = "env:TWILIO_ACCOUNT_SID"
auth_token = "env:TWILIO_AUTH_TOKEN"
webhook_shared_key = "env:TWILIO_SHARED_KEY"

[[targets]]
id = "sms-morbylanga"
channel = "sms"
organisation = "morbylanga"
list = "morbylanga-residents"
sender = "Morbylanga"
account_sid = "env:TWILIO_MORBYLANGA_SID"
auth_token = "env:TWILIO_MORBYLANGA_TOKEN"
"""


def configure(
    workspace_dir: Path,
    database_url: str,
    *,
    public_base_url: str | None = PUBLIC,
    secrets: Mapping[str, str] = SECRETS,
    sms_targets: str = SMS_TARGETS,
) -> Path:
    """The workspace with SMS targets, a public URL and (in .env) the accounts' secrets."""
    set_database_url(workspace_dir, database_url)
    path = workspace_dir / "broadcaster.toml"
    text = path.read_text(encoding="utf-8")
    if public_base_url is not None:
        text = text.replace(
            '# public_base_url = "https://broadcaster.example.se"',
            f'public_base_url = "{public_base_url}"',
        )
    path.write_text(text + sms_targets, encoding="utf-8")
    with (workspace_dir / ".env").open("a", encoding="utf-8") as env:
        env.writelines(f"{name}={value}\n" for name, value in secrets.items())
    return path


def sms_deliveries(
    app: App,
    count: int = 1,
    *,
    target: str = "sms-borgholm",
    sent: bool = True,
) -> list[Delivery]:
    """``count`` SMS deliveries of a new announcement, each (when ``sent``) with its SID stored."""
    draft = create_draft(app, "kommunikator", DraftInput(title="Läget", body="Koka vattnet."))
    now = app.clock()
    rows = [
        NewDelivery(target=target, channel="sms", recipient=f"+4670{n:07d}") for n in range(count)
    ]
    with app.store.write() as conn:
        create_deliveries(
            conn, announcement_id=draft.id, revision_id=draft.revision.id, rows=rows, now=now
        )
        made = sorted(d.id for d in deliveries_for(conn, draft.id))
        if sent:
            updates = [
                DeliveryUpdate(
                    delivery_id=delivery_id,
                    expected=(DeliveryState.PENDING,),
                    attempt=None,
                    state=DeliveryState.SENT,
                    platform_id=sid_for(delivery_id),
                )
                for delivery_id in made
            ]
            record_updates(conn, updates, now)
        return [found for _, found in sorted(get_deliveries(conn, made).items())]


def sid_for(delivery_id: int) -> str:
    """The message SID the tests give a delivery."""
    return f"SM{delivery_id:032x}"


def delivery(app: App, delivery_id: int) -> Delivery:
    with app.store.read() as conn:
        return get_deliveries(conn, [delivery_id])[delivery_id]


def callback_form(
    delivery_id: int, status: str, *, sid: str | None = None, error_code: int | None = None
) -> dict[str, str]:
    """The form Twilio posts for a status change of an SMS sent with a sender id."""
    form = {
        "SmsSid": sid or sid_for(delivery_id),
        "SmsStatus": status,
        "MessageStatus": status,
        "To": RECIPIENT,
        "MessageSid": sid or sid_for(delivery_id),
        "AccountSid": SECRETS["TWILIO_ACCOUNT_SID"],
        "From": "Borgholm",
        "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form


@dataclass
class Caller:
    """Posts status callbacks to a running server, signed as Twilio signs them."""

    url: str

    def post(
        self,
        delivery_id: int | str,
        form: Mapping[str, str],
        *,
        token: str = BORGHOLM_TOKEN,
        signed_url: str | None = None,
        idempotency: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: str | None = None,
    ) -> httpx.Response:
        """POST ``form`` for ``?d=delivery_id``; signed for the public URL unless told."""
        query = query if query is not None else f"d={delivery_id}"
        suffix = f"?{query}" if query else ""
        public = signed_url or f"{PUBLIC}/twilio/status{suffix}"
        signature = RequestValidator(token).compute_signature(public, dict(form))
        sent = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": idempotency or str(uuid.uuid4()),
            **(headers or {}),
        }
        return httpx.post(f"{self.url}/twilio/status{suffix}", data=form, headers=sent, timeout=10)


@dataclass
class Running:
    """`serve` in a background thread of the test process, on a real socket."""

    app: App
    background: Background

    @property
    def url(self) -> str:
        return self.background.url

    @property
    def service(self) -> Service:
        return self.background.service

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.background.loop

    def stop(self) -> None:
        assert self.background.stop(timeout=30), "serve did not stop"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10)


def start_serve(app: App, sock: Any, *, worker: bool = False) -> Running:
    """Run `serve` for ``app`` on ``sock`` until the test ends."""
    return Running(app=app, background=serve_in_background(app, sock, worker=worker))


ServeFactory = Callable[..., Running]


@pytest.fixture
def serve_factory(workspace_dir: Path, database_url: str) -> Iterator[ServeFactory]:
    """Starts `serve` on a free port for a workspace with SMS targets (SQLite and PostgreSQL).

    ``public_base_url`` may name the server's own URL (``"self"``), as a test without a proxy
    in front does.
    """
    started: list[Running] = []
    counter = itertools.count()

    def start(
        *, public_base_url: str | None = PUBLIC, worker: bool = False, **options: Any
    ) -> Running:
        assert next(counter) == 0, "one server per test"
        sock = listen("127.0.0.1", 0)
        own = f"http://127.0.0.1:{sock.getsockname()[1]}"
        public = own if public_base_url == "self" else public_base_url
        path = configure(workspace_dir, database_url, public_base_url=public, **options)
        app = open_app(load_workspace(path, {}))
        running = start_serve(app, sock, worker=worker)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
        running.app.close()


# ---------------------------------------------------------------------------------------------
# Bot Framework: serve with /api/messages, and a key nobody publishes


@pytest.fixture(scope="module")
def stranger() -> SigningKey:
    """An RS256 key that nobody publishes (as if Bot Framework had just rotated to it)."""
    return SigningKey("a key not yet published")


@pytest.fixture
def bot(workspace_dir: Path, database_url: str, sandbox: Any) -> Iterator[BotServer]:
    """``serve`` (no worker) on a real socket for a workspace whose bot the sandbox plays."""
    # Imported here: tests/server/botframework.py builds on this module's start_serve.
    from tests.server.botframework import start_bot_server, stop_bot_server

    server = start_bot_server(workspace_dir, database_url, sandbox)
    yield server
    stop_bot_server(server)


def send_to_list(app: App, directory: Path, numbers: list[str]) -> int:
    """Import ``numbers`` as Borgholm's list, have an update to sms-borgholm approved, send it."""
    from broadcaster.approval import approve
    from broadcaster.authoring import submit
    from broadcaster.recipients import import_list
    from broadcaster.schedule import send_announcement

    members = directory / "boende.csv"
    members.write_text("number\n" + "\n".join(numbers) + "\n", encoding="utf-8")
    import_list(app, "admin", "boende", members, organisation="borgholm")
    draft = create_draft(
        app, "kommunikator", DraftInput(title="Vattnet", body="Koka vattnet.", to=("sms-borgholm",))
    )
    submit(app, "kommunikator", draft.id)
    approve(app, "anna.hasselbom", draft.id)
    approve(app, "jens.odevall", draft.id)
    send_announcement(app, "kommunikator", draft.id)
    return draft.id


#: Borgholm's SMS target sending to the list "boende" (import it with :func:`send_to_list`).
SMS_LIST_TARGET = """
[[targets]]
id = "sms-borgholm"
channel = "sms"
organisation = "borgholm"
list = "boende"
sender = "Borgholm"
account_sid = "env:TWILIO_ACCOUNT_SID"
auth_token = "env:TWILIO_AUTH_TOKEN"
"""
