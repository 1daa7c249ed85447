"""SMS encoding, segments and cost: exact at every boundary, and as properties over any text."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcaster.app import App
from broadcaster.config import SmsTarget
from broadcaster.rendering import Renderer
from broadcaster.rendering.sms_text import (
    GSM_BASIC,
    GSM_EXTENSION,
    Encoding,
    analyse,
    segment_problem,
    sms_cost,
    split_parts,
)
from tests.factories import make_message

# -- GSM-7 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(0, 1, 160), (1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153)],
)
def test_gsm7_boundaries(length: int, segments: int, per_segment: int) -> None:
    sms = analyse("a" * length)
    assert (sms.encoding, sms.characters, sms.units) == (Encoding.GSM7, length, length)
    assert (sms.segments, sms.per_segment) == (segments, per_segment)


def test_extension_characters_count_two_septets() -> None:
    text = "^{}\\[~]|€\f"
    sms = analyse(text)
    assert (sms.encoding, sms.characters, sms.units) == (Encoding.GSM7, 10, 20)


def test_an_extension_character_tips_a_full_single_message_into_two() -> None:
    assert analyse("a" * 158 + "€").segments == 1  # 160 septets
    assert analyse("a" * 159 + "€").segments == 2  # 161 septets


def test_an_escape_is_never_split_across_parts() -> None:
    # 152 septets, then € would be septets 153-154: it moves whole to the next part.
    text = "a" * 152 + "€" + "b" * 10
    parts = split_parts(text, Encoding.GSM7)
    assert parts == ["a" * 152, "€" + "b" * 10]
    assert analyse(text).segments == 2
    # At septets 152-153 it still fits the first part.
    assert split_parts("a" * 151 + "€" + "b" * 10, Encoding.GSM7)[0] == "a" * 151 + "€"


def test_the_extension_table_moving_parts_adds_a_segment() -> None:
    # 153 + 153 septets fit two parts only if no escape straddles the boundary.
    assert analyse("a" * 152 + "[" + "a" * 151).segments == 2  # 152+2+151 = 305
    assert analyse("a" * 152 + "[" + "a" * 152).segments == 3  # the [ leaves a hole in part one


def test_swedish_letters_are_gsm7() -> None:
    sms = analyse("Åsa, Ängö, Örnäs, É, é, ü, Ü, å ä ö")
    assert sms.encoding is Encoding.GSM7
    assert sms.forced_ucs2 == ()


@pytest.mark.parametrize("letter", ["á", "í", "ó", "ú", "ç", "ê"])
def test_letters_outside_the_alphabet_force_ucs2(letter: str) -> None:
    sms = analyse(f"Caf{letter}")
    assert (sms.encoding, sms.forced_ucs2) == (Encoding.UCS2, (letter,))


def test_the_alphabet_is_the_whole_table() -> None:
    # 128 positions less the escape, plus the ten extension characters.
    assert (len(GSM_BASIC), len(GSM_EXTENSION)) == (127, 10)


# -- UCS-2 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67)],
)
def test_ucs2_boundaries(length: int, segments: int, per_segment: int) -> None:
    sms = analyse("ж" * length)
    assert (sms.encoding, sms.units, sms.segments, sms.per_segment) == (
        Encoding.UCS2,
        length,
        segments,
        per_segment,
    )


def test_one_cyrillic_letter_makes_the_message_ucs2_and_is_named() -> None:
    sms = analyse("Vattnet är tillbaka i hela kommunen. Вода")
    assert sms.encoding is Encoding.UCS2
    assert sms.forced_ucs2 == ("В", "о", "д", "а")
    sms = analyse("a" * 100 + "Д")
    assert (sms.encoding, sms.segments, sms.forced_ucs2) == (Encoding.UCS2, 2, ("Д",))


def test_an_emoji_counts_two_units_and_is_never_split() -> None:
    assert analyse("😀").units == 2
    assert analyse("a" * 68 + "😀").segments == 1  # 70 units
    assert analyse("a" * 69 + "😀").segments == 2  # 71 units
    # Units 67-68 would straddle the 67-unit part boundary: the pair moves whole.
    parts = split_parts("a" * 66 + "😀" + "b" * 10, Encoding.UCS2)
    assert parts == ["a" * 66, "😀" + "b" * 10]
    assert split_parts("a" * 65 + "😀" + "b" * 10, Encoding.UCS2)[0] == "a" * 65 + "😀"


# -- replacements ------------------------------------------------------------------------------


def test_typography_is_replaced_and_the_message_stays_gsm7() -> None:
    text = "Åtgärd: ”Koka vattnet” – i Färjestaden… ‘nu’ — «här»\u00a0och\u202fdär"
    sms = analyse(text)
    assert sms.encoding is Encoding.GSM7
    assert sms.text == 'Åtgärd: "Koka vattnet" - i Färjestaden... \'nu\' - "här" och där'
    assert set(sms.replaced) == {"”", "–", "…", "‘", "’", "—", "«", "»", "\u00a0", "\u202f"}
    assert sms.segments == 1


def test_replacements_can_be_turned_off() -> None:
    sms = analyse("”Koka vattnet”", replace=False)
    assert (sms.encoding, sms.text, sms.replaced) == (Encoding.UCS2, "”Koka vattnet”", ())
    assert sms.forced_ucs2 == ("”",)


def test_a_text_that_stays_ucs2_is_sent_as_written() -> None:
    # Replacing the quotes would not save the emoji's UCS-2; the author's typography is kept.
    sms = analyse("”Vatten” 💧")
    assert (sms.encoding, sms.text, sms.replaced, sms.forced_ucs2) == (
        Encoding.UCS2,
        "”Vatten” 💧",
        (),
        ("”", "💧"),
    )


def test_replacement_lengthens_the_ellipsis() -> None:
    sms = analyse("a" * 158 + "…")
    assert (sms.units, sms.segments) == (161, 2)


# -- max_segments and cost ---------------------------------------------------------------------


def test_segment_problem_refuses_only_above_the_limit() -> None:
    assert segment_problem(analyse("a" * 459), 3) is None  # 3 x 153
    problem = segment_problem(analyse("a" * 460), 3, "sms-borgholm")
    assert problem is not None
    assert "needs 4 segments" in problem
    assert "max_segments = 3 for sms-borgholm" in problem
    assert "shorten it" in problem


def test_segment_problem_names_the_characters_forcing_ucs2() -> None:
    problem = segment_problem(analyse("Вода " * 30), 2)
    assert problem is not None
    assert "force UCS-2" in problem
    assert "'В'" in problem


def test_segment_problem_shows_an_invisible_character_by_its_code_point() -> None:
    problem = segment_problem(analyse("a\u00a0" * 200, replace=False), 1)
    assert problem is not None
    assert "U+00A0" in problem


def test_cost_is_segments_times_recipients_times_price() -> None:
    assert sms_cost(2, 13000, Decimal("0.45")) == Decimal("11700.00")
    assert sms_cost(2, 13000, None) is None


def test_price_per_segment_is_an_optional_setting() -> None:
    fields = SmsTarget.model_fields
    assert fields["price_per_segment"].default is None
    assert not fields["price_per_segment"].is_required()


def test_the_result_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        analyse("a").segments = 2  # type: ignore[misc]


# -- the default template -----------------------------------------------------------------------


def test_default_template_is_short_plain_text(app: App) -> None:
    message = make_message(app, "web-borgholm", body="Dricksvattnet fungerar **igen**.")
    message = dataclasses.replace(
        message, content=dataclasses.replace(message.content, link="https://borgholm.se/v")
    )
    renderer = Renderer(None, "Europe/Stockholm")
    text = renderer.render("sms/message.txt", message.context()).strip()
    assert text == (
        f"{message.organisation.name}: Vattnet är tillbaka\n"
        "Dricksvattnet fungerar igen.\n"
        "https://borgholm.se/v"
    )
    assert analyse(text).encoding is Encoding.GSM7


def test_default_template_uses_the_sms_override(app: App) -> None:
    message = make_message(app, "web-borgholm")
    content = dataclasses.replace(message.content, overrides={"sms": "Kort text."})
    message = dataclasses.replace(message, content=content)
    text = Renderer(None, "Europe/Stockholm").render("sms/message.txt", message.context())
    assert "Kort text." in text
    assert "Dricksvattnet" not in text


# -- properties ---------------------------------------------------------------------------------

gsm_chars = st.sampled_from(sorted(GSM_BASIC | GSM_EXTENSION))
any_chars = st.one_of(
    gsm_chars,
    st.characters(blacklist_categories=("Cs",)),
    st.sampled_from(["😀", "💧", "€", "ж", "”", "…"]),
)
texts = st.one_of(st.text(gsm_chars, max_size=700), st.text(any_chars, max_size=400))


@given(texts)
def test_parts_rejoin_to_the_text_and_respect_their_limit(text: str) -> None:
    sms = analyse(text, replace=False)
    parts = split_parts(sms.text, sms.encoding)
    assert "".join(parts) == sms.text
    assert len(parts) == sms.segments
    for part in parts:
        assert analyse(part, replace=False).units <= sms.per_segment


@given(texts)
def test_segments_are_at_most_one_more_than_the_ideal(text: str) -> None:
    sms = analyse(text)
    per_part = 160 if sms.encoding is Encoding.GSM7 else 70
    if sms.units > per_part:
        per_part = 153 if sms.encoding is Encoding.GSM7 else 67
    assert sms.segments <= max(1, math.ceil(sms.units / per_part) + 1)


@given(texts, st.data())
def test_segments_never_decrease_as_the_text_grows(text: str, data: st.DataObject) -> None:
    # Without replacements: with them, a GSM-7 prefix can spell out an ellipsis that the
    # longer UCS-2 text keeps as one character.
    cut = data.draw(st.integers(0, len(text)))
    assert analyse(text[:cut], replace=False).segments <= analyse(text, replace=False).segments


@given(st.text(any_chars, max_size=300))
def test_replacement_never_costs_gsm7_and_keeps_swedish_letters(text: str) -> None:
    sms = analyse(text + "åäöÅÄÖ")
    assert sms.text.endswith("åäöÅÄÖ")
    if not analyse(text, replace=False).forced_ucs2:
        assert sms.encoding is Encoding.GSM7
