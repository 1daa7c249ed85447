"""The SQLite database holds personal data: it and its -wal/-shm files are owner-only (0600)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from broadcaster.store.database import open_store
from tests.conftest import Cli


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common default, under which files are created readable by every user (0644)."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_a_new_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "broadcaster.db"
    store = open_store(f"sqlite:///{database}")
    try:
        with store.write() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    finally:
        store.close()


@pytest.mark.usefixtures("usual_umask")
def test_the_workspace_database_is_owner_only_from_the_first_command(
    cli: Cli, workspace_dir: Path
) -> None:
    assert cli("list").exit_code == 0
    assert mode(workspace_dir / "broadcaster.db") == 0o600
    assert mode(workspace_dir / ".env") == 0o600


def test_an_existing_database_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    database.touch()
    database.chmod(0o640)
    open_store(f"sqlite:///{database}").close()
    assert mode(database) == 0o640


def test_a_database_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    from broadcaster.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot open"):
        open_store(f"sqlite:///{tmp_path / 'nowhere' / 'broadcaster.db'}")
