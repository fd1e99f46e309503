"""Dynamic batching for `serve`: concurrent requests share one model call.

Each input waits in a bounded queue; one worker takes what is queued (up to `max_batch_size`,
waiting at most `max_wait_ms` for more), runs the model once in its own thread and hands every
caller its own answer. A full queue refuses at once (`Overloaded`), so memory and latency stay
bounded under any load.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import Any


class Overloaded(Exception):
    """The queue is full: the caller should answer 503 and try again later."""


class Batcher:
    def __init__(
        self,
        predict: Callable[[list[Any]], list[dict[str, Any]]],
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
    ) -> None:
        self._predict = predict
        self._max_batch_size = max_batch_size
        self._max_wait = max_wait_ms / 1000
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future]] = asyncio.Queue(max_queue)
        # One thread: the model is never called from two threads at once.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        self._worker: asyncio.Task | None = None
        self.calls = 0  # model calls made: tests and the load benchmark read it

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while not self._queue.empty():  # callers still waiting learn that the server stopped
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(Overloaded())
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """The predictions of `inputs`, in order; raises `Overloaded` when they do not all fit."""
        if self._worker is None or self._worker.done():
            raise RuntimeError("the batcher is not running")
        if self._queue.maxsize - self._queue.qsize() < len(inputs):
            raise Overloaded
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in inputs]
        for item, future in zip(inputs, futures, strict=True):
            self._queue.put_nowait((item, future))
        return list(await asyncio.gather(*futures))

    async def _next_batch(self) -> list[tuple[Any, asyncio.Future]]:
        batch = [await self._queue.get()]
        deadline = asyncio.get_running_loop().time() + self._max_wait
        while len(batch) < self._max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # A caller that went away (its future cancelled) is not predicted for.
            batch = [entry for entry in await self._next_batch() if not entry[1].done()]
            if not batch:
                continue
            try:
                inputs = [item for item, _ in batch]
                results = await loop.run_in_executor(self._executor, self._predict, inputs)
                self.calls += 1
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            except Exception as error:  # every caller of the batch learns what went wrong
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
