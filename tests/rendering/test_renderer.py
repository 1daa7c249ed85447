"""Templates: overrides, strictness, escaping, and errors that name file, line and variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.app import App
from broadcaster.channels.static_site import entry_from_message
from broadcaster.errors import RenderError
from broadcaster.rendering import Renderer, bundled_templates_dir
from tests.factories import HOSTILE_TITLE, make_message


def test_bundled_templates_are_found() -> None:
    assert (bundled_templates_dir() / "website" / "index.html").is_file()


def test_workspace_override_wins(app: App, workspace_dir: Path) -> None:
    override = workspace_dir / "templates" / "website" / "feed.atom"
    override.parent.mkdir(parents=True)
    override.write_text("<feed>{{ organisation.name }}</feed>", encoding="utf-8")
    renderer = Renderer(workspace_dir / "templates", "Europe/Stockholm")
    message = make_message(app, "web-borgholm")
    assert (
        renderer.render("website/feed.atom", message.context()) == "<feed>Borgholms kommun</feed>"
    )


def test_undefined_variable_names_override_file_line_and_variable(
    workspace_dir: Path, app: App
) -> None:
    override = workspace_dir / "templates" / "website" / "feed.atom"
    override.parent.mkdir(parents=True)
    override.write_text("<feed>\n{{ organisation.fax }}\n</feed>", encoding="utf-8")
    renderer = Renderer(workspace_dir / "templates", "Europe/Stockholm")
    with pytest.raises(RenderError) as caught:
        renderer.render("website/feed.atom", make_message(app, "web-borgholm").context())
    assert str(caught.value) == f"{override}, line 2: organisation.fax is undefined"


def test_undefined_top_level_name(workspace_dir: Path, app: App) -> None:
    override = workspace_dir / "templates" / "website" / "feed.atom"
    override.parent.mkdir(parents=True)
    override.write_text("{{ municipality }}", encoding="utf-8")
    renderer = Renderer(workspace_dir / "templates", "Europe/Stockholm")
    with pytest.raises(RenderError, match=r"line 1: 'municipality' is undefined"):
        renderer.render("website/feed.atom", make_message(app, "web-borgholm").context())


def test_syntax_error_names_file_and_line(workspace_dir: Path, app: App) -> None:
    override = workspace_dir / "templates" / "website" / "index.html"
    override.parent.mkdir(parents=True)
    override.write_text("ok\n{% for x in %}\n", encoding="utf-8")
    renderer = Renderer(workspace_dir / "templates", "Europe/Stockholm")
    with pytest.raises(RenderError, match=rf"^{override}, line 2: "):
        renderer.render("website/index.html", {})


def test_missing_template_is_a_render_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"template nowhere/x\.html not found"):
        Renderer(tmp_path, "Europe/Stockholm").render("nowhere/x.html", {})


def test_announcement_text_is_data_never_template_code(workspace_dir: Path, app: App) -> None:
    override = workspace_dir / "templates" / "website" / "feed.atom"
    override.parent.mkdir(parents=True)
    override.write_text("{{ announcement.title }}", encoding="utf-8")
    renderer = Renderer(workspace_dir / "templates", "Europe/Stockholm")
    out = renderer.render(
        "website/feed.atom", make_message(app, "web-borgholm", title=HOSTILE_TITLE).context()
    )
    assert "{{ 7*7 }}" in out and "49" not in out
    assert "<script>" not in out and "&lt;script&gt;" in out  # .atom autoescapes


def test_the_sandbox_refuses_reaching_into_python(workspace_dir: Path, app: App) -> None:
    override = workspace_dir / "templates" / "website" / "feed.atom"
    override.parent.mkdir(parents=True)
    override.write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", encoding="utf-8")
    renderer = Renderer(workspace_dir / "templates", "Europe/Stockholm")
    with pytest.raises(RenderError, match=rf"^{override}, line 1: .*unsafe"):
        renderer.render("website/feed.atom", make_message(app, "web-borgholm").context())


def test_local_time_is_stockholm_in_swedish(app: App) -> None:
    renderer = Renderer(None, "Europe/Stockholm")
    message = make_message(app, "web-borgholm")  # 2026-12-12 19:30 UTC = 20:30 in Stockholm
    template = renderer.env.from_string("{{ announcement.updated_at | localtime }}")
    assert template.render(message.context()) == "12 december 2026 kl. 20:30"
    assert entry_from_message(message)["updated"] == "2026-12-12T19:30:00+00:00"
