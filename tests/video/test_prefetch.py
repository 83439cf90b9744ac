"""The shared ordered prefetch (kvcap.video.prefetch): what `kvcap caption` and the trainer rely on."""

from __future__ import annotations

import threading
import time

import pytest

from kvcap.video.prefetch import OrderedPrefetch, decode_in_order


def _slow_square(n: int) -> int:
    time.sleep(0.02 * (5 - n % 5))  # later tasks finish first
    if n == 3:
        raise ValueError("bad clip 3")
    return n * n


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_results_come_in_task_order_with_each_error_on_its_task(workers):
    out = list(decode_in_order(range(8), _slow_square, workers, lookahead=4))
    assert [task for task, _, _ in out] == list(range(8))
    assert [value for task, value, _ in out if task != 3] == [n * n for n in range(8) if n != 3]
    (bad,) = [(value, error) for task, value, error in out if task == 3]
    assert bad[0] is None and str(bad[1]) == "bad clip 3"


def test_workers_zero_decodes_on_the_callers_thread_and_threads_elsewhere():
    def where(_: int) -> str:
        return threading.current_thread().name

    assert {name for _, name, _ in decode_in_order(range(3), where, 0)} == {threading.current_thread().name}
    names = {name for _, name, _ in decode_in_order(range(6), where, 2, name="kvcap-test-decode")}
    assert names and all(name.startswith("kvcap-test-decode") for name in names)


def test_unwanted_tasks_pass_through_undecoded_and_lookahead_bounds_the_work_started():
    started: list[int] = []

    def record(n: int) -> int:
        started.append(n)
        return n

    ahead = OrderedPrefetch(range(100), record, workers=2, lookahead=3, wanted=lambda n: n % 2 == 0).start()
    try:
        first = ahead.get()
        assert first is not None and first.task == 0 and ahead.result(first) == 0
        time.sleep(0.3)  # the feeder fills the queue and then waits for the consumer
        assert len(started) <= 6, started  # a few ahead, never the whole list
        second = ahead.get()
        assert second is not None and second.task == 1 and second.future is None  # not wanted: no decode
    finally:
        ahead.close()
    assert ahead.thread is not None and not ahead.thread.is_alive()


def test_stop_event_ends_get_and_close_returns_promptly():
    stop = threading.Event()
    ahead = OrderedPrefetch(iter(lambda: time.sleep(0.05) or 1, None), lambda n: n, workers=1, lookahead=2).start()
    stop.set()
    assert ahead.get(stop) is None
    t0 = time.perf_counter()
    ahead.close()
    assert time.perf_counter() - t0 < 2 and not ahead.thread.is_alive()
