"""The Adaptive Card both Teams modes post: rendered, checked against the schema, read aloud.

The card comes from the template ``teams/card.json`` (a workspace may override it). The template
writes JSON with every value passed through ``|tojson``, and its output is parsed here, so the
adapters handle the card as data from then on and never build JSON by hand.

:func:`card_problems` is what ``preview`` reports for a card: Teams renders up to version 1.5,
and the card must be valid against the official Adaptive Card schema of its version (from the
project's vendored specs, see ``shared/specs/SOURCES.md``). The schema forbids unknown top-level
keys, so Teams' own ``msteams`` key is set aside before validating. Where the schema or
``jsonschema`` is not installed (a production machine), the structural checks still run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import broadcaster
from broadcaster.channels.base import Channel, Rendered
from broadcaster.errors import RenderError
from broadcaster.rendering import Renderer
from broadcaster.rendering.message import Message
from broadcaster.rendering.readable import wrap_text
from broadcaster.schema_errors import card_version, malformed_element_lists, own_branch_error

__all__ = [
    "ADAPTIVE_CARD",
    "MAX_MESSAGE_BYTES",
    "TEMPLATE",
    "card_activity",
    "card_attachment",
    "card_problems",
    "card_text",
    "render_card",
]

TEMPLATE = "teams/card.json"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
#: Teams refuses a message larger than about 28 KB (MessageSizeTooBig); the activity around the
#: card needs some of it.
MAX_MESSAGE_BYTES = 28 * 1024
_ENVELOPE_BYTES = 1024
_TEAMS_MAX_VERSION = (1, 5)
_SCHEMA_FILES: dict[tuple[int, ...], str] = {
    (1, 4): "adaptive-card-1.4.0.json",
    (1, 5): "adaptive-card-1.5.0.json",
}


def render_card(renderer: Renderer, message: Message) -> dict[str, Any]:
    """The card for ``message`` as data; RenderError when the template's output is not JSON."""
    text = renderer.render(TEMPLATE, message.context())
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RenderError(
            f"template {TEMPLATE} did not produce JSON (line {exc.lineno}: {exc.msg}); "
            "write every value as {{ value|tojson }}"
        ) from None
    if not isinstance(card, dict):
        raise RenderError(f"template {TEMPLATE} must produce one JSON object, the card")
    return card


def card_attachment(card: dict[str, Any]) -> dict[str, Any]:
    """The card as a message attachment (Bot Connector activities and Workflows alike)."""
    return {"contentType": ADAPTIVE_CARD, "content": card}


def card_activity(card: dict[str, Any], summary: str) -> dict[str, Any]:
    """A Bot Connector message activity carrying ``card``.

    ``summary`` is what Teams shows in notifications and the activity feed, where the card is
    not.
    """
    return {"type": "message", "summary": summary, "attachments": [card_attachment(card)]}


def card_problems(card: dict[str, Any]) -> list[str]:
    """Why Teams would refuse or misrender ``card``; empty when it is a valid 1.5 card."""
    if card.get("type") != "AdaptiveCard":
        return ["the card's type must be 'AdaptiveCard'"]
    version = card_version(card.get("version"))
    if version is None:
        return ['the card needs a version such as "1.5" (Teams renders up to 1.5)']
    if version > _TEAMS_MAX_VERSION:
        return [f"card version {card['version']} is above 1.5, the highest Teams renders"]
    problems = []
    size = len(json.dumps(card, ensure_ascii=False).encode())
    if size > MAX_MESSAGE_BYTES - _ENVELOPE_BYTES:
        problems.append(
            f"the card is {size:,} bytes; Teams takes about "
            f"{(MAX_MESSAGE_BYTES - _ENVELOPE_BYTES) // 1024} KB: shorten the text"
        )
    bare = {key: value for key, value in card.items() if key != "msteams"}
    validator = _validator((1, 5) if version >= (1, 5) else (1, 4))
    if validator is None:
        return problems + [
            f"the card's {key} must be a list of elements, each with a type"
            for key in malformed_element_lists(bare)
        ]
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(bare))
    if error is not None:
        error = own_branch_error(error)
        where = "/".join(str(part) for part in error.absolute_path) or "card"
        kind = error.instance.get("type") if isinstance(error.instance, dict) else None
        if error.validator == "anyOf" and isinstance(kind, str):
            reason = f"{kind!r} is not an element of Adaptive Card {card['version']}"
        else:
            reason = _shorten(error.message)
        problems.append(f"the card is not a valid Adaptive Card: {where}: {reason}")
    return problems


def _shorten(text: str, limit: int = 160) -> str:
    # jsonschema quotes the offending value, which may be the whole 5,000-character body.
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_text(card: dict[str, Any]) -> str:
    """What a reader of the card sees, as plain text: its text blocks, facts and links."""
    blocks: list[str] = []
    _read(card.get("body") or [], blocks)
    for action in card.get("actions") or []:
        _read_action(action, blocks)
    return "\n\n".join(wrap_text(block) for block in blocks if block)


def _read(elements: list[Any], blocks: list[str]) -> None:
    for element in elements:
        if not isinstance(element, dict) or element.get("isVisible") is False:
            continue
        reader = _READERS.get(str(element.get("type")))
        if reader is not None:
            blocks.extend(reader(element))
        for key in ("items", "columns"):  # Container, Column, ColumnSet
            if isinstance(element.get(key), list):
                _read(element[key], blocks)


def _facts(element: dict[str, Any]) -> list[str]:
    facts = element.get("facts") or []
    return ["\n".join(f"{fact.get('title', '')}: {fact.get('value', '')}" for fact in facts)]


def _actions(element: dict[str, Any]) -> list[str]:
    blocks: list[str] = []
    for action in element.get("actions") or []:
        _read_action(action, blocks)
    return blocks


#: What a reader sees of each kind of element (containers are walked into, not read).
_READERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "TextBlock": lambda e: [str(e.get("text", ""))],
    "RichTextBlock": lambda e: ["".join(str(i.get("text", "")) for i in e.get("inlines") or [])],
    "FactSet": _facts,
    "Image": lambda e: [f"[bild: {e['altText']}]"] if e.get("altText") else [],
    "ActionSet": _actions,
}


def _read_action(action: Any, blocks: list[str]) -> None:
    if isinstance(action, dict) and action.get("type") == "Action.OpenUrl":
        blocks.append(f"{action.get('title') or 'Länk'}: {action.get('url', '')}")


def schema_dir() -> Path | None:
    """The vendored Adaptive Card schemas beside the checkout, or None when not installed."""
    repository = Path(broadcaster.__file__).resolve().parents[1]
    for specs in (repository.parent / "shared" / "specs", Path("/work/shared/specs")):
        if (specs / "adaptivecards" / _SCHEMA_FILES[_TEAMS_MAX_VERSION]).is_file():
            return specs / "adaptivecards"
    return None


@cache
def _validator(version: tuple[int, ...]) -> Any:
    """A validator for cards of ``version`` (loaded once per process), or None without one."""
    folder = schema_dir()
    try:
        from jsonschema import Draft6Validator
    except ImportError:
        return None
    if folder is None:
        return None
    with (folder / _SCHEMA_FILES[version]).open(encoding="utf-8") as handle:
        schema = json.load(handle)
    # Validating against the AdaptiveCard definition itself gives errors with useful paths; the
    # schema's root wraps it in an anyOf whose errors say only "not valid under any schema".
    return Draft6Validator(
        {"$ref": "#/definitions/AdaptiveCard", "definitions": schema["definitions"]}
    )


class TeamsCardChannel(Channel):
    """What both Teams modes share: the update as an Adaptive Card, checked and read the same
    way; each mode says only how the card reaches the channel."""

    name: ClassVar[str] = "teams"
    can_verify = False  # neither the connector nor a workflow can list a channel's messages
    blind_resend_ok = False  # a second card in a staff channel is a person's call
    # Teams allows about 7 messages a second in one conversation (PLATFORMS §6); a workflow
    # posts as the Flow bot into one conversation, so the same pace applies.
    default_rate_per_second = 7.0
    default_concurrency = 2

    def render(self, message: Message) -> Rendered:
        """The update's Adaptive Card."""
        return Rendered(card=render_card(self.context.renderer, message))

    def check(self, rendered: Rendered) -> list[str]:
        """The card's problems against the Adaptive Card schema and Teams' limits."""
        return card_problems(rendered.card) if rendered.card is not None else ["no card rendered"]

    def readable(self, message: Message, rendered: Rendered) -> str:
        """The card as its readers see it: title, facts, body, link."""
        if rendered.card is None:
            return super().readable(message, rendered)
        return card_text(rendered.card)
