"""The SMS channel: one text to each recipient of a list, through Twilio (DESIGN §6, PLATFORMS §2).

One delivery is one recipient: :meth:`SmsChannel.recipients` returns the target's list, and
:meth:`SmsChannel.send` creates one Twilio Message for ``message.recipient`` — from the target's
sender id or Messaging Service, with a ``ValidityPeriod`` so a text Twilio could not send in time
is dropped rather than delivered hours late, and, when ``public_base_url`` is set, a status
callback to ``broadcaster serve`` naming the delivery (``?d=<id>``).

The twilio SDK does the HTTP through its asynchronous client, so that one worker keeps dozens of
sends in flight on one event loop; :mod:`.sms_client` gives every request a deadline (the SDK's
async client has none) and tells "never sent" apart from "sent, answer lost". The SDK is
imported on first use: the CLI starts without it.

Corrections and retractions cannot edit a text already on a phone: they go out as new texts,
which the template heads "Rättelse:" or "Återkallat:".

Did it arrive? After an answer that may have been lost (:class:`UnknownOutcome`), the
recipient's recent messages are listed and matched on the exact text, the sender and a creation
time no earlier than shortly before the delivery was dispatched. ``date_sent`` stays empty until
a message leaves Twilio's queue, so filtering on it (``DateSent>``) would miss exactly the queued
messages that most need finding; the creation time is compared here instead.

How Twilio's answers are read (codes: :mod:`.sms_errors`):

=======================================  ==================================================
21211, 21614, other 21xxx               PermanentError: this number cannot get the text
21610 (the recipient replied STOP)      RecipientOptedOut: the number goes on the opt-out list
20003 / 401                             AuthError: renew the auth token
20429 / 429                             RateLimited, as long as ``Retry-After`` says
5xx from Twilio, 21611 (queue full)     TransientError
no connection made (nothing sent)       TransientError
timeout, connection lost, gateway 5xx   UnknownOutcome: looked up before any resend
=======================================  ==================================================
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from broadcaster.channels.base import Channel, ChannelContext, Rendered
from broadcaster.channels.sms_errors import classify, masked
from broadcaster.config import SmsTarget, TargetConfig
from broadcaster.errors import (
    AuthError,
    ChannelError,
    InputError,
    PermanentError,
    TransientError,
    UnknownOutcome,
)
from broadcaster.model import Receipt
from broadcaster.rendering.message import Message
from broadcaster.rendering.sms_text import SmsText, analyse, segment_problem

if TYPE_CHECKING:
    from twilio.rest import Client

    from broadcaster.channels.sms_client import TimedTwilioHttpClient

__all__ = ["SmsChannel"]

TEMPLATE = "sms/message.txt"
PUBLIC_ROOT = "https://api.twilio.com"
URL_VARIABLE = "BROADCASTER_TWILIO_API_URL"
#: Longest wait for a connection to Twilio (from the pool, or a new one).
_CONNECT_S = 5.0
#: ``Client`` reads TWILIO_EDGE / TWILIO_REGION from ``os.environ`` unless it is handed a
#: non-empty mapping; either would send requests to another host than the one configured.
_NO_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


class SmsChannel(Channel):
    """Texts each recipient of one list through one Twilio account."""

    name: ClassVar[str] = "sms"
    can_update = False
    can_delete = False
    can_verify = True
    # A second text is a second text: after an unknown outcome it is looked up, never resent
    # blindly.
    blind_resend_ok = False
    #: Twilio's limit for one message body (``max_segments`` is usually the tighter one).
    max_text_length = 1600
    # Twilio queues texts per sender and answers a create in tens of milliseconds; throughput
    # comes from many requests in flight (26,000 recipients in about a minute), not from one
    # at a time. A rate of its own is the target's ``rate_per_second``.
    default_concurrency = 48
    call_timeout_seconds = 30.0
    #: A message of this delivery may carry a creation time this much before the delivery
    #: was dispatched (our clock against Twilio's).
    verify_margin: ClassVar[timedelta] = timedelta(minutes=5)
    #: How many of the recipient's newest messages a lookup reads.
    verify_limit: ClassVar[int] = 100

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, SmsTarget):
            raise InputError(f"target {target.id} is not an SMS target")
        self.sms = target
        self._client: Client | None = None
        self._http: TimedTwilioHttpClient | None = None

    @classmethod
    def recipient_list(cls, target: TargetConfig) -> str | None:
        """The target's list: the dispatch creates one delivery per member in the database."""
        if not isinstance(target, SmsTarget):
            raise InputError(f"target {target.id} is not an SMS target")
        return target.list

    def call_timeout(self) -> float:
        """One request with its connection, and room to spare for the runner's deadline."""
        return max(self.call_timeout_seconds, _CONNECT_S + self.sms.timeout_seconds + 5.0)

    # -- rendering ------------------------------------------------------------------------------

    def describe(self, message: Message) -> SmsText:
        """The text as it will be sent, with its encoding, segments and replacements."""
        raw = self.context.renderer.render(TEMPLATE, message.context())
        return analyse(raw.strip(), replace=self.sms.gsm_replacements)

    def render(self, message: Message) -> Rendered:
        """The text, typography replaced where that keeps it GSM-7."""
        return Rendered(text=self.describe(message).text)

    def check(self, rendered: Rendered) -> list[str]:
        """An empty text, and a text longer than ``max_segments`` allows."""
        if not rendered.text:
            return [f"{TEMPLATE} rendered an empty text"]
        problems = super().check(rendered)
        sms = analyse(rendered.text, replace=False)  # render already replaced what it may
        problem = segment_problem(sms, self.sms.max_segments, self.target.id)
        return [*problems, problem] if problem else problems

    def where_posted(self) -> str:
        """Where a person looks: the Twilio Console's message log."""
        return f"the Twilio Console's message log of target {self.target.id}"

    # -- the platform ---------------------------------------------------------------------------

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """Create one Twilio message to ``message.recipient``; the receipt holds its SID."""
        if rendered.problems or not rendered.text:
            raise PermanentError(self.name, "; ".join(rendered.problems) or "nothing to send")
        if not message.recipient:
            raise PermanentError(self.name, "the delivery names no recipient")
        fields: dict[str, Any] = {
            "to": message.recipient,
            "body": rendered.text,
            "validity_period": self.sms.validity_period,
            **self._sender(),
        }
        callback = self._status_callback(message)
        if callback is not None:
            fields["status_callback"] = callback
        client = self._twilio()
        try:
            created = await self._within(client.messages.create_async(**fields))
        except Exception as exc:
            raise self._failure(exc, may_have_sent=True) from None
        return Receipt(str(created.sid), {"status": str(created.status or "")})

    async def verify(self, message: Message) -> Receipt | None:
        """The message of this delivery, if Twilio has it (module docstring: how it matches).

        A lookup that fails raises a retryable error, so the delivery stays unknown and is
        looked up again, never resent; refused credentials raise :class:`AuthError`.
        """
        text = (await asyncio.to_thread(self.describe, message)).text
        since = message.updated_at - self.verify_margin
        client = self._twilio()
        try:
            found = await self._within(
                client.messages.list_async(
                    to=message.recipient, limit=self.verify_limit, page_size=self.verify_limit
                )
            )
        except Exception as exc:
            error = self._failure(exc, may_have_sent=False)
            if isinstance(error, AuthError):
                raise error from None
            raise TransientError(self.name, f"could not look the message up: {error}") from None
        for candidate in found:
            if self._matches(candidate, text, since):
                return Receipt(str(candidate.sid), {"status": str(candidate.status or "")})
        return None

    async def check_online(self) -> list[str]:
        """Whether the account SID and auth token work: list one message (cheap, read-only)."""
        try:
            await self._within(self._twilio().messages.list_async(limit=1, page_size=1))
        except Exception as exc:
            error = self._failure(exc, may_have_sent=False)
            if isinstance(error, AuthError):
                return [error.message]
            return [f"cannot ask Twilio: {error.message}"]
        return []

    async def aclose(self) -> None:
        """Close the HTTP session (the adapter can be used again; it opens a new one)."""
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()

    # -- helpers --------------------------------------------------------------------------------

    def _twilio(self) -> Client:
        """The SDK's client on our HTTP client, pointed at the configured API root."""
        if self._client is None:
            from twilio.rest import Client

            from broadcaster.channels.sms_client import TimedTwilioHttpClient

            self._http = TimedTwilioHttpClient(
                connect_timeout=_CONNECT_S, read_timeout=self.sms.timeout_seconds
            )
            client = Client(
                self.sms.account_sid.get_secret_value(),
                self.sms.auth_token.get_secret_value(),
                http_client=self._http,
                environment=_NO_ENVIRONMENT,
            )
            root = self.context.endpoints.get(URL_VARIABLE)
            if root:
                client.api.base_url = root.rstrip("/")
            self._client = client
        return self._client

    async def _within(self, call: Any) -> Any:
        """Await a call of the SDK under the request's deadline (belt and braces: the HTTP
        client has its own, and the worker's lease one more)."""
        # asyncio.timeout rather than wait_for: no task of its own for each of 26,000 sends.
        async with asyncio.timeout(_CONNECT_S + self.sms.timeout_seconds + 1.0):
            return await call

    def _sender(self) -> dict[str, str]:
        if self.sms.messaging_service_sid:
            return {"messaging_service_sid": self.sms.messaging_service_sid}
        return {"from_": self.sms.sender or ""}

    def _status_callback(self, message: Message) -> str | None:
        base = self.context.public_base_url
        if not base or message.delivery_id is None:
            return None
        return f"{base.rstrip('/')}/twilio/status?d={message.delivery_id}"

    def _matches(self, candidate: Any, text: str, since: datetime) -> bool:
        created = candidate.date_created
        if created is None or created < since:
            return False
        if _normal(candidate.body or "") != _normal(text):
            return False
        service = self.sms.messaging_service_sid
        if service:
            return bool(candidate.messaging_service_sid == service)
        # A sender id may come back as Twilio prints it; only a different one rules it out.
        return not candidate.from_ or candidate.from_ == self.sms.sender

    def _failure(self, exc: BaseException, *, may_have_sent: bool) -> ChannelError:
        """Our error for anything the SDK or the HTTP client raised (module docstring)."""
        import aiohttp
        from twilio.base.exceptions import (
            TwilioException,
            TwilioRestException,
            TwilioServiceException,
        )

        from broadcaster.channels.sms_client import NotSent, WaitRequested, error_answer

        if isinstance(exc, TwilioRestException):
            retry_after = exc.retry_after if isinstance(exc, WaitRequested) else None
            return self._classified(exc.code, exc.status, str(exc.msg), retry_after, may_have_sent)
        if isinstance(exc, TwilioServiceException):
            said = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
            return self._classified(exc.code, exc.status, said, None, may_have_sent)
        answered = error_answer(exc) if isinstance(exc, TwilioException) else None
        if answered is not None:
            status, code, said = answered
            return self._classified(code, status, said, None, may_have_sent)
        if isinstance(exc, NotSent):
            return TransientError(
                self.name,
                f"{masked(str(exc))}; nothing was sent — check this machine's network, or "
                f"{URL_VARIABLE} if it is set",
            )
        if isinstance(exc, TimeoutError):
            what = f"no answer from Twilio within {self.sms.timeout_seconds:g} s"
        elif isinstance(exc, aiohttp.ClientError):
            what = f"the connection to Twilio failed: {type(exc).__name__}: {exc}"
        else:
            what = f"unexpected answer from Twilio: {type(exc).__name__}: {exc}"
        what = masked(what)
        if may_have_sent:
            return UnknownOutcome(
                self.name, f"{what}; Twilio may have accepted it: looked up before any resend"
            )
        return TransientError(self.name, what)

    def _classified(
        self,
        code: Any,
        status: Any,
        message: str,
        retry_after: float | None,
        may_have_sent: bool,
    ) -> ChannelError:
        return classify(
            code=code if isinstance(code, int) else None,
            status=status if isinstance(status, int) else None,
            message=message,
            retry_after=retry_after,
            target=self.target.id,
            may_have_sent=may_have_sent,
        )


def _normal(text: str) -> str:
    """Text as compared with what Twilio stored: line ends and outer blanks do not count."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").strip().split("\n"))
