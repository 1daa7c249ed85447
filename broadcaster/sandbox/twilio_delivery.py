"""What happens to a Twilio message after it was accepted: carrier outcome and status callbacks.

A background task moves each message through its statuses (``queued`` with a Messaging Service,
then ``sent``, then ``delivered`` or ``undelivered``/``failed`` with an ``ErrorCode``) and, when
the message has a ``StatusCallback``, POSTs each status there as Twilio does: a form body signed
with ``X-Twilio-Signature`` (HMAC-SHA1 of the URL and sorted parameters with the auth token, made
with twilio's own ``RequestValidator``) and a fresh ``I-Twilio-Idempotency-Token``. No callback is
sent for the initial status. Only loopback URLs are called; others are recorded as not sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import httpx
from twilio.request_validator import RequestValidator

from .records import Recorder
from .twilio_model import Message

__all__ = ["LOOPBACK_HOSTS", "DeliveryRules", "Outcome", "StatusCourier"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Outcome:
    """The final status of messages to matching numbers."""

    match: str
    status: str = "undelivered"
    error_code: int | None = 30003

    def applies_to(self, number: str) -> bool:
        """An exact number (``+...``) matches itself; anything else is a suffix of the number."""
        return number == self.match if self.match.startswith("+") else number.endswith(self.match)


_DEFAULT_OUTCOMES = (
    Outcome("0003", "undelivered", 30003),
    Outcome("0005", "undelivered", 30005),
    Outcome("0006", "undelivered", 30006),
    Outcome("0007", "undelivered", 30007),
    Outcome("0008", "failed", 30008),
)


class DeliveryRules:
    """Which numbers are delivered and which are not; the first matching rule wins."""

    def __init__(self) -> None:
        """Start with the default rules: numbers ending 0003/0005/0006/0007 are undelivered
        with that 3000x code, numbers ending 0008 fail with 30008, all others are delivered."""
        self._rules: list[Outcome] = list(_DEFAULT_OUTCOMES)

    def set(self, match: str, status: str = "undelivered", error_code: int | None = 30003) -> None:
        """Add a rule in front of the others (``status`` ``delivered`` clears ``error_code``)."""
        if status not in ("delivered", "undelivered", "failed"):
            raise ValueError("status must be delivered, undelivered or failed")
        code = None if status == "delivered" else error_code
        self._rules.insert(0, Outcome(match, status, code))

    def reset(self) -> None:
        """Back to the default rules."""
        self._rules = list(_DEFAULT_OUTCOMES)

    def outcome(self, number: str) -> Outcome:
        """The outcome for a number."""
        for rule in self._rules:
            if rule.applies_to(number):
                return rule
        return Outcome(number, "delivered", None)


def _raw_dlr_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%y%m%d%H%M")


class StatusCourier:
    """Moves accepted messages through their statuses and delivers their status callbacks."""

    def __init__(
        self,
        auth_token: Callable[[], str],
        records: Recorder,
        clock: Callable[[], float],
        rules: DeliveryRules,
    ) -> None:
        """Create the courier for one Twilio account."""
        self._auth_token = auth_token
        self._records = records
        self._clock = clock
        self.rules = rules
        self.delay_s = 0.05
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation = 0

    def start(self, message: Message) -> None:
        """Begin delivering ``message`` in the background (call from the server's loop)."""
        self._loop = asyncio.get_running_loop()
        task = self._loop.create_task(self._deliver(message, self._generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_pending(self) -> None:
        """Abandon deliveries in progress; safe to call from any thread."""
        self._generation += 1
        if self._loop is not None and not self._loop.is_closed():
            for task in list(self._tasks):
                self._loop.call_soon_threadsafe(task.cancel)

    async def aclose(self) -> None:
        """Stop pending deliveries and close the HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _steps(self, message: Message) -> list[str]:
        final = self.rules.outcome(message.to)
        first = ["queued"] if message.messaging_service_sid else []
        if final.status == "failed":
            return [*first, "failed"]
        return [*first, "sent", final.status]

    async def _deliver(self, message: Message, generation: int) -> None:
        final = self.rules.outcome(message.to)
        for status in self._steps(message):
            await asyncio.sleep(self.delay_s)
            if generation != self._generation:
                return
            now = self._clock()
            message.status, message.updated = status, now
            if status == "sent":
                message.sent = now
            if status in ("undelivered", "failed"):
                message.error_code = final.error_code
            if message.status_callback and generation == self._generation:
                await self._callback(message)

    def _params(self, message: Message) -> dict[str, str]:
        params = {
            "SmsSid": message.sid,
            "SmsStatus": message.status,
            "MessageStatus": message.status,
            "To": message.to,
            "MessageSid": message.sid,
            "AccountSid": message.account_sid,
            "From": message.from_ or "",
            "ApiVersion": "2010-04-01",
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        if message.status in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = _raw_dlr_date(message.updated)
        return params

    async def _callback(self, message: Message) -> None:
        url = message.status_callback or ""
        params = self._params(message)
        signature = RequestValidator(self._auth_token()).compute_signature(url, params)
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        record = self._records.add(
            platform="twilio",
            direction="out",
            method="POST",
            url=url,
            path=urlsplit(url).path,
            headers={k.lower(): v for k, v in headers.items()},
            body=urlencode(params),
            form={k: [v] for k, v in params.items()},
            target=message.to,
        )
        message.callbacks.append(message.status)
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            self._records.finish(record, note="not sent: the sandbox only calls loopback addresses")
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5.0)
        try:
            answer = await self._client.post(url, data=params, headers=headers)
        except httpx.HTTPError as error:
            self._records.finish(record, note=f"callback failed: {error!r}")
            return
        self._records.finish(record, status=answer.status_code, response=answer.text)
