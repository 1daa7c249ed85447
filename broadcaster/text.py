"""Text from people: decoded from bytes, line endings normalised, free of control characters.

Every text that ends up in an announcement or a decision passes here, whatever it came from (an
option, a file, standard input, an editor, a Teams card), because one stray control character
breaks what others read: XML forbids ``\\x01``, so a title holding one makes ``feed.atom`` (and
the CAP file) unreadable for every subscriber.

Files may be UTF-8, with or without a byte order mark (Notepad writes one), or UTF-16 with its
mark (Word's "Unicode text"); anything else is refused with the offset of the first bad byte,
so the person can find it, rather than read as mojibake.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import BinaryIO

from broadcaster.errors import InputError

__all__ = ["check_text", "decode_text", "normalise_newlines", "read_text_file", "read_text_stream"]

_SAVE_AS_UTF8 = "save it as UTF-8 (in most editors: Save as… → Encoding: UTF-8) and try again"
# C0 and C1 control characters and DEL; lone surrogates (bytes that were not UTF-8 in a command
# line argument arrive as these); and the two non-characters XML forbids. Tab and newline are
# allowed where a text may have lines.
_BAD_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BAD_IN_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def decode_text(data: bytes, source: str) -> str:
    """``data`` as text, from UTF-8 (with or without BOM) or UTF-16 with BOM; newlines as ``\\n``.

    Raises:
        InputError: Another encoding, naming ``source`` and the offset of the first bad byte.
    """
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise InputError(f"{source} is UTF-32, which broadcaster does not read; {_SAVE_AS_UTF8}")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, start = "utf-16", 0  # the codec reads the mark and drops it
    else:
        encoding, start = "utf-8", len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[start:].decode(encoding)
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        line = data[:offset].count(b"\n") + 1
        raise InputError(
            f"{source}: byte {offset} (line {line}, 0x{data[offset]:02X}) is not "
            f"{encoding.upper()}; {_SAVE_AS_UTF8}"
        ) from None
    if encoding == "utf-8" and "\x00" in text:
        # Valid UTF-8, but text never holds NUL bytes: UTF-16 without its mark, or not text.
        offset = data.index(b"\x00")
        raise InputError(
            f"{source}: byte {offset} is a NUL byte, so this is not UTF-8 text (UTF-16 without "
            f"a byte order mark?); {_SAVE_AS_UTF8}"
        )
    return normalise_newlines(text)


def normalise_newlines(text: str) -> str:
    """Windows (``\\r\\n``) and old Mac (``\\r``) line endings as ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text_file(path: Path, source: str, limit: int) -> str:
    """Read and decode a text file of at most ``limit`` bytes.

    Raises:
        InputError: The file cannot be read (missing, a folder, no permission), is larger than
            ``limit``, or is not in a supported encoding.
    """
    if path.is_dir():
        raise InputError(f"{source} {path} is a folder; give a text file")
    try:
        with path.open("rb") as handle:
            return read_text_stream(handle, f"{source} {path}", limit)
    except OSError as exc:
        raise InputError(f"{source} {path}: cannot read it ({exc.strerror or exc})") from None


def read_text_stream(stream: BinaryIO, source: str, limit: int) -> str:
    """Read and decode at most ``limit`` bytes; more is refused (``/dev/zero`` never ends)."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{source} is larger than the {limit} bytes allowed")
    return decode_text(data, source)


def check_text(what: str, value: str, *, lines: bool) -> None:
    """Refuse control characters in ``value``; ``lines``: newline and tab are allowed.

    Raises:
        InputError: Naming ``what``, the character and where it is (line and column).
    """
    found = (_BAD_IN_LINES if lines else _BAD_IN_ONE_LINE).search(value)
    if found is None:
        return
    character = found.group()
    if character == "\n":
        raise InputError(f"the {what} must be one line")
    before = value[: found.start()]
    line = before.count("\n") + 1
    column = found.start() - (before.rfind("\n") + 1) + 1
    where = f"line {line}, column {column}" if lines else f"position {column}"
    kind = (
        "bytes that are not UTF-8"
        if "\ud800" <= character <= "\udfff"
        else f"the control character U+{ord(character):04X}"
    )
    allowed = " (only line breaks and tabs may be in it)" if lines else ""
    raise InputError(f"the {what} contains {kind} at {where}; remove it{allowed}")
