"""What the Bot API's error answers mean for a delivery, as data (PLATFORMS §3).

The Bot API answers an error with an HTTP status and a ``description``; python-telegram-bot
turns the status into an exception class (``Forbidden`` 403, ``BadRequest`` 400, ``InvalidToken``
401/404, ``RetryAfter`` on flood control, ``NetworkError`` for the rest). The class says whether
to retry; the description says what a person must do, so it is looked up here by the words
Telegram uses in it (lower case, as Telegram's wording varies in case).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["FALLBACK", "TOKEN_REFUSED", "Meaning", "Verdict", "meaning_of"]


class Verdict(StrEnum):
    """What an error answer means for the call that got it."""

    #: The call failed and will fail again as it stands: dead, with the advice.
    PERMANENT = "permanent"
    #: The bot's token was refused: a person must renew it.
    AUTH = "auth"
    #: An edit that changes nothing: the post already reads as wanted.
    UNCHANGED = "unchanged"
    #: The message named is not there (deleted by hand, or never posted).
    GONE = "gone"


@dataclass(frozen=True)
class Meaning:
    """A verdict and the sentence that tells a person what to do about it."""

    verdict: Verdict
    advice: str


#: Words of a ``description`` -> meaning; the first entry whose words occur wins. ``{chat}``
#: is replaced by the target's chat. Sources: https://core.telegram.org/bots/api (method
#: pages) and the answers recorded in PLATFORMS §3.
DESCRIPTIONS: tuple[tuple[str, Meaning], ...] = (
    (
        "message is not modified",
        Meaning(Verdict.UNCHANGED, "the post already reads like this"),
    ),
    (
        "message to edit not found",
        Meaning(Verdict.GONE, "the post is no longer in {chat}; send the correction as a new one"),
    ),
    ("message to delete not found", Meaning(Verdict.GONE, "the post is already gone")),
    (
        "message can't be deleted",
        Meaning(
            Verdict.PERMANENT,
            "Telegram lets a bot delete a post only within 48 hours; delete it by hand in {chat}",
        ),
    ),
    (
        "message can't be edited",
        Meaning(
            Verdict.PERMANENT,
            "Telegram refuses to edit this post; edit it by hand in {chat} or send a new one",
        ),
    ),
    (
        "chat not found",
        Meaning(
            Verdict.PERMANENT,
            "Telegram knows no chat {chat} for this bot; check chat_id (a private channel needs "
            "its numeric -100… id) and add the bot to the channel as an administrator",
        ),
    ),
    (
        "bot is not a member",
        Meaning(
            Verdict.PERMANENT,
            "the bot is not in {chat}; add it to the channel as an administrator allowed to "
            "post messages",
        ),
    ),
    (
        "bot was kicked",
        Meaning(
            Verdict.PERMANENT,
            "the bot was removed from {chat}; add it again as an administrator allowed to post "
            "messages",
        ),
    ),
    (
        "need administrator rights",
        Meaning(
            Verdict.PERMANENT,
            "the bot may not post in {chat}; make it an administrator with the right to post "
            "messages",
        ),
    ),
    (
        "not enough rights",
        Meaning(
            Verdict.PERMANENT,
            "the bot lacks a right in {chat}; give it the right to post (and edit) messages",
        ),
    ),
    (
        "message is too long",
        Meaning(
            Verdict.PERMANENT,
            "the text is longer than Telegram's 4096 characters; shorten the update "
            "(`broadcaster preview` shows the length)",
        ),
    ),
    (
        "can't parse entities",
        Meaning(
            Verdict.PERMANENT,
            "the Telegram template produced HTML that Telegram cannot read; fix "
            "templates/telegram/message.html (`broadcaster preview` shows the problem)",
        ),
    ),
)

#: Said for ``InvalidToken`` (401 Unauthorized, or 404 for a token of the wrong shape).
TOKEN_REFUSED = Meaning(
    Verdict.AUTH,
    "Telegram refused the bot token; get a new one from @BotFather (/token) and put it in the "
    "variable the target's bot_token names (it looks like 123456:ABC…)",
)

#: Said when a 400 or 403 answer matches nothing above.
FALLBACK = Meaning(Verdict.PERMANENT, "Telegram refused the message as it stands")


def meaning_of(description: str, chat: str) -> Meaning:
    """The meaning of Telegram's ``description``, its advice naming ``chat``."""
    lowered = description.lower()
    for words, meaning in DESCRIPTIONS:
        if words in lowered:
            return Meaning(meaning.verdict, meaning.advice.replace("{chat}", chat))
    return FALLBACK
