"""Telegram Bot API emulator: ``getMe``, ``getChatMember``, ``sendMessage``, ``editMessageText``,
``deleteMessage``.

Mounted at ``/telegram``, so ``BROADCASTER_TELEGRAM_API_URL=http://127.0.0.1:PORT/telegram``
replaces ``https://api.telegram.org`` and ``/bot<token>/<method>`` is appended (PTB:
``Bot(token, base_url=f"{url}/bot")``). Parameters come as query, form or JSON, as the Bot API
takes them; method names are case-insensitive. Every parameter is checked against the method's
fields in ``telegram/api.json``: an unknown method is Telegram's 404 ``Not Found``; a missing,
mistyped or unknown field is a 400 (the real Bot API silently ignores unknown fields; the sandbox
refuses them so that a typo cannot pass a test). Text is parsed per ``parse_mode`` and measured
after parsing. Errors are ``{"ok": false, "error_code", "description", "parameters"}``.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from .credentials import TELEGRAM_CHAT
from .exchange import Context, Emulator, EmulatorError, Incoming, retry_after_headers
from .faults import Fault
from .telegram_text import EntityError, parse_text, utf16_length

__all__ = ["Chat", "TelegramEmulator", "TelegramError", "TelegramMessage"]

_MAX_TEXT = 4096
_DELETE_WINDOW_S = 48 * 3600
_EMPTY = {
    "chat_id": "Bad Request: chat_id is empty",
    "text": "Bad Request: message text is empty",
    "message_id": "Bad Request: message identifier is not specified",
}


class TelegramError(EmulatorError):
    """A Bot API error answer."""

    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        """Describe the error; ``retry_after`` adds ``parameters.retry_after`` (flood control)."""
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def response(self) -> Response:
        """Telegram's error JSON."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": math.ceil(self.retry_after)}
        return JSONResponse(body, self.code, headers=retry_after_headers(self.retry_after))


@dataclass
class Chat:
    """A channel the bot may post in."""

    id: int
    username: str
    title: str
    bot_is_member: bool = True
    #: The bot is an administrator of the channel allowed to post (``can_post_messages``).
    bot_can_post: bool = True

    def to_json(self) -> dict[str, Any]:
        """The Bot API ``Chat``."""
        return {"id": self.id, "title": self.title, "username": self.username, "type": "channel"}


@dataclass
class TelegramMessage:
    """A channel post as the emulator keeps it."""

    chat: Chat
    message_id: int
    date: int
    text: str
    raw_text: str
    parse_mode: str | None
    entities: list[dict[str, Any]] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """The Bot API ``Message``."""
        body: dict[str, Any] = {
            "message_id": self.message_id,
            "sender_chat": self.chat.to_json(),
            "chat": self.chat.to_json(),
            "date": self.date,
            "text": self.text,
        }
        if self.entities:
            body["entities"] = self.entities
        if self.edit_date is not None:
            body["edit_date"] = self.edit_date
        return body


class TelegramEmulator(Emulator):
    """The Bot API for the sandbox's one bot, posting in the reference channel ``@olandkris``."""

    platform = "telegram"
    mount = "/telegram"

    def __init__(self, ctx: Context) -> None:
        """Create the emulator with the reference channel."""
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._chats: dict[str, Chat] = {}
        self._messages: dict[tuple[int, int], TelegramMessage] = {}
        self._next_id: dict[int, int] = {}
        self.add_chat(TELEGRAM_CHAT, -1001885084001, "Öland kris (sandbox)")

    # Python API -------------------------------------------------------------------------------

    def add_chat(self, username: str, chat_id: int, title: str) -> Chat:
        """Add a channel (``@name``) the bot is an administrator of."""
        chat = Chat(chat_id, username.lstrip("@"), title)
        with self._lock:
            self._chats[username] = self._chats[str(chat_id)] = chat
        return chat

    def chat(self, chat_id: str | int) -> Chat:
        """A channel by ``@name`` or numeric id.

        Raises:
            LookupError: No such channel.
        """
        with self._lock:
            found = self._chats.get(str(chat_id))
        if found is None:
            raise LookupError(f"no channel {chat_id}")
        return found

    def remove_bot(self, chat: str) -> None:
        """Remove the bot from a channel: further posts get 403 Forbidden."""
        self.chat(chat).bot_is_member = False

    def restrict_bot(self, chat: str) -> None:
        """Take the bot's right to post away (it stays an administrator): posts get 400."""
        self.chat(chat).bot_can_post = False

    def messages(
        self, chat: str = TELEGRAM_CHAT, *, include_deleted: bool = False
    ) -> list[TelegramMessage]:
        """Posts in a channel, oldest first."""
        target = self.chat(chat)
        with self._lock:
            return [
                m
                for (chat_id, _), m in sorted(self._messages.items())
                if chat_id == target.id and (include_deleted or not m.deleted)
            ]

    def reset(self) -> None:
        """Forget posts; the bot is a member of every channel again."""
        with self._lock:
            self._messages.clear()
            self._next_id.clear()
            for chat in self._chats.values():
                chat.bot_is_member = chat.bot_can_post = True

    # Emulator ---------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        """``/bot<token>/<method>``."""
        return [self.route("/bot{token}/{method}", self._method, ["GET", "POST"])]

    def targets(self, incoming: Incoming) -> list[str]:
        """The chat: as given, plus its other name (``@name`` or numeric id) when known."""
        given = incoming.params().get("chat_id")
        if given is None:
            return []
        with self._lock:
            chat = self._chats.get(str(given))
        return [str(given)] if chat is None else [str(given), f"@{chat.username}", str(chat.id)]

    def fault_response(self, fault: Fault) -> Response:
        """Telegram error JSON; 429 carries ``parameters.retry_after`` as on flood control."""
        if fault.message:
            description = fault.message
        elif fault.status == 429:
            description = f"Too Many Requests: retry after {math.ceil(fault.retry_after or 1)}"
        else:
            description = HTTPStatus(fault.status).phrase
        retry = (fault.retry_after or 1) if fault.status == 429 else fault.retry_after
        return TelegramError(fault.status, description, retry).response()

    def unknown_path(self, incoming: Incoming) -> Response:
        """Telegram's 404."""
        return TelegramError(404, "Not Found").response()

    # Handlers ---------------------------------------------------------------------------------

    async def _method(self, incoming: Incoming) -> Response:
        if incoming.path_params["token"] != self.ctx.credentials.telegram_bot_token:
            raise TelegramError(401, "Unauthorized")
        spec = self.ctx.specs.telegram_methods.get(incoming.path_params["method"].lower())
        if spec is None:
            raise TelegramError(404, "Not Found")
        params = self._checked(spec, incoming.params())
        handler = {
            "getMe": self._get_me,
            "getChatMember": self._get_chat_member,
            "sendMessage": self._send,
            "editMessageText": self._edit,
            "deleteMessage": self._delete,
        }.get(spec["name"])
        if handler is None:
            raise TelegramError(
                501, f"Not Implemented: the sandbox does not emulate {spec['name']}"
            )
        return JSONResponse({"ok": True, "result": handler(params)})

    def _get_me(self, params: dict[str, Any]) -> Any:
        return {
            "id": self.ctx.credentials.telegram_bot_id,
            "is_bot": True,
            "first_name": "Broadcaster (sandbox)",
            "username": "broadcaster_sandbox_bot",
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _get_chat_member(self, params: dict[str, Any]) -> Any:
        """The bot's own membership only: the sandbox has no other users."""
        chat = self._resolve(params["chat_id"])
        bot = self._get_me({})
        if params["user_id"] != bot["id"]:
            raise TelegramError(400, "Bad Request: user not found")
        if not chat.bot_is_member:
            return {"status": "left", "user": bot}
        return {
            "status": "administrator",
            "user": bot,
            "can_be_edited": False,
            "is_anonymous": False,
            "can_manage_chat": True,
            "can_delete_messages": True,
            "can_manage_video_chats": False,
            "can_restrict_members": False,
            "can_promote_members": False,
            "can_change_info": False,
            "can_invite_users": False,
            "can_post_stories": False,
            "can_edit_stories": False,
            "can_delete_stories": False,
            "can_post_messages": chat.bot_can_post,
            "can_edit_messages": chat.bot_can_post,
        }

    def _send(self, params: dict[str, Any]) -> Any:
        chat = self._postable(params["chat_id"])
        text, entities = self._parsed(params)
        with self._lock:
            message_id = self._next_id.get(chat.id, 0) + 1
            self._next_id[chat.id] = message_id
            message = TelegramMessage(
                chat,
                message_id,
                int(self.ctx.clock()),
                text,
                params["text"],
                params.get("parse_mode"),
                entities,
            )
            self._messages[(chat.id, message_id)] = message
        return message.to_json()

    def _edit(self, params: dict[str, Any]) -> Any:
        if "inline_message_id" in params:
            raise TelegramError(400, "Bad Request: MESSAGE_ID_INVALID")
        for name in ("chat_id", "message_id", "text"):
            if name not in params:
                raise TelegramError(400, _EMPTY[name])
        message = self._message(params, "Bad Request: message to edit not found")
        text, entities = self._parsed(params)
        if (text, entities) == (message.text, message.entities):
            raise TelegramError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        with self._lock:
            message.text, message.entities, message.raw_text = text, entities, params["text"]
            message.parse_mode = params.get("parse_mode")
            message.edit_date = int(self.ctx.clock())
        return message.to_json()

    def _delete(self, params: dict[str, Any]) -> Any:
        message = self._message(params, "Bad Request: message to delete not found")
        if self.ctx.clock() - message.date > _DELETE_WINDOW_S:
            raise TelegramError(400, "Bad Request: message can't be deleted")
        with self._lock:
            message.deleted = True
        return True

    # Helpers ----------------------------------------------------------------------------------

    def _resolve(self, chat_id: Any) -> Chat:
        try:
            return self.chat(chat_id)
        except LookupError:
            raise TelegramError(400, "Bad Request: chat not found") from None

    def _postable(self, chat_id: Any) -> Chat:
        chat = self._resolve(chat_id)
        if not chat.bot_is_member:
            raise TelegramError(403, "Forbidden: bot is not a member of the channel chat")
        if not chat.bot_can_post:
            raise TelegramError(400, "Bad Request: need administrator rights in the channel chat")
        return chat

    def _message(self, params: dict[str, Any], missing: str) -> TelegramMessage:
        chat = self._postable(params["chat_id"])
        with self._lock:
            message = self._messages.get((chat.id, int(params["message_id"])))
        if message is None or message.deleted:
            raise TelegramError(400, missing)
        return message

    def _parsed(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        try:
            text, entities = parse_text(params["text"], params.get("parse_mode"))
        except EntityError as error:
            raise TelegramError(400, f"Bad Request: can't parse entities: {error}") from None
        except ValueError:
            raise TelegramError(400, "Bad Request: unsupported parse_mode") from None
        if not text.strip():
            raise TelegramError(400, "Bad Request: message text is empty")
        if utf16_length(text) > _MAX_TEXT:
            raise TelegramError(400, "Bad Request: message is too long")
        return text, entities

    def _checked(self, spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        fields = {f["name"]: f for f in spec.get("fields", [])}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise TelegramError(
                400, f'Bad Request: unknown parameter "{unknown[0]}" for method {spec["name"]}'
            )
        checked: dict[str, Any] = {}
        for name, spec_field in fields.items():
            if name not in params:
                if spec_field["required"]:
                    raise TelegramError(
                        400, _EMPTY.get(name, f'Bad Request: parameter "{name}" is required')
                    )
                continue
            checked[name] = self._value(name, spec_field["types"], params[name])
        return checked

    def _value(self, name: str, types: list[str], value: Any) -> Any:
        if set(types) & {"String"}:
            return value if isinstance(value, str) else json.dumps(value)
        if "Integer" in types:
            try:
                return int(value)
            except (TypeError, ValueError):
                raise TelegramError(
                    400, f'Bad Request: field "{name}" must be an Integer'
                ) from None
        if "Boolean" in types or "True" in types:
            if isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0"):
                return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
            raise TelegramError(400, f'Bad Request: field "{name}" must be a Boolean')
        return self._object(name, types, value)

    def _object(self, name: str, types: list[str], value: Any) -> Any:
        label = name.replace("_", " ")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise TelegramError(400, f"Bad Request: can't parse {label} JSON object") from None
        want_list = any(t.startswith("Array of") for t in types)
        if want_list != isinstance(value, list) or not isinstance(value, list | dict):
            raise TelegramError(400, f"Bad Request: can't parse {label} JSON object")
        known = self.ctx.specs.telegram_types
        if isinstance(value, dict) and all(t in known for t in types):
            allowed = {f["name"] for t in types for f in known[t].get("fields", [])}
            extra = sorted(set(value) - allowed)
            if extra:
                raise TelegramError(400, f'Bad Request: unknown field "{extra[0]}" in {name}')
        return value
