"""The adapter protocol's defaults: what a channel that cannot edit or delete answers, and which
of send, update and delete a revision is delivered with."""

from __future__ import annotations

import asyncio
import pickle
from types import SimpleNamespace

import pytest

from broadcaster.channels.base import Channel, Receipt, Rendered
from broadcaster.errors import PermanentError, RateLimited, RateScope
from broadcaster.model import Content, RevisionKind
from broadcaster.rendering.message import Message
from tests.channels.test_registry import adapter


def test_a_channel_that_cannot_edit_or_delete_says_what_to_do_instead() -> None:
    channel_class = adapter("telegram", None)
    assert (channel_class.can_update, channel_class.can_delete) == (False, False)
    channel = channel_class.__new__(channel_class)
    receipt = Receipt("42", {"chat_id": -100123})
    with pytest.raises(PermanentError, match="send the correction as a new one"):
        asyncio.run(channel.update(receipt, None, None))  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match="remove it by hand"):
        asyncio.run(channel.delete(receipt))


def test_a_rate_limit_keeps_its_scope_across_processes() -> None:
    """Errors pickle with every field (they cross process boundaries): the scope too."""
    error = RateLimited("facebook", "code 4", retry_after=30, scope=RateScope.CHANNEL)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.scope, copy.retry_after, copy.message) == (RateScope.CHANNEL, 30, "code 4")
    assert RateLimited("telegram", "429").scope == RateScope.TARGET


class _Recording:
    """A channel that records which of send, update and delete ``deliver`` chose."""

    def __init__(self, *, can_edit: bool) -> None:
        self.calls: list[str] = []
        self.can_update = self.can_delete = can_edit

    async def send(self, message: Message, rendered: Rendered) -> Receipt:
        self.calls.append("send")
        return Receipt("new")

    async def update(self, receipt: Receipt, message: Message, rendered: Rendered) -> Receipt:
        self.calls.append(f"update {receipt.platform_id}")
        return Receipt("edited")

    async def delete(self, receipt: Receipt) -> None:
        self.calls.append(f"delete {receipt.platform_id}")


@pytest.mark.parametrize(
    ("kind", "previous", "can_edit", "call", "receipt"),
    [
        (RevisionKind.ORIGINAL, None, True, "send", "new"),
        (RevisionKind.CORRECTION, "7", True, "update 7", "edited"),
        (RevisionKind.RETRACTION, "7", True, "delete 7", "7"),  # the removed post's receipt
        # Nothing posted before (the first revision's delivery died), or a channel that can
        # neither edit nor delete: the revision is a message of its own.
        (RevisionKind.CORRECTION, None, True, "send", "new"),
        (RevisionKind.RETRACTION, None, True, "send", "new"),
        (RevisionKind.CORRECTION, "7", False, "send", "new"),
        (RevisionKind.RETRACTION, "7", False, "send", "new"),
        # An ordinary later revision (an edit of a draft) is never an edit of a post.
        (RevisionKind.ORIGINAL, "7", True, "send", "new"),
    ],
)
def test_deliver_edits_or_removes_what_an_earlier_revision_posted(
    kind: RevisionKind, previous: str | None, can_edit: bool, call: str, receipt: str
) -> None:
    content = Content(title="t", body="b", kind=kind)
    message = SimpleNamespace(
        content=content, previous=Receipt(previous) if previous is not None else None
    )
    channel = _Recording(can_edit=can_edit)
    got = asyncio.run(Channel.deliver(channel, message, Rendered()))  # type: ignore[arg-type]
    assert (channel.calls, got.platform_id) == ([call], receipt)
