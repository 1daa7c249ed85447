"""Light markdown: safe HTML, readable plain text."""

from __future__ import annotations

from broadcaster.rendering.markup import markdown_to_html, markdown_to_text


def test_raw_html_is_text_not_markup() -> None:
    html = markdown_to_html('Hej <script>alert(1)</script> <b onclick="x">fet</b>')
    assert "<script>" not in html and "<b " not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_dangerous_link_schemes_are_not_links() -> None:
    for scheme in ("javascript:alert(1)", "vbscript:msgbox", "data:text/html;base64,PHNjcmlwdD4="):
        html = markdown_to_html(f"[klicka]({scheme})")
        assert "<a " not in html, scheme


def test_paragraphs_lists_links_and_line_breaks() -> None:
    html = markdown_to_html("Ett\nTvå\n\n- a\n- b\n\n[Borgholm](https://www.borgholm.se)")
    assert "<p>Ett<br />\nTvå</p>" in html
    assert "<ul>\n<li>a</li>\n<li>b</li>\n</ul>" in html
    assert '<a href="https://www.borgholm.se">Borgholm</a>' in html


def test_plain_text_keeps_structure_and_shows_link_targets() -> None:
    text = markdown_to_text(
        "Ring **oss**.\n\n- ett\n- två\n  1. nästlad\n\n"
        "3. tre\n4. fyra\n\nSe [webbplatsen](https://www.morbylanga.se) eller <https://x.se>."
    )
    assert text == (
        "Ring oss.\n\n• ett\n• två\n  1. nästlad\n\n3. tre\n4. fyra\n\n"
        "Se webbplatsen (https://www.morbylanga.se) eller https://x.se."
    )
