"""Client tools end to end against the scripted fake app-server (``DYNTOOL`` directives).

The fake answers like codex 0.163/0.171: ``item/started`` (dynamicToolCall), the
``item/tool/call`` request, ``item/completed``; the agent message then quotes each answer as
``tool:<name>:<ok|failed>:<text> ``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_notebook import (
    DEFER,
    AsyncCodex,
    Codex,
    InvalidArgumentError,
    Tool,
    ToolCall,
    ToolResult,
    Toolset,
    TransportClosedError,
)
from tests.fakes import fake_codex_bin
from tests.waiting import eventually

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}}


def kernel(*tools: Tool) -> Toolset:
    return Toolset("kernel", "The user's Python process.", list(tools))


def echo(call: ToolCall) -> ToolResult:
    return ToolResult.text(f"echo {call.arguments}")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def received(tmp_path: Path) -> Path:
    return tmp_path / "received.jsonl"


@pytest.fixture
def tool_bin(tmp_path: Path, home: Path, received: Path) -> str:
    return fake_codex_bin(tmp_path, CODEX_HOME=str(home), FAKE_CODEX_LOG=str(received))


@pytest.fixture
def codex(tool_bin: str) -> Iterator[Codex]:
    with Codex(codex_bin=tool_bin, experimental_api=True) as client:
        yield client


def answers_to(received: Path, method_id: int) -> list[str]:
    return [
        line
        for line in received.read_text().splitlines()
        if re.search(rf'"id":\s*{method_id}\s*,\s*"(result|error)"', line)
    ]


def test_initialize_asks_for_the_experimental_api_only_when_told(
    tmp_path: Path, received: Path
) -> None:
    binary = fake_codex_bin(tmp_path, FAKE_CODEX_LOG=str(received))
    with Codex(codex_bin=binary):
        pass
    assert "experimentalApi" not in received.read_text()
    with Codex(codex_bin=binary, experimental_api=True) as codex:
        assert codex.experimental_api
    assert '"experimentalApi":true' in received.read_text().replace(" ", "")


def test_tools_need_the_experimental_api_and_say_how_to_enable_it(tool_bin: str) -> None:
    with (
        Codex(codex_bin=tool_bin) as codex,
        pytest.raises(InvalidArgumentError, match=r"Codex\(experimental_api=True\)"),
    ):
        codex.thread_start(tools=kernel(Tool("echo", "e", SCHEMA, echo)))


def test_a_tool_call_reaches_its_handler_and_the_answer_the_model(codex: Codex) -> None:
    seen: list[ToolCall] = []

    def handler(call: ToolCall) -> str:
        seen.append(call)
        return f"x is {call.arguments['x']}"

    thread = codex.thread_start(tools=kernel(Tool("show", "s", SCHEMA, handler)))
    result = thread.run('DYNTOOL:kernel.show ARGS:{"x":42} DELTAS:1', timeout=10)
    assert result.text.startswith("tool:kernel.show:ok:x is 42 ")
    (call,) = seen
    assert (call.thread_id, call.namespace, call.tool) == (thread.id, "kernel", "show")
    assert call.turn_id == result.id and call.call_id.startswith("call_")
    (item,) = result.items_of_type("dynamicToolCall")
    assert item["success"] is True and item["status"] == "completed"


def test_handlers_run_off_the_reader_thread(codex: Codex) -> None:
    names: list[str] = []

    def handler(call: ToolCall) -> str:
        names.append(threading.current_thread().name)
        return "ok"

    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, handler)))
    thread.run("DYNTOOL:kernel.t DELTAS:1", timeout=10)
    assert names and names[0].startswith("codex-tool-")


def test_a_tool_call_is_answered_exactly_once(codex: Codex, received: Path) -> None:
    def answers_twice(call: ToolCall) -> str:
        assert call.respond("first")
        return "second"  # dropped: already answered

    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, answers_twice)))
    assert thread.run("DYNTOOL:kernel.t DELTAS:1", timeout=10).text.startswith(
        "tool:kernel.t:ok:first "
    )
    assert len(answers_to(received, 0)) == 1


def test_a_handler_exception_becomes_an_error_answer(codex: Codex) -> None:
    def broken(call: ToolCall) -> str:
        raise KeyError("df")

    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, broken)))
    result = thread.run("DYNTOOL:kernel.t DELTAS:1", timeout=10)
    assert result.text.startswith("tool:kernel.t:failed:ERROR: kernel.t failed: KeyError: 'df' ")
    assert result.items_of_type("dynamicToolCall")[0]["success"] is False


def test_a_slow_handler_is_answered_with_a_timeout_error_once(codex: Codex, received: Path) -> None:
    finished = threading.Event()

    def slow(call: ToolCall) -> str:
        time.sleep(1.0)
        finished.set()
        return "too late"

    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, slow, timeout=0.2)))
    result = thread.run("DYNTOOL:kernel.t DELTAS:1", timeout=10)
    assert result.text.startswith("tool:kernel.t:failed:ERROR: kernel.t timed out after 0.2 s ")
    assert finished.wait(5)
    time.sleep(0.1)  # the late return had its chance to be (wrongly) sent
    assert len(answers_to(received, 0)) == 1


def test_an_unusable_return_value_becomes_an_error_answer(codex: Codex) -> None:
    thread = codex.thread_start(
        tools=kernel(Tool("t", "t", SCHEMA, lambda call: 42))  # type: ignore[arg-type,return-value]
    )
    text = thread.run("DYNTOOL:kernel.t DELTAS:1", timeout=10).text
    assert text.startswith("tool:kernel.t:failed:ERROR: kernel.t returned an unusable answer ")


def test_a_call_of_a_tool_without_a_handler_names_the_known_tools(codex: Codex) -> None:
    declared = kernel(Tool("a", "a", SCHEMA, echo), Tool("b", "b", SCHEMA, echo))
    thread = codex.thread_start(tools=declared)
    resumed = codex.thread_resume(thread.id, tools=kernel(Tool("a", "a", SCHEMA, echo)))
    text = resumed.run("DYNTOOL:kernel.b DELTAS:1", timeout=10).text
    assert text.startswith(
        "tool:kernel.b:failed:ERROR: there is no tool 'kernel.b'; the tools are kernel.a "
    )


def test_a_thread_without_handlers_here_gets_the_safe_refusal(tmp_path: Path, home: Path) -> None:
    binary = fake_codex_bin(tmp_path, CODEX_HOME=str(home), FAKE_CODEX_STATE=str(tmp_path / "s"))
    with Codex(codex_bin=binary, experimental_api=True) as first:
        thread_id = first.thread_start(tools=kernel(Tool("t", "t", SCHEMA, echo))).id
    with Codex(codex_bin=binary) as second:  # e.g. another client, or after a restart
        thread = second.thread_resume(thread_id)
        assert thread.tool_names == {"kernel.t"}  # it has tools, but nobody here answers them
        text = thread.run("DYNTOOL:kernel.t DELTAS:1", timeout=10).text
    assert text.startswith("tool:kernel.t:failed:ERROR: this client provides no tools")


def test_concurrent_calls_run_concurrently(codex: Codex) -> None:
    together = threading.Barrier(3, timeout=5)  # breaks unless all three run at once

    def meet(call: ToolCall) -> str:
        together.wait()
        return "met"

    thread = codex.thread_start(tools=kernel(Tool("m", "m", SCHEMA, meet)))
    text = thread.run(
        "DYNTOOL:kernel.m DYNTOOL:kernel.m DYNTOOL:kernel.m DYNTOOL_PARALLEL DELTAS:1", timeout=10
    ).text
    assert text.startswith("tool:kernel.m:ok:met " * 3)


def test_a_deferred_call_is_answered_later_from_another_thread(codex: Codex) -> None:
    calls: list[ToolCall] = []

    def later(call: ToolCall) -> Any:
        calls.append(call)
        return DEFER

    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, later, timeout=None)))
    turn = thread.turn("DYNTOOL:kernel.t DELTAS:1")
    assert eventually(lambda: bool(calls))
    assert not turn.done()
    assert calls[0].respond(ToolResult.text("answered later"))
    assert turn.run(10).text.startswith("tool:kernel.t:ok:answered later ")


def test_interrupting_a_turn_settles_its_pending_call(codex: Codex, received: Path) -> None:
    calls: list[ToolCall] = []

    def later(call: ToolCall) -> Any:
        calls.append(call)
        return DEFER

    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, later, timeout=None)))
    turn = thread.turn("DYNTOOL:kernel.t DELTAS:1")
    assert eventually(lambda: bool(calls))
    turn.interrupt(timeout=5)
    result = turn.run(10)
    assert result.status == "interrupted"
    assert result.items_of_type("dynamicToolCall")[0]["status"] == "failed"
    assert calls[0].settled and calls[0].request.settled_reason == "turn ended"
    assert not calls[0].respond("too late")  # dropped, never sent
    assert answers_to(received, 0) == []


def test_transport_death_settles_a_pending_call(codex: Codex) -> None:
    calls: list[ToolCall] = []
    release = threading.Event()

    def blocking(call: ToolCall) -> str:
        calls.append(call)
        release.wait(10)
        return "after death"

    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, blocking)))
    turn = thread.turn("DYNTOOL:kernel.t DELTAS:1")
    assert eventually(lambda: bool(calls))
    os.kill(codex.pid or 0, signal.SIGKILL)
    with pytest.raises(TransportClosedError):
        turn.run(10)
    assert calls[0].settled and calls[0].request.settled_reason == "transport closed"
    release.set()
    assert codex.router.dispatcher.tools.wait_idle(5)  # the late answer went nowhere, quietly


def test_tool_names_are_known_for_started_resumed_and_forked_threads(codex: Codex) -> None:
    toolset = kernel(Tool("a", "a", SCHEMA, echo), Tool("b", "b", SCHEMA, echo))
    thread = codex.thread_start(tools=toolset)
    assert thread.tool_names == {"kernel.a", "kernel.b"}
    assert codex.thread_resume(thread.id).tool_names == {"kernel.a", "kernel.b"}
    assert codex.thread_fork(thread.id).tool_names == {"kernel.a", "kernel.b"}
    plain = codex.thread_start()
    assert plain.tool_names == frozenset()
    assert codex.thread_resume(plain.id).tool_names == frozenset()
    assert codex.thread_start(ephemeral=True).tool_names == frozenset()


def test_a_forked_thread_answers_with_the_handlers_given_to_fork(codex: Codex) -> None:
    thread = codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, lambda c: "original")))
    fork = codex.thread_fork(thread.id, tools=kernel(Tool("t", "t", SCHEMA, lambda c: "forked")))
    assert fork.run("DYNTOOL:kernel.t DELTAS:1", timeout=10).text.startswith(
        "tool:kernel.t:ok:forked "
    )


def test_the_async_client_awaits_coroutine_handlers_on_its_loop(tool_bin: str) -> None:
    async def handler(call: ToolCall) -> ToolResult:
        await asyncio.sleep(0.01)
        return ToolResult.text(f"async {call.arguments['x']}")

    async def main() -> str:
        async with AsyncCodex(codex_bin=tool_bin, experimental_api=True) as codex:
            thread = await codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, handler)))
            assert thread.tool_names == {"kernel.t"}
            return (await thread.run('DYNTOOL:kernel.t ARGS:{"x":7} DELTAS:1', timeout=10)).text

    assert asyncio.run(main()).startswith("tool:kernel.t:ok:async 7 ")


def test_the_async_client_runs_plain_handlers_and_settles_on_interrupt(tool_bin: str) -> None:
    calls: list[ToolCall] = []

    def later(call: ToolCall) -> Any:
        calls.append(call)
        return DEFER

    async def main() -> str:
        async with AsyncCodex(codex_bin=tool_bin, experimental_api=True) as codex:
            thread = await codex.thread_start(tools=kernel(Tool("t", "t", SCHEMA, later)))
            turn = await thread.turn("DYNTOOL:kernel.t DELTAS:1")
            while not calls:
                await asyncio.sleep(0.01)
            await turn.interrupt()
            return (await turn.run(10)).status

    assert asyncio.run(main()) == "interrupted"
    assert calls[0].settled and not calls[0].respond("late")


def test_a_slow_coroutine_handler_times_out_and_is_cancelled(tool_bin: str) -> None:
    cancelled = threading.Event()

    async def slow(call: ToolCall) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    async def main() -> str:
        async with AsyncCodex(codex_bin=tool_bin, experimental_api=True) as codex:
            tools = kernel(Tool("t", "t", SCHEMA, slow, timeout=0.2))
            thread = await codex.thread_start(tools=tools)
            text = (await thread.run("DYNTOOL:kernel.t DELTAS:1", timeout=10)).text
            await asyncio.sleep(0.05)  # let the cancellation land
            return text

    assert asyncio.run(main()).startswith("tool:kernel.t:failed:ERROR: kernel.t timed out")
    assert cancelled.is_set()
