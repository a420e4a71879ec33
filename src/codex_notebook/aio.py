"""The asyncio client: ``AsyncCodex`` -> ``AsyncThread`` -> ``AsyncTurnHandle``.

The same methods and parameters as the sync client (a test compares them),
awaited instead of blocking.  Native asyncio: responses arrive through
``asyncio.wrap_future`` and turn events through wakers the reader thread
schedules with ``call_soon_threadsafe``; no executor thread is parked per
waiting stream.  ``timeout=`` works as on the sync face; the caller's
``asyncio.timeout()`` / ``wait_for`` works too.  Usable with top-level
``await`` in a notebook (never patch the kernel's loop).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from pydantic import BaseModel

from ._core import (
    ClientCore,
    ClientFace,
    InputLike,
    ThreadFace,
    ThreadSetup,
    ToolsArg,
    TurnCore,
    TurnFace,
    thread_list_params,
)
from ._params import turn_params
from .client import REQUEST_TIMEOUT_S, STARTUP_TIMEOUT_S
from .errors import CodexTimeoutError, TransportClosedError
from .messages import Notification
from .policies import Approval, Sandbox
from .results import TurnResult
from .router import RequestHandler
from .transport import Transport

__all__ = ["AsyncCodex", "AsyncThread", "AsyncTurnHandle"]

T = TypeVar("T")

_START_HINT = (
    "Use `async with AsyncCodex() as codex:` or `codex = await AsyncCodex().start()` "
    "before calling it."
)


async def _within(awaitable: Awaitable[T], timeout: float | None, what: str) -> T:
    """Await with an optional deadline; a timeout is a CodexTimeoutError (a TimeoutError)."""
    if timeout is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:
        raise CodexTimeoutError(f"{what}: nothing within {timeout} s") from None


class AsyncCodex(ClientFace):
    """Asyncio face of one ``codex app-server`` process.

    ``async with AsyncCodex() as codex:`` or ``codex = await AsyncCodex().start()``.
    Handlers (approval, tools) may be coroutine functions: they are awaited on
    the loop that started the client.  ``url=`` / ``token=`` / ``token_file=``:
    a running server, as for ``Codex``.
    """

    def __init__(
        self,
        codex_bin: str | os.PathLike[str] | None = None,
        codex_home: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        approval_handler: RequestHandler | None = None,
        *,
        experimental_api: bool = False,
        url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        request_timeout: float | None = REQUEST_TIMEOUT_S,
    ) -> None:
        self._bind(
            ClientCore(
                codex_bin=codex_bin,
                codex_home=codex_home,
                cwd=cwd,
                env=env,
                config=config,
                approval_handler=approval_handler,
                transport=transport,
                experimental_api=experimental_api,
                url=url,
                token=token,
                token_file=token_file,
                start_hint=_START_HINT,
            )
        )
        self.startup_timeout = startup_timeout
        self.request_timeout = request_timeout

    async def start(self) -> AsyncCodex:
        """Spawn the server and complete the initialize handshake."""
        self._core.mark_started()  # a second start() is refused and leaves this one running
        self._core.router.dispatcher.loop = asyncio.get_running_loop()
        try:
            # off the loop: spawning, or connecting to a remote server (up to its open
            # timeout), blocks; a deadline around start() must still fire on time
            future = await asyncio.to_thread(self._core.start_initialize)
            result = await self._wait(future, self.startup_timeout, "initialize")
            self._core.finish_initialize(result)
        except TransportClosedError as exc:
            self._core.close()
            raise self._core.startup_error(exc) from exc
        except BaseException:
            self._core.close()
            raise
        return self

    async def __aenter__(self) -> AsyncCodex:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the server (the blocking part runs in a thread so the loop stays free)."""
        await asyncio.to_thread(self._close_core)

    # -- requests ---------------------------------------------------------------------
    async def _wait(self, future: Future[Any], timeout: float | None, what: str) -> Any:
        try:
            return await _within(asyncio.wrap_future(future), timeout, what)
        except BaseException:  # timeout or cancellation: nobody waits for the answer now
            self._core.router.forget_request(future)
            raise

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Send any JSON-RPC request and return its result (the raw escape hatch)."""
        self._core.check_open()
        future = self._core.router.start_request(method, params)
        return await self._wait(
            future, timeout if timeout is not None else self.request_timeout, method
        )

    async def notifications(self, *, timeout: float | None = None) -> AsyncIterator[Notification]:
        """Non-turn notifications (bounded, drop-oldest).

        Ends when the client closes, or when nothing arrives within ``timeout``.
        """
        channel = self._core.router.channel
        while True:
            try:
                item = await _within(channel.get_async(), timeout, "notifications")
            except CodexTimeoutError:
                return
            if item is None:
                return
            yield item

    # -- threads ----------------------------------------------------------------------
    async def _thread(self, setup: ThreadSetup, timeout: float | None) -> AsyncThread:
        response = await self.request(setup.method, setup.params, timeout=timeout)
        thread_id, tool_names = self._core.adopt_thread(setup, response)
        return AsyncThread(self, thread_id, response, tool_names)

    async def thread_start(
        self,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        ephemeral: bool | None = None,
        tools: ToolsArg = None,
        timeout: float | None = None,
        **options: Any,
    ) -> AsyncThread:
        """Start a conversation (see :meth:`codex_notebook.Codex.thread_start`)."""
        setup = self._core.thread_setup(
            "thread/start",
            model=model,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            ephemeral=ephemeral,
            tools=tools,
            options=options,
        )
        return await self._thread(setup, timeout)

    async def thread_resume(
        self,
        thread_id: str,
        *,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        config: Mapping[str, Any] | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        tools: ToolsArg = None,
        include_turns: bool = False,
        timeout: float | None = None,
        **options: Any,
    ) -> AsyncThread:
        """Continue a stored conversation (see :meth:`codex_notebook.Codex.thread_resume`)."""
        setup = self._core.thread_setup(
            "thread/resume",
            thread_id=thread_id,
            model=model,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            tools=tools,
            include_turns=include_turns,
            options=options,
        )
        return await self._thread(setup, timeout)

    async def thread_fork(
        self,
        thread_id: str,
        *,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        config: Mapping[str, Any] | None = None,
        base_instructions: str | None = None,
        developer_instructions: str | None = None,
        ephemeral: bool | None = None,
        tools: ToolsArg = None,
        include_turns: bool = False,
        timeout: float | None = None,
        **options: Any,
    ) -> AsyncThread:
        """Branch a conversation into a new thread (it keeps the source's tools)."""
        setup = self._core.thread_setup(
            "thread/fork",
            thread_id=thread_id,
            model=model,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            config=config,
            base_instructions=base_instructions,
            developer_instructions=developer_instructions,
            ephemeral=ephemeral,
            tools=tools,
            include_turns=include_turns,
            options=options,
        )
        return await self._thread(setup, timeout)

    async def thread_read(
        self, thread_id: str, *, include_turns: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """What the server stores about a thread (``include_turns``: with its history)."""
        params = {"threadId": thread_id, "includeTurns": include_turns}
        result = await self.request("thread/read", params, timeout=timeout)
        return dict(result) if isinstance(result, dict) else {}

    async def thread_list(self, *, timeout: float | None = None, **options: Any) -> dict[str, Any]:
        """Stored threads (``options``: thread/list params by snake_case name, e.g. limit=)."""
        result = await self.request("thread/list", thread_list_params(options), timeout=timeout)
        return dict(result) if isinstance(result, dict) else {}


class AsyncThread(ThreadFace):
    """A conversation, driven from the event loop."""

    def __init__(
        self, codex: AsyncCodex, thread_id: str, response: Any, tool_names: frozenset[str] | None
    ) -> None:
        super().__init__(thread_id, response, tool_names)
        self._codex = codex

    async def turn(
        self,
        input: InputLike,
        *,
        output_schema: type[BaseModel] | Mapping[str, Any] | None = None,
        request_handler: RequestHandler | None = None,
        timeout: float | None = None,
        model: str | None = None,
        effort: str | None = None,
        summary: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: Sandbox | None = None,
        approval_policy: Approval | None = None,
        **options: Any,
    ) -> AsyncTurnHandle:
        """Start a turn; returns once the server accepted it (see ``Thread.turn``)."""
        params = turn_params(
            self.id,
            input,
            model=model,
            effort=effort,
            summary=summary,
            cwd=cwd,
            sandbox=sandbox,
            approval_policy=approval_policy,
            output_schema=output_schema,
            options=options,
        )
        core = self._codex._core
        core.router.begin_turn(self.id, request_handler)
        try:
            response = await self._codex.request("turn/start", params, timeout=timeout)
        except BaseException:
            core.router.abandon_turn(self.id)
            raise
        return AsyncTurnHandle(
            self._codex, core.turn_started(self.id, response, request_handler, output_schema)
        )

    async def run(
        self, input: InputLike, *, timeout: float | None = None, **options: Any
    ) -> TurnResult[Any]:
        """``(await turn(input, **options)).run(timeout)``."""
        return await (await self.turn(input, **options)).run(timeout)

    async def read(
        self, *, include_turns: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        return await self._codex.thread_read(self.id, include_turns=include_turns, timeout=timeout)

    async def fork(self, **overrides: Any) -> AsyncThread:
        """``await codex.thread_fork(thread.id, **overrides)``."""
        return await self._codex.thread_fork(self.id, **overrides)

    async def set_name(self, name: str, *, timeout: float | None = None) -> None:
        """Give the thread a name (shown by codex's own thread lists)."""
        await self._codex.request(
            "thread/name/set", {"threadId": self.id, "name": name}, timeout=timeout
        )


class AsyncTurnHandle(TurnFace):
    """One running (or finished) turn, awaited on the event loop."""

    def __init__(self, codex: AsyncCodex, core: TurnCore) -> None:
        super().__init__(core)
        self._codex = codex

    async def stream(self, *, timeout: float | None = None) -> AsyncIterator[Notification]:
        """This turn's events, from the first, ending after ``turn/completed``.

        ``timeout`` bounds the wait for each next event (``CodexTimeoutError``).
        """
        cursor = self.cursor()  # one async generator, not two: this loop runs per event
        while True:
            if timeout is None:
                span = await cursor._anext_range()
            else:
                span = await _within(cursor._anext_range(), timeout, f"turn {self.id}")
            if span is None:
                return
            for event in cursor.log.iter_notifications(*span):
                yield event

    async def stream_text(self, *, timeout: float | None = None) -> AsyncIterator[str]:
        """Only the agent's message text, delta by delta."""
        async for event in self.stream(timeout=timeout):
            if event.method == "item/agentMessage/delta":
                yield str(event.params_dict.get("delta", ""))

    async def wait(self, timeout: float | None = None) -> bool:
        """Await the end of the turn (or transport death), woken once. False on timeout."""
        try:
            await _within(self._core.log.wait_done_async(), timeout, f"turn {self.id}")
        except CodexTimeoutError:
            return False
        return True

    async def run(self, timeout: float | None = None) -> TurnResult[Any]:
        """Await the end and return the result (the same object every time)."""
        if not await self.wait(timeout):
            raise CodexTimeoutError(
                f"turn {self.id} did not finish within {timeout} s (it is still running; "
                "call interrupt() to stop it)"
            )
        return self._core.result()

    async def interrupt(self, *, timeout: float | None = None) -> None:
        """Ask the server to stop this turn; it then completes as ``interrupted``."""
        if not self.done():
            await self._codex.request(
                "turn/interrupt", self._core.interrupt_params(), timeout=timeout
            )

    async def steer(self, input: InputLike, *, timeout: float | None = None) -> None:
        """Add input to this running turn."""
        await self._codex.request("turn/steer", self._core.steer_params(input), timeout=timeout)
