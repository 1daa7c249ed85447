"""Files that a web server may be reading while we write them: atomic replacement and locks.

A reader sees each file old or new, never a part: new content goes to a temporary file, is
flushed to disk, and is then renamed over the target. :func:`replace_files` does this for a set of
files at once: every new file is written before the first one is switched, so a failed write
(a full disk) changes nothing, and the switch follows the caller's order, so that every state in
between is one the caller chose. Temporary files are named ``.<name>.<random>.tmp``;
:func:`remove_leftovers` finds what a crash left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "TEMP_PATTERN",
    "atomic_write",
    "exclusive_lock",
    "remove_leftovers",
    "replace_files",
    "sync_folder",
]

#: Matches every temporary file this module creates (and those older versions left).
TEMP_PATTERN = ".*.tmp"


def atomic_write(
    path: Path, data: str | bytes, mode: int = 0o644, *, temp_dir: Path | None = None
) -> None:
    """Replace ``path`` in one step: readers see the old file or the new one, never a part.

    Args:
        path: The file to replace (created with its folders if missing).
        data: The new content; text is written as UTF-8.
        mode: The file's permissions.
        temp_dir: Where the temporary file goes (default: beside ``path``). Use it to keep
            temporary files out of a served folder; it should be on the same file system.
    """
    replace_files([(path, data)], temp_dir=temp_dir, mode=mode)


def replace_files(
    files: Sequence[tuple[Path, str | bytes]],
    *,
    temp_dir: Path | None = None,
    mode: int = 0o644,
) -> None:
    """Write every file of a set, then switch them into place one by one, in the order given.

    Args:
        files: Each target path with its new content (text is written as UTF-8).
        temp_dir: Where temporary files go (default: beside each target). When a rename from
            it fails with EXDEV (the targets are on another mount), what is left is written
            again beside its targets and switched in the same order.
        mode: Permissions of the new files.

    Raises:
        OSError: Writing or renaming failed. When a write fails, no target was touched;
            either way no temporary file is left behind.
    """
    pending = [(path, _as_bytes(data)) for path, data in files]
    staged: list[Path] = []  # temporary files not yet renamed, in the order of ``pending``
    try:
        _stage(pending, temp_dir, mode, staged)
        left = _switch(pending, staged, exdev_ok=temp_dir is not None)
        if left:
            # temp_dir is on another mount than these targets, so rename cannot cross: write
            # them again beside their targets (as .*.tmp, which remove_leftovers finds).
            _discard(staged)
            _stage(left, None, mode, staged)
            _switch(left, staged, exdev_ok=False)
    finally:
        _discard(staged)
    for folder in dict.fromkeys(path.parent for path, _ in pending):
        sync_folder(folder)


def remove_leftovers(folder: Path, pattern: str = TEMP_PATTERN) -> list[Path]:
    """Delete the files in ``folder`` (not below it) whose names match ``pattern``.

    Call it only while no one can be writing there (under the lock that guards the folder).

    Returns:
        The files removed.
    """
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.glob(pattern):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable, where the OS lets a folder be synced."""
    if sys.platform == "win32":  # pragma: no cover - Windows cannot open a folder to sync it
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some file systems (and some network mounts) do not sync folders; the files are synced.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes on this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _stage(
    pending: Sequence[tuple[Path, bytes]], temp_dir: Path | None, mode: int, staged: list[Path]
) -> None:
    """Write each content to a synced temporary file, appending each file to ``staged``."""
    for path, payload in pending:
        folder = temp_dir or path.parent
        folder.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        staged.append(Path(name))
        try:
            _write_all(fd, payload)
            # mkstemp creates 0600; the web server must be able to read the page.
            os.chmod(name, mode)
            os.fsync(fd)
        finally:
            os.close(fd)


def _switch(
    pending: Sequence[tuple[Path, bytes]], staged: list[Path], *, exdev_ok: bool
) -> list[tuple[Path, bytes]]:
    """Rename the staged files over their targets in order, dropping each from ``staged``.

    Returns:
        The files not switched because their folder is on another file system (EXDEV), when
        ``exdev_ok``; otherwise that error is raised like any other.
    """
    for index, (path, _) in enumerate(pending):
        try:
            os.replace(staged[0], path)
        except OSError as exc:
            if exc.errno == errno.EXDEV and exdev_ok:
                return list(pending[index:])
            raise
        staged.pop(0)
    return []


def _as_bytes(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def _discard(staged: list[Path]) -> None:
    while staged:
        staged.pop().unlink(missing_ok=True)
