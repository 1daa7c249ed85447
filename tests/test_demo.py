"""`broadcaster demo`: the tour a newcomer runs first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import feedparser

from tests.conftest import Cli


def test_demo_sends_the_seed_update_and_leaves_the_pages(tmp_path: Path) -> None:
    result = Cli(cwd=tmp_path, env={})("demo", "--dir", "tour", "--wide")
    assert result.exit_code == 0, result.stderr
    root = (tmp_path / "tour").resolve()
    for org in ("borgholm", "morbylanga"):
        page = root / "site" / org / "index.html"
        assert str(page) in result.stdout.replace("\n", "")
        assert "Dataintrång hos Borgholms och Mörbylånga kommuner" in page.read_text(
            encoding="utf-8"
        )
        feed = feedparser.parse((root / "site" / org / "feed.atom").read_bytes())
        assert not feed.bozo and len(feed.entries) == 1
    assert "anna.hasselbom approved" in result.stdout and "jens.odevall approved" in result.stdout
    status = Cli(cwd=root, env={})("status", "1", "--json").json()
    assert status["state"] == "sent"
    assert {d["state"] for d in status["deliveries"]} == {"sent"}
    static_sites = {"web-borgholm", "web-morbylanga"}
    assert static_sites | {"cms-morbylanga"} <= {d["target"] for d in status["deliveries"]}
    # Every channel that needs an account (the CMS too) went to the sandbox, once, and the
    # table says so.
    for delivery in status["deliveries"]:
        if delivery["target"] not in static_sites:
            row = next(
                line for line in result.stdout.splitlines() if line.startswith(delivery["target"])
            )
            if delivery["channel"] == "sms":  # one text per number of the list
                sent = status["lists"][delivery["target"]]["sent"]
                assert sent > 0 and f"{sent} SMS accepted" in row, row
            else:
                assert "1 post(s) accepted" in row, row
    assert oct((root / ".env").stat().st_mode & 0o777) == "0o600"


def test_demo_without_dir_keeps_a_new_temporary_folder(tmp_path: Path) -> None:
    # A subprocess, because the tempfile module caches the temporary folder per process.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "broadcaster", "demo"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (folder,) = [p for p in tmp_path.iterdir() if p.name.startswith("broadcaster-demo-")]
    assert (folder / "site" / "borgholm" / "index.html").is_file()


def test_the_try_line_works_pasted_into_a_fresh_shell(tmp_path: Path) -> None:
    """After `make demo` the virtual environment is not activated: the line must still work."""
    bin_dir = Path(sys.executable).parent
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != bin_dir
    )
    env = {"PATH": path, "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    folder = tmp_path / "demo with space"
    demo = subprocess.run(
        [str(bin_dir / "broadcaster"), "demo", "--dir", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    [line] = [line for line in demo.stdout.splitlines() if line.startswith("Try: ")]
    pasted = subprocess.run(
        ["bash", "-e", "-c", line.removeprefix("Try: ")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "sent" in pasted.stdout and "approved" in pasted.stdout  # status, then audit
