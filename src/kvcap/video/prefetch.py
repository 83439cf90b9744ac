"""Decoding ahead, in input order: the one prefetch `kvcap caption` and the trainer share.

    ahead = OrderedPrefetch(tasks, decode, workers=2, lookahead=8).start()
    while (item := ahead.get(stop)) is not None:     # in the order of `tasks`
        frames = ahead.result(item)                  # decode(task)'s value, or its exception
    ahead.close()                                    # or: with OrderedPrefetch(...) as ahead

A feeder thread walks `tasks` (so slow work in producing them, such as probing a file, runs off
the caller's thread too), submits `decode(task)` to a thread pool and queues the futures, at
most `lookahead` ahead of the consumer. Decoders (PyAV, decord) release the GIL, so the threads
overlap decoding with the model's work on the caller's thread. `workers=0` decodes inline, on
demand, in `result`. `closing` (or `close`) cancels what has not started.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")

DECODE_NICENESS = 5  # decode threads' priority below the model thread's (see yield_to_the_model)


def yield_to_the_model() -> None:
    """Lower this decode thread's CPU priority (Linux: per thread; elsewhere a no-op).

    Decoding ahead is work done before it is needed; the model step is the critical path. On a
    box with few cores the scheduler should run the model first and give decoders what is left
    (when the model waits for frames, its thread sleeps and the decoders get the CPU anyway).
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODE_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


@dataclass
class Ahead(Generic[T]):
    """One task on its way: `future` is None when the task needs no decoding (or workers=0)."""

    task: T
    future: Future | None
    inline: bool = False  # workers=0: decoded in `result`

    def cancel(self) -> None:
        if self.future is not None:
            self.future.cancel()


class OrderedPrefetch(Generic[T]):
    """`decode(task)` for each task, run ahead in threads, handed out in task order."""

    def __init__(self, tasks: Iterable[T], decode: Callable[[T], Any], *, workers: int, lookahead: int,
                 wanted: Callable[[T], bool] | None = None, name: str = "kvcap-decode", nice: bool = False):
        self.tasks, self.decode, self.wanted, self.name = tasks, decode, wanted, name
        self.closed = threading.Event()
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, lookahead))
        self.pool = (ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name,
                                        initializer=yield_to_the_model if nice else None) if workers > 0 else None)
        self.thread: threading.Thread | None = None

    def _ahead(self, task: T) -> Ahead[T]:
        if self.wanted is not None and not self.wanted(task):
            return Ahead(task, None)
        if self.pool is None:
            return Ahead(task, None, inline=True)
        return Ahead(task, self.pool.submit(self.decode, task))

    def _put(self, item: Ahead[T] | None) -> bool:
        while not self.closed.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        if item is not None:  # None: the end-of-stream mark
            item.cancel()
        return False

    def _produce(self) -> None:
        try:
            for task in self.tasks:
                if self.closed.is_set() or not self._put(self._ahead(task)):
                    return
        finally:
            self._put(None)  # end of stream

    def start(self) -> "OrderedPrefetch[T]":
        self.thread = threading.Thread(target=self._produce, name=f"{self.name}-feed", daemon=True)
        self.thread.start()
        return self

    def get(self, stop: threading.Event | None = None) -> Ahead[T] | None:
        """The next task in order (None at the end, or when `stop` is set)."""
        while True:
            if stop is not None and stop.is_set():
                return None
            try:
                return self.queue.get(timeout=0.1)
            except queue.Empty:
                continue

    def result(self, item: Ahead[T]) -> Any:
        """`decode(item.task)`'s value; raises the decoder's error."""
        if item.inline:
            return self.decode(item.task)
        assert item.future is not None, "a task that was not wanted has no result"
        return item.future.result()

    def __iter__(self) -> Iterator[Ahead[T]]:
        while (item := self.get()) is not None:
            yield item

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(queue.Empty):  # unblock the feeder, drop decoded frames
            while True:
                item = self.queue.get_nowait()
                if item is not None:
                    item.cancel()
        if self.thread is not None:
            self.thread.join(timeout=5)
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "OrderedPrefetch[T]":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def decode_in_order(tasks: Iterable[T], decode: Callable[[T], Any], workers: int, lookahead: int = 8,
                    name: str = "kvcap-decode") -> Iterator[tuple[T, Any, BaseException | None]]:
    """Yield (task, result, error) in input order while up to `lookahead` decodes run ahead."""
    with OrderedPrefetch(tasks, decode, workers=workers, lookahead=max(lookahead, workers), name=name) as ahead:
        for item in ahead:
            try:
                yield item.task, ahead.result(item), None
            except Exception as exc:  # noqa: BLE001 - one bad clip never stops the run
                yield item.task, None, exc
