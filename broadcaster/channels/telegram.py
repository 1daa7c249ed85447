"""The Telegram channel: one post in a Telegram channel, edited and deleted through the Bot API.

python-telegram-bot 22 (PLATFORMS §3) does the HTTP: one ``Bot`` per adapter, pointed at
``BROADCASTER_TELEGRAM_API_URL`` (``/bot<token>/<method>`` appended), initialised on first use
(its ``getMe`` proves the token) and shut down in :meth:`TelegramChannel.aclose`.

Whether a post arrived cannot be asked afterwards: the Bot API has no way to read a channel's
history, and it takes no idempotency key. The only probes it allows are hacks that can each be
wrong — forwarding or copying guessed message ids (posts a copy somewhere, and someone else's post
may hold the id), or editing a guessed id with the same text ("message is not modified" would
match any identical post of ours, and a different one would be overwritten). So after an answer
that may have been lost (:class:`~broadcaster.errors.UnknownOutcome`), the delivery is never
posted blindly again: the queue dead-letters it for a person, who looks at the channel and
retries it by hand only if the post is missing.

How PTB's errors are read (its ``BadRequest`` and ``TimedOut`` subclass ``NetworkError``, so
the specific ones are caught first):

=======================================  ==================================================
flood control (429 ``retry_after``)      RateLimited, exactly as long as Telegram says
``InvalidToken`` (401/404)               AuthError: renew the token at @BotFather
``Forbidden`` / ``BadRequest``           PermanentError with Telegram's reason and the fix
``ChatMigrated``                         PermanentError: set the new chat id
no connection, pool full (nothing sent)  TransientError
5xx answered by the Bot API              TransientError (the method failed there)
502/504, read timeout, lost answer       UnknownOutcome on a send (it may have posted);
                                         TransientError on edit and delete (harmless twice)
=======================================  ==================================================
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from broadcaster.channels.base import Channel, ChannelContext, Rendered
from broadcaster.channels.telegram_errors import TOKEN_REFUSED, Verdict, meaning_of
from broadcaster.channels.telegram_html import read_html
from broadcaster.config import TargetConfig, TelegramTarget
from broadcaster.errors import (
    AuthError,
    ChannelError,
    InputError,
    PermanentError,
    RateLimited,
    RateScope,
    TransientError,
    UnknownOutcome,
)
from broadcaster.model import Receipt
from broadcaster.rendering.message import Message

if TYPE_CHECKING:
    from telegram import Bot, LinkPreviewOptions
    from telegram.error import TelegramError

__all__ = ["TelegramChannel"]

TEMPLATE = "telegram/message.html"
PUBLIC_ROOT = "https://api.telegram.org"
URL_VARIABLE = "BROADCASTER_TELEGRAM_API_URL"
#: PTB's limits per call (seconds) besides the answer's (``timeout_seconds``);
#: :meth:`TelegramChannel.call_timeout` leaves room for all of them.
_CONNECT_S, _WRITE_S, _POOL_S = 5.0, 10.0, 5.0
#: Gateway answers: the Bot API behind the gateway may have done the work.
_GATEWAY = frozenset({502, 504})


class TelegramChannel(Channel):
    """Posts to one Telegram channel (``@name`` or numeric ``-100…`` id) as its bot."""

    name: ClassVar[str] = "telegram"
    can_update = True
    can_delete = True
    # See the module docstring: nothing can tell whether a post with a lost answer arrived, and
    # a second copy in a crisis channel confuses readers, so a person decides.
    can_verify = False
    blind_resend_ok = False
    max_text_length = 4096
    # Telegram allows about one message per second in one chat (PLATFORMS §3); posts to one
    # channel also go out one at a time so they appear in the order they were approved.
    default_rate_per_second = 1.0
    default_concurrency = 1
    call_timeout_seconds = 30.0

    def __init__(self, target: TargetConfig, context: ChannelContext) -> None:
        super().__init__(target, context)
        if not isinstance(target, TelegramTarget):
            raise InputError(f"target {target.id}: not a Telegram target")
        self.telegram_target = target
        chat = target.chat_id
        self.chat_id: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
        self._bot: Bot | None = None
        self._ready = False
        self._starting = asyncio.Lock()

    def call_timeout(self) -> float:
        """Room for ``getMe`` (on first use) and the call itself, each with all its phases."""
        per_call = _CONNECT_S + _POOL_S + _WRITE_S + self.telegram_target.timeout_seconds
        return max(self.call_timeout_seconds, 2 * per_call)

    # -- rendering ------------------------------------------------------------------------------

    def render(self, message: Message) -> Rendered:
        """The post in Telegram's HTML, every character of the announcement escaped."""
        text = self.context.renderer.render(TEMPLATE, message.context())
        return Rendered(text=text.strip())

    def check(self, rendered: Rendered) -> list[str]:
        """Markup Telegram would refuse, and the length it measures after parsing it."""
        if rendered.text is None:
            return ["the Telegram template rendered nothing"]
        parsed = read_html(rendered.text)
        problems = [f"{TEMPLATE}: {problem}" for problem in parsed.problems]
        if not parsed.visible:
            problems.append("the Telegram text is empty")
        if parsed.length > self.max_text_length:
            problems.append(
                f"the Telegram text is {parsed.length} characters after formatting; Telegram "
                f"allows {self.max_text_length} — shorten the body by "
                f"{parsed.length - self.max_text_length}"
            )
        return problems

    def where_posted(self) -> str:
        """The Telegram channel, as a person finds it."""
        return f"the Telegram channel {self.telegram_target.chat_id}"

    def readable(self, message: Message, rendered: Rendered) -> str:
        """The post as a reader sees it (formatting gone, link addresses written out)."""
        if rendered.text is None:
            return super().readable(message, rendered)
        parsed = read_html(rendered.text)
        text = parsed.visible
        addresses = [f"{label}: {href}" for label, href in parsed.links if label != href]
        if addresses:
            text += "\n\n" + "\n".join(f"[{line}]" for line in addresses)
        return f"{text}\n\n({parsed.length} of {self.max_text_length} characters)"

    # -- the platform ---------------------------------------------------------------------------

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        """Post the message; the receipt holds the chat and message id that edits need."""
        text = self._postable(rendered)
        bot = await self._client()
        try:
            posted = await bot.send_message(
                chat_id=self.chat_id,
                text=text,
                parse_mode="HTML",
                link_preview_options=self._preview(),
            )
        except Exception as exc:
            raise self._failure(exc, may_have_posted=True) from None
        return _receipt(posted.chat.id, posted.message_id)

    async def update(self, receipt: Receipt, message: Message, rendered: Rendered) -> Receipt:
        """Edit the post in place; an edit that changes nothing is success."""
        text = self._postable(rendered)
        chat_id, message_id = self._address(receipt)
        bot = await self._client()
        try:
            await bot.edit_message_text(
                text=text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode="HTML",
                link_preview_options=self._preview(),
            )
        except Exception as exc:
            if self._verdict(exc) != Verdict.UNCHANGED:
                raise self._failure(exc, may_have_posted=False) from None
        return _receipt(chat_id, message_id)

    async def delete(self, receipt: Receipt) -> None:
        """Delete the post; one that is already gone is success."""
        chat_id, message_id = self._address(receipt)
        bot = await self._client()
        try:
            await bot.delete_message(chat_id=chat_id, message_id=message_id)
        except Exception as exc:
            if self._verdict(exc) != Verdict.GONE:
                raise self._failure(exc, may_have_posted=False) from None

    async def check_online(self) -> list[str]:
        """Whether the token works and the bot may post in the channel; one line per problem."""
        from telegram.constants import ChatMemberStatus
        from telegram.error import TelegramError

        try:
            bot = await self._client()
        except ChannelError as exc:  # the token, or Telegram out of reach
            return [exc.message]
        try:
            member = await bot.get_chat_member(chat_id=self.chat_id, user_id=bot.bot.id)
        except TelegramError as exc:
            return [self._problem_line(exc)]
        chat = self.telegram_target.chat_id
        if member.status == ChatMemberStatus.OWNER:
            return []
        if member.status != ChatMemberStatus.ADMINISTRATOR:
            return [
                f"the bot @{bot.bot.username} is not an administrator of {chat} "
                f"(it is {member.status}); add it as an administrator allowed to post messages"
            ]
        if not getattr(member, "can_post_messages", False):
            return [
                f"the bot @{bot.bot.username} may not post in {chat}; give it the right "
                "'Post messages' in the channel's administrator settings"
            ]
        return []

    async def aclose(self) -> None:
        """Shut the bot's HTTP clients down (also after a failed initialisation)."""
        bot, self._bot, self._ready = self._bot, None, False
        if bot is not None:
            await bot.shutdown()

    # -- helpers --------------------------------------------------------------------------------

    async def _client(self) -> Bot:
        """The bot, initialised once (``getMe``); nothing is posted before that succeeded."""
        async with self._starting:
            if self._bot is None:
                self._bot = self._build()
            if not self._ready:
                try:
                    await self._bot.initialize()
                except Exception as exc:
                    raise self._failure(exc, may_have_posted=False) from None
                self._ready = True
        return self._bot

    def _build(self) -> Bot:
        from telegram import Bot

        from broadcaster.channels.telegram_request import FloodAwareRequest

        root = self.context.endpoints.get(URL_VARIABLE, PUBLIC_ROOT).rstrip("/")
        extra: dict[str, Any] = {}
        if self.context.http_transport is not None:
            extra["transport"] = self.context.http_transport

        def request(pool: int) -> FloodAwareRequest:
            return FloodAwareRequest(
                connection_pool_size=pool,
                connect_timeout=_CONNECT_S,
                read_timeout=self.telegram_target.timeout_seconds,
                write_timeout=_WRITE_S,
                pool_timeout=_POOL_S,
                httpx_kwargs=dict(extra),
            )

        token = self.telegram_target.bot_token.get_secret_value()
        # PTB wants a second client for getUpdates; we never poll, so it stays small.
        return Bot(
            token, base_url=f"{root}/bot", request=request(2), get_updates_request=request(1)
        )

    def _preview(self) -> LinkPreviewOptions:
        from telegram import LinkPreviewOptions

        return LinkPreviewOptions(is_disabled=not self.telegram_target.link_preview)

    def _postable(self, rendered: Rendered) -> str:
        if rendered.problems or rendered.text is None:
            raise PermanentError(self.name, "; ".join(rendered.problems) or "nothing to post")
        return rendered.text

    def _address(self, receipt: Receipt) -> tuple[int | str, int]:
        # Receipts stored before their data was kept carry only the message id; the chat is
        # then the target's own.
        chat = receipt.data.get("chat_id", self.chat_id)
        return chat, int(receipt.data.get("message_id", receipt.platform_id))

    def _verdict(self, exc: BaseException) -> Verdict | None:
        from telegram.error import BadRequest, Forbidden

        if isinstance(exc, BadRequest | Forbidden):
            return meaning_of(exc.message, self.telegram_target.chat_id).verdict
        return None

    def _failure(self, exc: BaseException, *, may_have_posted: bool) -> ChannelError:
        """Our error for a PTB error (module docstring has the table)."""
        from telegram.error import TelegramError

        from broadcaster.channels.telegram_request import FloodControl, ServerError

        if isinstance(exc, FloodControl):
            # Per chat: Telegram's per-bot budget (30/s) is far above our 1/s per channel, so
            # the limit hit is this chat's; its siblings carry on (PLATFORMS §3).
            return RateLimited(self.name, str(exc), exc.seconds, RateScope.TARGET)
        if isinstance(exc, ServerError):
            if may_have_posted and exc.status in _GATEWAY:
                return UnknownOutcome(self.name, self._lost(str(exc)))
            return TransientError(self.name, f"Telegram failed: {exc}")
        if isinstance(exc, TelegramError):
            return self._telegram_failure(exc, may_have_posted)
        what = f"{type(exc).__name__}: {exc}"
        if may_have_posted:
            return UnknownOutcome(self.name, self._lost(what))
        return TransientError(self.name, f"Telegram call failed: {what}")

    def _telegram_failure(self, exc: TelegramError, may_have_posted: bool) -> ChannelError:
        from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError

        chat = self.telegram_target.chat_id
        if isinstance(exc, InvalidToken):
            return AuthError(self.name, f"target {self.target.id}: {TOKEN_REFUSED.advice}")
        if isinstance(exc, ChatMigrated):
            return PermanentError(
                self.name,
                f'{chat} became chat {exc.new_chat_id}; set chat_id = "{exc.new_chat_id}" for '
                f"target {self.target.id}",
            )
        if isinstance(exc, BadRequest | Forbidden):  # before NetworkError: they subclass it
            meaning = meaning_of(exc.message, chat)
            return PermanentError(self.name, f"{exc.message} — {meaning.advice}")
        if isinstance(exc, NetworkError):
            if may_have_posted and not _nothing_sent(exc):
                return UnknownOutcome(self.name, self._lost(exc.message))
            return TransientError(self.name, f"cannot reach Telegram: {exc.message}")
        return PermanentError(self.name, f"Telegram refused: {exc.message}")

    def _lost(self, what: str) -> str:
        return (
            f"{what}; Telegram may have posted it in {self.telegram_target.chat_id} and cannot "
            "be asked, so it is not posted again by itself: it goes to the dead letters, where "
            "a person looks in the channel and, only if the post is missing, runs "
            "`broadcaster deadletters --retry ID`"
        )

    def _problem_line(self, exc: TelegramError) -> str:
        from telegram.error import BadRequest, Forbidden, InvalidToken

        if isinstance(exc, InvalidToken):
            return TOKEN_REFUSED.advice
        if isinstance(exc, BadRequest | Forbidden):
            return f"{exc.message} — {meaning_of(exc.message, self.telegram_target.chat_id).advice}"
        return (
            f"cannot reach Telegram ({exc.message}); check the network, or "
            f"{URL_VARIABLE} if it is set"
        )


def _nothing_sent(exc: BaseException) -> bool:
    """True when the request never left (no connection, the pool was full)."""
    import httpx

    cause = exc.__cause__
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def _receipt(chat_id: int | str, message_id: int) -> Receipt:
    return Receipt(str(message_id), {"chat_id": chat_id, "message_id": message_id})
