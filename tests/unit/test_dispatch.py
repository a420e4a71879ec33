"""Answering server requests off the reader thread: the router fed line by line, no process."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from codex_notebook import Tool, ToolCall, Toolset
from codex_notebook._dispatch import TOOL_WORKERS
from codex_notebook._workers import Timers
from codex_notebook.router import Router
from codex_notebook.tools import ToolRegistry
from tests.waiting import eventually

THREAD = "th"


def tool_call(request_id: int, tool: str = "t", turn: str = "turn-1") -> bytes:
    params = {
        "threadId": THREAD,
        "turnId": turn,
        "callId": f"call_{request_id}",
        "namespace": "kernel",
        "tool": tool,
        "arguments": {},
    }
    return orjson.dumps({"id": request_id, "method": "item/tool/call", "params": params})


def answers(sent: list[dict[str, Any]]) -> dict[Any, str]:
    """Request id -> the text of the tool answer sent for it."""
    out: dict[Any, str] = {}
    for message in sent:
        items = message.get("result", {}).get("contentItems", [])
        out[message["id"]] = "".join(item.get("text", "") for item in items)
    return out


@pytest.fixture
def sent() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def router(sent: list[dict[str, Any]]) -> Iterator[Router]:
    router = Router(sent.append, default_handler=lambda request: None)
    yield router
    router.dispatcher.close()


def with_tools(router: Router, *tools: Tool) -> None:
    router.set_tools(THREAD, ToolRegistry(Toolset("kernel", "k", list(tools))))


def test_a_tool_call_queued_behind_busy_workers_still_times_out(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    """Every worker is held by a handler that overran its timeout: the next call, still in
    the queue, must be answered when its own timeout runs out, not when a worker frees up."""
    release = threading.Event()

    def stuck(call: ToolCall) -> str:
        release.wait(30)
        return "late"

    with_tools(router, Tool("t", "t", {}, stuck, timeout=0.3))
    try:
        for request_id in range(TOOL_WORKERS + 1):
            router.feed(tool_call(request_id))
        assert eventually(lambda: len(sent) == TOOL_WORKERS + 1, 5.0), (
            f"only {len(sent)} of {TOOL_WORKERS + 1} calls were answered"
        )
        assert set(answers(sent).values()) == {"ERROR: kernel.t timed out after 0.3 s"}
    finally:
        release.set()
    assert router.dispatcher.tools.wait_idle(5)
    assert len(sent) == TOOL_WORKERS + 1  # the late returns were dropped


def approval(request_id: int, turn: str = "turn-1") -> bytes:
    params = {"threadId": THREAD, "turnId": turn, "itemId": "i", "command": "ls"}
    return orjson.dumps(
        {"id": request_id, "method": "item/commandExecution/requestApproval", "params": params}
    )


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running on its own thread, as an AsyncCodex's loop is for the workers."""
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    runner.join(5)
    loop.close()


def test_a_coroutine_handler_that_ends_cancelled_gets_the_safe_refusal(
    router: Router, sent: list[dict[str, Any]], loop: asyncio.AbstractEventLoop
) -> None:
    """A task the handler awaited was cancelled (or the loop is shutting down): the request
    must still be answered, or codex waits for it forever."""

    async def handler(request: Any) -> dict[str, str]:
        raise asyncio.CancelledError

    router.dispatcher.loop = loop
    router.dispatcher.default_handler = handler
    router.feed(approval(0))
    assert eventually(lambda: bool(sent)), "the request was left unanswered"
    assert sent == [{"id": 0, "result": {"decision": "decline"}}]


def test_a_coroutine_tool_that_ends_cancelled_is_answered_with_an_error(
    router: Router, sent: list[dict[str, Any]], loop: asyncio.AbstractEventLoop
) -> None:
    async def cancelled(call: ToolCall) -> str:
        raise asyncio.CancelledError

    router.dispatcher.loop = loop
    with_tools(router, Tool("t", "t", {}, cancelled, timeout=None))
    router.feed(tool_call(0))
    assert eventually(lambda: bool(sent)), "the call was left unanswered"
    assert answers(sent)[0].startswith("ERROR: kernel.t failed: CancelledError")


def test_a_handler_that_raises_system_exit_is_answered_and_keeps_its_worker(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    def exits(call: ToolCall) -> str:
        raise SystemExit(1)  # e.g. user code calling sys.exit() or argparse failing

    with_tools(router, Tool("t", "t", {}, exits), Tool("ok", "ok", {}, lambda call: "fine"))
    for request_id in range(TOOL_WORKERS):
        router.feed(tool_call(request_id))
    router.feed(tool_call(TOOL_WORKERS, tool="ok"))
    assert eventually(lambda: len(sent) == TOOL_WORKERS + 1, 5.0), (
        f"only {len(sent)} of {TOOL_WORKERS + 1} calls were answered"
    )
    texts = answers(sent)
    assert texts[TOOL_WORKERS] == "fine"
    assert texts[0] == "ERROR: kernel.t failed: SystemExit: 1"


def test_a_request_handler_that_raises_system_exit_gets_the_safe_refusal(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    def exits(request: Any) -> None:
        raise SystemExit(1)

    router.dispatcher.default_handler = exits
    router.feed(approval(0))
    assert eventually(lambda: bool(sent)), "the request was left unanswered"
    assert sent == [{"id": 0, "result": {"decision": "decline"}}]


def test_an_endless_timer_does_not_stop_the_others() -> None:
    """``Tool(timeout=float("inf"))`` (or 1e12) must not kill the one timer thread: every
    later tool timeout of the client would silently stop working."""
    timers = Timers("test-timers")
    fired = threading.Event()
    try:
        timers.call_later(float("inf"), lambda: None)
        time.sleep(0.05)  # the timer thread now waits for the endless one
        timers.call_later(0.05, fired.set)
        assert fired.wait(5), "the timer thread died"
    finally:
        timers.close()


def test_a_tool_error_sent_to_the_model_carries_no_credentials(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    """The ERROR answer the library writes from a handler's exception goes to the model
    provider: a connection error that quotes a password or a key must not take it along."""

    def connect(call: ToolCall) -> str:
        raise RuntimeError("cannot connect with password=hunter2hunter2 (key sk-live-0123456789)")

    with_tools(router, Tool("t", "t", {}, connect))
    router.feed(tool_call(0))
    assert eventually(lambda: bool(sent))
    text = answers(sent)[0]
    assert text.startswith("ERROR: kernel.t failed: RuntimeError: cannot connect")
    assert "hunter2hunter2" not in text and "sk-live-0123456789" not in text
