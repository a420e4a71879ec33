"""Routes every message from the server to exactly the consumers it belongs to.

The reader thread calls :meth:`Router.feed` for each stdout line.  That path
is kept short: parse, look up where the ids live (generated table), append to
a log, wake waiters.  Nothing on it blocks on user code and nothing validates
into pydantic.

* responses      -> the one-shot future of the request that waits for them
* turn events    -> that turn's :class:`TurnLog`; each consumer reads it
                    through its own cursor, so a widget and ``turn.stream()``
                    both see every event, in order, exactly once
* server requests-> appended to their turn's log (so widgets can show them)
                    and answered off the reader thread by a handler
* everything else-> the bounded global :class:`Channel`

Memory stays bounded: a claimed turn's log leaves the router when the turn
completes (its handle keeps it alive while the user holds the handle);
unclaimed logs are capped in number and size and expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from itertools import count
from typing import Any

import orjson

from . import protocol
from .approvals import default_response
from .errors import CodexTimeoutError, TransportClosedError, rpc_error_from
from .messages import DEFER, Notification, ServerRequest

__all__ = ["Channel", "Router", "TurnLog"]

log = logging.getLogger("codex_notebook")

RequestHandler = Callable[[ServerRequest], Any]
Waker = Callable[[], None]

#: Unclaimed turn logs: how many may exist, how many events each may hold,
#: and how long they live after completing / after their first event.
MAX_UNCLAIMED_TURNS = 64
MAX_UNCLAIMED_EVENTS = 20_000
UNCLAIMED_UNCAPPED_S = 5.0
UNCLAIMED_GRACE_S = 30.0
UNCLAIMED_EXPIRY_S = 600.0
#: Global channel capacity (drop-oldest beyond it).
GLOBAL_CHANNEL_SIZE = 1000
#: How long a server-request handler thread waits for its turn to be claimed.
CLAIM_WAIT_S = 5.0


class _Waitable:
    """A condition plus one-shot wakers for asyncio consumers.

    Sync consumers block on the condition.  Async consumers register a waker
    that schedules a future on their loop with ``call_soon_threadsafe``, so no
    thread is parked per async consumer.
    """

    __slots__ = ("_cond", "_lock", "_sleepers", "_wakers")

    def __init__(self) -> None:
        self._lock = threading.Lock()  # entered directly on hot paths (cheaper than the Condition)
        self._cond = threading.Condition(self._lock)
        self._wakers: list[Waker] = []
        self._sleepers = 0  # threads blocked in _sleep(); notify only when there are some

    def _sleep(self, timeout: float | None) -> None:
        """Call with the lock held: wait for the next _wake()."""
        self._sleepers += 1
        try:
            self._cond.wait(timeout)
        finally:
            self._sleepers -= 1

    def wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``predicate()`` (checked under the lock) holds; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._sleep(remaining)
        return True

    def _wake(self) -> None:
        """Call with the lock held."""
        if self._sleepers:
            self._cond.notify_all()
        if self._wakers:
            wakers, self._wakers = self._wakers, []
            for waker in wakers:
                waker()

    def add_waker(self, waker: Waker) -> None:
        with self._cond:
            self._wakers.append(waker)

    def remove_waker(self, waker: Waker) -> None:
        with self._cond, contextlib.suppress(ValueError):
            self._wakers.remove(waker)


class TurnLog(_Waitable):
    """Every event of one turn, in arrival order, readable by many cursors."""

    __slots__ = (
        "__weakref__",
        "claimed",
        "completed",
        "completed_at",
        "created_at",
        "done",
        "dropped",
        "error",
        "events",
        "handler",
        "pending_requests",
        "thread_id",
        "turn_id",
    )

    def __init__(self, turn_id: str, thread_id: str | None) -> None:
        super().__init__()
        self.turn_id = turn_id
        self.thread_id = thread_id
        self.events: list[Notification] = []
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

    @property
    def finished(self) -> bool:
        return self.completed or self.error is not None

    def append(self, event: Notification, *, cap: int | None = None) -> None:
        """Reader thread. The hottest function: keep it lean."""
        with self._lock:
            if cap is not None and len(self.events) >= cap and event.method != "turn/completed":
                self.dropped += 1  # the end is always kept: a consumer must never wait forever
                return
            self.events.append(event)
            if event.method == "turn/completed":
                self.completed = True
                self.completed_at = time.monotonic()
                self.done.set()
        if self.completed and self.pending_requests:
            self._settle_requests()

    def wake(self) -> None:
        """Wake this log's consumers (the reader calls it once per chunk it read)."""
        with self._lock:
            if self._sleepers or self._wakers:
                self._wake()

    def fail(self, error: TransportClosedError) -> None:
        with self._cond:
            if self.finished:
                return
            self.error = error
            self.done.set()
            self._wake()
        self._settle_requests()

    def _settle_requests(self) -> None:
        for request in self.pending_requests:
            request.settle()
        self.pending_requests = []

    def wait(self, position: int, timeout: float | None) -> bool:
        """Block until there is an event at ``position`` or the log is finished.

        Returns False on timeout.
        """
        return self.wait_until(lambda: len(self.events) > position or self.finished, timeout)

    def cursor(self) -> TurnCursor:
        return TurnCursor(self)


class TurnCursor:
    """One consumer's position in a :class:`TurnLog`: sync and async reads."""

    __slots__ = ("log", "position")

    def __init__(self, turn_log: TurnLog) -> None:
        self.log = turn_log
        self.position = 0

    def take(self) -> list[Notification] | None:
        """Everything available now, without waiting: [] if nothing yet, None once the
        turn is over and drained; raises the transport error after the last event."""
        turn_log = self.log
        end = len(turn_log.events)
        if self.position < end:
            batch = turn_log.events[self.position : end]
            self.position = end
            return batch
        if turn_log.error is not None:
            raise turn_log.error
        if turn_log.completed:
            return None
        return []

    def next_batch(self, timeout: float | None = None) -> list[Notification] | None:
        """Sync: block for new events. None when the turn is over."""
        if not self.log.wait(self.position, timeout):
            raise CodexTimeoutError(
                f"no event from turn {self.log.turn_id} within {timeout} s; it is still running"
            )
        return self.take()

    async def anext_batch(self) -> list[Notification] | None:
        """Async: await new events via a loop-safe waker. None when the turn is over."""
        loop = asyncio.get_running_loop()
        while True:
            batch = self.take()
            if batch is None or batch:
                return batch
            future: asyncio.Future[None] = loop.create_future()

            def waker(fut: asyncio.Future[None] = future) -> None:
                loop.call_soon_threadsafe(resolve_waiter, fut)

            turn_log = self.log
            with turn_log._cond:
                ready = len(turn_log.events) > self.position or turn_log.finished
                if not ready:
                    turn_log._wakers.append(waker)
            if ready:
                continue
            try:
                await future
            except asyncio.CancelledError:
                turn_log.remove_waker(waker)  # a cancelled waiter removes itself
                raise

    def __iter__(self) -> Iterator[Notification]:
        while (batch := self.next_batch()) is not None:
            yield from batch


def resolve_waiter(future: asyncio.Future[None]) -> None:
    """Loop thread: wake an async waiter unless it was cancelled meanwhile."""
    if not future.done():
        future.set_result(None)


class Channel(_Waitable):
    """The bounded global channel for notifications that belong to no turn.

    Drop-oldest: a kernel that never reads it does not grow; ``dropped`` counts
    what was lost.
    """

    def __init__(self, maxlen: int = GLOBAL_CHANNEL_SIZE) -> None:
        super().__init__()
        self._items: deque[Notification] = deque(maxlen=maxlen)
        self.maxlen = maxlen
        self.dropped = 0
        self.error: TransportClosedError | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Notification) -> None:
        with self._cond:
            if len(self._items) == self.maxlen:
                self.dropped += 1
            self._items.append(item)
            self._wake()

    def close(self, error: TransportClosedError) -> None:
        with self._cond:
            self.error = error
            self._wake()

    def get(self, timeout: float | None = None) -> Notification | None:
        """Next item; None once closed and drained or when ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self.error is not None:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._sleep(remaining)
            return self._items.popleft()

    def get_nowait(self) -> Notification | None:
        with self._cond:
            return self._items.popleft() if self._items else None


class Router:
    """Owns all routing state of one client. See the module docstring."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        *,
        default_handler: RequestHandler,
        channel_size: int = GLOBAL_CHANNEL_SIZE,
    ) -> None:
        self._send = send
        self._default_handler = default_handler
        self._lock = threading.Lock()
        self._ids = count(1)
        self._pending: dict[int, tuple[str, Future[Any]]] = {}
        self._turns: dict[str, TurnLog] = {}
        self._unclaimed: OrderedDict[str, TurnLog] = OrderedDict()
        self._finished: weakref.WeakValueDictionary[str, TurnLog] = weakref.WeakValueDictionary()
        self.channel = Channel(channel_size)
        self.error: TransportClosedError | None = None
        self._server_requests: dict[Any, ServerRequest] = {}
        self._dirty: set[TurnLog] = set()  # logs appended to since the last wake (reader only)
        self.malformed = 0
        self._lines = 0

    # -- requests ---------------------------------------------------------------------

    def start_request(self, method: str, params: Any) -> Future[Any]:
        """Register a waiter and send the request. The future holds result or exception."""
        future: Future[Any] = Future()
        with self._lock:
            if self.error is not None:
                raise self.error
            request_id = next(self._ids)
            self._pending[request_id] = (method, future)
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            self._send(message)
        except TransportClosedError:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        return future

    def forget_request(self, future: Future[Any]) -> None:
        """Drop a waiter whose caller gave up (timeout or cancellation)."""
        with self._lock:
            for key, (_, fut) in list(self._pending.items()):
                if fut is future:
                    del self._pending[key]

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    # -- turns ------------------------------------------------------------------------

    def claim(
        self, turn_id: str, thread_id: str | None, handler: RequestHandler | None = None
    ) -> TurnLog:
        """Return the log for ``turn_id``, replaying whatever arrived before the claim."""
        with self._lock:
            turn_log = self._turns.get(turn_id) or self._finished.get(turn_id)
            if turn_log is None:
                turn_log = TurnLog(turn_id, thread_id)
                if self.error is not None:
                    turn_log.error = self.error
                else:
                    self._turns[turn_id] = turn_log
            self._unclaimed.pop(turn_id, None)
            if handler is not None:
                turn_log.handler = handler
            # under the router lock, so a completion racing with us is released by one side
            turn_log.claimed = True
            if turn_log.finished:
                self._release(turn_log)
        if turn_log.dropped:
            log.warning(
                "codex_notebook: turn %s was claimed late; %d of its events were dropped",
                turn_id,
                turn_log.dropped,
            )
        with turn_log._cond:
            turn_log._wake()  # a request handler may be waiting for the claim
        return turn_log

    def live_turns(self) -> int:
        """How many turn logs the router itself still holds (for tests and soak figures)."""
        with self._lock:
            return len(self._turns)

    def _release(self, turn_log: TurnLog) -> None:
        """Lock held. Stop tracking a finished turn; handles keep it alive if wanted."""
        if self._turns.get(turn_log.turn_id) is turn_log:
            del self._turns[turn_log.turn_id]
        self._finished[turn_log.turn_id] = turn_log

    def _turn_log(self, turn_id: str, thread_id: str | None) -> TurnLog:
        """Reader thread, lock held: find or create (unclaimed) the log for an event."""
        turn_log = self._turns.get(turn_id)
        if turn_log is None:
            turn_log = self._finished.get(turn_id)
            if turn_log is not None:
                return turn_log
            turn_log = TurnLog(turn_id, thread_id)
            self._turns[turn_id] = turn_log
            self._unclaimed[turn_id] = turn_log
            self._expire_unclaimed()
        return turn_log

    def _expire_unclaimed(self) -> None:
        """Lock held: enforce the count cap and the grace/expiry deadlines."""
        now = time.monotonic()
        while len(self._unclaimed) > MAX_UNCLAIMED_TURNS:
            _, oldest = self._unclaimed.popitem(last=False)
            self._turns.pop(oldest.turn_id, None)
            log.warning(
                "codex_notebook: dropped events of unclaimed turn %s (too many unclaimed turns)",
                oldest.turn_id,
            )
        for turn_id, turn_log in list(self._unclaimed.items()):
            done_at = turn_log.completed_at
            expired = (done_at is not None and now - done_at > UNCLAIMED_GRACE_S) or (
                now - turn_log.created_at > UNCLAIMED_EXPIRY_S
            )
            if expired:
                del self._unclaimed[turn_id]
                self._turns.pop(turn_id, None)

    # -- the reader thread ------------------------------------------------------------

    def feed(self, line: bytes) -> None:
        """Route one line and wake its consumers at once."""
        self.feed_batch((line,))

    def feed_batch(self, lines: Iterable[bytes]) -> None:
        """Reader thread: route every line of one read, then wake each touched turn once.

        Waking per chunk rather than per line keeps a fast stream from paying a
        thread or event-loop handoff for every delta; a slow stream still wakes
        at once, since then each read returns a single line.
        """
        dirty = self._dirty
        for line in lines:
            try:
                self._route(line)
            except Exception:  # a routing bug must not kill the only reader
                log.exception("codex_notebook: error while routing a server message")
        while dirty:
            dirty.pop().wake()

    def _route(self, line: bytes) -> None:
        """Reader thread: parse one line and route it. Never raises for bad input."""
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            if line.strip():
                self._malformed(line, "not JSON")
            return
        if not isinstance(message, dict):
            self._malformed(line, "not a JSON object")
            return
        method = message.get("method")
        if method is None:
            if "id" in message:
                self._on_response(message)
            else:
                self._malformed(line, "neither a response nor a method call")
            return
        if not isinstance(method, str):
            self._malformed(line, "method is not a string")
            return
        params = message.get("params")
        turn_id, thread_id = protocol.route_ids(method, params)
        if "id" in message:
            self._on_server_request(method, message, turn_id, thread_id)
            return
        event = Notification(method, message, turn_id, thread_id)
        if turn_id is None:
            if method == "serverRequest/resolved" and isinstance(params, dict):
                with self._lock:
                    moot = self._server_requests.pop(params.get("requestId"), None)
                if moot is not None:
                    moot.settle()
            self.channel.put(event)
            return
        turn_log = self._turns.get(turn_id)  # the common case needs no router lock
        if turn_log is None or not turn_log.claimed:
            with self._lock:
                turn_log = self._turn_log(turn_id, thread_id)
                self._lines += 1
                if self._lines % 1024 == 0:
                    self._expire_unclaimed()
        turn_log.append(event, cap=self._cap(turn_log))
        self._dirty.add(turn_log)
        if turn_log.completed and turn_log.claimed:
            with self._lock:
                self._release(turn_log)

    @staticmethod
    def _cap(turn_log: TurnLog) -> int | None:
        """How many events an unclaimed log may hold.  Unbounded for its first seconds:
        the ``turn/start`` response, and so the claim, is normally ms away, but a fast
        server can stream thousands of events before the claimer gets to run."""
        if turn_log.claimed or time.monotonic() - turn_log.created_at < UNCLAIMED_UNCAPPED_S:
            return None
        return MAX_UNCLAIMED_EVENTS

    def _malformed(self, line: bytes, why: str) -> None:
        self.malformed += 1
        preview = line[:200].decode("utf-8", "replace")
        log.warning("codex_notebook: skipped a malformed line from codex (%s): %r", why, preview)

    def _on_response(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        with self._lock:
            entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if entry is None:
            log.warning("codex_notebook: response to unknown request id %r", request_id)
            return
        method, future = entry
        if future.done():  # caller gave up (cancelled)
            return
        if "error" in message:
            future.set_exception(rpc_error_from(message["error"], method=method))
        else:
            future.set_result(message.get("result"))

    def _on_server_request(
        self, method: str, message: dict[str, Any], turn_id: str | None, thread_id: str | None
    ) -> None:
        request = ServerRequest(method, message, turn_id, thread_id, self._send_quietly)
        with self._lock:
            self._server_requests[request.id] = request
        turn_log = None
        if turn_id is not None:
            with self._lock:
                turn_log = self._turn_log(turn_id, thread_id)
            turn_log.pending_requests.append(request)
            turn_log.append(request)
            self._dirty.add(turn_log)
        else:
            self.channel.put(request)
        threading.Thread(
            target=self._answer,
            args=(request, turn_log),
            name=f"codex-request-{request.id}",
            daemon=True,
        ).start()

    def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            self._send(message)
        except TransportClosedError:
            log.info("codex_notebook: could not answer a server request: transport closed")

    def _answer(self, request: ServerRequest, turn_log: TurnLog | None) -> None:
        """Worker thread: find the handler for this request and send its answer."""
        handler = self._default_handler
        if turn_log is not None:
            # the turn/start response (and so the claim) may still be on its way
            turn_log.wait_until(lambda: turn_log.claimed or turn_log.finished, CLAIM_WAIT_S)
            handler = turn_log.handler or handler
        try:
            try:
                result = handler(request)
            except Exception:
                log.exception("codex_notebook: the handler for %s raised; refusing", request.method)
                result = None
            if request.answered or result is DEFER:
                return
            if result is None and request.settled:
                return  # withdrawn (resolved elsewhere, turn over): nothing to answer
            if result is None:
                result = default_response(request.method)
            if result is None:
                request.reject(-32601, f"codex_notebook does not handle {request.method}")
            else:
                request.respond(result)
        finally:
            with self._lock:
                self._server_requests.pop(request.id, None)

    # -- shutdown ---------------------------------------------------------------------

    def closed(self, error: TransportClosedError) -> None:
        """Transport died or was closed: fail every waiter at once."""
        with self._lock:
            if self.error is not None:
                return
            self.error = error
            pending, self._pending = self._pending, {}
            turns = list(self._turns.values())
            self._turns.clear()
            self._unclaimed.clear()
            requests, self._server_requests = self._server_requests, {}
        for request in requests.values():
            request.settle()
        for _, future in pending.values():
            if not future.done():
                future.set_exception(error)
        for turn_log in turns:
            turn_log.fail(error)
        self.channel.close(error)
