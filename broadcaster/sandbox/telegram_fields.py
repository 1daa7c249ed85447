"""The Bot API methods the broadcaster uses, for when ``telegram/api.json`` is not available.

Same shape as the vendored ``api.json`` (Bot API 10.1): ``{lower-case name: {"name", "fields"}}``,
each field ``{"name", "types", "required"}``. Written compactly as ``name:Type|Type`` with ``!`` for
required fields; ``_`` stands for a space in type names such as ``Array of MessageEntity``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FALLBACK_METHODS"]

_COMPACT = {
    "getMe": "",
    "getChat": "chat_id:Integer|String!",
    "getChatMember": "chat_id:Integer|String! user_id:Integer!",
    "sendMessage": (
        "business_connection_id:String chat_id:Integer|String! message_thread_id:Integer "
        "direct_messages_topic_id:Integer text:String! parse_mode:String "
        "entities:Array_of_MessageEntity link_preview_options:LinkPreviewOptions "
        "disable_notification:Boolean protect_content:Boolean allow_paid_broadcast:Boolean "
        "message_effect_id:String suggested_post_parameters:SuggestedPostParameters "
        "reply_parameters:ReplyParameters "
        "reply_markup:InlineKeyboardMarkup|ReplyKeyboardMarkup|ReplyKeyboardRemove|ForceReply"
    ),
    "editMessageText": (
        "business_connection_id:String chat_id:Integer|String message_id:Integer "
        "inline_message_id:String text:String parse_mode:String entities:Array_of_MessageEntity "
        "link_preview_options:LinkPreviewOptions rich_message:InputRichMessage "
        "reply_markup:InlineKeyboardMarkup"
    ),
    "deleteMessage": "chat_id:Integer|String! message_id:Integer!",
}


def _field(compact: str) -> dict[str, Any]:
    name, _, types = compact.partition(":")
    required = types.endswith("!")
    return {
        "name": name,
        "types": [t.replace("_", " ") for t in types.rstrip("!").split("|")],
        "required": required,
    }


FALLBACK_METHODS: dict[str, dict[str, Any]] = {
    name.lower(): {"name": name, "fields": [_field(f) for f in fields.split()]}
    for name, fields in _COMPACT.items()
}
