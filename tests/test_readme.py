"""The README is true: its tour runs as typed, and its template variables are the real ones."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from broadcaster.app import App
from broadcaster.rendering.renderer import Renderer
from tests.factories import make_message

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent


def section(title: str) -> str:
    """The README's text under a heading, up to the next heading (``#`` lines in code are not)."""
    lines: list[str] = []
    inside, in_code = False, False
    for line in README.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("```"):
            in_code = not in_code
        heading = not in_code and line.startswith("#")
        if heading and inside:
            break
        if inside:
            lines.append(line)
        inside = inside or (heading and line.lstrip("#").strip() == title)
    assert lines, f"README has no section {title!r}"
    return "".join(lines)


def tour_block() -> str:
    match = re.search(r"```sh\n(.*?)```", section("A five-minute tour"), re.S)
    assert match, "the tour has no ```sh block"
    return match.group(1)


def fresh_shell_env(home: Path) -> dict[str, str]:
    """A new shell of someone who activated the virtual environment, as the README says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def test_the_tour_runs_exactly_as_typed(tmp_path: Path) -> None:
    block = tour_block()
    assert "broadcaster init" in block and "uppdatering.md" in block
    run = subprocess.run(
        ["bash", "-e", "-u", "-c", block],
        cwd=tmp_path,
        env=fresh_shell_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    status = subprocess.run(
        [str(BIN / "broadcaster"), "status", "1", "--json"],
        cwd=tmp_path / "krisinfo",
        env=fresh_shell_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(status.stdout)
    assert document["state"] == "sent"
    assert document["title"] == "Dataintrång hos kommunerna"


# ---------------------------------------------------------------------------------------------
# Template variables


def documented_names() -> set[str]:
    """Every `identifier` the README's Templates section names (file names left out)."""
    return set(re.findall(r"`([a-z_]+)`", section("Templates")))


def names_in(context: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(top-level variables, every key one level down) of a template context."""
    inner: set[str] = set()
    for value in context.values():
        if isinstance(value, Mapping):
            inner |= set(value)
        elif isinstance(value, list):
            for item in value:
                inner |= set(item) if isinstance(item, Mapping) else set()
    return set(context), inner


@pytest.fixture
def received(app: App, monkeypatch: pytest.MonkeyPatch) -> list[Mapping[str, Any]]:
    """Every context the website's templates get for one update, plus a message's context."""
    contexts: list[Mapping[str, Any]] = []
    render = Renderer.render

    def spy(self: Renderer, name: str, context: Mapping[str, Any]) -> str:
        contexts.append(context)
        return render(self, name, context)

    monkeypatch.setattr(Renderer, "render", spy)
    message = make_message(app, "web-borgholm")
    target = app.config.target("web-borgholm")
    assert target is not None
    app.registry.create(target, app.channel_context()).prepare(message)
    assert contexts  # the website rendered through the spy
    return [*contexts, message.context()]


def test_readme_names_only_variables_templates_receive(received: list[Mapping[str, Any]]) -> None:
    real: set[str] = set()
    for context in received:
        top, inner = names_in(context)
        real |= top | inner
    assert sorted(documented_names() - real) == []


def test_readme_names_every_variable_templates_receive(received: list[Mapping[str, Any]]) -> None:
    top_level = set().union(*(set(context) for context in received))
    assert sorted(top_level - documented_names()) == []


# -- the CMS side: what a CMS implementer copies is right --------------------------------------


def test_the_cms_sides_verification_accepts_broadcasters_signature_only() -> None:
    import time

    from broadcaster.signing import signed_headers

    [code] = re.findall(r"```python\n(.*?)```", section("The CMS side"), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md (The CMS side)", "exec"), namespace)  # noqa: S102
    verified = namespace["signed_by_broadcaster"]
    body = '{"id":"5f0c","title":"Dataintrång"}'.encode()
    now = int(time.time())
    assert verified("s3cret", signed_headers("s3cret", now, body), body)
    assert not verified("s3cret", signed_headers("s3cret", now, body), body.replace(b"5", b"6"))
    assert not verified("s3cret", signed_headers("s3cret", now - 301, body), body)
    assert not verified("other", signed_headers("s3cret", now, body), body)
    assert not verified("s3cret", {}, body)


def test_the_cms_sides_document_table_lists_every_field(app: App) -> None:
    from broadcaster.channels.cms_document import announcement_document

    table = section("The CMS side").split("**The document**", 1)[1]
    rows = re.findall(r"^\| (`.*?) \|", table, re.M)
    documented = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[0])}
    message = make_message(app, "web-borgholm")
    assert documented == set(announcement_document(message, "Europe/Stockholm"))
