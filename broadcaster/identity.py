"""Who is at the command line: ``--as``, else ``BROADCASTER_USER``, else the OS user."""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping

from broadcaster.errors import InputError

__all__ = ["current_person"]

_NAME = re.compile(r"^[\w.@+-]{1,120}$")


def current_person(explicit: str | None, environ: Mapping[str, str]) -> str:
    """The acting person's name, as it appears in the audit log and approval policy."""
    name = explicit or environ.get("BROADCASTER_USER") or _os_user()
    if not _NAME.match(name):
        raise InputError(f"{name!r} is not a usable name (letters, digits, . _ - @ +; no spaces)")
    return name


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        raise InputError(
            "cannot tell who you are: pass --as NAME or set BROADCASTER_USER"
        ) from None
