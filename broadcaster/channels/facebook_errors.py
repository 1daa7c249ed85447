"""Graph API error codes as data: what each means for a delivery, and what a person should do.

Source: https://developers.facebook.com/docs/graph-api/guides/error-handling and the rate
limiting page (PLATFORMS.md §1). :func:`classify` reads only these tables; adding a code is a
new row, not a new branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from broadcaster.errors import (
    AuthError,
    ChannelError,
    PermanentError,
    RateLimited,
    RateScope,
    TransientError,
)

__all__ = ["GONE", "Kind", "Rule", "classify", "rule_for"]

CHANNEL = "facebook"


class Kind(StrEnum):
    """What a Graph error means for the delivery."""

    AUTH = "auth"  # the page token is dead: a person must renew it
    THROTTLE = "throttle"  # a call budget is spent: wait
    TRANSIENT = "transient"  # Graph is having trouble: try again
    PERMANENT = "permanent"  # this will not work as it stands
    DUPLICATE = "duplicate"  # the same text is already on the page


@dataclass(frozen=True)
class Rule:
    """How to treat one error code."""

    kind: Kind
    #: What the error means, in words for the status line.
    meaning: str
    #: For THROTTLE: what the budget covers, and the wait when Graph gives no estimate.
    scope: RateScope = RateScope.TARGET
    wait_s: float | None = None


_PERMISSIONS = (
    "the page token lacks a permission; give it pages_manage_posts and pages_read_engagement "
    "(and make sure its user still has a task on the page that allows posting)"
)
_CODES: Mapping[int, Rule] = MappingProxyType(
    {
        1: Rule(Kind.TRANSIENT, "Graph reported an unknown error"),
        2: Rule(Kind.TRANSIENT, "Graph is temporarily unavailable"),
        4: Rule(Kind.THROTTLE, "the app's call budget is spent", RateScope.CHANNEL, 300.0),
        17: Rule(Kind.THROTTLE, "the token owner's call budget is spent", RateScope.CHANNEL, 300.0),
        32: Rule(Kind.THROTTLE, "the page's call budget is spent", RateScope.TARGET, 300.0),
        613: Rule(Kind.THROTTLE, "a Graph rate limit was hit", RateScope.TARGET, 60.0),
        80001: Rule(
            Kind.THROTTLE, "the page's business use-case budget is spent", RateScope.TARGET, 300.0
        ),
        10: Rule(Kind.PERMANENT, _PERMISSIONS),
        100: Rule(Kind.PERMANENT, "Graph refused a parameter of the post"),
        102: Rule(Kind.AUTH, "the session of the page token is no longer valid"),
        104: Rule(Kind.AUTH, "no page token was sent"),
        190: Rule(Kind.AUTH, "the page token is no longer valid"),
        368: Rule(Kind.PERMANENT, "Facebook blocked the post as against its policies"),
        506: Rule(Kind.DUPLICATE, "the same text was already posted on the page"),
    }
)
#: Code ranges after the single codes: 200-299 are permission errors.
_RANGES: tuple[tuple[int, int, Rule], ...] = ((200, 299, Rule(Kind.PERMANENT, _PERMISSIONS)),)
#: Codes with no row: by HTTP status, then by its class (4xx, 5xx).
_BY_STATUS: Mapping[int, Rule] = MappingProxyType(
    {429: Rule(Kind.THROTTLE, "Graph asked to slow down", RateScope.TARGET, 60.0)}
)
_BY_CLASS: Mapping[int, Rule] = MappingProxyType(
    {
        4: Rule(Kind.PERMANENT, "Graph refused the request"),
        5: Rule(Kind.TRANSIENT, "Graph failed on its side"),
    }
)
#: 190's subcodes, i.e. why the token died.
_TOKEN_DEATHS: Mapping[int, str] = MappingProxyType(
    {
        458: "the app was removed from the account that owns the token",
        459: "the account that owns the token is checkpointed (a login check is pending)",
        460: "the password of the account that owns the token was changed",
        463: "the token has expired",
        464: "the account that owns the token is not confirmed",
        467: "the token is invalid (revoked or logged out)",
        492: "the account that owns the token no longer has a role on the page",
    }
)
#: (code, subcode) of "the object does not exist": a post deleted already.
GONE = (100, 33)


def rule_for(code: int | None, status: int | None) -> Rule:
    """The rule for a Graph error code, falling back on the HTTP status."""
    if code is not None:
        if code in _CODES:
            return _CODES[code]
        for low, high, rule in _RANGES:
            if low <= code <= high:
                return rule
    if status is not None and status in _BY_STATUS:
        return _BY_STATUS[status]
    if status is not None and status // 100 in _BY_CLASS:
        return _BY_CLASS[status // 100]
    # No status, or a 2xx that was no Graph answer: nothing says it is final.
    return _BY_CLASS[5]


def classify(
    *,
    code: int | None,
    subcode: int | None,
    message: str,
    status: int | None,
    retry_after: float | None,
    target: str,
    page_id: str,
) -> ChannelError:
    """The channel error for one Graph error answer.

    A DUPLICATE comes back as a PermanentError; the adapter checks the page before it believes
    it (see ``FacebookChannel.send``).

    Args:
        code: ``error.code`` (None when the answer was not a Graph error).
        subcode: ``error.error_subcode``.
        message: Graph's message.
        status: The HTTP status, when known.
        retry_after: The wait Graph asked for (``Retry-After``, or the usage estimate), if any.
        target: The target id, named in every sentence a person reads.
        page_id: The Facebook page id.
    """
    rule = rule_for(code, status)
    said = f"{message} (code {code})" if code is not None else message
    if rule.kind is Kind.AUTH:
        why = _TOKEN_DEATHS.get(subcode or 0, rule.meaning)
        return AuthError(
            CHANNEL,
            f"the page token of target {target} (Facebook page {page_id}) no longer works: "
            f"{why}. Renew it: create a new long-lived Page access token for page {page_id} "
            "with pages_manage_posts and pages_read_engagement, put it in .env under the name "
            f"that {target}'s access_token names, then `broadcaster deadletters --retry` "
            f"[Graph said: {said}]",
        )
    if rule.kind is Kind.THROTTLE:
        wait = retry_after if retry_after is not None else rule.wait_s
        return RateLimited(CHANNEL, f"{rule.meaning}: {said}", wait, rule.scope)
    if rule.kind is Kind.TRANSIENT:
        return TransientError(CHANNEL, f"{rule.meaning}: {said}", retry_after)
    return PermanentError(CHANNEL, f"{rule.meaning}: {said}")
