"""Per-turn event logs read through cursors, and the bounded global channel.

The reader thread is the only writer of a :class:`TurnLog` (plus
:meth:`TurnLog.fail` on transport death); any number of consumers read it, each
through its own :class:`TurnCursor`, sync or async.  The waiting protocol —
block on a condition, or await a loop future woken with
``call_soon_threadsafe`` — is written once, in :class:`Waitable`.

A log keeps each notification as the raw line it arrived as (``bytes``), and
each consumer parses what it takes, on its own thread.  Bytes are invisible to
Python's cyclic garbage collector, while a parsed event (a dict tree plus its
wrapper) is tracked: holding 200,000 parsed events made full collections take
half of a fast stream's time (bench/RESULTS.md).  Server requests stay objects:
every consumer must see the same one, since it is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Union

import orjson

from . import protocol
from .errors import CodexTimeoutError, TransportClosedError
from .messages import Notification

if TYPE_CHECKING:
    from .messages import ServerRequest

__all__ = ["Channel", "TurnCursor", "TurnLog", "Waitable"]

log = logging.getLogger("codex_notebook")

Waker = Callable[[], None]
RequestHandler = Callable[["ServerRequest"], Any]
#: What a log holds per event: the raw line of a notification, or a server request.
LogItem = Union[bytes, "ServerRequest"]

_loads = orjson.loads
_route_ids = protocol.route_ids


def materialize(item: LogItem, turn_id: str | None = None) -> Notification:
    """A log item as the consumer sees it: a fresh Notification, or the shared ServerRequest.

    ``turn_id``: the log's (routing put the event there because it is its turn id).
    """
    if type(item) is not bytes:
        return item  # type: ignore[return-value]  # a ServerRequest
    message = _loads(item)
    method = message["method"]
    params = message.get("params")
    thread_id = params.get("threadId") if type(params) is dict else None
    if turn_id is None or type(thread_id) is not str:  # not the common shape: ask the table
        turn_id, thread_id = _route_ids(method, params)
    return Notification(method, message, turn_id, thread_id)


class Waitable:
    """A lock, a condition on it, and one-shot wakers for asyncio waiters.

    Sync waiters block on the condition; async waiters register a waker that
    resolves a future on their own loop, so no thread is parked per async
    waiter.  :meth:`_wake` (lock held) wakes both kinds, and survives wakers
    that fail (a closed loop): the others are still woken.
    """

    __slots__ = ("_cond", "_lock", "_sleepers", "_wakers")

    def __init__(self) -> None:
        self._lock = threading.Lock()  # entered directly on hot paths (cheaper than the Condition)
        self._cond = threading.Condition(self._lock)
        self._wakers: list[Waker] = []
        self._sleepers = 0  # threads blocked in wait_until(); notify only when there are some

    def wait_until(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``ready()`` (checked under the lock) holds; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not ready():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._sleepers += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._sleepers -= 1
        return True

    async def wait_until_async(self, ready: Callable[[], bool]) -> None:
        """Await until ``ready()`` (checked under the lock) holds, woken by :meth:`_wake`.

        Deadlines come from the caller (``asyncio.timeout`` / ``wait_for``);
        a cancelled waiter removes its waker.
        """
        await self._wait_async(ready, self._wakers)

    async def _wait_async(self, ready: Callable[[], bool], wakers: list[Waker]) -> None:
        """The one async wait: register a loop-safe waker in ``wakers`` unless ready."""
        loop = asyncio.get_running_loop()
        while True:
            future: asyncio.Future[None] = loop.create_future()

            def waker(fut: asyncio.Future[None] = future) -> None:
                loop.call_soon_threadsafe(_resolve, fut)

            with self._lock:
                if ready():
                    return
                wakers.append(waker)
            try:
                await future
            except asyncio.CancelledError:
                with self._lock, contextlib.suppress(ValueError):
                    wakers.remove(waker)
                raise

    def _wake(self) -> None:
        """Call with the lock held. Never raises."""
        if self._sleepers:
            self._cond.notify_all()
        if self._wakers:
            _call_all(self._wakers)

    def remove_waker(self, waker: Waker) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._wakers.remove(waker)


def _call_all(wakers: list[Waker]) -> None:
    """Call and clear one-shot wakers (lock held); one failing waker does not stop the rest."""
    pending = list(wakers)
    wakers.clear()
    for waker in pending:
        try:
            waker()
        except Exception:  # e.g. RuntimeError: the waiter's event loop is closed
            log.debug("codex_notebook: could not wake an async waiter", exc_info=True)


def _resolve(future: asyncio.Future[None]) -> None:
    """Loop thread: wake an async waiter unless it was cancelled meanwhile."""
    if not future.done():
        future.set_result(None)


class TurnLog(Waitable):
    """Every event of one turn, in arrival order, readable by many cursors.

    Written by the reader thread only (:meth:`extend`), plus :meth:`fail` from
    whoever reports transport death; ``items`` only grows, and ``completed`` /
    ``error`` are set after the items they follow, under the lock.
    ``claimed``, ``handler`` and the router bookkeeping are guarded by the
    router's lock.
    """

    __slots__ = (
        "__weakref__",
        "_end_wakers",
        "claimed",
        "completed",
        "completed_at",
        "created_at",
        "done",
        "dropped",
        "error",
        "handler",
        "items",
        "pending_requests",
        "thread_id",
        "turn_id",
    )

    def __init__(self, turn_id: str, thread_id: str | None) -> None:
        super().__init__()
        self.turn_id = turn_id
        self.thread_id = thread_id
        self.items: list[LogItem] = []
        self.completed = False
        self.error: TransportClosedError | None = None
        self.claimed = False
        self.created_at = time.monotonic()
        self.completed_at: float | None = None
        self.dropped = 0
        self.handler: RequestHandler | None = None
        self.pending_requests: list[ServerRequest] = []
        # set once finished: lets a reader sleep until the end without waking per event
        self.done = threading.Event()
        self._end_wakers: list[Waker] = []  # async waiters for the end only

    @property
    def finished(self) -> bool:
        return self.completed or self.error is not None

    def __len__(self) -> int:
        return len(self.items)

    def notifications(self, start: int = 0) -> list[Notification]:
        """The events from ``start`` on, parsed (each call makes fresh Notification objects)."""
        turn_id = self.turn_id
        return [materialize(item, turn_id) for item in self.items[start:]]

    def extend(self, items: list[LogItem], *, end: LogItem | None, cap: int | None) -> None:
        """Reader thread: append one read's items for this turn and wake its consumers.

        ``end``: the batch's ``turn/completed`` line, if it holds one.  With
        ``cap`` (an unclaimed log), items beyond it are dropped, but never the
        end: a consumer must never wait forever.
        """
        completes = end is not None
        with self._lock:
            if cap is not None and len(self.items) + len(items) > cap:
                room = max(0, cap - len(self.items))
                kept = items[:room]
                lost = len(items) - room
                if end is not None and not any(item is end for item in kept):
                    kept.append(end)
                    lost -= 1
                self.dropped += lost
                items = kept
            self.items += items
            if completes:
                self.completed = True
                self.completed_at = time.monotonic()
                self.done.set()
                _call_all(self._end_wakers)
            if self._sleepers or self._wakers:
                self._wake()
        if completes:
            self.settle_requests("turn ended")

    async def wait_done_async(self) -> None:
        """Await the end of the turn, woken once (not per event)."""
        await self._wait_async(lambda: self.finished, self._end_wakers)

    def add_request(self, request: ServerRequest) -> bool:
        """Track a pending server request of this turn; False if the turn is already over."""
        with self._lock:
            if not self.finished:
                self.pending_requests.append(request)
                return True
        return False

    def fail(self, error: TransportClosedError) -> None:
        """The transport is gone: finish the log with ``error`` (no-op if already finished)."""
        with self._lock:
            if self.finished:
                return
            self.error = error
            self.done.set()
            _call_all(self._end_wakers)
            self._wake()
        self.settle_requests("transport closed")

    def settle_requests(self, reason: Any) -> None:
        with self._lock:
            requests, self.pending_requests = self.pending_requests, []
        for request in requests:
            request.settle(reason)

    def cursor(self) -> TurnCursor:
        return TurnCursor(self)


class TurnCursor:
    """One consumer's position in a turn's event log: every event once, in order.

    ``take()`` never blocks; ``next_batch()`` blocks (with a timeout);
    ``anext_batch()`` awaits.  All three end with None after the turn's last
    event, or raise the transport error after the last event received.
    Iterating (``for event in cursor``, ``events()``, ``aevents()``) parses one
    event at a time, so a fast stream keeps few live objects.  A cursor belongs
    to one consumer (not thread-safe); make one per consumer.
    """

    __slots__ = ("log", "position")

    def __init__(self, turn_log: TurnLog) -> None:
        self.log = turn_log
        self.position = 0

    def _take_items(self) -> list[LogItem] | None:
        """The raw items available now ([] if none yet, None at the end)."""
        turn_log = self.log
        # The end flags first: they are set after the items they follow, so once seen,
        # every item is already in the list (reading the length first could miss the last).
        error, completed = turn_log.error, turn_log.completed
        items = turn_log.items
        end = len(items)
        if self.position < end:
            batch = items[self.position : end]
            self.position = end
            return batch
        if error is not None:
            raise error
        if completed:
            return None
        return []

    def take(self) -> list[Notification] | None:
        """Everything available now, without waiting: [] if nothing yet, None once the
        turn is over and drained; raises the transport error after the last event."""
        items = self._take_items()
        turn_id = self.log.turn_id
        return None if items is None else [materialize(item, turn_id) for item in items]

    def _ready(self) -> bool:
        return len(self.log.items) > self.position or self.log.finished

    def _next_items(self, timeout: float | None) -> list[LogItem] | None:
        if not self.log.wait_until(self._ready, timeout):
            raise CodexTimeoutError(
                f"no event from turn {self.log.turn_id} within {timeout} s; it is still running"
            )
        return self._take_items()

    async def _anext_items(self) -> list[LogItem] | None:
        while True:
            items = self._take_items()
            if items is None or items:
                return items
            await self.log.wait_until_async(self._ready)

    def next_batch(self, timeout: float | None = None) -> list[Notification] | None:
        """Block for new events (``CodexTimeoutError`` after ``timeout``); None at the end."""
        items = self._next_items(timeout)
        turn_id = self.log.turn_id
        return None if items is None else [materialize(item, turn_id) for item in items]

    async def anext_batch(self) -> list[Notification] | None:
        """Await new events; None at the end. Use ``asyncio.timeout()`` for a deadline."""
        items = await self._anext_items()
        turn_id = self.log.turn_id
        return None if items is None else [materialize(item, turn_id) for item in items]

    def events(self, timeout: float | None = None) -> Iterator[Notification]:
        """Every remaining event, blocking for more; ``timeout`` bounds each wait."""
        turn_id = self.log.turn_id
        while (items := self._next_items(timeout)) is not None:
            for item in items:
                yield materialize(item, turn_id)

    async def aevents(self, timeout: float | None = None) -> AsyncIterator[Notification]:
        """Every remaining event, awaited; ``timeout`` bounds each wait."""
        while True:
            if timeout is None:
                items = await self._anext_items()
            else:
                try:
                    items = await asyncio.wait_for(self._anext_items(), timeout)
                except asyncio.TimeoutError:
                    raise CodexTimeoutError(
                        f"no event from turn {self.log.turn_id} within {timeout} s; "
                        "it is still running"
                    ) from None
            if items is None:
                return
            for item in items:
                yield materialize(item, self.log.turn_id)

    def __iter__(self) -> Iterator[Notification]:
        return self.events()


class Channel(Waitable):
    """The bounded global channel for notifications that belong to no turn.

    Drop-oldest: a kernel that never reads it does not grow; ``dropped`` counts
    what was lost.  Guarded by its lock.
    """

    def __init__(self, maxlen: int) -> None:
        super().__init__()
        self._items: deque[Notification] = deque(maxlen=maxlen)
        self.maxlen = maxlen
        self.dropped = 0
        self.error: TransportClosedError | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Notification) -> None:
        with self._lock:
            if len(self._items) == self.maxlen:
                self.dropped += 1
            self._items.append(item)
            self._wake()

    def close(self, error: TransportClosedError) -> None:
        with self._lock:
            self.error = error
            self._wake()

    def _ready(self) -> bool:
        return bool(self._items) or self.error is not None

    def get(self, timeout: float | None = None) -> Notification | None:
        """Next item; None once closed and drained or when ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            item = self.get_nowait()
            if item is not None or self.error is not None:
                return item
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            if not self.wait_until(self._ready, remaining):
                return None

    def get_nowait(self) -> Notification | None:
        with self._lock:
            return self._items.popleft() if self._items else None

    async def get_async(self) -> Notification | None:
        """Await the next item; None once closed and drained."""
        while True:
            item = self.get_nowait()
            if item is not None or self.error is not None:
                return item
            await self.wait_until_async(self._ready)
