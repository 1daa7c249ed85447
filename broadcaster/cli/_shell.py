"""Commands we print for people to paste: they must work in a new shell, exactly as shown."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["broadcaster_command", "quote"]


def broadcaster_command() -> str:
    """How to run this broadcaster from a new shell.

    ``broadcaster`` when that name finds this installation; else the full path of its console
    script (after ``make demo`` the virtual environment is usually not activated); else
    ``python -m broadcaster`` with this interpreter.
    """
    script = Path(sys.executable).with_name("broadcaster")
    found = shutil.which("broadcaster")
    if found and script.is_file() and Path(found).resolve() == script.resolve():
        return "broadcaster"
    if script.is_file():
        return quote(script)
    return f"{quote(Path(sys.executable))} -m broadcaster"


def quote(path: Path | str) -> str:
    """A path or word as the shell must see it (spaces and quotes survive pasting)."""
    return shlex.quote(str(path))
