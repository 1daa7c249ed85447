"""Twilio error codes as data: what each means for one SMS delivery, and what a person does.

Sources: https://www.twilio.com/docs/api/errors/NNNNN and PLATFORMS.md §2. :func:`classify`
reads only these tables; adding a code is a new row, not a new branch. Twilio's messages quote
the recipient's number ("The 'To' number +4670… is not a valid phone number"), so every text
from Twilio is masked here, where it enters broadcaster.
"""

from __future__ import annotations

import re
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
    RecipientOptedOut,
    TransientError,
    UnknownOutcome,
)
from broadcaster.privacy import mask_phone, mask_phone_numbers

__all__ = ["Kind", "Rule", "classify", "masked", "rule_for"]

CHANNEL = "sms"
#: What is left of a number after :func:`mask_phone_numbers`: it finds numbers that are valid or
#: possible somewhere, but Twilio quotes exactly the ones that are not ("+4670123 is not a valid
#: phone number").
_ANY_NUMBER = re.compile(r"\+\d{5,}")


class Kind(StrEnum):
    """What a Twilio error means for the delivery."""

    #: This recipient cannot get the text (bad number, landline, unreachable): dead.
    RECIPIENT = "recipient"
    #: The recipient replied STOP: dead, and the number goes on the opt-out list.
    OPTED_OUT = "opted_out"
    #: The target's configuration is wrong (sender, Messaging Service, account rights): dead,
    #: with what to change.
    CONFIG = "config"
    #: The account's credentials were refused: a person must renew them.
    AUTH = "auth"
    #: Twilio asked us to slow down.
    THROTTLE = "throttle"
    #: Twilio failed or is full for now, and created nothing: try again.
    RETRY = "retry"
    #: Something between us and Twilio answered (a gateway): Twilio may have created the
    #: message, so it is looked up before any resend.
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Rule:
    """How to treat one code: its kind, and a sentence a person can act on."""

    kind: Kind
    advice: str
    #: For THROTTLE and RETRY: the wait when Twilio gives no ``Retry-After`` (None: the
    #: queue's backoff, with jitter, decides).
    wait_s: float | None = None
    #: For THROTTLE: what the limit covers (20429 counts the whole account's requests, and
    #: the SMS targets of a workspace share one account).
    scope: RateScope = RateScope.TARGET


_CONSOLE = "in the Twilio Console"
_CODES: Mapping[int, Rule] = MappingProxyType(
    {
        20003: Rule(
            Kind.AUTH,
            "Twilio refused the account SID and auth token (20003): renew the auth token "
            f"{_CONSOLE} (Account > API keys & tokens), put it in .env under the name the "
            "target's auth_token names, check account_sid, then retry the dead letters",
        ),
        20005: Rule(
            Kind.AUTH,
            "the Twilio account is suspended or closed (20005): reactivate it "
            f"{_CONSOLE} (often an unpaid balance), then retry the dead letters",
        ),
        20403: Rule(
            Kind.CONFIG,
            "the Twilio account may not do this (20403): check the account's permissions and "
            f"its messaging geo permissions {_CONSOLE}",
        ),
        20404: Rule(
            Kind.CONFIG,
            "Twilio does not know this account or resource (20404): check the target's account_sid",
        ),
        20429: Rule(
            Kind.THROTTLE,
            "Twilio has too many requests of this account in flight",
            5.0,
            RateScope.CHANNEL,
        ),
        20500: Rule(Kind.RETRY, "Twilio had an internal error"),
        20503: Rule(Kind.RETRY, "Twilio is temporarily unavailable"),
        21211: Rule(Kind.RECIPIENT, "not a valid phone number (21211)"),
        21212: Rule(
            Kind.CONFIG,
            "Twilio refuses the target's sender (21212): use an alphanumeric sender id of at "
            "most 11 characters, or a number of this Twilio account",
        ),
        21408: Rule(
            Kind.CONFIG,
            "the account may not send SMS to this number's country (21408): enable the country "
            f"under Messaging > Settings > Geo permissions {_CONSOLE}",
        ),
        21602: Rule(Kind.CONFIG, "the SMS text was empty (21602): check templates/sms/"),
        21603: Rule(
            Kind.CONFIG, "no sender was given (21603): set sender (or the Messaging Service)"
        ),
        21604: Rule(Kind.RECIPIENT, "the delivery has no number (21604)"),
        21606: Rule(
            Kind.CONFIG,
            "the target's sender is not an SMS-capable number of this account (21606): use one "
            "of the account's numbers or an alphanumeric sender id",
        ),
        21608: Rule(
            Kind.CONFIG,
            "a Twilio trial account sends only to verified numbers (21608): upgrade the account",
        ),
        21609: Rule(
            Kind.CONFIG,
            "Twilio refuses the status callback URL (21609): check [broadcaster] "
            "public_base_url (a public https address, no underscores in the host name)",
        ),
        21610: Rule(
            Kind.OPTED_OUT,
            "the recipient replied STOP to this sender (21610); the number goes on the opt-out "
            "list",
        ),
        21611: Rule(
            Kind.RETRY,
            "the sender's queue at Twilio is full (21611); sending resumes when it drains "
            "(lower rate_per_second, or use a Messaging Service with more senders)",
            30.0,
        ),
        21612: Rule(Kind.RECIPIENT, "the number cannot be reached by SMS (21612)"),
        21614: Rule(Kind.RECIPIENT, "not a mobile number (21614)"),
        21617: Rule(
            Kind.CONFIG,
            "the text is longer than Twilio's 1600 characters (21617): shorten it "
            "(`broadcaster preview` shows the segments)",
        ),
        21635: Rule(Kind.RECIPIENT, "a landline cannot receive SMS (21635)"),
        21701: Rule(
            Kind.CONFIG,
            "Twilio does not know the target's messaging_service_sid (21701): copy the "
            "Messaging Service's SID (MG…) from the Twilio Console",
        ),
        21703: Rule(
            Kind.CONFIG,
            "the Messaging Service has no sender in its pool (21703): add a number or "
            f"alphanumeric sender to it {_CONSOLE}",
        ),
        30001: Rule(Kind.RETRY, "the sender's queue at Twilio overflowed (30001)", 30.0),
    }
)
#: Code ranges after the single codes: other 21xxx errors on create are about the request's
#: parameters, in practice the recipient's number (21xxx "Invalid 'To'", "cannot route").
_RANGES: tuple[tuple[int, int, Rule], ...] = (
    (21200, 21999, Rule(Kind.RECIPIENT, "Twilio refused the message to this number")),
)
#: Without a known code: by HTTP status ...
_BY_STATUS: Mapping[int, Rule] = MappingProxyType(
    {
        401: _CODES[20003],
        429: Rule(Kind.THROTTLE, "Twilio asked to slow down (429)", 5.0),
        # Gateways: the request may have reached Twilio behind them.
        502: Rule(Kind.AMBIGUOUS, "a gateway in front of Twilio failed (502)"),
        504: Rule(Kind.AMBIGUOUS, "a gateway in front of Twilio timed out (504)"),
    }
)
#: ... then by its class.
_BY_CLASS: Mapping[int, Rule] = MappingProxyType(
    {
        4: Rule(Kind.CONFIG, "Twilio refused the request"),
        5: Rule(Kind.RETRY, "Twilio failed on its side"),
    }
)


def rule_for(code: int | None, status: int | None) -> Rule:
    """The rule for a Twilio error code, falling back on the HTTP status."""
    if code is not None and code != status:
        if code in _CODES:
            return _CODES[code]
        for low, high, rule in _RANGES:
            if low <= code <= high:
                return rule
    if status is not None and status in _BY_STATUS:
        return _BY_STATUS[status]
    if status is not None and status // 100 == 5 and code in (None, status):
        # A 5xx without a Twilio error code in its body was not written by Twilio's API:
        # whoever answered may have passed the request on.
        return Rule(Kind.AMBIGUOUS, f"an HTTP {status} that did not come from Twilio's API")
    if status is not None and status // 100 in _BY_CLASS:
        return _BY_CLASS[status // 100]
    return _BY_CLASS[5]


def classify(
    *,
    code: int | None,
    status: int | None,
    message: str,
    retry_after: float | None,
    target: str,
    may_have_sent: bool = True,
) -> ChannelError:
    """The channel error for one Twilio error answer.

    Args:
        code: Twilio's ``code`` (the SDK puts the HTTP status there when the body had none).
        status: The HTTP status.
        message: Twilio's message (masked here: it may quote the number).
        retry_after: The ``Retry-After`` Twilio sent, if any.
        target: The target id, named in sentences a person reads.
        may_have_sent: False for calls that create nothing (a lookup): an ambiguous answer is
            then simply worth retrying.
    """
    rule = rule_for(code, status)
    said = masked(f"{message} (Twilio {code or status})")
    if rule.kind is Kind.AUTH:
        return AuthError(CHANNEL, f"target {target}: {rule.advice} [Twilio said: {said}]")
    if rule.kind is Kind.OPTED_OUT:
        return RecipientOptedOut(CHANNEL, rule.advice)
    if rule.kind is Kind.RECIPIENT:
        return PermanentError(CHANNEL, f"the recipient's number: {rule.advice} [{said}]")
    if rule.kind is Kind.CONFIG:
        return PermanentError(CHANNEL, f"target {target}: {rule.advice} [{said}]")
    if rule.kind is Kind.THROTTLE:
        wait = retry_after if retry_after is not None else rule.wait_s
        return RateLimited(CHANNEL, f"{rule.advice}: {said}", wait, rule.scope)
    if rule.kind is Kind.AMBIGUOUS and may_have_sent:
        return UnknownOutcome(
            CHANNEL, f"{rule.advice}: {said}; the message is looked up before any resend"
        )
    wait = retry_after if retry_after is not None else rule.wait_s
    return TransientError(CHANNEL, f"{rule.advice}: {said}", wait)


def masked(text: str) -> str:
    """``text`` with every phone number in it masked, also those no phone plan knows."""
    return _ANY_NUMBER.sub(lambda found: mask_phone(found.group()), mask_phone_numbers(text))
