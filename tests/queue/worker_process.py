"""A worker process for the multi-process queue tests: `python -m tests.queue.worker_process`.

It is the real worker loop on the real database; only the channel is the recorder's (unless
``--real-channels``: the website's own adapter). SIGTERM and SIGINT stop it as they stop
`broadcaster worker`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

from broadcaster.app import open_app
from broadcaster.timeutil import utcnow
from broadcaster.worker_runtime import run_worker
from broadcaster.workspace import load_workspace
from tests.queue.recorder import recorder_registry


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("recorder_url")
    parser.add_argument("--until-idle", action="store_true")
    parser.add_argument("--real-channels", action="store_true")
    parser.add_argument(
        "--clock-ahead", type=float, default=0.0, help="seconds this machine's clock is fast"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    ahead = timedelta(seconds=args.clock_ahead)
    app = open_app(
        load_workspace(args.config, {}),
        clock=(lambda: utcnow() + ahead) if args.clock_ahead else utcnow,
        database_time=True,
    )
    if not args.real_channels:
        app.registry = recorder_registry(args.recorder_url)

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        print("ready", flush=True)
        return await run_worker(app, until_idle=args.until_idle, stop=stop)

    processed = asyncio.run(run())
    app.close()
    print(f"processed {processed}", flush=True)


if __name__ == "__main__":
    main()
