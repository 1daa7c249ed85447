"""Resolving ``--to`` names (target ids and groups) into target ids."""

from __future__ import annotations

from collections.abc import Iterable

from broadcaster.config import IMPLICIT_GROUP, Config
from broadcaster.errors import InputError, NotFoundError

__all__ = ["resolve_targets"]


def resolve_targets(config: Config, names: Iterable[str]) -> tuple[str, ...]:
    """Target ids for ``names`` in configuration order, each once; ``all`` when none given."""
    wanted = list(names) or [IMPLICIT_GROUP]
    groups = config.group_members()
    chosen: set[str] = set()
    for name in wanted:
        if config.target(name) is not None:
            chosen.add(name)
        elif name in groups:
            chosen.update(groups[name])
        else:
            known = sorted({*groups, *(t.id for t in config.targets)})
            raise NotFoundError(
                f"--to {name}: no target or group of that name (known: {', '.join(known)})"
            )
    if not chosen:
        raise InputError(f"--to {' '.join(wanted)}: that selects no targets")
    return tuple(t.id for t in config.targets if t.id in chosen)
