"""Writing an announcement in the person's own text editor ($VISUAL, $EDITOR)."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from broadcaster.errors import InputError

__all__ = ["edit_text"]


def edit_text(initial: str) -> str:
    """Open an editor on ``initial`` and return what was saved."""
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix="broadcaster-") as folder:
        path = Path(folder) / "meddelande.md"
        path.write_text(initial, encoding="utf-8")
        try:
            subprocess.run([*shlex.split(command), str(path)], check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise InputError(f"the editor {command!r} failed: {exc}") from None
        from broadcaster.authoring import MAX_BODY_BYTES
        from broadcaster.text import read_text_file

        # Decoded like a body file: an editor set to UTF-16 or with a BOM is read correctly.
        return read_text_file(path, "the edited text", MAX_BODY_BYTES)
