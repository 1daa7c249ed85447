"""Shared fixtures: workspace, databases, sandbox."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from broadcaster.app import App, open_app
from broadcaster.cli import app as cli_app
from broadcaster.scaffold import init_workspace
from broadcaster.workspace import Workspace, load_workspace

POSTGRES_URL_VAR = "BROADCASTER_TEST_POSTGRES_URL"
SHARED_DIR_VAR = "BROADCASTER_SHARED_DIR"
REQUIRE_SHARED_VAR = "BROADCASTER_REQUIRE_SPECS"


def find_shared_dir() -> Path | None:
    """The project's shared folder (reference configuration, official schemas), if present.

    It sits beside the checkout, not in it: BROADCASTER_SHARED_DIR, else ../shared, else
    /work/shared.
    """
    candidates = [os.environ.get(SHARED_DIR_VAR)]
    specs = os.environ.get("BROADCASTER_SPECS_DIR")
    if specs:
        candidates.append(str(Path(specs).parent))
    candidates += [str(Path(__file__).resolve().parents[2] / "shared"), "/work/shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "examples" / "broadcaster.toml").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder; CI (BROADCASTER_REQUIRE_SPECS=1) fails without it, elsewhere it skips."""
    found = find_shared_dir()
    if found is None:
        message = f"the shared folder (examples/, specs/) was not found; set {SHARED_DIR_VAR}"
        if os.environ.get(REQUIRE_SHARED_VAR) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


# ---------------------------------------------------------------------------------------------
# Time


class FakeClock:
    """A clock tests move by hand; starts at a fixed moment in December 2026 (UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 12, 12, 19, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ---------------------------------------------------------------------------------------------
# Databases: SQLite always; PostgreSQL when BROADCASTER_TEST_POSTGRES_URL is set (CI sets it).


def postgres_schema_url(base_url: str) -> tuple[str, str]:
    """A new, empty schema on the test server and a URL whose search_path points at it."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_postgres_schema(base_url: str, schema: str) -> None:
    engine = create_engine(base_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test gets its own database: a SQLite file, or its own PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    base = os.environ.get(POSTGRES_URL_VAR)
    if not base:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set (CI sets it)")
    url, schema = postgres_schema_url(base)
    try:
        yield url
    finally:
        drop_postgres_schema(base, schema)


# ---------------------------------------------------------------------------------------------
# Workspaces


TRUST_LINE = "allow_self_approval = false\n"


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    """A fresh `broadcaster init` workspace (SQLite) whose CLI believes `--as NAME`.

    Tests play many people from one OS account, so the fixture sets ``[approval]
    trust_cli_names = true`` (as an exercise would); tests of proving who acts turn it off with
    :func:`set_trust_cli_names`.
    """
    directory = tmp_path / "ws"
    init_workspace(directory)
    set_trust_cli_names(directory, True)
    return directory


def set_trust_cli_names(workspace_dir: Path, value: bool | None) -> None:
    """Set ``[approval] trust_cli_names`` in the workspace (None: leave it to exercise mode)."""
    path = workspace_dir / "broadcaster.toml"
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
        if not line.startswith("trust_cli_names =")
    ]
    index = lines.index(TRUST_LINE) + 1
    if value is not None:
        lines.insert(index, f"trust_cli_names = {str(value).lower()}\n")
    path.write_text("".join(lines), encoding="utf-8")


def set_database_url(workspace_dir: Path, url: str) -> None:
    path = workspace_dir / "broadcaster.toml"
    text_ = path.read_text(encoding="utf-8")
    path.write_text(
        text_.replace('database_url = "sqlite:///broadcaster.db"', f'database_url = "{url}"'),
        encoding="utf-8",
    )


def replace_config(app: App, **changes: Any) -> None:
    """Change parts of a running app's configuration, as if broadcaster.toml said so."""
    app.workspace = dataclasses.replace(app.workspace, config=app.config.model_copy(update=changes))


@pytest.fixture
def workspace(workspace_dir: Path) -> Workspace:
    return load_workspace(workspace_dir / "broadcaster.toml", {})


@pytest.fixture
def app(workspace: Workspace, clock: FakeClock) -> Iterator[App]:
    application = open_app(workspace, clock=clock)
    yield application
    application.close()


@pytest.fixture
def db_app(workspace_dir: Path, database_url: str, clock: FakeClock) -> Iterator[App]:
    """An App on each test database (SQLite and, when configured, PostgreSQL)."""
    set_database_url(workspace_dir, database_url)
    application = open_app(load_workspace(workspace_dir / "broadcaster.toml", {}), clock=clock)
    yield application
    application.close()


# ---------------------------------------------------------------------------------------------
# The command line, run in-process


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Cli:
    """Runs `broadcaster ...` in-process from a working folder."""

    cwd: Path
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None) -> CliResult:
        runner = CliRunner()
        previous = Path.cwd()
        os.chdir(self.cwd)
        try:
            result = runner.invoke(cli_app, list(args), input=input, env=self.env)
        finally:
            os.chdir(previous)
        return CliResult(result.exit_code, result.stdout, result.stderr, result.exception)


@pytest.fixture
def cli(workspace_dir: Path) -> Cli:
    """The CLI, run inside the fresh workspace, as nobody in particular."""
    return Cli(cwd=workspace_dir, env={"BROADCASTER_USER": "kommunikator"})


# ---------------------------------------------------------------------------------------------
# Sandbox: the platform emulators (issue 4). This section is owned by the sandbox work; keep it
# at the end of the file and edit it only there.

REQUIRE_SPECS_VAR = "BROADCASTER_REQUIRE_SPECS"


@pytest.fixture(scope="session")
def specs_dir() -> Path | None:
    """The vendored platform specs (BROADCASTER_SPECS_DIR, or ../shared/specs), or None.

    With BROADCASTER_REQUIRE_SPECS=1 (CI) a missing specs directory is a failure.
    """
    from broadcaster.sandbox import find_specs_dir

    explicit = os.environ.get("BROADCASTER_SPECS_DIR")
    found = find_specs_dir(Path(explicit) if explicit else None)
    if found is None and os.environ.get(REQUIRE_SPECS_VAR) == "1":
        pytest.fail(f"{REQUIRE_SPECS_VAR}=1 but no platform specs found (BROADCASTER_SPECS_DIR)")
    return found


@pytest.fixture
def full_specs(specs_dir: Path | None) -> Path:
    """Skip a test that needs the platforms' own schemas when they are not available."""
    if specs_dir is None:
        pytest.skip(
            "platform specs not found: set BROADCASTER_SPECS_DIR "
            f"({REQUIRE_SPECS_VAR}=1 turns this skip into a failure)"
        )
    return specs_dir


@pytest.fixture(scope="module")
def sandbox_server(specs_dir: Path | None) -> Iterator[Any]:
    """One running sandbox per test module (starting one takes a moment)."""
    from broadcaster.sandbox import Sandbox

    with Sandbox(specs_dir=specs_dir, seed=4) as running:
        yield running


@pytest.fixture
def sandbox(sandbox_server: Any) -> Any:
    """The module's sandbox, emptied for this test: no records, faults, posts or messages."""
    sandbox_server.reset()
    return sandbox_server
