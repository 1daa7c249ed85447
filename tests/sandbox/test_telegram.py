"""The Bot API emulator driven by python-telegram-bot's Bot through BROADCASTER_TELEGRAM_API_URL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken

from broadcaster.sandbox import TELEGRAM_CHAT
from broadcaster.sandbox.telegram_text import EntityError, parse_text

T = TypeVar("T")


def run(bot: Bot, action: Callable[[Bot], Awaitable[T]]) -> T:
    """Run ``action`` inside ``async with bot`` (which calls getMe first, as PTB always does)."""

    async def main() -> T:
        async with bot:
            return await action(bot)

    return asyncio.run(main())


def test_send_edit_delete(sandbox, telegram_bot) -> None:
    async def flow(bot: Bot) -> Any:
        first = await bot.send_message(
            TELEGRAM_CHAT,
            '<b>Dataintrång</b> hos kommunerna. Läs mer på <a href="https://www.borgholm.se">'
            "borgholm.se</a>.",
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
        second = await bot.send_message(TELEGRAM_CHAT, "Uppdatering")
        edited = await bot.edit_message_text(
            "Rättelse", chat_id=TELEGRAM_CHAT, message_id=first.message_id
        )
        deleted = await bot.delete_message(TELEGRAM_CHAT, second.message_id)
        return first, second, edited, deleted

    first, second, edited, deleted = run(telegram_bot(), flow)
    assert (first.message_id, second.message_id) == (1, 2)
    assert first.text == "Dataintrång hos kommunerna. Läs mer på borgholm.se."
    assert [e.type for e in first.entities] == ["bold", "text_link"]
    assert first.chat.username == "olandkris"
    assert edited.text == "Rättelse"
    assert edited.edit_date is not None
    assert deleted is True
    assert [m.text for m in sandbox.telegram.messages()] == ["Rättelse"]
    methods = [r.path.rsplit("/", 1)[-1] for r in sandbox.records.find("telegram")]
    assert methods == ["getMe", "sendMessage", "sendMessage", "editMessageText", "deleteMessage"]


def test_get_me_is_the_sandbox_bot(sandbox, telegram_bot) -> None:
    me = run(telegram_bot(), lambda bot: bot.get_me())
    assert me.is_bot
    assert me.id == int(sandbox.env()["TELEGRAM_BOT_TOKEN"].split(":")[0])


def test_numeric_chat_id_names_the_same_channel(sandbox, telegram_bot) -> None:
    chat_id = sandbox.telegram.chat(TELEGRAM_CHAT).id
    message = run(telegram_bot(), lambda bot: bot.send_message(chat_id, "Hej"))
    assert message.chat.id == chat_id
    assert len(sandbox.telegram.messages(TELEGRAM_CHAT)) == 1


def test_wrong_token_is_invalid_token(telegram_bot) -> None:
    with pytest.raises(InvalidToken):
        run(telegram_bot(token="123456:AAwrong"), lambda bot: bot.get_me())


@pytest.mark.parametrize(
    ("send", "description"),
    [
        (lambda b: b.send_message("@nowhere", "x"), "chat not found"),
        (lambda b: b.send_message(TELEGRAM_CHAT, "Klart."), None),
        (
            lambda b: b.send_message(TELEGRAM_CHAT, "Klart.", parse_mode=ParseMode.MARKDOWN_V2),
            "Character '.' is reserved",
        ),
        (
            lambda b: b.send_message(TELEGRAM_CHAT, "<p>x</p>", parse_mode=ParseMode.HTML),
            'Unsupported start tag "p"',
        ),
        (
            lambda b: b.send_message(TELEGRAM_CHAT, "<b>x", parse_mode=ParseMode.HTML),
            "Can't find end tag",
        ),
        (
            lambda b: b.send_message(TELEGRAM_CHAT, "a & b", parse_mode=ParseMode.HTML),
            'Unexpected "&"',
        ),
        (lambda b: b.send_message(TELEGRAM_CHAT, "x" * 4097), "message is too long"),
        (
            lambda b: b.send_message(TELEGRAM_CHAT, "x", api_kwargs={"colour": "red"}),
            'unknown parameter "colour"',
        ),
        (
            lambda b: b.edit_message_text("x", chat_id=TELEGRAM_CHAT, message_id=99),
            "message to edit not found",
        ),
        (lambda b: b.delete_message(TELEGRAM_CHAT, 99), "message to delete not found"),
    ],
)
def test_refusals_are_bad_request(telegram_bot, send, description) -> None:
    if description is None:
        assert run(telegram_bot(), send).text == "Klart."
        return
    # PTB drops Telegram's "Bad Request: " prefix and capitalises the rest.
    with pytest.raises(BadRequest, match="(?i)" + re.escape(description)):
        run(telegram_bot(), send)


def test_long_text_counts_after_parsing(telegram_bot) -> None:
    text = "<b>" + "x" * 4096 + "</b>"
    assert (
        len(
            run(
                telegram_bot(), lambda b: b.send_message(TELEGRAM_CHAT, text, parse_mode="HTML")
            ).text
        )
        == 4096
    )


def test_unchanged_edit_is_not_modified(telegram_bot) -> None:
    async def flow(bot: Bot) -> None:
        sent = await bot.send_message(TELEGRAM_CHAT, "Samma")
        await bot.edit_message_text("Samma", chat_id=TELEGRAM_CHAT, message_id=sent.message_id)

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        run(telegram_bot(), flow)


def test_removed_bot_is_forbidden(sandbox, telegram_bot) -> None:
    sandbox.telegram.remove_bot(TELEGRAM_CHAT)
    with pytest.raises(Forbidden, match=r"(?i)not a member"):
        run(telegram_bot(), lambda b: b.send_message(TELEGRAM_CHAT, "x"))


def test_unknown_method_and_error_shape(sandbox) -> None:
    env = sandbox.env()
    base = f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot{env['TELEGRAM_BOT_TOKEN']}"
    unknown = httpx.post(f"{base}/sendTelepathy", data={"chat_id": TELEGRAM_CHAT})
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    missing = httpx.post(f"{base}/sendMessage", json={"chat_id": TELEGRAM_CHAT})
    assert missing.status_code == 400
    assert missing.json()["description"] == "Bad Request: message text is empty"
    case = httpx.get(f"{base}/GETME")
    assert case.json()["ok"] is True


def test_nested_objects_are_checked(sandbox, full_specs) -> None:
    env = sandbox.env()
    base = f"{env['BROADCASTER_TELEGRAM_API_URL']}/bot{env['TELEGRAM_BOT_TOKEN']}"
    bad = httpx.post(
        f"{base}/sendMessage",
        json={
            "chat_id": TELEGRAM_CHAT,
            "text": "x",
            "link_preview_options": {"disabled": True},
        },
    )
    assert bad.status_code == 400
    assert 'unknown field "disabled"' in bad.json()["description"]
    garbled = httpx.post(
        f"{base}/sendMessage",
        data={
            "chat_id": TELEGRAM_CHAT,
            "text": "x",
            "link_preview_options": "{not json",
        },
    )
    assert "can't parse link preview options JSON object" in garbled.json()["description"]


@pytest.mark.parametrize(
    ("text", "mode", "plain"),
    [
        (
            "*Viktigt*\n\nLäs mer: [borgholm\\.se](https://www.borgholm.se)",
            "MarkdownV2",
            "Viktigt\n\nLäs mer: borgholm.se",
        ),
        ("Pris 5\\.00 kr\\! \\(inkl\\. moms\\)", "MarkdownV2", "Pris 5.00 kr! (inkl. moms)"),
        ("```python\nprint(1)\n```", "MarkdownV2", "print(1)\n"),
        ("`a\\`b`", "MarkdownV2", "a`b"),
        ("<b>fet</b> &lt;x&gt; &#229;", "HTML", "fet <x> å"),
        ('<span class="tg-spoiler">s</span> a > b', "HTML", "s a > b"),
        ("*fet* _kursiv_", "Markdown", "fet kursiv"),
    ],
)
def test_valid_formatted_text_is_accepted(text, mode, plain) -> None:
    assert parse_text(text, mode)[0] == plain


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("Klockan 14.00", "MarkdownV2"),
        ("*öppen", "MarkdownV2"),
        ("<i>x</b>", "HTML"),
        ("&nbsp;", "HTML"),
        ("<span>x</span>", "HTML"),
        ("_öppen", "Markdown"),
    ],
)
def test_unparseable_text_is_refused(text, mode) -> None:
    with pytest.raises(EntityError):
        parse_text(text, mode)
