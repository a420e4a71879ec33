"""The main-thread queue off a kernel: FIFO, busy/cancel semantics, blocking waits, interrupts.

The same queue in a real ipykernel (idle callbacks, comm clicks, kernel interrupts) is tested in
tests/kernel/test_mainthread_kernel.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from codex_notebook.errors import CodexError
from codex_notebook.notebook.mainthread import (
    MAX_PENDING,
    JobCancelledError,
    JobInterruptedError,
    KernelBusyError,
    MainThreadQueue,
    MainThreadTimeoutError,
)


@pytest.fixture
def queue() -> Iterator[MainThreadQueue]:
    q = MainThreadQueue()
    yield q
    q.close()


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` on a worker; the dict gets ``value`` or ``error`` when it ends."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def wait_until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_call_on_the_main_thread_runs_inline(queue: MainThreadQueue) -> None:
    assert queue.call(lambda: threading.current_thread() is threading.main_thread()) is True


def test_a_worker_call_runs_on_the_main_thread_during_a_blocking_wait(
    queue: MainThreadQueue,
) -> None:
    thread, box = in_thread(lambda: queue.call(lambda: threading.current_thread().name, timeout=10))
    assert queue.blocking_wait(lambda: "value" in box or "error" in box, timeout=10)
    thread.join(5)
    assert box == {"value": "MainThread"}


def test_jobs_run_one_at_a_time_in_order(queue: MainThreadQueue) -> None:
    order: list[int] = []
    futures = [queue.submit(lambda i=i: order.append(i)) for i in range(20)]
    assert queue.run_pending() == 20
    assert order == list(range(20))
    assert all(f.done() for f in futures)


def test_a_busy_main_thread_cancels_the_job_after_the_timeout(queue: MainThreadQueue) -> None:
    ran: list[int] = []
    thread, box = in_thread(lambda: queue.call(lambda: ran.append(1), timeout=0.2))
    thread.join(10)
    assert isinstance(box.get("error"), KernelBusyError)
    assert "busy" in str(box["error"])
    assert queue.run_pending() == 0  # it never runs late
    assert ran == [] and queue.pending() == 0


def test_kernel_busy_is_a_codex_timeout_error() -> None:
    assert issubclass(KernelBusyError, CodexError) and issubclass(KernelBusyError, TimeoutError)


def test_a_started_job_is_waited_for_past_the_start_timeout(queue: MainThreadQueue) -> None:
    started = threading.Event()

    def slow() -> str:
        started.set()
        time.sleep(0.4)
        return "done"

    thread, box = in_thread(lambda: queue.call(slow, timeout=0.2))
    wait_until(lambda: queue.pending() == 1)
    queue.run_pending()
    thread.join(10)
    assert box == {"value": "done"}


def test_run_timeout_expires_while_the_job_runs(queue: MainThreadQueue) -> None:
    running = threading.Event()
    release = threading.Event()

    def job() -> None:
        running.set()
        release.wait(10)

    thread, box = in_thread(lambda: queue.call(job, timeout=0.1, run_timeout=0.2))
    wait_until(lambda: queue.pending() == 1)
    waiter, _ = in_thread(lambda: (running.wait(5), thread.join(5), release.set()))
    queue.run_pending()
    thread.join(10)
    waiter.join(10)
    assert isinstance(box.get("error"), MainThreadTimeoutError)


def test_a_job_exception_reaches_the_caller(queue: MainThreadQueue) -> None:
    def boom() -> None:
        raise ValueError("in job")

    thread, box = in_thread(lambda: queue.call(boom, timeout=10))
    wait_until(lambda: queue.pending() == 1)
    queue.run_pending()
    thread.join(5)
    assert isinstance(box["error"], ValueError)


def test_a_keyboard_interrupt_in_a_job_stops_the_main_thread_and_informs_the_caller(
    queue: MainThreadQueue,
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    thread, box = in_thread(lambda: queue.call(interrupted, timeout=10))
    wait_until(lambda: queue.pending() == 1)
    with pytest.raises(KeyboardInterrupt):
        queue.run_pending()
    thread.join(5)
    assert isinstance(box["error"], JobInterruptedError)


def test_the_loop_callback_never_lets_a_keyboard_interrupt_escape() -> None:
    callbacks: list[Callable[[], None]] = []
    queue = MainThreadQueue(callbacks.append)

    def interrupted() -> None:
        raise KeyboardInterrupt

    try:
        thread, box = in_thread(lambda: queue.call(interrupted, timeout=10))
        wait_until(lambda: bool(callbacks))
        callbacks.pop()()  # what the kernel's io_loop does; must not raise
        thread.join(5)
        assert isinstance(box["error"], JobInterruptedError)
    finally:
        queue.close()


def test_a_scheduler_runs_jobs_without_any_wait() -> None:
    callbacks: list[Callable[[], None]] = []
    queue = MainThreadQueue(callbacks.append)
    try:
        thread, box = in_thread(lambda: queue.call(lambda: 7, timeout=10))
        wait_until(lambda: bool(callbacks))
        callbacks.pop()()
        thread.join(5)
        assert box == {"value": 7}
    finally:
        queue.close()


def test_a_cancelled_future_never_runs(queue: MainThreadQueue) -> None:
    ran: list[int] = []
    future: Future[None] = queue.submit(lambda: ran.append(1))
    assert future.cancel()
    assert queue.run_pending() == 0 and ran == []


def test_closing_the_queue_cancels_waiting_calls() -> None:
    queue = MainThreadQueue()
    thread, box = in_thread(lambda: queue.call(lambda: 1, timeout=10))
    wait_until(lambda: queue.pending() == 1)
    queue.close()
    thread.join(5)
    assert isinstance(box["error"], JobCancelledError)
    with pytest.raises(JobCancelledError):
        queue.submit(lambda: 1)


def test_too_many_waiting_jobs_are_refused_at_once(queue: MainThreadQueue) -> None:
    for _ in range(MAX_PENDING):
        queue.submit(lambda: None)
    with pytest.raises(KernelBusyError, match="already waiting"):
        queue.submit(lambda: None)
    assert queue.run_pending() == MAX_PENDING


def test_a_blocking_wait_returns_false_at_its_timeout(queue: MainThreadQueue) -> None:
    started = time.monotonic()
    assert queue.blocking_wait(threading.Event(), timeout=0.2) is False
    assert time.monotonic() - started < 2


def test_a_blocking_wait_returns_when_its_event_is_set_and_woken(queue: MainThreadQueue) -> None:
    event = threading.Event()

    def later() -> None:
        time.sleep(0.1)
        event.set()
        queue.wake()

    thread, _ = in_thread(later)
    assert queue.blocking_wait(event, timeout=10) is True
    thread.join(5)


def test_a_keyboard_interrupt_propagates_out_of_a_blocking_wait(queue: MainThreadQueue) -> None:
    def interrupt() -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        queue.blocking_wait(interrupt, timeout=10)


def test_off_the_main_thread_a_blocking_wait_only_waits(queue: MainThreadQueue) -> None:
    queue.submit(lambda: None)
    event = threading.Event()
    thread, box = in_thread(lambda: queue.blocking_wait(event, timeout=0.1))
    thread.join(5)
    assert box == {"value": False}
    assert queue.pending() == 1  # nothing was run off the main thread
    queue.run_pending()


def test_a_job_may_call_the_queue_again_without_deadlock(queue: MainThreadQueue) -> None:
    thread, box = in_thread(
        lambda: queue.call(lambda: queue.call(lambda: "nested", timeout=1), timeout=10)
    )
    assert queue.blocking_wait(lambda: bool(box), timeout=10)
    thread.join(5)
    assert box == {"value": "nested"}


def test_the_process_queue_is_made_again_after_it_was_closed() -> None:
    from codex_notebook.notebook.mainthread import main_queue

    first = main_queue()
    assert main_queue() is first
    first.close()
    second = main_queue()
    assert second is not first and not second.closed
    assert second.call(lambda: 5) == 5
