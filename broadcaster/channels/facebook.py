"""The Facebook channel: a post on a municipality's Page feed, with the update's link (DESIGN §6).

Every Graph call goes through :mod:`~broadcaster.channels.facebook_graph` (the one module that
knows facebook-sdk), in this adapter's own bounded thread pool, with a timeout and
``appsecret_proof``. Errors are classified from tables (:mod:`.facebook_errors`).

Throttling before Meta does: every answer's usage headers feed a :class:`UsageGate`. An answer
showing a budget above 90 % cannot undo the call it answers, so the *next* call of this adapter
(send, update, delete) raises :class:`RateLimited` with the time the header estimates, before
touching Graph. The queue then defers the delivery exactly that long and pauses this target (or,
for the app-wide budget, every Facebook target) for every worker. Waiting inside ``send``
instead would hold the job's lease and outlast the call deadline.

"Did it arrive?" (after a timeout, a dropped connection or a server error on a new post): the
Page's own recent posts are read and matched on the exact text and link, created no earlier
than shortly before the delivery. Nothing invisible is added to a public post to find it.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import requests

from broadcaster.channels._rewrite import graph_session
from broadcaster.channels.base import Channel, ChannelContext, Receipt, Rendered
from broadcaster.channels.facebook_errors import GONE, classify
from broadcaster.channels.facebook_graph import GraphClient, GraphFailure, GraphUnreachable
from broadcaster.channels.facebook_usage import UsageGate, read_budgets
from broadcaster.config import FacebookTarget, TargetConfig
from broadcaster.errors import (
    AuthError,
    ChannelError,
    InputError,
    PermanentError,
    RateLimited,
    TransientError,
    UnknownOutcome,
)
from broadcaster.rendering.message import Message

__all__ = ["FacebookChannel"]

API_URL_VAR = "BROADCASTER_FACEBOOK_API_URL"
TEMPLATE = "facebook/post.txt"
_T = TypeVar("_T")
_BLANK_LINES = re.compile(r"\n{3,}")


class FacebookChannel(Channel):
    """Posts to one Facebook Page; edits and deletes those posts."""

    name: ClassVar[str] = "facebook"
    can_update = True
    can_delete = True
    can_verify = True
    # Graph's limit for a post's text.
    max_text_length = 63_206
    # One post a second per page is far beyond any crisis; a rate also lets a pause that Graph
    # asks for reach every worker (it moves this target's shared rate slot).
    default_rate_per_second = 1.0
    default_concurrency = 2
    call_timeout_seconds = 60.0
    #: Longest one HTTP request may take; a send may make a few (a post, then a check).
    request_timeout_seconds: ClassVar[float] = 15.0
    #: A post of this delivery may carry a creation time this much before the delivery was
    #: made (our clock against Facebook's).
    verify_margin: ClassVar[timedelta] = timedelta(minutes=15)
    #: How far back Graph looks for a duplicate (code 506).
    duplicate_window: ClassVar[timedelta] = timedelta(hours=24)

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, FacebookTarget):
            raise InputError(f"target {target.id} is not a Facebook page target")
        self.page = target
        self.gate = UsageGate()
        workers = target.concurrency or self.default_concurrency
        # Bounded: facebook-sdk blocks, and a target's calls must not take the default pool.
        self._pool = ThreadPoolExecutor(workers + 1, thread_name_prefix=f"facebook-{target.id}")
        self._client = GraphClient(
            page_id=target.page_id,
            token=target.access_token.get_secret_value(),
            app_secret=target.app_secret.get_secret_value(),
            version=target.graph_api_version,
            timeout=self.request_timeout_seconds,
            session=self._session(),
            on_headers=self.gate.observe,
        )

    def _session(self) -> requests.Session:
        if self.context.requests_session is not None:
            session: requests.Session = self.context.requests_session()
            return session
        override = self.context.endpoints.get(API_URL_VAR)
        return graph_session(override, timeout=self.request_timeout_seconds)

    # -- rendering -------------------------------------------------------------------------------

    def render(self, message: Message) -> Rendered:
        """The post's text (plain: Facebook shows no markup); the link goes beside it."""
        raw = self.context.renderer.render(TEMPLATE, message.context())
        lines = [line.rstrip() for line in raw.strip().splitlines()]
        return Rendered(text=_BLANK_LINES.sub("\n\n", "\n".join(lines)))

    def readable(self, message: Message, rendered: Rendered) -> str:
        """The post as a follower sees it: the text, then the link shown as a preview."""
        text = rendered.text or ""
        link = message.content.link
        return f"{text}\n\nLink preview: {link}" if link else text

    # -- posting ---------------------------------------------------------------------------------

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """Publish the post; 506 (a duplicate) counts as posted once the page shows it."""
        self._hold_back()
        text, link = rendered.text or "", message.content.link
        try:
            post_id = await self._run(self._client.post, text, link)
        except GraphFailure as failure:
            if failure.code == 506:
                return await self._duplicate(message, text, link, failure)
            error = self._error(failure)
            if type(error) is TransientError:
                # The post was sent and Graph failed while handling it: it may exist.
                raise UnknownOutcome(
                    self.name, f"{error}; the page is checked before any resend"
                ) from None
            raise error from None
        except GraphUnreachable as lost:
            if lost.maybe_arrived:
                raise UnknownOutcome(
                    self.name, f"{lost}; the page is checked before anything is posted again"
                ) from None
            raise TransientError(self.name, str(lost)) from None
        return self._receipt(post_id, link)

    async def _duplicate(
        self, message: Message, text: str, link: str | None, failure: GraphFailure
    ) -> Receipt:
        since = message.updated_at - self.duplicate_window
        found = await self._find(text, link, since)
        if found is not None:
            return found
        raise PermanentError(
            self.name,
            f"Facebook refused the post on page {self.page.page_id} as a duplicate ({failure}), "
            "but none of the page's posts of the last 24 hours has this text; look at the page, "
            "then retract or change the text",
        )

    async def verify(self, message: Message) -> Receipt | None:
        """The post of this delivery, if the page has it.

        Anything that keeps the check from an answer is an :class:`UnknownOutcome`, never a
        retryable error: the delivery must stay "unknown" so that it is checked again, not
        resent. A dead token is an :class:`AuthError` (a person must act either way).
        """
        try:
            text = (await self._run(self.render, message)).text or ""
        except InputError as exc:
            raise PermanentError(self.name, f"cannot check the page: {exc}") from None
        try:
            return await self._find(text, message.content.link, message.updated_at)
        except AuthError:
            raise
        except ChannelError as exc:
            raise UnknownOutcome(self.name, f"could not check the page: {exc}") from None

    async def _find(self, text: str, link: str | None, since: datetime) -> Receipt | None:
        start = int((since - self.verify_margin).timestamp())
        try:
            return await self._run(self._match, text, link, start)
        except GraphFailure as failure:
            raise self._error(failure) from None
        except GraphUnreachable as lost:
            raise TransientError(self.name, str(lost)) from None

    def _match(self, text: str, link: str | None, since: int) -> Receipt | None:
        wanted = _normal(text)
        for post in self._client.recent_posts(since):
            if _normal(post.get("message") or "") != wanted:
                continue
            shown = post.get("link")
            if link and shown and shown.rstrip("/") != link.rstrip("/"):
                continue
            return self._receipt(str(post["id"]), link)
        return None

    # -- corrections -----------------------------------------------------------------------------

    async def update(self, receipt: Receipt, message: Message, rendered: Rendered) -> Receipt:
        """Replace the post's text. Graph cannot change a post's link: a new link is written at
        the end of the text instead, so readers get the right one."""
        self._hold_back()
        text, posted_link = rendered.text or "", str(receipt.data.get("link") or "")
        link = message.content.link
        if link and link != posted_link:
            text = f"{text}\n\n{link}"
        try:
            await self._run(self._client.edit, receipt.platform_id, text)
        except GraphFailure as failure:
            if (failure.code, failure.subcode) == GONE:
                raise PermanentError(
                    self.name,
                    f"post {receipt.platform_id} is no longer on page {self.page.page_id} (deleted "
                    "by hand?); send the correction as a new announcement",
                ) from None
            raise self._error(failure) from None
        except GraphUnreachable as lost:
            # Setting the same text twice is harmless: retrying is safe.
            raise TransientError(self.name, str(lost)) from None
        return self._receipt(receipt.platform_id, posted_link or None)

    async def delete(self, receipt: Receipt) -> None:
        """Delete the post; one that is gone already counts as deleted."""
        self._hold_back()
        try:
            await self._run(self._client.delete, receipt.platform_id)
        except GraphFailure as failure:
            if (failure.code, failure.subcode) == GONE:
                return
            raise self._error(failure) from None
        except GraphUnreachable as lost:
            raise TransientError(self.name, str(lost)) from None

    # -- checks ----------------------------------------------------------------------------------

    async def check_online(self) -> list[str]:
        """Read the page with its token: does the token work, and is it this page's?

        One line per problem; ``check --online`` puts the target's id in front.

        With the target's ``app_id``, also ask Graph (``debug_token``) whether the token is
        valid and when it expires: one that ends within 14 days is a problem to fix now.
        """
        try:
            page = await self._run(self._client.page)
        except GraphFailure as failure:
            return [str(self._error(failure))]
        except GraphUnreachable as lost:
            return [f"cannot reach Facebook: {lost}; check this machine's network"]
        if str(page.get("id")) != self.page.page_id:
            return [
                f"the token is for page {page.get('id')}, not {self.page.page_id}; "
                f"use the page token of page {self.page.page_id}"
            ]
        if self.page.app_id is None:
            return []
        try:
            info = await self._run(self._client.token_info, self.page.app_id)
        except GraphFailure as failure:
            return [f"cannot ask when the token expires: {failure}; check app_id and app_secret"]
        except GraphUnreachable as lost:
            return [f"cannot reach Facebook: {lost}; check this machine's network"]
        return _expiry_problems(info, self.page.page_id, self.context.clock())

    async def aclose(self) -> None:
        """Wait for calls in flight (each ends within its timeout), then close the session."""
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        self._client.close()

    # -- helpers ---------------------------------------------------------------------------------

    async def _run(self, call: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(call, *args))

    def _hold_back(self) -> None:
        """Raise RateLimited while a usage header's pause is in force."""
        pause = self.gate.pause()
        if pause is not None:
            raise RateLimited(
                self.name,
                f"{pause.reason}: target {self.target.id} waits {pause.remaining_s:.0f} s "
                "so that Meta does not throttle it",
                retry_after=pause.remaining_s,
                scope=pause.scope,
            )

    def _error(self, failure: GraphFailure) -> ChannelError:
        return classify(
            code=failure.code,
            subcode=failure.subcode,
            message=failure.message,
            status=failure.status,
            retry_after=_wait_asked(failure),
            target=self.target.id,
            page_id=self.page.page_id,
        )

    def _receipt(self, post_id: str, link: str | None) -> Receipt:
        return Receipt(post_id, {"page_id": self.page.page_id, "link": link or ""})


def _wait_asked(failure: GraphFailure) -> float | None:
    """The wait an error answer asks for: ``Retry-After``, else a usage header's estimate."""
    headers = {name.lower(): value for name, value in failure.headers.items()}
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        pass
    estimates = [b.estimate_s for b in read_budgets(headers) if b.estimate_s]
    return max(estimates) if estimates else None


def _normal(text: str) -> str:
    """Text as compared with what the page shows: line ends and outer blanks do not count."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").strip().split("\n"))


#: A page token that ends sooner than this is reported by ``check --online``.
TOKEN_WARNING = timedelta(days=14)


def _expiry_problems(info: Mapping[str, Any], page_id: str, now: datetime) -> list[str]:
    """What ``debug_token`` says is wrong with a page token, or will be within 14 days."""
    renew = (
        f"renew the page token of page {page_id} (a page token made from a long-lived user "
        "token does not expire)"
    )
    if not info.get("is_valid"):
        return [f"Graph says the page token is no longer valid; {renew}"]
    expires = info.get("expires_at")
    if not isinstance(expires, int) or expires <= 0:  # 0: it never expires
        return []
    ends = datetime.fromtimestamp(expires, UTC)
    if ends - now > TOKEN_WARNING:
        return []
    return [f"the page token expires {ends:%Y-%m-%d %H:%M} UTC; {renew} before then"]
