"""Twilio Messages: the error answer, the message resource, and the checks on a create request.

The create checks follow what api.twilio.com refuses, in its order and with its codes: the form
against the CreateMessage schema of Twilio's OpenAPI (types, patterns), then the rules that live
only in the descriptions (``To``; ``From`` or ``MessagingServiceSid``; ``Body``, ``MediaUrl`` or
``ContentSid``), then the numbers, the 1600-character limit and the callback URL. Twilio's magic
test numbers (``+15005550001`` ... ``+15005550009``) answer as they do for test credentials.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from starlette.responses import JSONResponse, Response

from .exchange import EmulatorError
from .specs import Specs

__all__ = ["Message", "TwilioError", "check_create", "segments"]

_GSM = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = "^{}\\[~]|€\f"
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region "
        "indicated by the 'To' number: +15005550003.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
_SCHEMA_CODES = {
    "To": 21211,
    "From": 21212,
    "MessagingServiceSid": 21701,
    "StatusCallback": 21609,
    "Body": 21602,
}


class TwilioError(EmulatorError):
    """A Twilio REST error: ``{"code", "message", "more_info", "status"}``."""

    def __init__(
        self, code: int, message: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        """Describe the error."""
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.headers = headers or {}

    def response(self) -> Response:
        """Twilio's error JSON."""
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return JSONResponse(body, self.status, headers=self.headers)


def _rfc2822(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return format_datetime(datetime.fromtimestamp(timestamp, UTC).replace(microsecond=0))


def segments(body: str) -> int:
    """How many SMS segments ``body`` takes (GSM-7: 160/153 septets, else UCS-2: 70/67 units)."""
    if all(c in _GSM or c in _GSM_EXTENSION for c in body):
        length = sum(2 if c in _GSM_EXTENSION else 1 for c in body)
        single, part = 160, 153
    else:
        length = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if length <= single else math.ceil(length / part)


@dataclass
class Message:
    """An outbound message as the emulator keeps it."""

    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    created: float
    status: str
    updated: float
    sent: float | None = None
    error_code: int | None = None
    callbacks: list[str] = field(default_factory=list)

    @property
    def uri(self) -> str:
        """The resource's path."""
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def to_json(self) -> dict[str, Any]:
        """The ``api.v2010.account.message`` resource."""
        base = self.uri.removesuffix(".json")
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": self.body,
            "date_created": _rfc2822(self.created),
            "date_sent": _rfc2822(self.sent),
            "date_updated": _rfc2822(self.updated),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(segments(self.body)),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"{base}/Media.json",
                "feedback": f"{base}/Feedback.json",
            },
            "to": self.to,
            "uri": self.uri,
        }


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        if value.lower() not in ("true", "false"):
            raise ValueError(value)
        return value.lower() == "true"
    return value


def _check_schema(form: dict[str, list[str]], specs: Specs) -> None:
    loaded = specs.twilio_create_message
    if loaded is None:
        return
    schema, validator = loaded
    properties: dict[str, Any] = schema["properties"]
    document: dict[str, Any] = {}
    for name, values in form.items():
        prop = properties.get(name)
        if prop is None:
            continue  # Twilio ignores parameters it does not know.
        try:
            if prop.get("type") == "array":
                document[name] = [_coerce(v, prop.get("items", {})) for v in values]
            else:
                document[name] = _coerce(values[-1], prop)
        except ValueError:
            raise TwilioError(21201, f"Invalid parameter {name}: {values[-1]!r}") from None
    for error in validator.iter_errors(document):
        if error.validator == "required":
            continue  # the explicit checks below answer with Twilio's specific codes
        name = str(error.path[0]) if error.path else "(request)"
        code = _SCHEMA_CODES.get(name, 21201)
        raise TwilioError(code, f"Invalid parameter {name}: {error.message}")


def _valid_number(number: str) -> bool:
    if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
        return False
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        return False


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[-1] if values and values[-1] != "" else None


def check_create(form: dict[str, list[str]], specs: Specs, opted_out: set[str]) -> None:
    """Refuse a Messages create request as Twilio would.

    Raises:
        TwilioError: With Twilio's code for the first problem found.
    """
    _check_schema(form, specs)
    to, sender = _first(form, "To"), _first(form, "From")
    service = _first(form, "MessagingServiceSid")
    if to is None:
        raise TwilioError(21604, "A 'To' phone number is required.")
    if sender is None and service is None:
        raise TwilioError(21603, "A 'From' phone number is required.")
    body = _first(form, "Body")
    if body is None and not form.get("MediaUrl") and _first(form, "ContentSid") is None:
        raise TwilioError(21602, "Message body is required.")
    if to in _MAGIC_TO:
        raise TwilioError(*_MAGIC_TO[to])
    if not _valid_number(to):
        raise TwilioError(21211, f"The 'To' number {to} is not a valid phone number.")
    if sender is not None and not (_valid_number(sender) or _ALPHANUMERIC_SENDER.match(sender)):
        raise TwilioError(
            21212,
            f"The 'From' number {sender} is not a valid phone number, shortcode, "
            "or alphanumeric sender ID.",
        )
    if body is not None and len(body) > 1600:
        raise TwilioError(21617, "The concatenated message body exceeds the 1600 character limit.")
    callback = _first(form, "StatusCallback")
    if callback is not None and not _is_url(callback):
        raise TwilioError(21609, f"The StatusCallback URL {callback} is not a valid URL.")
    if to in opted_out:
        raise TwilioError(21610, "Attempt to send to unsubscribed recipient")


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(value) <= 4000
