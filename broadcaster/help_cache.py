"""The root help page, answered without starting Typer.

``broadcaster --help`` is typed more than any other command, and importing Typer alone takes five
times as long as starting Python. The page it prints is known in advance: ``make help-cache``
renders it with Typer into ``cli/root-help.txt``, stamped with a fingerprint of the command-line
modules. A page whose stamp no longer matches those modules is never shown (Typer answers
instead), so a stale file costs time, not correctness; ``tests/cli/test_help.py`` keeps it current.
"""

from __future__ import annotations

# os.path rather than pathlib: pathlib (with re and urllib) would double this path's cost.
import os
import sys
import zlib

__all__ = ["CACHE_FILE", "RENDER_WIDTH", "cached_root_help", "fingerprint", "write_root_help"]

PACKAGE = os.path.dirname(os.path.abspath(__file__))
CACHE_FILE = os.path.join(PACKAGE, "cli", "root-help.txt")
#: Typer renders help at the terminal's width, at most 80 columns less a margin of 2.
RENDER_WIDTH = 78
_MIN_COLUMNS = RENDER_WIDTH + 2
_STAMP = "# fingerprint "


def fingerprint() -> str:
    """A checksum of everything the root help is made from: the CLI modules and the version."""
    cli = os.path.join(PACKAGE, "cli")
    modules = sorted(os.path.join(cli, name) for name in os.listdir(cli) if name.endswith(".py"))
    checksum = 0
    for path in (os.path.join(PACKAGE, "__init__.py"), *modules):
        with open(path, "rb") as source:
            checksum = zlib.crc32(os.path.basename(path).encode() + source.read(), checksum)
    return f"{checksum:08x}"


def cached_root_help() -> str | None:
    """The cached page, if it matches the code and the terminal is wide enough for it."""
    if _columns() < _MIN_COLUMNS:
        return None  # Typer wraps to the narrower terminal
    try:
        with open(CACHE_FILE, encoding="utf-8") as cached:
            stamp, _, text = cached.read().partition("\n")
        current = stamp == _STAMP + fingerprint()
    except (OSError, UnicodeDecodeError):
        return None
    return text if current else None


def write_root_help(text: str) -> None:
    """Store the page Typer rendered, stamped with the current fingerprint."""
    with open(CACHE_FILE, "w", encoding="utf-8") as cache:
        cache.write(f"{_STAMP}{fingerprint()}\n{text}")


def _columns() -> int:
    # As shutil.get_terminal_size() decides it (which Typer uses), without importing shutil.
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80
