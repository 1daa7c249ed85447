"""The platforms' own machine-readable specifications, loaded lazily, once per sandbox.

The files (Adaptive Card 1.5/1.4 JSON schemas, Twilio's OpenAPI, the Telegram Bot API description
and the Bot Connector swagger, see ``specs/SOURCES.md``) are not part of the repository. Without
them, or without ``jsonschema``, the emulators fall back to structural checks, and
:attr:`Specs.full` is False so that callers can say so.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import broadcaster
from broadcaster.schema_errors import card_version, malformed_element_lists, own_branch_error

from .telegram_fields import FALLBACK_METHODS

__all__ = ["Specs", "find_specs_dir"]

_MARKER = Path("adaptivecards") / "adaptive-card-1.5.0.json"
_TEAMS_MAX_CARD_VERSION = (1, 5)


def find_specs_dir(explicit: Path | None = None) -> Path | None:
    """Locate the vendored specifications.

    Args:
        explicit: A directory given by the caller (``--specs-dir``, ``BROADCASTER_SPECS_DIR``).

    Returns:
        ``explicit`` if given, else ``<repository>/../shared/specs`` or ``/work/shared/specs`` when
        they hold the specs, else None.

    Raises:
        FileNotFoundError: ``explicit`` was given but holds no specs.
    """
    if explicit is not None:
        if not (explicit / _MARKER).is_file():
            raise FileNotFoundError(f"no platform specs in {explicit} (missing {_MARKER})")
        return explicit
    repository = Path(broadcaster.__file__).resolve().parents[1]
    for candidate in (repository.parent / "shared" / "specs", Path("/work/shared/specs")):
        if (candidate / _MARKER).is_file():
            return candidate
    return None


class Specs:
    """Lazy, cached access to the specification files of one directory (or none)."""

    def __init__(self, root: Path | None) -> None:
        """Use the specs in ``root``; None means structural checks only."""
        self.root = root

    @cached_property
    def full(self) -> bool:
        """True when payloads are checked against the platforms' own schemas."""
        return self.root is not None and importlib.util.find_spec("jsonschema") is not None

    def _load(self, relative: str) -> Any:
        if self.root is None:
            raise FileNotFoundError("no specs directory")
        with (self.root / relative).open(encoding="utf-8") as handle:
            return json.load(handle)

    def _card_validator(self, version: tuple[int, ...]) -> Any:
        return self._card_validators["1.5" if version >= (1, 5) else "1.4"]

    @cached_property
    def _card_validators(self) -> dict[str, Any]:
        from jsonschema import Draft6Validator

        validators = {}
        for name in ("1.4", "1.5"):
            schema = self._load(f"adaptivecards/adaptive-card-{name}.0.json")
            root = {"$ref": "#/definitions/AdaptiveCard", "definitions": schema["definitions"]}
            validators[name] = Draft6Validator(root)
        return validators

    def card_problems(self, card: Any) -> list[str]:
        """Why ``card`` is not an Adaptive Card that Teams renders; empty when it is.

        The top-level ``msteams`` key (Teams' host extension) is allowed, as Teams accepts it.
        """
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            return ["content is not an Adaptive Card (type must be 'AdaptiveCard')"]
        version = card_version(card.get("version"))
        if version is None:
            return ["the top-level card needs a 'version' such as \"1.5\""]
        if version > _TEAMS_MAX_CARD_VERSION:
            return [f"card version {card['version']} is above 1.5, the highest Teams renders"]
        bare = {k: v for k, v in card.items() if k != "msteams"}
        if not self.full:
            return [
                f"{key}: must be a list of objects with a 'type'"
                for key in malformed_element_lists(bare)
            ]
        from jsonschema.exceptions import best_match

        error = best_match(self._card_validator(version).iter_errors(bare))
        if error is None:
            return []
        error = own_branch_error(error)
        where = "/".join(str(p) for p in error.absolute_path) or "(card)"
        kind = error.instance.get("type") if isinstance(error.instance, dict) else None
        if error.validator == "anyOf" and isinstance(kind, str):
            name = ".".join(str(n) for n in version)
            return [f"{where}: {kind!r} is not a type of Adaptive Card {name}"]
        return [f"{where}: {error.message}"]

    @cached_property
    def telegram_methods(self) -> dict[str, dict[str, Any]]:
        """Bot API methods by lower-case name: ``{"name", "fields": [{name, types, required}]}``."""
        if self.root is None:
            return FALLBACK_METHODS
        methods = self._load("telegram/api.json")["methods"]
        return {name.lower(): spec for name, spec in methods.items()}

    @cached_property
    def telegram_types(self) -> dict[str, dict[str, Any]]:
        """Bot API object types by name (empty without specs)."""
        if self.root is None:
            return {}
        types: dict[str, dict[str, Any]] = self._load("telegram/api.json")["types"]
        return types

    @cached_property
    def twilio_create_message(self) -> tuple[dict[str, Any], Any] | None:
        """The CreateMessage form schema and a validator for it, or None without specs."""
        if not self.full or importlib.util.find_spec("openapi_schema_validator") is None:
            return None
        from openapi_schema_validator import OAS30Validator

        spec = self._load("twilio/twilio_api_v2010.json")
        operation = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]
        schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        root = {**schema, "components": spec["components"]}
        return schema, OAS30Validator(root)

    @cached_property
    def _connector_definitions(self) -> dict[str, Any] | None:
        if not self.full:
            return None
        definitions: dict[str, Any] = self._load("botframework/ConnectorAPI.json")["definitions"]
        return definitions

    def connector_problems(self, definition: str, payload: Any) -> list[str]:
        """Why ``payload`` does not match a Bot Connector swagger definition (types, enums)."""
        definitions = self._connector_definitions
        if definitions is None:
            return [] if isinstance(payload, dict) else [f"{definition} must be a JSON object"]
        from jsonschema import Draft4Validator
        from jsonschema.exceptions import best_match

        validator = Draft4Validator(
            {"$ref": f"#/definitions/{definition}", "definitions": definitions}
        )
        error = best_match(validator.iter_errors(payload))
        if error is None:
            return []
        where = "/".join(str(p) for p in error.absolute_path) or definition
        return [f"{where}: {error.message}"]
