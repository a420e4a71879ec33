"""Bounded daemon worker pools and a one-thread timer, for answering server requests.

Why not ``concurrent.futures.ThreadPoolExecutor``: its workers are joined at
interpreter exit, so one handler stuck on a person or a busy kernel would hang
the kernel's shutdown.  These workers are daemon threads, started on demand up
to a bound and ended after a while idle, so an idle client holds no threads.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Timer", "Timers", "WorkerPool", "wait_limit"]

log = logging.getLogger("codex_notebook")

#: How long an idle worker waits for more work before it ends.
IDLE_EXIT_S = 30.0


def wait_limit(timeout: float | None) -> float | None:
    """A caller's timeout as a thread wait takes it: beyond ``threading.TIMEOUT_MAX``
    (``float("inf")`` included) means no limit, where the wait itself would raise
    OverflowError."""
    return None if timeout is None or timeout >= threading.TIMEOUT_MAX else timeout


class WorkerPool:
    """Runs callables on at most ``max_workers`` daemon threads; extra work queues (FIFO).

    State (``_queue``, ``_idle``, ``_threads``, ``_closed``) is guarded by ``_cond``.
    A callable that raises is logged; the worker carries on.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = name
        self._cond = threading.Condition()
        self._queue: deque[Callable[[], None]] = deque()
        self._idle = 0
        self._running = 0
        self._threads = 0
        self._closed = False
        self._ids = itertools.count(1)

    @property
    def threads(self) -> int:
        """Workers alive now (for tests and diagnostics)."""
        with self._cond:
            return self._threads

    def submit(self, fn: Callable[[], None]) -> bool:
        """Queue ``fn``; False (not run) once the pool is closed. Never blocks."""
        with self._cond:
            if self._closed:
                return False
            self._queue.append(fn)
            if self._idle > len(self._queue) - 1:
                self._cond.notify()
                return True
            if self._threads < self.max_workers:
                self._threads += 1
                start = True
            else:
                start = False
        if start:
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-{next(self._ids)}", daemon=True
            )
            thread.start()
        return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (tests, diagnostics); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._running:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self) -> None:
        """Drop queued work and let the workers end once their current call returns."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._idle += 1
                    woke = self._cond.wait(IDLE_EXIT_S)
                    self._idle -= 1
                    if not woke and not self._queue:
                        self._threads -= 1
                        return
                if self._closed:
                    self._threads -= 1
                    return
                fn = self._queue.popleft()
                self._running += 1
            try:
                fn()
            except BaseException:  # even SystemExit: a worker that died would still be counted
                log.exception("codex_notebook: a %s task raised", self.name)
            finally:
                del fn  # do not keep the last task's objects alive while idle
                with self._cond:
                    self._running -= 1
                    if not self._running and not self._queue:
                        self._cond.notify_all()  # wait_idle()


class Timer:
    """A pending :meth:`Timers.call_later` call; :meth:`cancel` is idempotent."""

    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn: Callable[[], None] | None = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.fn = None  # release what the callback holds at once


class Timers:
    """Runs callbacks after a delay on one daemon thread (started on first use).

    The heap and ``_closed`` are guarded by ``_cond``.  Callbacks run on the
    timer thread and must be quick (they send an answer, nothing more).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + max(0.0, delay), fn)
        with self._cond:
            if self._closed:
                timer.cancel()
                return timer
            heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        return timer

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for _, _, timer in self._heap:
                timer.cancel()
            self._heap.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        if not self._cond.wait(IDLE_EXIT_S) and not self._heap:
                            self._thread = None  # the next call_later starts a new one
                            return
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        timer = heapq.heappop(self._heap)[2]
                        break
                    # bounded: a wait beyond threading.TIMEOUT_MAX (an endless tool timeout)
                    # raises OverflowError, which would end this thread and every timeout
                    self._cond.wait(min(wait, IDLE_EXIT_S))
            fn = timer.fn
            timer.cancel()
            if fn is not None:
                try:
                    fn()
                except Exception:
                    log.exception("codex_notebook: a timer callback raised")
