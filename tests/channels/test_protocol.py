"""The adapter protocol's defaults: what a channel that cannot edit or delete answers."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from broadcaster.channels.base import Receipt
from broadcaster.errors import PermanentError, RateLimited, RateScope
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
