"""Twilio Programmable Messaging emulator: create, fetch and list Messages.

Mounted at ``/twilio``, so ``BROADCASTER_TWILIO_API_URL=http://127.0.0.1:PORT/twilio`` replaces
``https://api.twilio.com`` (``client.api.base_url = ...``). Requests need HTTP Basic auth with the
account SID and auth token; the create form is checked as api.twilio.com checks it (see
:mod:`.twilio_model`); accepted messages get a unique ``SM`` + 32 hex SID and go through their
statuses with signed status callbacks (see :mod:`.twilio_delivery`). The list supports Twilio's
filters ``To``, ``From``, ``DateSent``, ``DateSent<`` and ``DateSent>`` (``date_sent`` stays empty
until the message is sent, as on Twilio) and paging.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from .exchange import Context, Emulator, Incoming, retry_after_headers
from .faults import Fault
from .twilio_delivery import DeliveryRules, StatusCourier
from .twilio_model import Message, TwilioError, check_create

__all__ = ["TwilioEmulator"]

_ACCOUNT_PATH = "/2010-04-01/Accounts/{account_sid}"
_STATUS_CODES = {400: 21201, 401: 20003, 403: 20403, 404: 20404, 429: 20429, 500: 20500, 503: 20503}
_STATUS_TEXT = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    20404: "The requested resource was not found",
}


class TwilioEmulator(Emulator):
    """Messages resource of the 2010-04-01 REST API for the sandbox's one account."""

    platform = "twilio"
    mount = "/twilio"

    def __init__(self, ctx: Context) -> None:
        """Create the emulator for the account in the sandbox credentials."""
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._messages: dict[str, Message] = {}
        self.opted_out: set[str] = set()
        self.rules = DeliveryRules()
        self.courier = StatusCourier(
            lambda: ctx.credentials.twilio_auth_token, ctx.records, ctx.clock, self.rules
        )

    # Python API -------------------------------------------------------------------------------

    def messages(self, to: str | None = None) -> list[Message]:
        """Accepted messages, oldest first, optionally only those to one number."""
        with self._lock:
            return [m for m in self._messages.values() if to is None or m.to == to]

    def opt_out(self, number: str) -> None:
        """Refuse further messages to ``number`` with 21610 (the recipient replied STOP)."""
        self.opted_out.add(number)

    def set_outcome(
        self, match: str, status: str = "undelivered", error_code: int | None = 30003
    ) -> None:
        """Script the final status for a number (``+...``) or a number suffix."""
        self.rules.set(match, status, error_code)

    def reset(self) -> None:
        """Forget messages, opt-outs and scripted outcomes."""
        self.courier.cancel_pending()
        with self._lock:
            self._messages.clear()
        self.opted_out.clear()
        self.rules.reset()

    # Emulator ---------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """Messages list/create and instance fetch."""
        return [
            self.route(_ACCOUNT_PATH + "/Messages.json", self._collection, ["GET", "POST"]),
            self.route(_ACCOUNT_PATH + "/Messages/{sid}.json", self._fetch, ["GET"]),
        ]

    def targets(self, incoming: Incoming) -> list[str]:
        """The recipient: ``To`` of a create or list, the message's ``To`` for a fetch."""
        if "sid" in incoming.path_params:
            with self._lock:
                message = self._messages.get(incoming.path_params["sid"])
            return [message.to] if message else []
        to = incoming.field("To")
        return [to] if to else []

    def fault_response(self, fault: Fault) -> Response:
        """Twilio error JSON with ``Retry-After`` when given."""
        code = fault.code if isinstance(fault.code, int) else _STATUS_CODES.get(fault.status)
        code = code or fault.status
        message = fault.message or _STATUS_TEXT.get(code, "Service error")
        headers = retry_after_headers(fault.retry_after)
        return TwilioError(code, message, fault.status, headers).response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """Twilio's 404."""
        return TwilioError(
            20404, f"The requested resource {incoming.path} was not found", 404
        ).response()

    # Handlers ---------------------------------------------------------------------------------

    async def _collection(self, incoming: Incoming) -> Response:
        account = self._authenticate(incoming)
        if incoming.method == "GET":
            return JSONResponse(self._list(incoming, account))
        if incoming.form is None:
            raise TwilioError(21201, "Requests must be application/x-www-form-urlencoded")
        check_create(incoming.form, self.ctx.specs, self.opted_out)
        message = self._create(incoming.form, account)
        self.courier.start(message)
        return JSONResponse(message.to_json(), 201)

    async def _fetch(self, incoming: Incoming) -> Response:
        account = self._authenticate(incoming)
        with self._lock:
            message = self._messages.get(incoming.path_params["sid"])
        if message is None or message.account_sid != account:
            raise TwilioError(20404, f"The requested resource {incoming.path} was not found", 404)
        return JSONResponse(message.to_json())

    # Helpers ----------------------------------------------------------------------------------

    def _authenticate(self, incoming: Incoming) -> str:
        c = self.ctx.credentials
        scheme, _, encoded = incoming.headers.get("authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        valid = (
            scheme.lower() == "basic"
            and hmac.compare_digest(user, c.twilio_account_sid)
            and hmac.compare_digest(password, c.twilio_auth_token)
            and incoming.path_params["account_sid"] == c.twilio_account_sid
        )
        if not valid:
            raise TwilioError(
                20003, "Authenticate", 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            )
        return c.twilio_account_sid

    def _create(self, form: dict[str, list[str]], account: str) -> Message:
        def value(name: str) -> str | None:
            values = form.get(name)
            return values[-1] if values and values[-1] != "" else None

        service = value("MessagingServiceSid")
        now = self.ctx.clock()
        message = Message(
            sid="SM" + secrets.token_hex(16),
            account_sid=account,
            to=value("To") or "",
            from_=value("From"),
            messaging_service_sid=service,
            body=value("Body") or "",
            status_callback=value("StatusCallback"),
            created=now,
            status="accepted" if service else "queued",
            updated=now,
        )
        with self._lock:
            self._messages[message.sid] = message
        return message

    def _list(self, incoming: Incoming, account: str) -> dict[str, Any]:
        params = {k: v[-1] for k, v in incoming.query.items()}
        try:
            size = min(max(int(params.get("PageSize", 50)), 1), 1000)
            page = max(int(params.get("Page", 0)), 0)
        except ValueError:
            raise TwilioError(21201, "Invalid paging parameters") from None
        selected = [m for m in self.messages() if m.account_sid == account and _matches(m, params)]
        selected.sort(key=lambda m: m.created, reverse=True)
        chunk = selected[page * size : (page + 1) * size]
        base = f"/2010-04-01/Accounts/{account}/Messages.json"
        filters = {k: v for k, v in params.items() if k not in ("Page", "PageSize", "PageToken")}

        def page_uri(number: int) -> str:
            query = {**filters, "PageSize": size, "Page": number}
            if number:
                query["PageToken"] = f"PA{secrets.token_hex(16)}"
            return f"{base}?{urlencode(query)}"

        more = (page + 1) * size < len(selected)
        return {
            "messages": [m.to_json() for m in chunk],
            "end": page * size + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if more else None,
            "previous_page_uri": page_uri(page - 1) if page else None,
            "page": page,
            "page_size": size,
            "start": page * size,
            "uri": page_uri(page),
        }


def _parse_date(text: str) -> tuple[datetime, bool]:
    """A ``DateSent`` filter value: ``YYYY-MM-DD`` (date only) or ISO 8601 date and time."""
    if len(text) == 10:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC), True
    return datetime.fromisoformat(text.replace("Z", "+00:00")), False


def _matches(message: Message, params: dict[str, str]) -> bool:
    if "To" in params and message.to != params["To"]:
        return False
    if "From" in params and message.from_ != params["From"]:
        return False
    for key, compare in (("DateSent", "=="), ("DateSent<", "<="), ("DateSent>", ">=")):
        if key not in params:
            continue
        if message.sent is None:
            return False
        try:
            bound, date_only = _parse_date(params[key])
        except ValueError:
            raise TwilioError(21201, f"Invalid {key} value {params[key]!r}") from None
        sent = datetime.fromtimestamp(message.sent, UTC)
        left, right = (sent.date(), bound.date()) if date_only else (sent, bound)
        if not _compare(left, right, compare):
            return False
    return True


def _compare(left: Any, right: Any, operator: str) -> bool:
    if operator == "==":
        return bool(left == right)
    return bool(left <= right) if operator == "<=" else bool(left >= right)
