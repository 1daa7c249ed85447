"""Signatures for the website ``webhook`` channel (the JSON POST to a municipality's CMS).

The sender puts two headers on every POST::

    X-Broadcaster-Timestamp: 1764358800
    X-Broadcaster-Signature: sha256=<hex of HMAC-SHA256(secret, b"1764358800." + body)>

The timestamp is inside the signed bytes so that a captured request cannot be replayed later than
the receiver's tolerance window, and the signature is compared in constant time. The sandbox's CMS
receiver and the website adapter both use this module, so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "TIMESTAMP_HEADER",
    "sign_webhook",
    "signed_headers",
    "verify_webhook",
]

TIMESTAMP_HEADER = "X-Broadcaster-Timestamp"
SIGNATURE_HEADER = "X-Broadcaster-Signature"
SIGNATURE_PREFIX = "sha256="


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """Return the ``X-Broadcaster-Signature`` header value for one request.

    Args:
        secret: The shared secret of the webhook target.
        timestamp: Unix time in whole seconds, sent as ``X-Broadcaster-Timestamp``.
        body: The exact bytes of the request body.

    Returns:
        ``"sha256=<lowercase hex digest>"``.
    """
    message = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return both signature headers for a request with ``body`` sent at ``timestamp``."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign_webhook(secret, timestamp, body),
    }


def verify_webhook(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """Check a received webhook request.

    Args:
        secret: The shared secret of the webhook target.
        timestamp_header: The received ``X-Broadcaster-Timestamp`` value, if any.
        signature_header: The received ``X-Broadcaster-Signature`` value, if any.
        body: The exact bytes of the received body.
        now: The receiver's current Unix time.
        tolerance_s: How far (either way) the timestamp may be from ``now``.

    Returns:
        True only if both headers are present, the timestamp is an integer within the
        tolerance window and the signature matches.
    """
    if not timestamp_header or not signature_header:
        return False
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign_webhook(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature_header.strip().encode())
