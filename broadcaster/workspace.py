"""A deployment folder: ``broadcaster.toml``, ``.env``, template overrides, database and output.

:func:`load_workspace` is the only place that reads the configuration file and the ``.env``; the
rest of broadcaster receives a :class:`Workspace` and never looks at the environment itself.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import ValidationError

from broadcaster.config import Config, cross_check
from broadcaster.errors import ConfigError, InputError
from broadcaster.exercise import apply_exercise, exercise_problems
from broadcaster.text import decode_text

__all__ = ["CONFIG_FILENAME", "Workspace", "find_config", "load_workspace"]

CONFIG_FILENAME = "broadcaster.toml"
CONFIG_ENV_VAR = "BROADCASTER_CONFIG"


@dataclass(frozen=True)
class Workspace:
    """A loaded, validated workspace."""

    root: Path
    config_path: Path
    config: Config
    env: Mapping[str, str]

    def path(self, relative: str) -> Path:
        """A path from the configuration, relative to the workspace folder unless absolute."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, with a relative SQLite file placed in the workspace folder."""
        url = self.config.broadcaster.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            return prefix + str(self.path(url.removeprefix(prefix)))
        return url

    @property
    def templates_dir(self) -> Path:
        """Where the workspace's template overrides live (may not exist)."""
        return self.path(self.config.broadcaster.templates_dir)


def find_config(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The configuration: ``--config``, else ``BROADCASTER_CONFIG``, else ./broadcaster.toml."""
    chosen = explicit or environ.get(CONFIG_ENV_VAR)
    path = Path(chosen).expanduser() if chosen else cwd / CONFIG_FILENAME
    if not path.is_absolute():
        path = cwd / path
    if not path.is_file():
        how = (
            "--config"
            if explicit
            else CONFIG_ENV_VAR
            if environ.get(CONFIG_ENV_VAR)
            else "the current folder"
        )
        raise ConfigError(
            [
                f"{path}: no configuration file here (from {how}); "
                "create a workspace with `broadcaster init DIR` or pass --config"
            ]
        )
    return path


def load_workspace(config_path: Path, environ: Mapping[str, str]) -> Workspace:
    """Read, resolve secrets in and validate a workspace; every problem is one ConfigError line."""
    root = config_path.parent.resolve()
    env = _environment(root, environ)
    try:
        # Notepad saves with a byte order mark, which TOML itself does not allow.
        raw = tomllib.loads(decode_text(config_path.read_bytes(), str(config_path)))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{config_path}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{config_path}: cannot read: {exc}"]) from None
    except InputError as exc:  # not UTF-8 or UTF-16
        raise ConfigError([str(exc)]) from None
    try:
        config = Config.model_validate(raw, context={"env": env})
    except ValidationError as exc:
        raise ConfigError([f"{config_path}: {line}" for line in _describe(exc, raw)]) from None
    config, problems = apply_exercise(config, env)
    problems += cross_check(config) + exercise_problems(config, env)
    if problems:
        raise ConfigError([f"{config_path}: {problem}" for problem in problems])
    return Workspace(root=root, config_path=config_path.resolve(), config=config, env=env)


def _environment(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The workspace's ``.env`` overlaid by the real environment (which wins)."""
    dotenv_path = root / ".env"
    from_file = dotenv_values(dotenv_path) if dotenv_path.is_file() else {}
    env = {key: value for key, value in from_file.items() if value is not None}
    env.update(environ)
    return env


def _describe(error: ValidationError, raw: dict[str, Any]) -> list[str]:
    """Turn pydantic's errors into ``key.path: message`` lines that name the TOML keys."""
    # (key or None, message) -> key paths, in order of first appearance
    keys_by_problem: dict[tuple[str | None, str], list[str]] = {}
    for item in error.errors(include_url=False, include_input=False):
        key = _key_path(item["loc"], raw)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif item["type"] == "string_pattern_mismatch":
            message = _PATTERN_HINTS.get(str(item["loc"][-1]), message)
        message = message.removeprefix("Value error, ")
        # A missing variable is one problem however many keys read it (FB_APP_SECRET serves
        # every Facebook page): one line naming them all. Other messages are per key.
        problem = (None if message.startswith(_MISSING_VARIABLE) else key, message)
        keys_by_problem.setdefault(problem, []).append(key)
    return [f"{', '.join(keys)}: {message}" for (_, message), keys in keys_by_problem.items()]


_MISSING_VARIABLE = "environment variable "


_ID_HINT = "use lowercase letters, digits, '-', '_' and '.', starting with a letter or digit"
_PATTERN_HINTS = {
    "id": _ID_HINT,
    "organisation": _ID_HINT,
    "list": _ID_HINT,
    "kommunkod": "must be the four-digit SCB kommunkod, e.g. 0885",
    "page_id": "must be the numeric id of the Facebook page",
    "chat_id": "must be @channelname or a numeric chat id such as -1001234567890",
    "sender": "must be an alphanumeric sender id (at most 11 characters) or an E.164 number",
    "messaging_service_sid": "must be MG followed by 32 hexadecimal digits",
    "language": "must be a two- or three-letter language code such as sv",
}


def _key_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """Render a pydantic location as a TOML key path, skipping the union tags pydantic adds."""
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int):
            parts[-1] = f"{parts[-1]}[{step}]" if parts else f"[{step}]"
            node = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                parts[-1] += f" ({node['id']})"
            continue
        if isinstance(node, dict) and step not in node and _is_union_tag(step, node):
            continue
        parts.append(step)
        node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts) or "(top level)"


def _is_union_tag(step: str, node: dict[str, Any]) -> bool:
    return step in {node.get("channel"), f"{node.get('channel')}:{node.get('mode')}"} or (
        ":" in step and step.split(":", 1)[0] == node.get("channel")
    )
