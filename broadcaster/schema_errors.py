"""Adaptive Card checks shared by the Teams adapter and the sandbox: readable schema errors, the
card's version, and the structural check used when the official schema is not at hand.

An Adaptive Card element is validated against an ``anyOf`` over every element type, so
jsonschema's own error says only "is not valid under any of the given schemas". The useful error
is in the branch for the element's own type: every other branch fails on its ``type`` value.
Imports nothing of broadcaster (the sandbox uses it too) and jsonschema only when called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["card_version", "malformed_element_lists", "own_branch_error"]


def own_branch_error(error: Any) -> Any:
    """Descend from a vague ``anyOf`` error to the error of the element's own type's branch."""
    from jsonschema.exceptions import best_match

    while error.context:
        by_branch: dict[Any, list[Any]] = {}
        for sub in error.context:
            by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
        own = [
            sub
            for subs in by_branch.values()
            if not any(_other_type(s) for s in subs)
            for sub in subs
        ]
        if not own:
            break
        error = best_match(own)
    return error


def _other_type(error: Any) -> bool:
    """An ``anyOf`` branch for another element type (its ``type`` enum does not match)."""
    return error.validator in ("enum", "const") and list(error.relative_path)[-1:] == ["type"]


def card_version(text: object) -> tuple[int, ...] | None:
    """``"1.5"`` as ``(1, 5)``; None for anything that is not a dotted version."""
    if not isinstance(text, str):
        return None
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return None


def malformed_element_lists(card: dict[str, Any]) -> list[str]:
    """The keys (``body``, ``actions``) that are not lists of elements each with a ``type``."""
    return [
        key
        for key in ("body", "actions")
        if not isinstance(items := card.get(key, []), list)
        or not all(isinstance(item, dict) and isinstance(item.get("type"), str) for item in items)
    ]
