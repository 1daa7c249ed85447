"""What a CMS's answers mean for a delivery, as data, and how its words are made safe to keep.

A CMS is our own protocol's other end (README, "The CMS side"), so its answers are read by HTTP
status alone; its message (``{"error": ...}``, ``{"message": ...}`` or plain text) is kept only as
the detail a person reads, shortened, and with every secret of the target taken out: the URL may
carry a token (in its query, its user part, or a path segment), and a CMS that echoes the request
would otherwise put it into the delivery's last error, ``status`` and the logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx

__all__ = ["ANSWERS", "Answer", "Kind", "Redactor", "answer_for", "cms_detail", "place_of"]

_DETAIL_LENGTH = 200
_READ_LENGTH = 4000
_MASK = "***"


class Kind(StrEnum):
    """What an answer means for the request that got it."""

    #: Will fail again as it stands: dead, with the reason.
    PERMANENT = "permanent"
    #: The CMS refused our credentials: a person must fix ``secret`` or ``url``.
    AUTH = "auth"
    #: Try again later (with backoff, or after ``Retry-After``).
    RETRY = "retry"
    #: The CMS asked us to slow down (``Retry-After`` is honoured).
    THROTTLED = "throttled"
    #: The resource is not there (deleted by hand, or already by us).
    GONE = "gone"


@dataclass(frozen=True)
class Answer:
    """A status's meaning and what a person reads; ``{place}``, ``{status}``, ``{method}`` and
    ``{detail}`` are filled in."""

    kind: Kind
    reason: str


_SIGNATURE = (
    "{place} refused the request ({status}: {detail}): check that the variable `secret` names "
    "holds the secret the CMS was given, that the token in `url`, if it has one, is current, and "
    "that this computer's clock is right (a signature more than 5 minutes old is refused)"
)

#: HTTP status -> meaning. A status not listed is read by its class (see :func:`answer_for`).
ANSWERS: dict[int, Answer] = {
    400: Answer(Kind.PERMANENT, "{place} refused the announcement (400: {detail})"),
    401: Answer(Kind.AUTH, _SIGNATURE),
    403: Answer(Kind.AUTH, _SIGNATURE),
    404: Answer(Kind.GONE, "{place} has no such address (404: {detail}): check `url`"),
    405: Answer(
        Kind.PERMANENT,
        "{place} does not take {method} there (405: {detail}): is `url` its broadcaster endpoint?",
    ),
    408: Answer(Kind.RETRY, "{place} timed out reading the request (408)"),
    # Idempotency-Key: the first attempt with this key is still being worked on.
    409: Answer(Kind.RETRY, "{place} is still working on an earlier attempt (409: {detail})"),
    410: Answer(Kind.GONE, "{place} no longer has it (410: {detail})"),
    413: Answer(Kind.PERMANENT, "{place} finds the announcement too large (413: {detail})"),
    415: Answer(Kind.PERMANENT, "{place} does not take JSON (415: {detail})"),
    422: Answer(Kind.PERMANENT, "{place} refused the announcement (422: {detail})"),
    425: Answer(Kind.RETRY, "{place} asked to try again later (425)"),
    429: Answer(Kind.THROTTLED, "{place} asked to slow down (429)"),
}

#: A 409 to a PUT or DELETE: the resource holds another announcement than the signed body names.
_CONFLICT = Answer(
    Kind.PERMANENT, "{place} holds another announcement under that id (409: {detail})"
)


def answer_for(status: int, method: str = "POST") -> Answer:
    """The meaning of any status that is not a success, for a request with ``method``."""
    if status == 409 and method != "POST":
        return _CONFLICT
    known = ANSWERS.get(status)
    if known is not None:
        return known
    if status >= 500:
        return Answer(Kind.RETRY, "{place} failed ({status}: {detail})")
    if 300 <= status < 400:
        # Redirects are never followed: a signed request goes nowhere that was not configured.
        return Answer(
            Kind.PERMANENT,
            "{place} answered a redirect ({status}): write the address it redirects to in `url`",
        )
    return Answer(Kind.PERMANENT, "{place} refused the request ({status}: {detail})")


def place_of(url: str) -> str:
    """``the CMS at https://host[:port]``: the only part of the URL that is ever shown."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"the CMS at {parts.scheme}://{host}{port}"


class Redactor:
    """Takes the target's secrets out of text before it is kept or shown."""

    def __init__(self, url: str, secret: str) -> None:
        parts = urlsplit(url)
        pieces = [url, parts.query, parts.password, parts.username, secret]
        pieces += [value for _, value in parse_qsl(parts.query)]
        # A token may also be a path segment (``/hooks/<token>``); long segments are hidden.
        pieces += [unquote(s) for s in parts.path.split("/") if len(s) >= 16]
        unique = {p for p in pieces if p and len(p) >= 4}
        self._secrets = sorted(unique, key=len, reverse=True)  # longest first: whole URL first

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text


def cms_detail(answer: httpx.Response, redact: Redactor) -> str:
    """The CMS's own words about a refusal: short, on one line, without secrets."""
    # Only the start is read: the part shown is short, and a secret cut at the end of what is
    # read lies beyond what is shown.
    text = (_words(answer) or answer.reason_phrase or "no message")[:_READ_LENGTH]
    text = " ".join(redact(text).split())  # one line: no control characters, no layout
    if len(text) > _DETAIL_LENGTH:
        text = text[: _DETAIL_LENGTH - 1] + "…"
    return text


def _words(answer: httpx.Response) -> str:
    try:
        data = answer.json()
    except ValueError:
        return answer.text.strip() if _is_text(answer) else ""
    if isinstance(data, dict):
        for key in ("error", "message", "detail", "title"):
            value = data.get(key)
            if isinstance(value, dict):  # {"error": {"message": ...}}
                value = value.get("message")
            if isinstance(value, str) and value.strip():
                return value
    return ""


def _is_text(answer: httpx.Response) -> bool:
    kind = answer.headers.get("content-type", "")
    # An HTML error page is markup noise in a one-line reason; its status says enough.
    return not kind or (kind.startswith("text/") and "html" not in kind)
