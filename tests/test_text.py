"""Text from people: decoding, line endings and control characters."""

from __future__ import annotations

import codecs
import io

import pytest

from broadcaster.errors import InputError
from broadcaster.text import check_text, decode_text, read_text_stream

TEXT = "Vattnet är tillbaka.\nKoka det ändå — i två dagar."


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode("utf-8"),
        codecs.BOM_UTF8 + TEXT.encode("utf-8"),
        TEXT.encode("utf-16"),  # with the platform's BOM
        codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"),
        TEXT.replace("\n", "\r\n").encode("utf-8"),
        codecs.BOM_UTF16_LE + TEXT.replace("\n", "\r\n").encode("utf-16-le"),
        TEXT.replace("\n", "\r").encode("utf-8"),
    ],
    ids=["utf8", "utf8-bom", "utf16", "utf16le-bom", "utf16be-bom", "crlf", "utf16-crlf", "cr"],
)
def test_supported_encodings_give_the_same_text(data: bytes) -> None:
    assert decode_text(data, "uppdatering.md") == TEXT


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Vattnet är".encode("latin-1"), "byte 8 (line 1, 0xE4) is not UTF-8"),
        (b"ok\nok\n\xff", "byte 6 (line 3, 0xFF) is not UTF-8"),
        (codecs.BOM_UTF8 + b"a\x80", "byte 4 (line 1, 0x80) is not UTF-8"),
        (codecs.BOM_UTF16_LE + b"a\x00b", "is not UTF-16"),  # an odd number of bytes
        (codecs.BOM_UTF32_LE + "a".encode("utf-32-le"), "is UTF-32"),
        ("Hej".encode("utf-16-le"), "byte 1 is a NUL byte"),  # UTF-16 without its mark
    ],
)
def test_other_encodings_are_refused_with_where_and_what_to_do(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match="save it as UTF-8") as caught:
        decode_text(data, "uppdatering.md")
    assert message in str(caught.value)
    assert str(caught.value).startswith("uppdatering.md")


def test_a_stream_longer_than_the_limit_is_refused_without_reading_it_all() -> None:
    endless = io.BytesIO(b"\x00" * 1000)
    with pytest.raises(InputError, match="larger than the 100 bytes allowed"):
        read_text_stream(endless, "standard input", 100)
    assert endless.tell() == 101


@pytest.mark.parametrize(
    ("value", "lines", "message"),
    [
        ("Vatten\x01läcka", False, "the title contains the control character U+0001 at position 7"),
        ("a\x00", False, "U+0000"),
        ("a\tb", False, "U+0009"),
        ("a\nb", False, "the title must be one line"),
        ("a\x7f", False, "U+007F"),
        ("a\x85", False, "U+0085"),
        ("ok\nbad \x1b[31m", True, "U+001B at line 2, column 5"),
        ("a\ufffe", True, "U+FFFE"),
        ("a\udcff", True, "bytes that are not UTF-8"),
    ],
)
def test_control_characters_are_refused_with_where(value: str, lines: bool, message: str) -> None:
    with pytest.raises(InputError) as caught:
        check_text("title", value, lines=lines)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "value", ["Vattnet är tillbaka", "emoji 👍🏽 and ZWJ 👩‍👩‍👧", "nbsp\u00a0and soft\u00adhyphen"]
)
def test_ordinary_text_passes(value: str) -> None:
    check_text("title", value, lines=False)
    check_text("body", value + "\n\tindented", lines=True)
