"""What of a publish command's output is kept on its delivery: the tail, with secrets masked.

The publish step's own record (``published/<h>.json``, private to broadcaster) holds the last
4 KB as the command wrote them. What is stored with the delivery, shown by ``broadcaster status``
and written to the logs, is less and safer: the last :data:`KEPT_BYTES` bytes, starting at a
whole line, with

- the password in any URL (``rsync://user:secret@host/``, ``https://user:secret@host``) masked,
- the value of every environment variable whose name says it is a secret (``RSYNC_PASSWORD``,
  ``AWS_SECRET_ACCESS_KEY``, ``..._TOKEN``; the command inherits the worker's environment, and
  a verbose command may print it) masked, and
- phone numbers masked as everywhere (:func:`broadcaster.privacy.mask_phone_numbers`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from broadcaster.privacy import mask_phone_numbers

__all__ = ["KEPT_BYTES", "MASK", "kept_output"]

KEPT_BYTES = 2048
MASK = "***"

_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|AUTH|CREDENTIAL|PRIVATE|SIGNATURE", re.I)
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*):[^\s/@]+@")
#: Shorter values are not masked: "1" or "yes" would mask half the text and protect nothing.
_MIN_SECRET_LENGTH = 6


def kept_output(output: str, environ: Mapping[str, str]) -> str:
    """The tail of ``output`` to keep on the delivery, with secrets and phone numbers masked.

    ``environ`` is the environment the command ran with; the values of the variables whose
    names look secret are masked wherever they appear.
    """
    text = output.replace("\r\n", "\n")
    secrets = sorted(
        {
            value
            for name, value in environ.items()
            if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LENGTH
        },
        key=len,
        reverse=True,  # the longest first, so one secret inside another is masked whole
    )
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    # Cut after masking, so a secret that straddles the cut is not kept in part.
    return mask_phone_numbers(_tail(text, KEPT_BYTES)).strip()


def _tail(text: str, limit: int) -> str:
    """The last ``limit`` bytes of ``text`` (UTF-8), from the first whole line within them."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[-limit:].decode("utf-8", errors="ignore")
    newline = cut.find("\n")
    return cut[newline + 1 :] if 0 <= newline < len(cut) - 1 else cut
