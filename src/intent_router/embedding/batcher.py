"""Micro-batching: concurrent callers share one encoder call, off the event loop.

One worker task takes every item waiting in the queue (up to ``max_batch``), runs the
batch function in a single worker thread, and hands each caller its own result. While a
batch runs, new requests queue up and form the next batch, so throughput rises with load
without a fixed wait. ``max_wait_s`` optionally holds a batch open a little longer to
gather more items; the default (0) never delays a lone request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    largest: int = 0


class MicroBatcher(Generic[In, Out]):
    """Gathers concurrent ``submit`` calls into batches for ``fn`` (list in, list out)."""

    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.0,
    ) -> None:
        self._fn = fn
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")
        self._worker: asyncio.Task[None] | None = None
        self.stats = BatchStats()

    async def __aenter__(self) -> MicroBatcher[In, Out]:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("batcher closed"))
        self._executor.shutdown(wait=True)

    async def submit(self, item: In) -> Out:
        if self._worker is None:
            raise RuntimeError("MicroBatcher.submit() before start()")
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def submit_many(self, items: Sequence[In]) -> list[Out]:
        """Several items queued together, so they share one batch (up to ``max_batch``)."""
        if self._worker is None:
            raise RuntimeError("MicroBatcher.submit_many() before start()")
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Out]] = []
        for item in items:
            futures.append(loop.create_future())
            self._queue.put_nowait((item, futures[-1]))
        return list(await asyncio.gather(*futures))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            if self._max_wait_s > 0:
                deadline = loop.time() + self._max_wait_s
                while len(batch) < self._max_batch:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not live:
                continue
            self.stats.batches += 1
            self.stats.items += len(live)
            self.stats.largest = max(self.stats.largest, len(live))
            try:
                results = await loop.run_in_executor(
                    self._executor, self._fn, [item for item, _ in live]
                )
            except Exception as exc:  # one bad batch fails its callers, not the worker
                log.exception("batch of %d failed", len(live))
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
