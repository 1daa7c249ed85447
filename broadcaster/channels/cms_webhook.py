"""The website channel's ``webhook`` mode: each announcement as signed JSON to the CMS.

The protocol is ours, and README "The CMS side" is its reference for whoever writes the receiver:

=================================  ==============================================================
``POST {url}``                     the revision's document (:mod:`.cms_document`); the CMS
                                   answers 2xx with ``{"id": ...}`` (or a ``Location`` ending in
                                   the id): the receipt
``PUT {url}/{id}``                 a correction: the new revision's document replaces it
``DELETE {url}/{id}``              a retraction: a small signed body names what to remove; 404 or
                                   410 means it is gone already, which is success
=================================  ==============================================================

``{url}/{id}`` keeps the query of ``url``, so a token there goes along. Every request carries
``X-Broadcaster-Timestamp`` and ``X-Broadcaster-Signature`` (:mod:`broadcaster.signing`) over its
exact body, and ``Idempotency-Key``: the delivery's key, the same on every attempt.

Whether a POST whose answer was lost arrived is not asked: the protocol has no read request.
The CMS must answer a repeated ``Idempotency-Key`` with what it made the first time, so sending
again is harmless (``blind_resend_ok``), and a lost answer is retried with backoff like a CMS
that is down — which is what a crisis needs when the municipality's site is the thing that broke.

How answers are read (the table as data: :mod:`.cms_errors`):

=====================================  ===========================================================
2xx                                    sent; the receipt is the CMS's id
429 (``Retry-After``)                  RateLimited, for this target
408, 409 on POST, 425, 5xx            TransientError (``Retry-After`` honoured when given)
401, 403                               AuthError: check ``secret``, the token in ``url``, the clock
404 / 410 on DELETE                    success: already gone
404 / 410 on PUT                       PermanentError: the CMS no longer has it
409 on PUT or DELETE                   PermanentError: the id holds another announcement
3xx and other 4xx                      PermanentError with the CMS's words (short, no secrets)
no connection                          TransientError: nothing was sent
timeout or lost answer                 TransientError: it is sent again with the same key
=====================================  ===========================================================

The URL is a secret (``url = "env:NAME"``): errors and logs name only ``scheme://host[:port]``,
and whatever the CMS says is stripped of the URL, its token and the signing secret before it is
kept (:class:`~.cms_errors.Redactor`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from broadcaster.channels.base import Channel, ChannelContext, Receipt, Rendered
from broadcaster.channels.cms_document import (
    announcement_document,
    encode,
    removal_document,
)
from broadcaster.channels.cms_errors import Kind, Redactor, answer_for, cms_detail, place_of
from broadcaster.channels.teams_http import LoopClient, retry_after
from broadcaster.config import TargetConfig, WebsiteWebhookTarget
from broadcaster.errors import (
    AuthError,
    ChannelError,
    InputError,
    PermanentError,
    RateLimited,
    TransientError,
)
from broadcaster.rendering.message import Message
from broadcaster.signing import signed_headers

if TYPE_CHECKING:
    import httpx

__all__ = ["WebsiteWebhookChannel"]

log = logging.getLogger("broadcaster.channels.cms_webhook")

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Longest id of the CMS's that is kept; anything longer is not an id but a mistake.
_MAX_ID_LENGTH = 200


class WebsiteWebhookChannel(Channel):
    """Publishes, corrects and removes announcements in a CMS through its signed webhook."""

    name: ClassVar[str] = "website"
    mode: ClassVar[str | None] = "webhook"
    can_update = True
    can_delete = True
    can_verify = False
    # The Idempotency-Key makes a repeat harmless (module docstring).
    blind_resend_ok = True
    # The CMS is the municipality's own site, the thing that went down for days in the seed:
    # worth retrying as long as the static site.
    max_attempts = 60
    max_age_seconds = 48 * 3600
    # One request at a time per CMS and worker: a correction does not race its original.
    default_concurrency = 1
    call_timeout_seconds = 45.0
    #: Longest each phase of one request (connect, write, read) may take; together they stay
    #: below the call's deadline, so a slow CMS is a classified timeout, not a cut-off call.
    request_timeout_seconds: ClassVar[float] = 12.0

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, WebsiteWebhookTarget):
            raise InputError(f"target {target.id}: the CMS webhook adapter serves mode 'webhook'")
        self.webhook_target = target
        self._url = target.url.get_secret_value()
        self._secret = target.secret.get_secret_value()
        self._place = place_of(self._url)
        self._redact = Redactor(self._url, self._secret)
        self._http = LoopClient(context.http_transport, self.request_timeout_seconds)
        #: Unix time for the signature's timestamp: the wall clock, which the CMS compares with
        #: its own (never the queue's clock, which may be the database's or a test's).
        self.wall_clock: Callable[[], float] = time.time

    # -- rendering ----------------------------------------------------------------------------

    def render(self, message: Message) -> Rendered:
        """The document the CMS is sent, as data (``preview --json`` shows it)."""
        return Rendered(card=announcement_document(message, self.context.timezone))

    def where_posted(self) -> str:
        """The CMS, by host only (the URL may carry a token)."""
        return f"{self._place} (target {self.target.id})"

    # -- the CMS ------------------------------------------------------------------------------

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """POST the document; the receipt is the id the CMS gave the announcement."""
        body = self._body(rendered)
        answer = await self._call("POST", self._url, body, message.idempotency_key)
        if answer.is_success:
            return self._receipt(answer, message)
        raise self._failure(answer, "POST")

    async def update(self, receipt: Receipt, message: Message, rendered: Rendered) -> Receipt:
        """PUT the correction's document to the resource ``receipt`` names."""
        url = self._resource_url(receipt)
        answer = await self._call("PUT", url, self._body(rendered), message.idempotency_key)
        if answer.is_success:
            return Receipt(receipt.platform_id, {"uid": message.uid})
        if answer_for(answer.status_code, "PUT").kind is Kind.GONE:
            raise PermanentError(
                self.name,
                f"{self._place} no longer has announcement {receipt.platform_id} (removed by "
                "hand?); publish the correction as a new announcement",
            )
        raise self._failure(answer, "PUT")

    async def delete(self, receipt: Receipt) -> None:
        """DELETE the resource ``receipt`` names; one that is gone already is success."""
        url = self._resource_url(receipt)
        uid = str(receipt.data.get("uid", ""))
        body = encode(removal_document(uid, receipt.platform_id))
        key = f"{uid}.delete.{self.target.id}.{receipt.platform_id}"
        answer = await self._call("DELETE", url, body, key)
        if answer.is_success or answer_for(answer.status_code, "DELETE").kind is Kind.GONE:
            return
        raise self._failure(answer, "DELETE")

    async def check_online(self) -> list[str]:
        """Nothing to ask: the protocol has no request that publishes nothing.

        ``check`` already made sure ``url`` and ``secret`` are set; whether the CMS takes them
        shows on first use, as an AuthError with the reason.
        """
        return []

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- helpers ------------------------------------------------------------------------------

    def _body(self, rendered: Rendered) -> bytes:
        if rendered.problems or rendered.card is None:
            raise PermanentError(self.name, "; ".join(rendered.problems) or "nothing to send")
        return encode(rendered.card)

    async def _call(self, method: str, url: str, body: bytes, key: str) -> httpx.Response:
        """One signed request; a failure without an answer is raised as a ChannelError."""
        import httpx

        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            IDEMPOTENCY_HEADER: key,
            **signed_headers(self._secret, int(self.wall_clock()), body),
        }
        client = await self._http.get()
        try:
            answer = await client.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # str(exc) may carry the URL: only the kind of failure is told.
            raise self._no_answer(exc, method) from None
        log.debug("%s %s: %s", method, self._place, answer.status_code)
        return answer

    def _no_answer(self, exc: Exception, method: str) -> ChannelError:
        import httpx

        what = type(exc).__name__
        nothing_sent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
        if isinstance(exc, nothing_sent):
            return TransientError(
                self.name, f"could not connect to {self._place} ({what}); nothing was sent"
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return PermanentError(self.name, f"`url` is not an address httpx can call ({what})")
        repeat = (
            "it is sent again with the same Idempotency-Key, so the CMS publishes it once"
            if method == "POST"
            else "it will be repeated (harmless)"
        )
        return TransientError(self.name, f"no answer from {self._place} ({what}); {repeat}")

    def _failure(self, answer: httpx.Response, method: str) -> ChannelError:
        status = answer.status_code
        meaning = answer_for(status, method)
        reason = meaning.reason.format(
            place=self._place,
            status=status,
            method=method,
            detail=cms_detail(answer, self._redact),
        )
        if meaning.kind is Kind.THROTTLED:
            return RateLimited(self.name, reason, retry_after(answer))
        if meaning.kind is Kind.RETRY:
            return TransientError(self.name, reason, retry_after(answer))
        if meaning.kind is Kind.AUTH:
            return AuthError(self.name, f"target {self.target.id}: {reason}")
        return PermanentError(self.name, reason)

    def _receipt(self, answer: httpx.Response, message: Message) -> Receipt:
        resource = _resource_id(answer)
        if resource is None:
            # Published, but the CMS named no id: the delivery is sent; a correction or a
            # retraction of it will have to be made in the CMS by hand (update/delete say so).
            log.warning(
                "%s accepted target %s's announcement without naming an id",
                self._place,
                self.target.id,
            )
            return Receipt(f"key:{message.idempotency_key}", {"uid": message.uid})
        return Receipt(resource, {"uid": message.uid})

    def _resource_url(self, receipt: Receipt) -> str:
        if receipt.platform_id.startswith("key:"):
            raise PermanentError(
                self.name,
                f"{self._place} named no id for the announcement when it was published, so "
                "broadcaster cannot address it: correct or remove it in the CMS by hand",
            )
        return resource_url(self._url, receipt.platform_id)


def resource_url(collection: str, resource: str) -> str:
    """``{collection}/{resource}``, the id quoted as one path segment, the query kept."""
    parts = urlsplit(collection)
    path = f"{parts.path.rstrip('/')}/{quote(resource, safe='')}"
    return urlunsplit(parts._replace(path=path))


def _resource_id(answer: httpx.Response) -> str | None:
    """The CMS's id: ``{"id": ...}`` in the answer, else the last segment of ``Location``."""
    found: Any = None
    try:
        data = answer.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("id"), str | int):
        found = data["id"]
    else:
        location = answer.headers.get("location", "")
        found = unquote(urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]) or None
    if found is None or isinstance(found, bool):
        return None
    text = str(found)
    if not text or len(text) > _MAX_ID_LENGTH or not text.isprintable():
        return None
    return text
