"""``make help-cache``: render ``broadcaster --help`` for :mod:`broadcaster.help_cache`."""

from __future__ import annotations

__all__ = ["render_root_help"]


def render_root_help() -> str:
    """``broadcaster --help`` as Typer prints it on a terminal at least 80 columns wide."""
    import typer.main

    from broadcaster.cli import app
    from broadcaster.help_cache import RENDER_WIDTH

    command = typer.main.get_command(app)
    with command.make_context("broadcaster", ["--help"], resilient_parsing=True) as ctx:
        ctx.terminal_width = RENDER_WIDTH
        return command.get_help(ctx) + "\n"


if __name__ == "__main__":
    from broadcaster.help_cache import CACHE_FILE, write_root_help

    write_root_help(render_root_help())
    print(f"wrote {CACHE_FILE}")
