"""The keys that sign Bot Framework's requests, fetched from the sandbox's OpenID metadata over
real HTTP: fetched once and cached, fetched again for an unknown key at most once a minute, and a
failed fetch is never taken as a pass (503, audited, no traceback)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from broadcaster.sandbox.keys import SigningKey
from broadcaster.server.bot_keys import KEYS_MAX_AGE_S
from tests.server.botframework import BotServer


def metadata_fetches(bot: BotServer) -> int:
    return sum(r.path.endswith("openidconfiguration") for r in bot.sandbox.records.find())


def test_the_keys_are_fetched_once_and_then_held(bot: BotServer) -> None:
    statuses = [bot.post().status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert (metadata_fetches(bot), bot.key_fetches()) == (1, 1)


def test_simultaneous_first_requests_fetch_the_keys_once(bot: BotServer) -> None:
    token, activity = bot.token(), bot.activity()

    async def twenty() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        bot.url, json=activity, headers={"Authorization": f"Bearer {token}"}
                    )
                    for _ in range(20)
                )
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(twenty()) == [200] * 20
    assert bot.key_fetches() == 1


def test_an_unknown_key_fetches_the_keys_again_at_most_once_a_minute(
    bot: BotServer, stranger: SigningKey
) -> None:
    assert bot.post().status_code == 200
    assert bot.key_fetches() == 1

    # Within a minute of the last fetch an unknown key is refused without asking again.
    assert bot.post(token=bot.token(stranger)).status_code == 401
    assert bot.key_fetches() == 1

    bot.clock.advance(61)
    assert bot.post(token=bot.token(stranger)).status_code == 401
    assert bot.key_fetches() == 2  # fetched again: the key might have been rotated in
    assert bot.post(token=bot.token(stranger)).status_code == 401
    bot.clock.advance(59)
    assert bot.post(token=bot.token(stranger)).status_code == 401
    assert bot.key_fetches() == 2  # ... but not again within the minute

    bot.clock.advance(2)
    assert bot.post(token=bot.token(stranger)).status_code == 401
    assert bot.key_fetches() == 3
    # Tokens with the known key never cost a fetch.
    assert bot.post().status_code == 200
    assert bot.key_fetches() == 3
    assert len(bot.refusals()) == 5


def test_keys_held_for_a_day_are_fetched_again(bot: BotServer) -> None:
    assert bot.post().status_code == 200
    bot.clock.advance(KEYS_MAX_AGE_S + 1)

    assert bot.post().status_code == 200
    assert bot.key_fetches() == 2


@pytest.mark.parametrize("fault", ["down", "error"])
def test_keys_that_cannot_be_fetched_refuse_with_503_until_they_can(
    bot: BotServer, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    if fault == "down":
        bot.sandbox.faults.down("botframework", 600)
    else:
        bot.sandbox.faults.fail("botframework", status=500, count=None)

    with caplog.at_level(logging.WARNING):
        answer = bot.post()

    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json() == {"error": "cannot verify the request now; try again"}
    assert bot.card_actions.calls == []
    [refusal] = bot.refusals()
    assert refusal.details["reason"].startswith("the signing keys could not be fetched: ")
    assert "openidconfiguration" in refusal.details["reason"]
    assert not any(record.exc_info for record in caplog.records)  # no traceback, even in the log
    assert any("could not fetch" in record.getMessage() for record in caplog.records)

    # Back up: the failed fetch is tried again after a few seconds, not at every request.
    bot.sandbox.faults.clear()
    fetches = metadata_fetches(bot)
    assert bot.post().status_code == 503
    assert metadata_fetches(bot) == fetches
    bot.clock.advance(6)
    assert bot.post().status_code == 200
    assert len(bot.card_actions.calls) == 1


def test_keys_held_keep_working_while_the_metadata_host_is_down(
    bot: BotServer, stranger: SigningKey
) -> None:
    assert bot.post().status_code == 200
    bot.sandbox.faults.down("botframework", 600)
    bot.clock.advance(61)

    # The unknown key cannot be looked up now: 503, never a pass.
    assert bot.post(token=bot.token(stranger)).status_code == 503
    # The key already held still verifies, and the one held for a day survives a failed refresh.
    assert bot.post().status_code == 200
    bot.clock.advance(KEYS_MAX_AGE_S)
    assert bot.post().status_code == 200
    assert len(bot.card_actions.calls) == 3
