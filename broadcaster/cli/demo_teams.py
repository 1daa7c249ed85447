"""The demo's Teams side: ``serve`` in this process, the sandbox clicking on the approval card.

The sandbox is handed in as the protocols below (the core does not import it). Every wait is
bounded by :data:`WAIT_S`, and a click the bot does not take stops the demo with what the card
it answered with says.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from broadcaster.app import App
from broadcaster.errors import BroadcastError
from broadcaster.store.approval_cards import card_of

if TYPE_CHECKING:
    from broadcaster.server.background import Background

__all__ = [
    "WAIT_S",
    "BotAnswer",
    "BotConnector",
    "PostedActivity",
    "TeamsPlayer",
    "card_status",
    "click_approve",
    "posted_card",
    "serving",
    "wait_for",
]

#: The longest the demo waits for the worker in ``serve`` to do one thing (it takes well under a
#: second): past it, the demo stops and says what did not happen.
WAIT_S = 20.0


class BotAnswer(Protocol):
    """The HTTP answer of the bot's endpoint to a click (an ``httpx.Response``)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        ...

    @property
    def text(self) -> str:
        """The body."""
        ...

    def json(self) -> Any:
        """The body, parsed."""
        ...


class TeamsPlayer(Protocol):
    """The sandbox acting as Teams (``broadcaster.sandbox.teams.TeamsActor``)."""

    def click(
        self,
        bot_url: str,
        *,
        verb: str,
        user_object_id: str,
        activity_id: str,
        user_name: str,
        timeout_s: float,
    ) -> BotAnswer:
        """Click the button ``verb`` on the card ``activity_id`` the bot posted, as that user:
        a signed ``adaptiveCard/action`` invoke to ``bot_url``."""
        ...


class PostedActivity(Protocol):
    """An activity the bot posted, as the sandbox's Bot Connector keeps it."""

    def card(self) -> dict[str, Any] | None:
        """The Adaptive Card attached, as Teams shows it now."""
        ...


class BotConnector(Protocol):
    """The sandbox's Bot Connector (``broadcaster.sandbox.connector.ConnectorEmulator``)."""

    def activity(self, activity_id: str) -> PostedActivity | None:
        """One posted activity by id."""
        ...


@contextmanager
def serving(app: App) -> Iterator[Background]:
    """``broadcaster serve`` with its worker, in this process, on a free loopback port."""
    from broadcaster.server.background import serve_in_background
    from broadcaster.server.runner import listen

    sock = listen("127.0.0.1", 0)
    try:
        serving = serve_in_background(app, sock, worker=True, name="demo-serve")
        try:
            yield serving
        finally:
            stopped = serving.stop(timeout=WAIT_S)
        if not stopped:
            raise BroadcastError(
                f"demo: serve did not stop within {WAIT_S:.0f} s; the workspace is left as it "
                "is: run `broadcaster status 1` in it to see what was delivered"
            )
        if serving.errors:
            raise BroadcastError(f"demo: serve stopped on an error: {serving.errors[0]}")
    finally:
        sock.close()


def wait_for(app: App, serving: Background, what: str, done: Callable[[], Any]) -> Any:
    """Poll ``done`` until it returns something true; an error naming ``what`` after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        found = done()
        if found:
            return found
        if not serving.thread.is_alive():
            raise BroadcastError(
                f"demo: serve stopped before its worker could {what}: "
                f"{serving.errors[0] if serving.errors else 'no error was raised'}"
            )
        if time.monotonic() > deadline:
            raise BroadcastError(
                f"demo: the worker in serve did not {what} within {WAIT_S:.0f} s; see "
                f"`broadcaster status 1` and `broadcaster deadletters` in {app.workspace.root}"
            )
        time.sleep(0.02)


def posted_card(app: App, announcement_id: int) -> str | None:
    """The activity id of the announcement's card once the bot has posted it."""
    with app.store.read() as conn:
        card = card_of(conn, announcement_id)
    return card.activity_id if card is not None and card.posted else None


def click_approve(app: App, teams: TeamsPlayer, bot_url: str, person: str, card: str) -> str | None:
    """The sandbox, acting as Teams, clicks Approve on the card (its activity id) as ``person``;
    raise if refused.

    Returns:
        The status line of the card serve answered with (what the clicker sees at once).
    """
    object_id = app.config.approval.identities.get(person)
    if object_id is None:
        raise BroadcastError(
            f"demo: {person} has no Entra object id in [approval.identities]; run the demo in a "
            "new folder so it writes its own workspace"
        )
    answer = teams.click(
        bot_url,
        verb="approve",
        user_object_id=object_id,
        activity_id=card,
        user_name=person,
        timeout_s=WAIT_S,
    )
    why = _refused(answer)
    if why is not None:
        raise BroadcastError(
            f"demo: serve refused {person}'s click on the approval card: {why}; the audit log "
            f"says more: `broadcaster audit` in {app.workspace.root}"
        )
    return card_status(answer.json().get("value"))


def card_status(card: Any) -> str | None:
    """The card's status line (who approved, and whether it is sent): its first bold ``TextRun``
    in a ``RichTextBlock`` set off by a separator."""
    for element in card.get("body", []) if isinstance(card, dict) else []:
        if element.get("type") == "RichTextBlock" and element.get("separator"):
            runs = [i for i in element.get("inlines", []) if i.get("weight") == "Bolder"]
            if runs:
                return str(runs[0].get("text"))
    return None


def _refused(answer: BotAnswer) -> str | None:
    """Why the bot did not take a click (None: it did): its HTTP error, or the card's notice."""
    if answer.status_code != 200:
        return f"HTTP {answer.status_code} {answer.text[:200]}"
    try:
        body = answer.json()
    except ValueError:
        return f"the answer was not JSON: {answer.text[:200]}"
    if not isinstance(body, dict) or body.get("statusCode") != 200:
        value = body.get("value") if isinstance(body, dict) else None
        message = value.get("message") if isinstance(value, dict) else None
        return str(message or body)[:200]
    notices = _notices(body.get("value"))
    return "; ".join(notices) if notices else None


def _notices(node: Any) -> list[str]:
    """The texts of a card's ``attention`` containers: what it says was not done, and why."""
    if isinstance(node, list):
        return [text for child in node for text in _notices(child)]
    if not isinstance(node, dict):
        return []
    if node.get("type") == "Container" and node.get("style") == "attention":
        return _texts(node)
    return [text for child in node.values() for text in _notices(child)]


def _texts(node: Any) -> list[str]:
    if isinstance(node, list):
        return [text for child in node for text in _texts(child)]
    if not isinstance(node, dict):
        return []
    own = [str(node["text"])] if node.get("type") in ("TextBlock", "TextRun") else []
    return own + [text for child in node.values() for text in _texts(child)]
