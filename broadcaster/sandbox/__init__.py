"""Local emulators of every platform API (exercise mode and tests).

The emulators speak each platform's real HTTP protocol, so the real SDKs are pointed at them
unchanged through the DESIGN §4 overrides (``BROADCASTER_*_URL``). They record what they receive
and can be made to misbehave (:mod:`.faults`). Start one with :class:`Sandbox` (background
thread, for tests and the demo) or :func:`serve` (foreground, ``broadcaster sandbox``).
"""

from __future__ import annotations

from .credentials import (
    APPROVER_OBJECT_IDS,
    BORGHOLM_PAGE_ID,
    CREDENTIAL_ENV_NAMES,
    EXERCISE_ENV_NAMES,
    MORBYLANGA_PAGE_ID,
    TEAMS_CHANNEL_IDS,
    TELEGRAM_CHAT,
    URL_ENV_NAMES,
    Credentials,
)
from .faults import Fault, FaultBook, FaultKind
from .records import Record, Recorder
from .server import DEFAULT_PORT, Sandbox, serve
from .specs import find_specs_dir

__all__ = [
    "APPROVER_OBJECT_IDS",
    "BORGHOLM_PAGE_ID",
    "CREDENTIAL_ENV_NAMES",
    "DEFAULT_PORT",
    "EXERCISE_ENV_NAMES",
    "MORBYLANGA_PAGE_ID",
    "TEAMS_CHANNEL_IDS",
    "TELEGRAM_CHAT",
    "URL_ENV_NAMES",
    "Credentials",
    "Fault",
    "FaultBook",
    "FaultKind",
    "Record",
    "Recorder",
    "Sandbox",
    "find_specs_dir",
    "serve",
]
