"""The Jinja2 environment: workspace overrides first, bundled templates second.

Templates get announcement text as data, never as template source, and the environment is
sandboxed, so text like ``{{ 7*7 }}`` in a title is printed, not evaluated. HTML, XML and Atom
templates autoescape; ``StrictUndefined`` makes a misspelt variable an error at preview time
instead of an empty line in a crisis message.
"""

from __future__ import annotations

import hashlib
import traceback
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from broadcaster.errors import RenderError
from broadcaster.rendering.markup import markdown_to_html, markdown_to_text
from broadcaster.rendering.phones import link_phone_numbers, phone_link, tel_uri
from broadcaster.timeutil import format_local

__all__ = ["Renderer", "TemplateNamespace", "bundled_templates_dir"]


def bundled_templates_dir() -> Path:
    """The default templates: inside the installed wheel, or at the top of a source checkout."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_templates"
    return installed if installed.is_dir() else package.parent / "templates"


class TemplateNamespace(dict[str, Any]):
    """A mapping that knows its name, so an undefined variable is reported as ``name.key``."""

    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.label = label


class _NamedUndefined(StrictUndefined):
    @property
    def _undefined_message(self) -> str:
        owner = self._undefined_obj
        if isinstance(owner, TemplateNamespace):
            return f"{owner.label}.{self._undefined_name} is undefined"
        return str(super()._undefined_message)


class Renderer:
    """Renders named templates for one workspace."""

    def __init__(self, override_dir: Path | None, timezone: str) -> None:
        self.override_dir = override_dir if override_dir and override_dir.is_dir() else None
        self.bundled_dir = bundled_templates_dir()
        loaders = [FileSystemLoader(d) for d in (self.override_dir, self.bundled_dir) if d]
        self._loader = ChoiceLoader(loaders)
        self._fingerprints: dict[str, str] = {}
        self.env = SandboxedEnvironment(
            loader=self._loader,
            undefined=_NamedUndefined,
            autoescape=select_autoescape(("html", "xml", "atom"), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters["markdown"] = lambda text: Markup(markdown_to_html(str(text)))  # noqa: S704
        self.env.filters["plaintext"] = lambda text: markdown_to_text(str(text))
        self.env.filters["localtime"] = lambda moment: format_local(moment, timezone)
        self.env.filters["isotime"] = _isotime
        self.env.filters["tel"] = tel_uri
        # A number as a tap-to-call link that never wraps; a text with numbers linked in it.
        self.env.filters["phone"] = lambda number: phone_link(tel_uri(str(number))[4:], number)
        self.env.filters["phones"] = lambda text: link_phone_numbers(str(text))

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Render template ``name`` (e.g. ``website/index.html``); errors name file and line."""
        try:
            return self.env.get_template(name).render(context)
        except TemplateNotFound as exc:
            raise RenderError(
                f"template {exc.name} not found (looked in {self._searched()})"
            ) from None
        except TemplateSyntaxError as exc:
            where = self._display(exc.filename, exc.name or name)
            raise RenderError(f"{where}, line {exc.lineno}: {exc.message}") from None
        except (UndefinedError, SecurityError) as exc:
            filename, line = _template_frame(exc, name)
            where = self._display(filename, name)
            raise RenderError(f"{where}, line {line}: {exc.message}") from None

    def fingerprint(self, prefix: str) -> str:
        """A hash of the templates under ``prefix`` as they load now (an override or a default).

        Output rendered from them is up to date while this stays the same. When it changed
        since the last call, the compiled templates are forgotten: Jinja notices a template
        file that changed, but not an override that appeared in front of a default.
        """
        digest = hashlib.sha256()
        for name in sorted(n for n in self._loader.list_templates() if n.startswith(prefix)):
            source = self._loader.get_source(self.env, name)[0]
            digest.update(f"{name}\0{source}\0".encode())
        found = digest.hexdigest()
        if self._fingerprints.setdefault(prefix, found) != found:
            self._fingerprints[prefix] = found
            if self.env.cache is not None:
                self.env.cache.clear()
        return found

    def _display(self, filename: str | None, name: str) -> str:
        """A template's path as the administrator knows it (override or bundled default)."""
        if filename:
            path = Path(filename)
            if self.override_dir and path.is_relative_to(self.override_dir):
                return str(path)
            return f"bundled template {name}"
        return f"template {name}"

    def _searched(self) -> str:
        return " and ".join(str(d) for d in (self.override_dir, self.bundled_dir) if d)


def _template_frame(exc: BaseException, name: str) -> tuple[str | None, int | str]:
    """The template file and line an error came from (Jinja rewrites tracebacks to templates)."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(name) or "/templates/" in frame.filename:
            return frame.filename, frame.lineno or "?"
    return None, "?"


def _isotime(moment: datetime) -> str:
    """RFC 3339 with seconds and an explicit offset (Atom, HTML ``datetime`` attributes)."""
    return moment.isoformat(timespec="seconds")
