"""CLI start-up: how long the commands an officer types again and again take to answer.

What is measured: the wall-clock time of one whole process, from start to exit, for

* ``python -c pass`` - the interpreter alone, the floor for any Python command;
* ``python -c "import sqlalchemy"`` - the floor for a command that reads the database;
* ``apprise --help`` - a peer: Apprise's command line (the ``bench`` extra installs it);
* ``broadcaster --help``;
* ``broadcaster list --json`` and ``broadcaster status 1 --json`` in a workspace holding 200
  announcements, the first approved and queued for its two targets.

Each command runs once to warm the file cache and write bytecode, then ``RUNS`` times, the
commands interleaved round by round so that a busy moment on the machine hits all of them alike;
the figure is the median. The workspace is a ``broadcaster init`` folder in a temporary directory
(embedded SQLite), filled through the library before timing starts. Figures are printed against
the targets, never asserted.

Run: ``.venv/bin/python bench/cli_startup.py`` (about a minute; ``BROADCASTER_BENCH_COMMAND``
names another ``broadcaster`` executable to time, e.g. an older version). The last line is
``RESULT help_ms=... help_vs_python=... help_vs_apprise=... list_ms=... list_vs_sqlalchemy=...
status_ms=... status_vs_sqlalchemy=...``.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RUNS = 15
ANNOUNCEMENTS = 200

TARGET_HELP_VS_PYTHON = 6.0  # --help at most 6x a bare interpreter
TARGET_HELP_VS_APPRISE = 1.0  # ... and faster than Apprise's
TARGET_READ_VS_SQLALCHEMY = 1.4  # list/status --json at most 1.4x importing SQLAlchemy alone

AUTHOR = "lina.kommunikator"
APPROVERS = ("jens.odevall", "anna.hasselbom")

BIN = Path(sys.executable).parent
#: Time another `broadcaster` (e.g. a script running an older checkout) against the same peers.
COMMAND_VAR = "BROADCASTER_BENCH_COMMAND"


@dataclass(frozen=True)
class Command:
    """One command line to time; ``argv`` is None when its program is not installed."""

    key: str
    label: str
    argv: list[str] | None


def commands() -> list[Command]:
    """The six command lines, in the order they run in each round."""
    python = sys.executable
    apprise = shutil.which("apprise", path=str(BIN)) or shutil.which("apprise")
    broadcaster = os.environ.get(COMMAND_VAR) or str(BIN / "broadcaster")
    return [
        Command("python", "python -c pass", [python, "-c", "pass"]),
        Command("sqlalchemy", 'python -c "import sqlalchemy"', [python, "-c", "import sqlalchemy"]),
        Command("apprise", "apprise --help", [apprise, "--help"] if apprise else None),
        Command("help", "broadcaster --help", [broadcaster, "--help"]),
        Command("list", "broadcaster list --json", [broadcaster, "list", "--json"]),
        Command("status", "broadcaster status 1 --json", [broadcaster, "status", "1", "--json"]),
    ]


# ---------------------------------------------------------------------------------------------
# The workspace


def build_workspace(folder: Path) -> None:
    """``broadcaster init``, then 200 announcements; the first is approved and queued."""
    from broadcaster.app import open_app
    from broadcaster.approval import approve
    from broadcaster.authoring import DraftInput, create_draft, submit
    from broadcaster.dispatch import dispatch_revision
    from broadcaster.scaffold import init_workspace
    from broadcaster.workspace import load_workspace

    init_workspace(folder)
    app = open_app(load_workspace(folder / "broadcaster.toml", {}))
    try:
        for number in range(1, ANNOUNCEMENTS + 1):
            draft = DraftInput(
                title=f"Lägesbild {number}: kommunens servrar",
                body="Kommunens servrar är avstängda. Ring växeln på 0485-880 00.\n\n"
                "Mer information: https://www.borgholm.se/",
                to=("all",),
            )
            created = create_draft(app, AUTHOR, draft)
            if number == 1:
                submit(app, AUTHOR, created.id)
                for person in APPROVERS:
                    approve(app, person, created.id)
                dispatch_revision(app, AUTHOR, created.id)
    finally:
        app.close()


# ---------------------------------------------------------------------------------------------
# Timing


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds from start to exit; a failing command stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def measure(cwd: Path) -> dict[str, float]:
    """Median milliseconds per command key (nan for a program that is not installed)."""
    env = {**os.environ, "BROADCASTER_USER": AUTHOR}
    env.pop("BROADCASTER_CONFIG", None)
    present = [c for c in commands() if c.argv is not None]
    samples: dict[str, list[float]] = {c.key: [] for c in present}
    for command in present:  # warm-up: file cache and bytecode
        assert command.argv is not None
        run_once(command.argv, cwd, env)
    for _ in range(RUNS):
        for command in present:
            assert command.argv is not None
            samples[command.key].append(run_once(command.argv, cwd, env))
    medians = {key: statistics.median(values) * 1000 for key, values in samples.items()}
    return {c.key: medians.get(c.key, math.nan) for c in commands()}


# ---------------------------------------------------------------------------------------------
# Report


def _mark(ratio: float, limit: float, *, below: bool = False) -> str:
    if math.isnan(ratio):
        return "n/a"
    return "✓" if (ratio < limit if below else ratio <= limit) else "✗"


def report(ms: dict[str, float]) -> None:
    """Print the table, the targets and (last) the RESULT line."""
    help_vs_python = ms["help"] / ms["python"]
    help_vs_apprise = ms["help"] / ms["apprise"]
    list_vs_sqlalchemy = ms["list"] / ms["sqlalchemy"]
    status_vs_sqlalchemy = ms["status"] / ms["sqlalchemy"]
    print(f"median of {RUNS} runs each, interleaved; workspace: {ANNOUNCEMENTS} announcements")
    print(f"{'command':<34} {'ms':>6}")
    for command in commands():
        missing = "  not installed: pip install -e '.[bench]'" if command.argv is None else ""
        print(f"{command.label:<34} {ms[command.key]:>6.1f}{missing}")
    ratios = [
        ("--help / python -c pass", help_vs_python, "≤", TARGET_HELP_VS_PYTHON),
        ("--help / apprise --help", help_vs_apprise, "<", TARGET_HELP_VS_APPRISE),
        ("list --json / import sqlalchemy", list_vs_sqlalchemy, "≤", TARGET_READ_VS_SQLALCHEMY),
        ("status --json / import sqlalchemy", status_vs_sqlalchemy, "≤", TARGET_READ_VS_SQLALCHEMY),
    ]
    for label, ratio, sign, limit in ratios:
        mark = _mark(ratio, limit, below=sign == "<")
        print(f"{label:<34} {ratio:5.2f}x   target {sign} {limit:.1f}x {mark}")
    print(
        f"RESULT help_ms={ms['help']:.1f} help_vs_python={help_vs_python:.2f} "
        f"help_vs_apprise={help_vs_apprise:.2f} list_ms={ms['list']:.1f} "
        f"list_vs_sqlalchemy={list_vs_sqlalchemy:.2f} status_ms={ms['status']:.1f} "
        f"status_vs_sqlalchemy={status_vs_sqlalchemy:.2f}"
    )


def main() -> None:
    """Build the workspace, time the commands, report."""
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        workspace = Path(folder) / "ws"
        build_workspace(workspace)
        report(measure(workspace))


if __name__ == "__main__":
    main()
