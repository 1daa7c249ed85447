"""Command line entry point: the ``broadcaster`` script and ``python -m broadcaster``."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line; ``broadcaster --help`` is answered from its cached page if current."""
    if sys.argv[1:] in (["--help"], ["-h"]):
        from broadcaster.help_cache import cached_root_help

        page = cached_root_help()
        if page is not None:
            sys.stdout.write(page)
            return
    from broadcaster.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
