"""Dynamic batching: requests that arrive together go to one call of a function.

`Batcher` knows nothing of models or HTTP: it groups `(key, texts)` requests
by key and calls `run(key, texts)` in an executor. The server
(`keras_lstm.app.serving`) gives it the runtime call; tests give it a fake.

A batch closes when it holds `max_batch` texts, when `max_wait` seconds have
passed since its first request, or when every request the caller holds is in
it (`in_flight`), so a lone request never waits.

Example:

>>> import asyncio
>>> from concurrent.futures import ThreadPoolExecutor
>>> async def main():
...     batcher = Batcher(lambda key, texts: [t.upper() for t in texts], max_batch=8,
...                       max_wait=0.01, executor=ThreadPoolExecutor(1))
...     batcher.start()
...     answers = await asyncio.gather(batcher.submit("k", ["a"]), batcher.submit("k", ["b", "c"]))
...     await batcher.stop()
...     return answers, batcher.batches
>>> asyncio.run(main())
([['A'], ['B', 'C']], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor

__all__ = ["Batcher"]


class Batcher:
    """Groups concurrent requests into one call of `run`.

    `await batcher.submit(key, texts)` → the results of `run(key, texts)` for
    these texts. Requests with the same `key` (for the server: the route and
    beam size) share a call; a request of another key is set aside for a
    later batch, in its order, so interleaved keys (mixed beams) still batch.
    Batches run in `executor`, up to `parallel` at once: while one is in the
    runtime (which lets go of the GIL), the next is tokenized; while both run,
    the one after fills up.

    When `run` raises for a batch of several requests, each request is run
    again alone, so the exception reaches only the requests that cause it.

    Args:
        run: `run(key, texts) -> list` (one result per text), thread-safe.
        max_batch: Most texts in one call (a longer request runs alone).
        max_wait: Seconds a batch waits for more requests after its first.
        executor: Where `run` is called (never on the event loop).
        in_flight: A callable → the number of requests the caller holds;
            a batch that holds all of them (but those running) does not wait.
            The caller calls `wake()` when it goes down. Default: the requests
            submitted and not answered yet.
        parallel: Most batches running at once.
        observe: Called as `observe(key, texts, waits)` as each call of `run`
            starts: its number of texts and each request's seconds in the
            queue (the server's batch-size and queue-wait metrics).
    """

    def __init__(self, run: Callable[[Hashable, list], list], max_batch: int, max_wait: float,
                 executor: Executor, in_flight: Callable[[], int] | None = None,
                 parallel: int = 2, observe: Callable[[Hashable, int, list], None] | None = None):
        self.run = run
        self.observe = observe
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.executor = executor
        self.in_flight = in_flight if in_flight is not None else (lambda: self.pending)
        self.parallel = parallel
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.slots: asyncio.Semaphore | None = None
        self.idle: asyncio.Event | None = None
        self.news: asyncio.Event | None = None  # set on each submission and `wake`
        self.waiting: list = []  # requests taken from the queue for a later batch, oldest first
        self.pending = 0  # requests submitted and not answered yet
        self.running = 0  # requests in the batches running now
        self.runs: set[asyncio.Task] = set()  # their tasks
        self.batches = 0  # calls of `run` made (for tests and benches)
        self.stopping = False

    def start(self) -> None:
        """Starts the batching loop on the running event loop."""
        self.queue = asyncio.Queue()
        self.slots = asyncio.Semaphore(self.parallel)
        self.idle = asyncio.Event()
        self.idle.set()
        self.news = asyncio.Event()
        self.stopping = False
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Answers every request submitted so far, then stops the loop.

        A request submitted after `stop` began gets a `RuntimeError`.
        """
        self.stopping = True
        if self.task is None:
            return
        drained = asyncio.ensure_future(self.idle.wait())
        # The loop ends only by cancellation; should it die, waiting on it stops the wait too.
        await asyncio.wait({drained, self.task}, return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await asyncio.gather(*self.runs, return_exceptions=True)
        self.task = None

    async def submit(self, key: Hashable, texts: Sequence) -> list:
        """The results of `run(key, texts)`, from a call shared with other requests.

        Raises:
            RuntimeError: the batcher is not started, or is stopping.
            Exception: what `run` raised for these texts.
        """
        if self.task is None or self.stopping:
            raise RuntimeError("the batcher is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending += 1
        self.idle.clear()
        try:
            self.queue.put_nowait((key, list(texts), future, loop.time()))
            self.news.set()
            return await future
        finally:
            self.pending -= 1
            self.wake()  # with the default `in_flight`, a cancelled request lowers the count
            if not self.pending:
                self.idle.set()

    async def _loop(self):
        loop = asyncio.get_running_loop()
        waiting = self.waiting
        while True:
            await self.slots.acquire()  # while `parallel` batches run, the queue fills up
            first = waiting.pop(0) if waiting else await self.queue.get()
            batch, size = [first], len(first[1])
            for item in list(waiting):  # the set-aside ones of this key go first
                if item[0] == first[0] and size + len(item[1]) <= self.max_batch:
                    waiting.remove(item)
                    batch.append(item)
                    size += len(item[1])
            deadline = loop.time() + self.max_wait
            await asyncio.sleep(0)  # let requests that arrived with it reach the queue
            while size < self.max_batch:
                if self.queue.empty():
                    remaining = deadline - loop.time()
                    held = self.in_flight() - self.running  # requests not in a running batch
                    if remaining <= 0 or held <= len(batch) + len(waiting):
                        break
                    await self._news(remaining)
                    continue
                item = self.queue.get_nowait()
                if item[0] != first[0]:  # another route or beam: a later batch, in order
                    waiting.append(item)
                    continue
                if size + len(item[1]) > self.max_batch:
                    waiting.append(item)
                    break
                batch.append(item)
                size += len(item[1])
            self.running += len(batch)
            task = loop.create_task(self._run_in_slot(first[0], batch))
            self.runs.add(task)
            task.add_done_callback(self.runs.discard)

    def wake(self) -> None:
        """Tells a filling batch that the caller's count (`in_flight`) went down: a request
        it held left without being submitted, so the batch may be all there is."""
        if self.news is not None:
            self.news.set()

    async def _news(self, timeout):
        """Waits until a request is submitted, `wake` is called, or `timeout` seconds pass.
        (Woken by events, not by polling: a filling batch used to poll the queue every
        0.5 ms, and at half load that loop took a whole core of the event loop.)"""
        self.news.clear()
        timer = asyncio.get_running_loop().call_later(timeout, self.news.set)
        try:
            await self.news.wait()
        finally:
            timer.cancel()

    async def _run_in_slot(self, key, batch):
        try:
            await self._run(key, batch)
        finally:
            self.running -= len(batch)
            self.slots.release()

    async def _run(self, key, batch):
        # A request cancelled while it waited (its client left, or its time ran out) is dropped.
        batch = [item for item in batch if not item[2].cancelled()]
        if not batch:
            return
        texts = [text for _, item_texts, _, _ in batch for text in item_texts]
        loop = asyncio.get_running_loop()
        self.batches += 1
        if self.observe is not None:
            now = loop.time()
            self.observe(key, len(texts), [now - item[3] for item in batch])
        try:
            results = await loop.run_in_executor(self.executor, self.run, key, texts)
        except Exception as error:  # noqa: BLE001  one bad request must not fail the others
            if len(batch) == 1:
                _settle(batch[0][2], error=error)
                return
            for item in batch:
                await self._run(key, [item])
            return
        start = 0
        for _, item_texts, future, _ in batch:
            _settle(future, results[start:start + len(item_texts)])
            start += len(item_texts)


def _settle(future, result=None, error=None):
    if future.done():  # its request was cancelled (the client went away)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
