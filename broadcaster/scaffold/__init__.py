"""``broadcaster init``: a working example workspace for Borgholm and Mörbylånga."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from broadcaster.errors import InputError
from broadcaster.fileio import atomic_write

__all__ = ["example_update", "init_workspace"]

# (file shipped in this package, where it goes in the workspace, file mode)
_FILES = (
    ("broadcaster.toml", "broadcaster.toml", 0o644),
    ("env.txt", ".env", 0o600),
    ("gitignore.txt", ".gitignore", 0o644),
    ("templates-README.txt", "templates/README.txt", 0o644),
    # The seed incident's first update: the README's tour drafts it with --body-file.
    ("uppdatering.md", "uppdatering.md", 0o644),
    # Example SMS lists of fictitious numbers (PTS's series reserved for fiction, 070-174 06 05
    # to 070-174 06 99): `broadcaster lists import` reads them; the demo sends to them. Real
    # lists are personal data, hence owner-only like .env.
    ("lists-borgholm.csv", "lists/borgholm-residents.csv", 0o600),
    ("lists-morbylanga.csv", "lists/morbylanga-residents.csv", 0o600),
)


def init_workspace(directory: Path) -> list[Path]:
    """Write the example workspace into ``directory``; refuses to overwrite anything."""
    existing = [directory / dest for _, dest, _ in _FILES if (directory / dest).exists()]
    if existing:
        raise InputError(
            f"{directory} already holds {', '.join(str(p) for p in existing)}; "
            "choose an empty folder (nothing was changed)"
        )
    if directory.exists() and not directory.is_dir():
        raise InputError(f"{directory} exists and is not a folder")
    written = []
    source = files(__name__)
    for name, dest, mode in _FILES:
        path = directory / dest
        atomic_write(path, source.joinpath(name).read_text(encoding="utf-8"), mode=mode)
        written.append(path)
    os.makedirs(directory / "site", exist_ok=True)
    return written


def example_update() -> str:
    """The example update ``init`` writes as ``uppdatering.md`` (the demo drafts it too)."""
    return files(__name__).joinpath("uppdatering.md").read_text(encoding="utf-8").strip()
