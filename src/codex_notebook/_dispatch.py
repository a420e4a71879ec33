"""Answering server requests off the reader thread, exactly once.

The router decides *who* answers a request (a thread's tools, the turn's
handler, the client's ``approval_handler``, the safe default) and hands it
here; this module runs that handler on a bounded pool of worker threads and
sends what it returns:

* a JSON result -> sent as the answer;
* ``None`` -> the safe refusal for the method (or a JSON-RPC error for unknown
  methods), unless the request was settled meanwhile;
* :data:`~codex_notebook.DEFER` -> nothing now: the request stays pending until
  someone calls ``respond()``, or it is withdrawn, its turn ends, or the
  transport dies (each settles it; a late answer is dropped);
* an awaitable -> awaited on the asyncio client's loop, then as above.

Tool calls (``item/tool/call`` on a thread with tools) run on their own pool,
so a slow approval never delays a tool and vice versa; each has the tool's
timeout, counted from the call's arrival (a call still queued behind busy
workers times out too), after which the model is told ``ERROR: ... timed out``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from functools import partial
from typing import Any

from ._workers import Timer, Timers, WorkerPool
from .approvals import TOOL_CALL, default_response
from .errors import InvalidArgumentError, redact
from .messages import DEFER, ServerRequest
from .tools import Tool, ToolCall, ToolRegistry, ToolResult, as_result

__all__ = ["Dispatcher", "RequestHandler"]

log = logging.getLogger("codex_notebook")

RequestHandler = Callable[[ServerRequest], Any]

#: Worker threads for request handlers (approvals, user input...) and for tool handlers.
#: Handlers that wait for a person should return DEFER instead of holding a worker.
REQUEST_WORKERS = 16
TOOL_WORKERS = 8


class Dispatcher:
    """Runs request and tool handlers for one client. Its pools are its own state."""

    def __init__(self, default_handler: RequestHandler) -> None:
        self.default_handler = default_handler
        self.requests = WorkerPool(REQUEST_WORKERS, "codex-request")
        self.tools = WorkerPool(TOOL_WORKERS, "codex-tool")
        self.timers = Timers("codex-tool-timeouts")
        #: The asyncio client's loop, for handlers that return awaitables (set by AsyncCodex).
        self.loop: asyncio.AbstractEventLoop | None = None

    def dispatch(
        self,
        request: ServerRequest,
        handler: RequestHandler | None,
        tools: ToolRegistry | None,
    ) -> None:
        """Reader thread: queue the request for its handler. Never blocks on user code."""
        if request.method == TOOL_CALL and tools is not None:
            call = ToolCall.from_request(request)
            tool = tools.lookup(call.namespace, call.tool)
            if tool is not None and tool.timeout is not None:
                # The clock starts now, not when a worker is free: a call queued behind
                # handlers that overran theirs must still be answered in time.
                timer = self.timers.call_later(tool.timeout, partial(_timed_out, call, tool))
                request.add_settle_hook(partial(_cancel_timer, timer))
            queued = self.tools.submit(partial(self._run_tool, call, tool, tools))
        else:
            queued = self.requests.submit(
                partial(self._run_handler, request, handler or self.default_handler)
            )
        if not queued:  # closing: the request is (or is about to be) settled as moot
            request.settle("transport closed")

    def close(self) -> None:
        self.requests.close()
        self.tools.close()
        self.timers.close()

    # -- request handlers -----------------------------------------------------------------

    def _run_handler(self, request: ServerRequest, handler: RequestHandler) -> None:
        """Worker thread: ask the handler, then answer (or leave it deferred)."""
        if request.settled:
            return
        try:
            result = handler(request)
        except BaseException:  # SystemExit from user code too: codex waits for an answer
            log.exception("codex_notebook: the handler for %s raised; refusing", request.method)
            result = None
        if result is DEFER:
            return
        if inspect.isawaitable(result):
            self._await(result, partial(_answer, request), request=request)
            return
        _answer(request, result)

    # -- tool calls -----------------------------------------------------------------------

    def _run_tool(self, call: ToolCall, tool: Tool | None, tools: ToolRegistry) -> None:
        """Worker thread: run the called tool's handler (its timeout runs since dispatch)."""
        request = call.request
        if request.settled:
            return
        if tool is None:
            known = ", ".join(sorted(tools.names))
            message = f"there is no tool {call.qualified_name!r}; the tools are {known}"
            _respond_tool(call, ToolResult.error(message))
            return
        try:
            outcome = tool.handler(call)
        except BaseException as exc:  # SystemExit from user code too: the model waits
            log.info("codex_notebook: tool %s raised", call.qualified_name, exc_info=True)
            outcome = _failure(call, exc)
        if outcome is DEFER:
            return
        if inspect.isawaitable(outcome):
            self._await(outcome, partial(_respond_tool, call), request=request)
            return
        _respond_tool(call, outcome)

    # -- awaitables -----------------------------------------------------------------------

    def _await(
        self, awaitable: Awaitable[Any], then: Callable[[Any], None], *, request: ServerRequest
    ) -> None:
        """Run ``awaitable`` on the client's loop and pass its value (or None) to ``then``."""
        loop = self.loop
        if loop is None or loop.is_closed():
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never awaited: no "coroutine was never awaited" warning
            log.error(
                "codex_notebook: the handler for %s returned an awaitable, but no running "
                "AsyncCodex loop can await it; use a plain function with Codex",
                request.method,
            )
            then(None)
            return
        future = asyncio.run_coroutine_threadsafe(_await(awaitable), loop)
        request.add_settle_hook(partial(_cancel_future, future))

        def done(fut: Any) -> None:
            if fut.cancelled():
                # Cancelled by the settle hook above (then nothing is sent), or the coroutine
                # ended cancelled itself or with its loop: refuse rather than leave codex waiting.
                then(asyncio.CancelledError())
                return
            exc = fut.exception()
            if exc is not None:
                log.info("codex_notebook: an async handler for %s raised", request.method)
                then(exc)
            else:
                then(fut.result())

        future.add_done_callback(done)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _cancel_timer(timer: Timer, _request: ServerRequest) -> None:
    timer.cancel()


def _cancel_future(future: Future[Any], _request: ServerRequest) -> None:
    future.cancel()


def _answer(request: ServerRequest, result: Any) -> None:
    """Send a request handler's result, or the safe default when it gave none."""
    if isinstance(result, BaseException):
        result = None  # an async handler raised: refuse, as for a sync one
    if request.settled:
        return  # answered meanwhile, or moot: nothing to send
    if result is not None and result is not DEFER:
        try:
            request.respond(result)
            return
        except InvalidArgumentError:
            log.exception(
                "codex_notebook: the handler for %s returned a non-JSON answer; refusing",
                request.method,
            )
    refusal = default_response(request.method)
    if refusal is None:
        request.reject(-32601, f"codex_notebook does not handle {request.method}")
    else:
        request.respond(refusal)


def _respond_tool(call: ToolCall, outcome: Any) -> None:
    """Answer a tool call with a handler's outcome (anything unusable becomes an ERROR)."""
    if isinstance(outcome, BaseException):
        outcome = _failure(call, outcome)
    try:
        result = as_result(outcome)
    except InvalidArgumentError as exc:
        log.error("codex_notebook: tool %s: %s", call.qualified_name, exc)
        result = ToolResult.error(f"{call.qualified_name} returned an unusable answer")
    try:
        call.respond(result)
    except InvalidArgumentError:  # pragma: no cover - ToolResult.to_wire is always JSON
        log.exception("codex_notebook: could not answer tool %s", call.qualified_name)


def _failure(call: ToolCall, exc: BaseException) -> ToolResult:
    """The model's answer for a handler that raised; it goes to the model provider, so
    credentials quoted in the exception (a DSN's password, a key) are blanked."""
    return ToolResult.error(redact(f"{call.qualified_name} failed: {type(exc).__name__}: {exc}"))


def _timed_out(call: ToolCall, tool: Tool) -> None:
    """Timer thread: the handler is still running; tell the model so (once)."""
    name = call.qualified_name
    if call.respond(ToolResult.error(f"{name} timed out after {tool.timeout:g} s")):
        log.warning("codex_notebook: tool %s timed out after %s s", name, tool.timeout)
