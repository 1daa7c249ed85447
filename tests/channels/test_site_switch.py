"""The static site switches to a new set of files at once, and nothing temporary is ever served.

These run on the real file system. Failures are injected at the OS boundary (``os.write``,
``os.replace``) because a full disk or a crash between two renames cannot be produced on demand;
the served folder on another file system is real (``/dev/shm``) where the machine has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from broadcaster.app import App
from broadcaster.errors import TransientError
from tests.channels.test_website import adapter_for, publish, site
from tests.factories import make_message

HREF = re.compile(r'href="([^"]+)"')


def state_dir(workspace_dir: Path, org: str = "borgholm") -> Path:
    """Broadcaster's own folder for a site: beside the served folder, never in it."""
    return workspace_dir / "site" / f".{org}.broadcaster"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a folder tree, by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def temp_files(root: Path) -> list[str]:
    """Temporary files in a folder tree (what a web server must never serve)."""
    return sorted(p.name for p in root.rglob("*") if p.name.endswith(".tmp"))


def broken_links(root: Path, html: str) -> list[str]:
    """The site-relative links in ``html`` that point at no file under ``root``."""
    local = [h for h in HREF.findall(html) if ":" not in h and not h.startswith("#")]
    return [h for h in local if not (root / h).is_file()]


def test_broadcasters_own_files_live_beside_the_served_folder(
    app: App, workspace_dir: Path
) -> None:
    publish(app, make_message(app, "web-borgholm"))
    state = state_dir(workspace_dir)
    assert (state / "site.lock").is_file()
    assert list((state / "staging").iterdir()) == []
    assert not (workspace_dir / "site" / ".borgholm.lock").exists()  # the old place
    assert temp_files(site(workspace_dir)) == []


def test_leftovers_of_a_crash_are_removed_by_the_next_publish(
    app: App, workspace_dir: Path
) -> None:
    message = make_message(app, "web-borgholm", uid="u-1")
    publish(app, message)
    root, staging = site(workspace_dir), state_dir(workspace_dir) / "staging"
    leftovers = [
        staging / ".index.html.k2j4.tmp",
        staging / ".u-1.html.x81q.tmp",
        root / ".index.html.7fq0c2.tmp",  # what atomic_write left in the served folder before
        root / "updates" / ".u-1.html.p1z9.tmp",
        root / "cap" / ".index.atom.3hd8.tmp",
    ]
    for path in leftovers:
        path.write_text("half a page")
    publish(app, message)  # nothing to write: the cleanup happens anyway
    assert [p for p in leftovers if p.exists()] == []
    assert sorted(p.name for p in root.iterdir()) == [
        "announcements.json",
        "cap",
        "feed.atom",
        "index.html",
        "updates",
    ]


@pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell which file a write is for"
)
@pytest.mark.parametrize("victim", ["page", "feed.atom", "index.html", "announcements.json"])
def test_a_full_disk_leaves_the_served_site_as_it_was(
    app: App, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch, victim: str
) -> None:
    """ENOSPC while staging any one file: nothing served changes, no temporary file stays."""
    publish(app, make_message(app, "web-borgholm", title="Första"))
    root, staging = site(workspace_dir), state_dir(workspace_dir) / "staging"
    before = snapshot(root)
    app.clock.advance(60)  # type: ignore[attr-defined]
    second = make_message(app, "web-borgholm", title="Andra")
    name = f"{second.uid}.html" if victim == "page" else victim
    real_write = os.write
    failed: list[str] = []

    # os.write is the OS boundary every staged byte passes through; which file a descriptor
    # belongs to is read back from /proc, so only the chosen staging file runs out of space.
    def full_disk(fd: int, data: bytes) -> int:
        path = Path()
        with contextlib.suppress(OSError):  # a descriptor with no path (a pipe, a socket)
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if path.parent == staging and path.name.startswith(f".{name}."):
            failed.append(path.name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    adapter = adapter_for(app)
    with pytest.raises(TransientError, match="No space left on device"):
        asyncio.run(adapter.send(second, adapter.prepare(second)))
    monkeypatch.undo()
    assert failed
    assert snapshot(root) == before  # byte for byte, and no new file
    assert list(staging.iterdir()) == []
    assert asyncio.run(adapter.verify(second)) is None
    publish(app, second)  # the disk has room again
    assert "Andra" in (root / "index.html").read_text(encoding="utf-8")
    assert (root / "updates" / f"{second.uid}.html").is_file()


def test_files_switch_in_an_order_where_every_link_works(
    app: App, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages, then the feed, then the index, then announcements.json, which says "shown"."""
    root = site(workspace_dir)
    real_replace = os.replace
    switched: list[str] = []
    problems: list[str] = []
    titles: list[str] = []

    def watching_replace(src: str | Path, dst: str | Path) -> None:
        target = Path(dst)
        if target.parent in (root, root / "updates"):
            name = target.relative_to(root).as_posix()
            switched.append(name)
            if name == "index.html":
                problems.extend(broken_links(root, Path(src).read_text(encoding="utf-8")))
            if name == "announcements.json":
                index = (root / "index.html").read_text(encoding="utf-8")
                problems.extend(t for t in titles if t not in index)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    for title in ("Första", "Andra"):
        titles.append(title)
        app.clock.advance(60)  # type: ignore[attr-defined]
        switched.clear()
        publish(app, make_message(app, "web-borgholm", title=title))
        assert switched[-3:] == ["feed.atom", "index.html", "announcements.json"], switched
        assert all(name.startswith("updates/") for name in switched[:-3]), switched
    assert problems == []


def test_a_crash_between_renames_leaves_a_consistent_site(
    app: App, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped before the index switched: the new page exists, nothing links to it yet."""
    publish(app, make_message(app, "web-borgholm", title="Första"))
    root, staging = site(workspace_dir), state_dir(workspace_dir) / "staging"
    old_index = (root / "index.html").read_bytes()
    old_state = (root / "announcements.json").read_bytes()
    real_replace = os.replace

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == root / "index.html":
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    app.clock.advance(60)  # type: ignore[attr-defined]
    second = make_message(app, "web-borgholm", title="Andra")
    adapter = adapter_for(app)
    with pytest.raises(TransientError, match="Input/output error"):
        asyncio.run(adapter.send(second, adapter.prepare(second)))
    monkeypatch.undo()
    assert (root / "updates" / f"{second.uid}.html").is_file()
    assert (root / "index.html").read_bytes() == old_index
    assert (root / "announcements.json").read_bytes() == old_state
    assert broken_links(root, old_index.decode()) == []
    assert list(staging.iterdir()) == [] and temp_files(root) == []
    assert asyncio.run(adapter.verify(second)) is None  # so the queue sends again
    publish(app, second)
    assert "Andra" in (root / "index.html").read_text(encoding="utf-8")
    assert asyncio.run(adapter.verify(second)) is not None


@pytest.fixture
def other_file_system(workspace_dir: Path) -> Iterator[Path]:
    """An empty folder on a file system other than the workspace's (tmpfs), or a skip."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == workspace_dir.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) on this machine")
    folder = Path(tempfile.mkdtemp(prefix="broadcaster-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def test_a_served_folder_on_another_file_system_still_switches_cleanly(
    app: App, workspace_dir: Path, other_file_system: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served folder is a mount of its own: staging cannot rename into it (EXDEV)."""
    (workspace_dir / "site").mkdir(exist_ok=True)
    (workspace_dir / "site" / "borgholm").symlink_to(other_file_system)
    real_replace = os.replace
    refused: list[str] = []

    def noting_replace(src: str | Path, dst: str | Path) -> None:
        try:
            real_replace(src, dst)
        except OSError as exc:
            refused.append(errno.errorcode[exc.errno or 0])
            raise

    monkeypatch.setattr(os, "replace", noting_replace)
    for title in ("Första", "Andra"):
        app.clock.advance(60)  # type: ignore[attr-defined]
        publish(app, make_message(app, "web-borgholm", title=title))
    assert "EXDEV" in refused  # the fallback really ran
    index = (other_file_system / "index.html").read_text(encoding="utf-8")
    assert "Första" in index and "Andra" in index
    assert broken_links(other_file_system, index) == []
    assert temp_files(other_file_system) == []
    assert list((state_dir(workspace_dir) / "staging").iterdir()) == []
