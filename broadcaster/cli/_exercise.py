"""The exercise banner: in an exercise, every command's output says so first."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broadcaster.workspace import Workspace

__all__ = ["announce_exercise", "exercise_banner"]


def exercise_banner(workspace: Workspace) -> str | None:
    """The banner for this workspace, or None when it is not an exercise."""
    from broadcaster.exercise import SANDBOX_VAR

    if not workspace.config.broadcaster.exercise:
        return None
    sandbox = workspace.env.get(SANDBOX_VAR)
    where = (
        f"every platform is the sandbox at {sandbox}"
        if sandbox
        else "posts go to the configured platforms, marked as an exercise"
    )
    return f"ÖVNING (exercise mode): {where}."


def announce_exercise(workspace: Workspace, *, json_output: bool) -> None:
    """Print the banner, if any: on stderr when stdout carries one JSON document."""
    text = exercise_banner(workspace)
    if text is None:
        return
    from rich.markup import escape

    from broadcaster.cli._common import stderr, stdout

    console = stderr() if json_output else stdout()
    console.print(f"[bold black on yellow] {escape(text)} [/]")
