"""The asyncio client against the scripted fake app-server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from codex_notebook import (
    AsyncCodex,
    CodexError,
    CodexTimeoutError,
    InvalidArgumentError,
    ServerRequest,
    TransportClosedError,
)
from codex_notebook.transport_ws import WebSocketTransport
from tests.fakes.ws_stub import StubConnection, StubServer

T = TypeVar("T")


def run(main: Callable[[AsyncCodex], Awaitable[T]], fake_bin: str, **kwargs: Any) -> T:
    async def outer() -> T:
        async with AsyncCodex(codex_bin=fake_bin, **kwargs) as codex:
            return await asyncio.wait_for(main(codex), 30)

    return asyncio.run(outer())


def deltas(n: int) -> str:
    return "".join(f"d{i} " for i in range(n))


def test_a_turn_streams_and_returns_its_result(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> tuple[str, str]:
        turn = await (await codex.thread_start()).turn("DELTAS:4")
        text = "".join([t async for t in turn.stream_text()])
        return text, (await turn.run()).text

    assert run(main, fake_bin) == (deltas(4), deltas(4))


def test_using_the_client_before_start_says_what_to_do(fake_bin: str) -> None:
    async def main() -> None:
        await AsyncCodex(codex_bin=fake_bin).thread_start()

    with pytest.raises(CodexError, match=r"async with AsyncCodex\(\) as codex"):
        asyncio.run(main())


def test_turn_start_timeout_is_a_codex_timeout(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> None:
        thread = await codex.thread_start()
        # the response comes after turn/completed, >= 600 ms from now: the timeout always wins
        await thread.turn("COMPLETE_FIRST DELTAS:3 DELAY_MS:300", timeout=0.05)

    with pytest.raises(CodexTimeoutError):
        run(main, fake_bin)


def test_run_timeout_leaves_the_turn_running(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> str:
        turn = await (await codex.thread_start()).turn("HANG DELTAS:1")
        with pytest.raises(CodexTimeoutError):
            await turn.run(timeout=0.2)
        assert not await turn.wait(0.05)
        await turn.interrupt()
        return (await turn.run(5)).status

    assert run(main, fake_bin) == "interrupted"


def test_thread_list_and_set_name(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> list[Any]:
        thread = await codex.thread_start()
        await thread.set_name("async analysis")
        listed = (await codex.thread_list(limit=5))["data"]
        return [t["name"] for t in listed if t["id"] == thread.id]

    assert run(main, fake_bin) == ["async analysis"]


def test_unknown_options_are_rejected_by_name(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> None:
        await codex.thread_start(developer_instruction="x")

    with pytest.raises(InvalidArgumentError, match="Did you mean developer_instructions="):
        run(main, fake_bin)


def test_a_coroutine_approval_handler_is_awaited_on_the_loop(fake_bin: str) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def approve(request: ServerRequest) -> dict[str, str]:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0.01)
        return {"decision": "acceptForSession"}

    async def main(codex: AsyncCodex) -> tuple[str, bool]:
        turn = await (await codex.thread_start()).turn("APPROVAL DELTAS:1", request_handler=approve)
        return (await turn.run(10)).text, loops == [asyncio.get_running_loop()]

    text, same_loop = run(main, fake_bin)
    assert text.startswith("approval:acceptForSession ")
    assert same_loop


def test_notifications_end_after_the_timeout(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> list[str]:
        return [n.method async for n in codex.notifications(timeout=0.3)]

    assert "configWarning" in run(main, fake_bin)


def test_server_death_fails_an_awaiting_run(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> None:
        turn = await (await codex.thread_start()).turn("DIE_AFTER:1 DELTAS:3")
        await turn.run()

    with pytest.raises(TransportClosedError, match="model stream broke"):
        run(main, fake_bin)


def test_wait_is_woken_once_at_the_end(fake_bin: str) -> None:
    async def main(codex: AsyncCodex) -> int:
        turn = await (await codex.thread_start()).turn("DELTAS:200 DELAY_MS:1")

        class Counting(list):  # type: ignore[type-arg]
            registered = 0

            def append(self, waker: Any) -> None:
                Counting.registered += 1
                super().append(waker)

        turn._core.log._end_wakers = Counting()
        assert await turn.wait(10)
        return Counting.registered

    assert run(main, fake_bin) == 1  # one waiter registered, woken once: not per event


def test_start_leaves_the_event_loop_free_while_it_connects() -> None:
    """Connecting to a remote server that is slow to answer the WebSocket handshake must not
    freeze the loop (the notebook's own loop, with top-level await): other tasks keep
    running, and a deadline around ``start()`` fires on time."""
    asked, release = threading.Event(), threading.Event()

    def handler(conn: StubConnection) -> None:
        conn.read_request()
        asked.set()
        release.wait(10)  # the handshake answer never comes in time

    async def main(url: str) -> int:
        codex = AsyncCodex(transport=WebSocketTransport(url, open_timeout=2))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(codex.start(), 0.3)
        task.cancel()
        await codex.close()
        return ticks

    with StubServer(handler) as server:
        try:
            ticks = asyncio.run(main(server.url))
        finally:
            release.set()
    assert asked.is_set()
    assert ticks >= 5  # the loop ran while start() connected (it did not wait for it)


def test_starting_a_running_client_again_is_refused_without_closing_it(fake_bin: str) -> None:
    """``await codex.start()`` re-run in a notebook, or ``async with codex:`` after it: the
    mistake is reported, and the running client is left as it was."""

    async def main() -> str:
        codex = await AsyncCodex(codex_bin=fake_bin).start()
        try:
            with pytest.raises(CodexError, match="already started"):
                await codex.start()
            assert not codex.closed
            return (await (await codex.thread_start()).run("DELTAS:1", timeout=10)).text
        finally:
            await codex.close()

    assert asyncio.run(main()) == deltas(1)
