"""Twilio's error codes, read from the table: what each becomes for the retry queue."""

from __future__ import annotations

import pickle

import pytest

from broadcaster.channels.sms_errors import Kind, classify, masked, rule_for
from broadcaster.errors import (
    AuthError,
    ChannelError,
    PermanentError,
    RateLimited,
    RateScope,
    RecipientOptedOut,
    TransientError,
    UnknownOutcome,
)


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (21211, 400, Kind.RECIPIENT),
        (21614, 400, Kind.RECIPIENT),
        (21612, 400, Kind.RECIPIENT),
        (21666, 400, Kind.RECIPIENT),  # any other 21xxx: the request, in practice the number
        (21610, 400, Kind.OPTED_OUT),
        (20003, 401, Kind.AUTH),
        (None, 401, Kind.AUTH),
        (20005, 401, Kind.AUTH),
        (20429, 429, Kind.THROTTLE),
        (429, 429, Kind.THROTTLE),  # the SDK puts the status in code when the body has none
        (21611, 400, Kind.RETRY),
        (20500, 500, Kind.RETRY),
        (20503, 503, Kind.RETRY),
        (502, 502, Kind.AMBIGUOUS),
        (None, 504, Kind.AMBIGUOUS),
        (503, 503, Kind.AMBIGUOUS),  # a 503 Twilio's API did not write (a proxy, a balancer)
        (21212, 400, Kind.CONFIG),
        (21606, 400, Kind.CONFIG),
        (21701, 400, Kind.CONFIG),
        (None, 400, Kind.CONFIG),
    ],
)
def test_each_code_has_its_meaning(code: int | None, status: int, kind: Kind) -> None:
    assert rule_for(code, status).kind is kind


def make(code: int | None, status: int, **extra: object) -> ChannelError:
    options: dict[str, object] = {
        "message": "Unable to create record: The 'To' number +46701740605 is not valid",
        "retry_after": None,
        "target": "sms-borgholm",
        **extra,
    }
    return classify(code=code, status=status, **options)  # type: ignore[arg-type]


def test_the_errors_the_queue_gets() -> None:
    assert type(make(21211, 400)) is PermanentError
    assert type(make(21610, 400)) is RecipientOptedOut
    assert type(make(20003, 401)) is AuthError
    assert type(make(20500, 500)) is TransientError
    assert type(make(502, 502)) is UnknownOutcome
    # A lookup creates nothing: the same answer there is simply retried.
    assert type(make(502, 502, may_have_sent=False)) is TransientError


def test_a_429_without_twilios_code_pauses_this_target_and_20429_the_account() -> None:
    plain, account = make(429, 429, retry_after=3.0), make(20429, 429)
    assert isinstance(plain, RateLimited) and isinstance(account, RateLimited)
    assert (plain.retry_after, plain.scope) == (3.0, RateScope.TARGET)
    assert (account.retry_after, account.scope) == (5.0, RateScope.CHANNEL)


def test_every_number_in_twilios_words_is_masked() -> None:
    for code, status in ((21211, 400), (20003, 401), (20429, 429), (20500, 500), (502, 502)):
        text = str(make(code, status))
        assert "+46701740605" not in text
        assert "+46 70 *** ** 05" in text
    assert masked("The 'To' number +4670174 is not a valid phone number.") == (
        "The 'To' number ******74 is not a valid phone number."
    )


def test_the_errors_survive_the_trip_between_processes() -> None:
    for error in (make(21610, 400), make(20429, 429), make(20003, 401)):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy)) == (type(error), str(error))
