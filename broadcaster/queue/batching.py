"""Batching for concurrent jobs (owner of nothing): requests made at the same moment share a call.

A worker runs many jobs at once, and each wants small things from the database: read its
delivery, mark it ``sending``, reserve a rate slot. One transaction each would make the database
the bottleneck (on SQLite every write takes the one write lock). A :class:`Batcher` collects the
requests that tasks make while the previous batch is in flight and serves them with one call in
a worker thread, so the batches grow exactly as fast as the load does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Serves ``await batcher(item)`` from many tasks with one ``run(items)`` call per batch.

    ``run`` runs in a thread and returns one result per item, in order. If it raises, every
    request of that batch gets the exception.
    """

    def __init__(self, run: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 500) -> None:
        self.run = run
        self.max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        """The result for ``item``, from the next batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            # Let the other tasks that are starting in this same moment join the batch.
            await asyncio.sleep(0)
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            try:
                results = await asyncio.to_thread(self.run, [item for item, _ in batch])
            except asyncio.CancelledError:
                for _, future in (*batch, *self._waiting):
                    future.cancel()
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its task may have been cancelled meanwhile
                    future.set_result(result)

    async def aclose(self) -> None:
        """Wait for the batch in flight (its results are written to the database)."""
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
