"""A time budget for work that calls user code (``repr``, ``len``, the agent's code).

A tool answer must not hang on an object whose ``__repr__`` sleeps or loops.  On the kernel's
main thread (where such work runs, see :mod:`codex_notebook.notebook.mainthread`) the budget is
enforced: a ``SIGALRM`` interval timer raises :class:`BudgetExceeded` inside whatever Python code
is running when time is up — the same mechanism, and the same caveats, as Ctrl-C raising
``KeyboardInterrupt``.  :class:`BudgetExceeded` derives from ``BaseException`` so that user code's
``except Exception:`` does not swallow it.

Elsewhere — a worker thread, or Windows (no ``SIGALRM``) — and inside an outer timer that
expires first, the budget is cooperative only: callers check :meth:`Deadline.check` between
steps.  An outer interval timer (the user's own ``signal.setitimer``, pytest-timeout, a budget
inside a budget) is put back on exit with its handler and its remaining time, so it still
fires (at once, if it came due meanwhile).  C code that does not return to the interpreter (one
huge numpy call) is only stopped when it returns.

State: a :class:`Deadline` is created, armed and disarmed by one thread (the one running the
work); the process-wide signal handler and timer are restored on exit.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["BudgetExceeded", "Deadline", "time_limit"]


class BudgetExceeded(BaseException):
    """Raised inside code that ran past its time budget."""


class Deadline:
    """When the work must end.  ``seconds=None`` means no limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.enforced = False  # True while the SIGALRM timer guards this deadline
        self._armed = False

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a limit."""
        if self.seconds is None:
            return None
        return max(0.0, self.started + self.seconds - time.monotonic())

    def expired(self) -> bool:
        return self.seconds is not None and time.monotonic() >= self.started + self.seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` if the time is up (the cooperative check)."""
        if self.expired():
            raise BudgetExceeded(f"time budget of {self.seconds:g} s ran out")

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:  # a late alarm after disarming must not fire
            self._armed = False
            raise BudgetExceeded(f"time budget of {self.seconds:g} s ran out")


def _can_enforce() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None) -> Iterator[Deadline]:
    """Run the body under a time budget; yields its :class:`Deadline`.

    On the main thread the body is interrupted by :class:`BudgetExceeded` when the time is up;
    elsewhere the caller must poll :meth:`Deadline.check`.  The caller catches
    :class:`BudgetExceeded` (it is not caught here) and says what was skipped.
    """
    deadline = Deadline(seconds)
    if seconds is None or not _can_enforce():
        yield deadline
        return
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= seconds:
        yield deadline  # the outer timer fires first anyway: leave it alone
        return
    previous: Any = signal.signal(signal.SIGALRM, deadline._on_alarm)
    deadline._armed = True
    deadline.enforced = True
    try:
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
        yield deadline
    finally:
        deadline._armed = False  # first: an alarm arriving now is ignored
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        deadline.enforced = False
        if outer_left:
            left = max(outer_left - deadline.elapsed(), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)
