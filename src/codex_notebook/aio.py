"""The asyncio client: ``AsyncCodex`` -> ``AsyncThread`` -> ``AsyncTurnHandle``.

Native asyncio: responses arrive through ``asyncio.wrap_future`` and turn
events through wakers the reader thread schedules with
``call_soon_threadsafe``; no executor thread is parked per waiting stream.
Use the caller's ``asyncio.timeout()`` for deadlines.  Works with top-level
``await`` in a notebook (never patch the kernel's loop).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import BaseModel

from ._core import (
    ClientCore,
    ClientFace,
    InputLike,
    ThreadFace,
    TurnCore,
    TurnFace,
    output_model,
    thread_params,
    turn_id_of,
    turn_params,
)
from .errors import TransportClosedError
from .messages import Notification
from .results import TurnResult
from .router import RequestHandler, resolve_waiter
from .transport import Transport

__all__ = ["AsyncCodex", "AsyncThread", "AsyncTurnHandle"]


class AsyncCodex(ClientFace):
    """Asyncio face of one ``codex app-server`` process.

    ``async with AsyncCodex() as codex:`` or ``codex = await AsyncCodex().start()``.
    ``url=`` / ``token=`` / ``token_file=``: a running server, as for ``Codex``.
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
        url: str | None = None,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self._core = ClientCore(
            codex_bin=codex_bin,
            codex_home=codex_home,
            cwd=cwd,
            env=env,
            config=config,
            approval_handler=approval_handler,
            transport=transport,
            url=url,
            token=token,
            token_file=token_file,
        )

    async def start(self) -> AsyncCodex:
        """Spawn the server and complete the initialize handshake."""
        try:
            result = await asyncio.wrap_future(self._core.start_initialize())
        except TransportClosedError as exc:
            self._core.close()
            raise self._core.startup_error(exc) from exc
        except BaseException:
            self._core.close()
            raise
        self._core.finish_initialize(result)
        return self

    async def __aenter__(self) -> AsyncCodex:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the server (the blocking part runs in a thread so the loop stays free)."""
        await asyncio.to_thread(self._core.close)

    async def request(self, method: str, params: Any = None) -> Any:
        self._core.check_open()
        future = self._core.router.start_request(method, params)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            self._core.router.forget_request(future)
            raise

    async def notifications(self) -> AsyncIterator[Notification]:
        """Non-turn notifications (bounded, drop-oldest); ends when the client closes."""
        channel = self._core.router.channel
        loop = asyncio.get_running_loop()
        while True:
            item = channel.get_nowait()
            if item is not None:
                yield item
                continue
            if channel.error is not None:
                return
            future: asyncio.Future[None] = loop.create_future()

            def waker(fut: asyncio.Future[None] = future) -> None:
                loop.call_soon_threadsafe(resolve_waiter, fut)

            channel.add_waker(waker)
            if len(channel) or channel.error is not None:
                channel.remove_waker(waker)
                continue
            try:
                await future
            finally:
                channel.remove_waker(waker)

    async def thread_start(
        self,
        model: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        sandbox: str | None = None,
        approval_policy: str | None = None,
        **options: Any,
    ) -> AsyncThread:
        params = thread_params(
            model=model, cwd=cwd, sandbox=sandbox, approval_policy=approval_policy, **options
        )
        return AsyncThread(self, await self.request("thread/start", params))

    async def thread_resume(self, thread_id: str, **overrides: Any) -> AsyncThread:
        params = {"threadId": thread_id, **thread_params(**overrides)}
        return AsyncThread(self, await self.request("thread/resume", params))

    async def thread_fork(self, thread_id: str, **overrides: Any) -> AsyncThread:
        params = {"threadId": thread_id, **thread_params(**overrides)}
        return AsyncThread(self, await self.request("thread/fork", params))

    async def thread_read(self, thread_id: str, *, include_turns: bool = False) -> dict[str, Any]:
        result = await self.request(
            "thread/read", {"threadId": thread_id, "includeTurns": include_turns}
        )
        return dict(result) if isinstance(result, dict) else {}


class AsyncThread(ThreadFace):
    """A conversation, driven from the event loop."""

    def __init__(self, codex: AsyncCodex, response: Any) -> None:
        super().__init__(response)
        self._codex = codex

    async def turn(
        self,
        input: InputLike,
        *,
        output_schema: type[BaseModel] | Mapping[str, Any] | None = None,
        request_handler: RequestHandler | None = None,
        **options: Any,
    ) -> AsyncTurnHandle:
        params = turn_params(self.id, input, output_schema=output_schema, **options)
        turn_id = turn_id_of(await self._codex.request("turn/start", params))
        turn_log = self._codex._core.router.claim(turn_id, self.id, request_handler)
        core = TurnCore(self._codex._core, turn_id, self.id, turn_log, output_model(output_schema))
        return AsyncTurnHandle(self._codex, core)

    async def run(self, input: InputLike, **options: Any) -> TurnResult[Any]:
        return await (await self.turn(input, **options)).run()

    async def read(self, *, include_turns: bool = False) -> dict[str, Any]:
        return await self._codex.thread_read(self.id, include_turns=include_turns)

    async def fork(self, **overrides: Any) -> AsyncThread:
        return await self._codex.thread_fork(self.id, **overrides)


class AsyncTurnHandle(TurnFace):
    """One running (or finished) turn, awaited on the event loop."""

    def __init__(self, codex: AsyncCodex, core: TurnCore) -> None:
        super().__init__(core)
        self._codex = codex

    async def stream(self) -> AsyncIterator[Notification]:
        cursor = self._core.log.cursor()
        while (batch := await cursor.anext_batch()) is not None:
            for event in batch:
                yield event

    async def stream_text(self) -> AsyncIterator[str]:
        async for event in self.stream():
            if event.method == "item/agentMessage/delta":
                yield str(event.params_dict.get("delta", ""))

    async def run(self) -> TurnResult[Any]:
        """Await the end of the turn; wrap in ``asyncio.timeout()`` for a deadline."""
        cursor = self._core.log.cursor()
        cursor.position = len(self._core.log.events)  # only the end matters, not the replay
        while not self._core.done:
            batch = await cursor.anext_batch()
            if batch is None:
                break
        return self._core.result()

    async def interrupt(self) -> None:
        if not self.done():
            await self._codex.request("turn/interrupt", self._core.interrupt_params())

    async def steer(self, input: InputLike) -> None:
        await self._codex.request("turn/steer", self._core.steer_params(input))
