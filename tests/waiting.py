"""Waiting in tests for something another thread does: a condition polled with a deadline."""

from __future__ import annotations

import threading
from collections.abc import Callable


def eventually(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Whether ``predicate()`` holds within ``timeout`` seconds (checked every 10 ms);
    use as ``assert eventually(...), "what did not happen"``."""
    tick = threading.Event()
    for _ in range(max(1, int(timeout * 100))):
        if predicate():
            return True
        tick.wait(0.01)
    return bool(predicate())
