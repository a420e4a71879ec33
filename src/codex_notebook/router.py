"""Routes every message from the server to exactly the consumers it belongs to.

The reader thread calls :meth:`Router.feed_batch` with the complete lines of
each read.  That path is kept short: parse, look up where the ids live (a
generated table), collect each turn's events, then append them to their
:class:`TurnLog` with one lock acquisition and one wake per turn per read.
Nothing on it blocks on user code and nothing validates into pydantic.

* responses       -> the one-shot future of the request that waits for them
* turn events     -> that turn's :class:`TurnLog`; each consumer reads it
                     through its own cursor, so a widget and ``turn.stream()``
                     both see every event, in order, exactly once
* server requests -> appended to their turn's log (so widgets can show them)
                     and answered off the reader thread (:mod:`._dispatch`):
                     a thread's tools, else the handler registered for the
                     thread's turn *before* its ``turn/start`` was sent, else
                     the client's handler, else the safe default
* everything else -> the bounded global :class:`Channel`

Memory stays bounded: a claimed turn's log leaves the router when the turn
completes (its handle keeps it alive while the user holds the handle);
unclaimed logs are capped in number and size and expire — except a log whose
thread has a ``turn/start`` in flight, which its claim is about to need, and a
log holding a server request still open, which only its turn's end settles.

State: everything below is guarded by ``Router._lock`` unless a docstring
says "reader thread" (then only the reader touches it).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError
from functools import partial
from itertools import count
from typing import Any

import orjson

from . import protocol
from ._dispatch import Dispatcher, RequestHandler
from ._json import check_json
from ._turnlog import Batch, Channel, TurnCursor, TurnLog, Waitable
from .errors import ProtocolError, TransportClosedError, redact, rpc_error_from
from .messages import Notification, ServerRequest
from .tools import ToolRegistry

__all__ = ["Channel", "RequestHandler", "Router", "TurnCursor", "TurnLog", "Waitable"]

log = logging.getLogger("codex_notebook")

#: Unclaimed turn logs: how many may exist, how many events each may hold,
#: and how long they live after completing / after their first event.
MAX_UNCLAIMED_TURNS = 64
MAX_UNCLAIMED_EVENTS = 20_000
UNCLAIMED_UNCAPPED_S = 5.0
UNCLAIMED_GRACE_S = 30.0
UNCLAIMED_EXPIRY_S = 600.0
#: Global channel capacity (drop-oldest beyond it).
GLOBAL_CHANNEL_SIZE = 1000

_COMPLETED = "turn/completed"
_RESOLVED = "serverRequest/resolved"
_route_ids = protocol.route_ids
#: Methods whose params carry ``turnId`` and ``threadId`` directly: nearly every turn event.
_DIRECT_IDS = frozenset(
    method
    for method, route in protocol._ROUTES.items()
    if route == ("turnId", False, "threadId", False)
)
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


class _ThreadRoute:
    """What the router knows about one thread: who answers its requests, and its tools.

    ``handler`` belongs to the thread's current turn and is registered before
    that turn's ``turn/start`` is sent (one active turn per thread), so a
    server request finds it however late the ``turn/start`` response and the
    claim arrive.  ``starting`` counts ``turn/start`` requests in flight.
    """

    __slots__ = ("handler", "starting", "tools")

    def __init__(self) -> None:
        self.handler: RequestHandler | None = None
        self.starting = 0
        self.tools: ToolRegistry | None = None

    @property
    def idle(self) -> bool:
        return self.handler is None and self.starting == 0 and self.tools is None


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
        self._lock = threading.Lock()
        self._ids = count(1)
        self._pending: dict[int, tuple[str, Future[Any]]] = {}
        self._turns: dict[str, TurnLog] = {}
        self._unclaimed: OrderedDict[str, TurnLog] = OrderedDict()
        self._finished: weakref.WeakValueDictionary[str, TurnLog] = weakref.WeakValueDictionary()
        self._threads: dict[str, _ThreadRoute] = {}
        self._server_requests: dict[Any, ServerRequest] = {}
        self.channel = Channel(channel_size)
        self.dispatcher = Dispatcher(default_handler)
        self.error: TransportClosedError | None = None
        self.malformed = 0
        self._lines = 0  # reader thread

    # -- requests ---------------------------------------------------------------------

    def start_request(self, method: str, params: Any) -> Future[Any]:
        """Register a waiter and send the request. The future holds result or exception.

        Params that are not JSON raise :class:`InvalidArgumentError` before
        anything is registered or sent.
        """
        if params is not None:
            check_json(params, f"{method} params")
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
        except BaseException:
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

    def pending_requests(self) -> int:
        """Requests sent and not answered yet (for tests and diagnostics)."""
        with self._lock:
            return len(self._pending)

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            check_json(params, f"{method} params")
            message["params"] = params
        self._send(message)

    # -- threads and turns ------------------------------------------------------------

    def begin_turn(self, thread_id: str, handler: RequestHandler | None) -> None:
        """Before sending ``turn/start`` on ``thread_id``: this turn's requests go to ``handler``.

        Pair with :meth:`claim` (``started=True``) once the response arrived,
        or :meth:`abandon_turn` if the request failed.
        """
        with self._lock:
            route = self._threads.get(thread_id)
            if route is None:
                route = self._threads[thread_id] = _ThreadRoute()
            route.handler = handler
            route.starting += 1

    def abandon_turn(self, thread_id: str) -> None:
        """The ``turn/start`` announced with :meth:`begin_turn` failed."""
        with self._lock:
            route = self._threads.get(thread_id)
            if route is not None:
                route.starting = max(0, route.starting - 1)
                if route.starting == 0:
                    route.handler = None
                    self._drop_route_if_idle(thread_id, route)

    def set_tools(self, thread_id: str, tools: ToolRegistry | None) -> None:
        """Route ``item/tool/call`` requests of ``thread_id`` to these tools (None: none)."""
        with self._lock:
            route = self._threads.get(thread_id)
            if route is None:
                if tools is None:
                    return
                route = self._threads[thread_id] = _ThreadRoute()
            route.tools = tools
            self._drop_route_if_idle(thread_id, route)

    def tools_of(self, thread_id: str) -> ToolRegistry | None:
        with self._lock:
            route = self._threads.get(thread_id)
            return route.tools if route is not None else None

    def _drop_route_if_idle(self, thread_id: str, route: _ThreadRoute) -> None:
        """Lock held."""
        if route.idle and self._threads.get(thread_id) is route:
            del self._threads[thread_id]

    def claim(
        self,
        turn_id: str,
        thread_id: str | None,
        handler: RequestHandler | None = None,
        *,
        started: bool = False,
    ) -> TurnLog:
        """Return the log for ``turn_id``, replaying whatever arrived before the claim.

        ``started``: this claim ends a :meth:`begin_turn` on ``thread_id``.
        """
        with self._lock:
            if started and thread_id is not None:
                route = self._threads.get(thread_id)
                if route is not None:
                    route.starting = max(0, route.starting - 1)
            turn_log = self._turns.get(turn_id)
            if turn_log is None:
                turn_log = self._finished.get(turn_id)
            if turn_log is None:
                turn_log = TurnLog(turn_id, thread_id)
                if self.error is None:
                    self._turns[turn_id] = turn_log
            self._unclaimed.pop(turn_id, None)
            if handler is not None:
                turn_log.handler = handler
            # under the router lock, so a completion racing with us is released by one side
            turn_log.claimed = True
            if turn_log.finished:
                self._release(turn_log)
            error = self.error
        if error is not None:
            turn_log.fail(error)  # finishes the log and releases its waiters (no-op if done)
        if turn_log.dropped:
            log.warning(
                "codex_notebook: turn %s was claimed late; %d of its events were dropped",
                turn_id,
                turn_log.dropped,
            )
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
        thread_id = turn_log.thread_id
        route = self._threads.get(thread_id) if thread_id is not None else None
        if route is not None and route.starting == 0:
            route.handler = None  # the turn is over; its handler (and what it holds) can go
            self._drop_route_if_idle(thread_id, route)  # type: ignore[arg-type]

    def _turn_log(self, turn_id: str, thread_id: str | None) -> TurnLog:
        """Lock held: find or create (unclaimed) the log for an event."""
        turn_log = self._turns.get(turn_id)
        if turn_log is None:
            turn_log = self._finished.get(turn_id)
            if turn_log is not None:
                return turn_log
            turn_log = TurnLog(turn_id, thread_id)
            if self.error is not None:  # closed under us: nobody will fail it later
                turn_log.error = self.error
                turn_log.done.set()
                return turn_log
            self._turns[turn_id] = turn_log
            self._unclaimed[turn_id] = turn_log
            self._expire_unclaimed()
        return turn_log

    def _keep(self, turn_log: TurnLog) -> bool:
        """Lock held: an unclaimed log that must not be dropped yet.

        A ``turn/start`` on its thread is in flight (its claim is near), or it
        holds a server request still open (only its turn's end settles that).
        """
        route = self._threads.get(turn_log.thread_id) if turn_log.thread_id else None
        return (route is not None and route.starting > 0) or turn_log.has_open_requests()

    def _expire_unclaimed(self) -> None:
        """Lock held: enforce the count cap and the grace/expiry deadlines."""
        now = time.monotonic()
        if len(self._unclaimed) > MAX_UNCLAIMED_TURNS:
            for turn_id, turn_log in list(self._unclaimed.items()):
                if len(self._unclaimed) <= MAX_UNCLAIMED_TURNS:
                    break
                if self._keep(turn_log):
                    continue  # its claim is on its way, or it has an open request
                del self._unclaimed[turn_id]
                self._turns.pop(turn_id, None)
                log.warning(
                    "codex_notebook: dropped the events of unclaimed turn %s (too many)",
                    turn_id,
                )
        for turn_id, turn_log in list(self._unclaimed.items()):
            done_at = turn_log.completed_at
            expired = (done_at is not None and now - done_at > UNCLAIMED_GRACE_S) or (
                now - turn_log.created_at > UNCLAIMED_EXPIRY_S
            )
            if expired and not self._keep(turn_log):
                del self._unclaimed[turn_id]
                self._turns.pop(turn_id, None)

    # -- the reader thread ------------------------------------------------------------

    def feed(self, line: bytes) -> None:
        """Route one line and wake its consumers at once (tests; the reader uses feed_batch)."""
        self.feed_batch((line,))

    def feed_batch(self, lines: Iterable[bytes]) -> None:
        """Reader thread: route every line of one read, then append and wake per turn.

        Each turn's events of one read go into its log under one lock
        acquisition with one wake: a fast stream pays one thread (or event
        loop) handoff per turn per read, not per line; a slow stream still
        wakes at once, since then each read returns a single line.
        """
        batches: dict[TurnLog, Batch] = {}
        turns = self._turns
        for line in lines:
            try:
                message = _loads(line)
            except _JSONDecodeError:
                if line.strip():
                    self._malformed(line, "not JSON")
                continue
            try:
                # The hot path, inlined: an event of a claimed, running turn.
                if type(message) is dict and "id" not in message:
                    method = message.get("method")
                    params = message.get("params")
                    if method in _DIRECT_IDS and type(params) is dict:
                        turn_log = turns.get(params.get("turnId"))  # type: ignore[arg-type]
                        if turn_log is not None and turn_log.claimed and method != _COMPLETED:
                            batch = batches.get(turn_log)
                            if batch is None:
                                batch = batches[turn_log] = Batch()
                            # Keep less per event (a log keeps every event): the turn's own
                            # id strings instead of this line's copies, and, for codex's
                            # usual {method, params, emittedAtMs}, the stamp, not the line.
                            params["turnId"] = turn_log.turn_id
                            if params.get("threadId") == turn_log.thread_id:
                                params["threadId"] = turn_log.thread_id
                            if len(message) == 3 and "emittedAtMs" in message:
                                batch.items.append(message["emittedAtMs"])
                            else:
                                batch.items.append(line)
                            batch.methods.append(method)
                            batch.params.append(params)
                            continue
                self._route(line, message, batches)
            except Exception:  # a routing bug must not kill the only reader
                log.exception("codex_notebook: error while routing a server message")
        for turn_log, batch in batches.items():
            try:
                self._flush(turn_log, batch)
            except Exception:
                log.exception("codex_notebook: error while delivering turn events")

    def _flush(self, turn_log: TurnLog, batch: Batch) -> None:
        """Reader thread: append one read's events to a log; release it if it just ended."""
        cap = None
        if not turn_log.claimed and time.monotonic() - turn_log.created_at >= UNCLAIMED_UNCAPPED_S:
            cap = MAX_UNCLAIMED_EVENTS
        turn_log.extend(batch, cap=cap)
        if batch.end is not None:
            with self._lock:
                if turn_log.claimed:
                    self._release(turn_log)

    def _route(self, line: bytes, message: Any, batches: dict[TurnLog, Batch]) -> None:
        """Reader thread: route one parsed line (every case). Never raises for bad input."""
        if type(message) is not dict:
            self._malformed(line, "not a JSON object")
            return
        method = message.get("method")
        if method is None:
            if "id" in message:
                self._on_response(message)
            else:
                self._malformed(line, "neither a response nor a method call")
            return
        if type(method) is not str:
            self._malformed(line, "method is not a string")
            return
        params = message.get("params")
        if method in _DIRECT_IDS and type(params) is dict:  # the hot path, inlined
            turn_id, thread_id = params.get("turnId"), params.get("threadId")
            if type(turn_id) is not str:
                turn_id = None
            if type(thread_id) is not str:
                thread_id = None
        else:
            turn_id, thread_id = _route_ids(method, params)
        if "id" in message:
            self._on_server_request(method, message, turn_id, thread_id, batches)
            return
        if turn_id is None:
            if method == _RESOLVED and type(params) is dict:
                with self._lock:
                    moot = self._server_requests.get(params.get("requestId"))
                if moot is not None:
                    moot.settle("withdrawn")
            self.channel.put(Notification(method, message, turn_id, thread_id))
            return
        turn_log = self._turns.get(turn_id)  # the common case needs no router lock
        if turn_log is None or not turn_log.claimed:
            with self._lock:
                turn_log = self._turn_log(turn_id, thread_id)
                self._lines += 1
                if self._lines % 1024 == 0:
                    self._expire_unclaimed()
        # not the parsed message: see _turnlog's docstring (garbage collection)
        batch = batches.get(turn_log)
        if batch is None:
            batch = batches[turn_log] = Batch()
        if method == _COMPLETED:
            batch.end = len(batch.items)
        batch.items.append(line)
        batch.methods.append(method)
        batch.params.append(params)

    def _malformed(self, line: bytes, why: str) -> None:
        self.malformed += 1
        head = line[:200]
        preview = head.decode("utf-8", "replace") if isinstance(head, bytes) else str(head)
        log.warning(
            "codex_notebook: skipped a malformed line from codex (%s): %r", why, redact(preview)
        )

    def _on_response(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        with self._lock:
            entry = self._pending.pop(request_id, None) if type(request_id) is int else None
        if entry is None:
            log.warning("codex_notebook: response to unknown request id %r", request_id)
            return
        method, future = entry
        if "error" in message:
            outcome: BaseException | None = rpc_error_from(message["error"], method=method)
        elif "result" in message:
            outcome = None
        else:
            outcome = ProtocolError(f"{method}: the response has neither a result nor an error")
        try:
            if outcome is None:
                future.set_result(message["result"])
            else:
                future.set_exception(outcome)
        except InvalidStateError:
            pass  # the caller gave up (cancelled) meanwhile

    def _on_server_request(
        self,
        method: str,
        message: dict[str, Any],
        turn_id: str | None,
        thread_id: str | None,
        batches: dict[TurnLog, Batch],
    ) -> None:
        """Reader thread: record a server request and hand it to whoever answers it."""
        request = ServerRequest(method, message, turn_id, thread_id, self._send_quietly)
        with self._lock:
            if self.error is not None:
                request.settle("transport closed")
                return
            self._server_requests[request.id] = request
            turn_log = self._turn_log(turn_id, thread_id) if turn_id is not None else None
            route = self._threads.get(thread_id) if thread_id is not None else None
            handler = turn_log.handler if turn_log is not None else None
            if handler is None and route is not None:
                handler = route.handler
            tools = route.tools if route is not None else None
        request.add_settle_hook(self._forget_server_request)
        if turn_log is None:
            self.channel.put(request)
        else:
            batch = batches.get(turn_log)
            if batch is None:
                batch = batches[turn_log] = Batch()
            batch.items.append(request)
            batch.methods.append(method)
            batch.params.append(request.params_dict)
            if not turn_log.add_request(request):
                request.settle("turn ended")
                return
        self.dispatcher.dispatch(request, handler, tools)

    def _forget_server_request(self, request: ServerRequest) -> None:
        """Settle hook (any thread, router lock not held): the request needs no tracking."""
        with self._lock:
            if self._server_requests.get(request.id) is request:
                del self._server_requests[request.id]

    def open_server_requests(self) -> int:
        """Server requests not settled yet (for tests and diagnostics)."""
        with self._lock:
            return len(self._server_requests)

    def _send_quietly(self, message: dict[str, Any]) -> None:
        try:
            self._send(message)
        except TransportClosedError:
            log.info("codex_notebook: could not answer a server request: transport closed")

    # -- shutdown ---------------------------------------------------------------------

    def closed(self, error: TransportClosedError) -> None:
        """Transport died or was closed: fail every waiter at once.

        Each waiter is failed on its own: a consumer-side failure (a closed
        event loop, a cancelled future) is logged and the rest still fail.
        """
        with self._lock:
            if self.error is not None:
                return
            self.error = error
            pending, self._pending = self._pending, {}
            turns = list(self._turns.values())
            self._turns.clear()
            self._unclaimed.clear()
            self._threads.clear()
            requests = list(self._server_requests.values())
        steps: list[Callable[[], Any]] = []
        steps += [partial(request.settle, "transport closed") for request in requests]
        steps += [partial(_fail, future, error) for _, future in pending.values()]
        steps += [partial(turn_log.fail, error) for turn_log in turns]
        steps += [partial(self.channel.close, error), self.dispatcher.close]
        for step in steps:
            try:
                step()
            except Exception:
                log.exception("codex_notebook: error while failing a waiter on shutdown")


def _fail(future: Future[Any], error: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):  # already done or cancelled
        future.set_exception(error)
