"""Per-turn event logs read through cursors, and the bounded global channel.

The reader thread is the only writer of a :class:`TurnLog` (plus
:meth:`TurnLog.fail` on transport death); any number of consumers read it, each
through its own :class:`TurnCursor`, sync or async.  The waiting protocol —
block on a condition, or await a loop future woken with
``call_soon_threadsafe`` — is written once, in :class:`Waitable`.

A log keeps each notification in three parallel lists: the raw line
(``bytes``), its method and its params dict.  A parsed message (a dict holding
a dict, plus a wrapper object, or a tuple holding a dict) is tracked by
Python's cyclic garbage collector for as long as it lives; holding 200,000 of
them made full collections take half of a fast stream's time
(bench/RESULTS.md).  Bytes, strings and a params dict of plain values (a
delta's) are untracked, so a long log costs the collector next to nothing.
Each consumer wraps the events it takes in fresh :class:`Notification`
objects, one at a time when iterating, and the whole message (``raw``) is
parsed again only if a consumer reads it.  Server requests stay objects:
every consumer must see the same one (it is answered once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from . import protocol
from ._workers import wait_limit
from .errors import CodexTimeoutError, TransportClosedError
from .messages import Notification, ServerRequest

__all__ = ["Channel", "TurnCursor", "TurnLog", "Waitable"]

log = logging.getLogger("codex_notebook")

Waker = Callable[[], None]
RequestHandler = Callable[["ServerRequest"], Any]
#: What ``TurnLog.items`` holds per event: a notification's raw line (bytes or str), or just
#: its ``emittedAtMs`` when the message was exactly {method, params, emittedAtMs} (``raw`` is
#: rebuilt from those on demand), or a server request.
LogItem = bytes | str | int | ServerRequest

_route_ids = protocol.route_ids


def materialize(item: LogItem, method: str, params: Any, turn_id: str | None) -> Notification:
    """A log entry as the consumer sees it: a fresh Notification, or the shared ServerRequest.

    ``turn_id``: the log's (routing put the event there because it is its turn id).
    """
    if isinstance(item, ServerRequest):
        return item
    thread_id = params.get("threadId") if type(params) is dict else None
    if turn_id is None or type(thread_id) is not str:  # not the common shape: ask the table
        turn_id, thread_id = _route_ids(method, params)
    return Notification.from_line(item, method, params, turn_id, thread_id)


class Batch:
    """One read's events for one turn, gathered by the reader before a single append."""

    __slots__ = ("end", "items", "methods", "params")

    def __init__(self) -> None:
        self.items: list[LogItem] = []
        self.methods: list[str] = []
        self.params: list[Any] = []
        self.end: int | None = None  # index of turn/completed, if the batch holds it


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
        timeout = wait_limit(timeout)
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
        "methods",
        "params",
        "pending_requests",
        "thread_id",
        "turn_id",
    )

    def __init__(self, turn_id: str, thread_id: str | None) -> None:
        super().__init__()
        self.turn_id = turn_id
        self.thread_id = thread_id
        self.items: list[LogItem] = []  # these three grow together, under the lock
        self.methods: list[str] = []
        self.params: list[Any] = []
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

    def __bool__(self) -> bool:
        return True  # a log without events yet is still a log (``x or y`` must not skip it)

    def notifications(self, start: int = 0, end: int | None = None) -> list[Notification]:
        """Events ``start:end`` as fresh Notification objects (server requests are shared)."""
        return list(self.iter_notifications(start, end))

    def iter_notifications(self, start: int, end: int | None) -> Iterator[Notification]:
        turn_id = self.turn_id
        for item, method, params in zip(
            self.items[start:end], self.methods[start:end], self.params[start:end], strict=True
        ):
            yield materialize(item, method, params, turn_id)

    def extend(self, batch: Batch, *, cap: int | None) -> None:
        """Reader thread: append one read's events for this turn and wake its consumers.

        With ``cap`` (an unclaimed log), events beyond it are dropped, but never
        the end (``turn/completed``): a consumer must never wait forever.
        """
        completes = batch.end is not None
        items, methods, params = batch.items, batch.methods, batch.params
        with self._lock:
            if cap is not None and len(self.items) + len(items) > cap:
                keep = list(range(max(0, cap - len(self.items))))
                if batch.end is not None and batch.end not in keep:
                    keep.append(batch.end)
                self.dropped += len(items) - len(keep)
                items = [items[i] for i in keep]
                methods = [methods[i] for i in keep]
                params = [params[i] for i in keep]
            self.items += items
            self.methods += methods
            self.params += params
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

    def has_open_requests(self) -> bool:
        """Whether a server request of this turn is still waiting for its answer."""
        with self._lock:
            return any(not request.settled for request in self.pending_requests)

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

    def _take_range(self) -> tuple[int, int] | None:
        """The positions of the events available now (empty if none yet), None at the end."""
        turn_log = self.log
        # The end flags first: they are set after the events they follow, so once seen,
        # every event is already in the lists (reading the length first could miss the last).
        error, completed = turn_log.error, turn_log.completed
        start, end = self.position, len(turn_log.items)
        if start < end:
            self.position = end
            return start, end
        if error is not None:
            raise error
        if completed:
            return None
        return start, start

    def take(self) -> list[Notification] | None:
        """Everything available now, without waiting: [] if nothing yet, None once the
        turn is over and drained; raises the transport error after the last event."""
        span = self._take_range()
        return None if span is None else self.log.notifications(*span)

    def _ready(self) -> bool:
        return len(self.log.items) > self.position or self.log.finished

    def _next_range(self, timeout: float | None) -> tuple[int, int] | None:
        if not self.log.wait_until(self._ready, timeout):
            raise CodexTimeoutError(
                f"no event from turn {self.log.turn_id} within {timeout} s; it is still running"
            )
        return self._take_range()

    async def _anext_range(self) -> tuple[int, int] | None:
        while True:
            span = self._take_range()
            if span is None or span[0] < span[1]:
                return span
            await self.log.wait_until_async(self._ready)

    def next_batch(self, timeout: float | None = None) -> list[Notification] | None:
        """Block for new events (``CodexTimeoutError`` after ``timeout``); None at the end."""
        span = self._next_range(timeout)
        return None if span is None else self.log.notifications(*span)

    async def anext_batch(self) -> list[Notification] | None:
        """Await new events; None at the end. Use ``asyncio.timeout()`` for a deadline."""
        span = await self._anext_range()
        return None if span is None else self.log.notifications(*span)

    def events(self, timeout: float | None = None) -> Iterator[Notification]:
        """Every remaining event, blocking for more; ``timeout`` bounds each wait."""
        while (span := self._next_range(timeout)) is not None:
            yield from self.log.iter_notifications(*span)

    async def aevents(self, timeout: float | None = None) -> AsyncIterator[Notification]:
        """Every remaining event, awaited; ``timeout`` bounds each wait."""
        while True:
            if timeout is None:
                span = await self._anext_range()
            else:
                try:
                    span = await asyncio.wait_for(self._anext_range(), timeout)
                except asyncio.TimeoutError:
                    raise CodexTimeoutError(
                        f"no event from turn {self.log.turn_id} within {timeout} s; "
                        "it is still running"
                    ) from None
            if span is None:
                return
            for event in self.log.iter_notifications(*span):
                yield event

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
        timeout = wait_limit(timeout)
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
