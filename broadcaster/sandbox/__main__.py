"""``python -m broadcaster.sandbox [--port N] [--env-file PATH] [--specs-dir DIR]``.

The same as ``broadcaster sandbox``, without the rest of the command line; handy in scripts and
tests. ``--specs-dir`` defaults to ``BROADCASTER_SPECS_DIR``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from broadcaster.errors import BroadcastError

from .server import DEFAULT_PORT, serve


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run :func:`~.server.serve`; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m broadcaster.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="loopback port (0: any)")
    parser.add_argument("--env-file", type=Path, help="also write the .env to this file")
    specs = os.environ.get("BROADCASTER_SPECS_DIR")
    parser.add_argument(
        "--specs-dir", type=Path, default=Path(specs) if specs else None, help="platform specs"
    )
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.env_file, args.specs_dir)
    except (BroadcastError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
