"""Client tools through the real codex binary, with a scripted model that calls them.

Runs on the pinned 0.163.0 and the newest npm codex (see conftest.py). The model is
``responses_stub.ResponsesStub``: the prompt's ``CALL:ns.tool`` directives become
``function_call`` items; the next model request must carry our answers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_notebook import DEFER, AsyncCodex, Codex, Tool, ToolCall, ToolResult, Toolset
from tests.e2e.responses_stub import ResponsesStub, stub_env

pytestmark = pytest.mark.e2e

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}}


@pytest.fixture
def stub() -> Iterator[ResponsesStub]:
    with ResponsesStub() as server:
        yield server


@pytest.fixture
def env(stub: ResponsesStub, tmp_path: Path) -> dict[str, str]:
    return stub_env(stub, tmp_path / "home")


@pytest.fixture
def codex(codex_bin: str, env: dict[str, str], tmp_path: Path) -> Iterator[Codex]:
    with Codex(codex_bin=codex_bin, env=env, cwd=tmp_path, experimental_api=True) as client:
        yield client


def inspect_tool(call: ToolCall) -> ToolResult:
    return ToolResult.text(f"{call.arguments.get('name')} is a DataFrame (3, 2)")


KERNEL = Toolset(
    "kernel",
    "The user's live Python process.",
    [Tool("inspect", "Describe a variable.", SCHEMA, inspect_tool)],
)


def test_the_model_sees_a_namespace_and_its_call_reaches_the_handler(
    codex: Codex, stub: ResponsesStub
) -> None:
    thread = codex.thread_start(tools=KERNEL)
    result = thread.run('CALL:kernel.inspect ARGS:{"name":"df"}', timeout=60)
    assert result.text == "tool said: df is a DataFrame (3, 2)"
    offered = [t for t in stub.tools_offered() if t.get("name") == "kernel"]
    assert offered == [
        {
            "type": "namespace",
            "name": "kernel",
            "description": "The user's live Python process.",
            "tools": [
                {
                    "type": "function",
                    "name": "inspect",
                    "description": "Describe a variable.",
                    "strict": False,
                    "parameters": SCHEMA,
                }
            ],
        }
    ]
    (item,) = result.items_of_type("dynamicToolCall")
    assert (item["namespace"], item["tool"], item["success"]) == ("kernel", "inspect", True)


def test_a_failing_handler_tells_the_model_error(codex: Codex) -> None:
    def broken(call: ToolCall) -> str:
        raise LookupError("no variable named df")

    tools = Toolset("kernel", "k", [Tool("inspect", "d", SCHEMA, broken)])
    result = codex.thread_start(tools=tools).run("CALL:kernel.inspect", timeout=60)
    assert result.text.startswith("tool said: ERROR: kernel.inspect failed: LookupError")
    assert result.items_of_type("dynamicToolCall")[0]["success"] is False


def test_several_calls_in_one_model_response_are_all_answered(codex: Codex) -> None:
    active, peak = 0, 0
    lock = threading.Lock()

    def slowish(call: ToolCall) -> str:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.2)
        with lock:
            active -= 1
        return "done"

    tools = Toolset("kernel", "k", [Tool("work", "w", SCHEMA, slowish)])
    text = (
        codex.thread_start(tools=tools)
        .run("CALL:kernel.work CALL:kernel.work CALL:kernel.work", timeout=60)
        .text
    )
    assert text == "tool said: done | done | done"
    # 0.163 calls them one after another; newer servers all at once, and so do our handlers
    assert peak == (1 if codex.server_version == "0.163.0" else 3)


def test_interrupting_while_a_call_waits_settles_it(codex: Codex) -> None:
    calls: list[ToolCall] = []

    def later(call: ToolCall) -> Any:
        calls.append(call)
        return DEFER

    tools = Toolset("kernel", "k", [Tool("ask", "a", SCHEMA, later, timeout=None)])
    turn = codex.thread_start(tools=tools).turn("CALL:kernel.ask")
    deadline = time.monotonic() + 30
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls
    turn.interrupt(timeout=10)
    result = turn.run(30)
    assert result.status == "interrupted"
    assert calls[0].settled
    assert not calls[0].respond("too late")


def test_a_resumed_thread_reports_the_tools_stored_with_it(
    codex_bin: str, env: dict[str, str], tmp_path: Path
) -> None:
    with Codex(codex_bin=codex_bin, env=env, cwd=tmp_path, experimental_api=True) as codex:
        with_tools = codex.thread_start(tools=KERNEL)
        with_tools.run('CALL:kernel.inspect ARGS:{"name":"x"}', timeout=60)
        plain = codex.thread_start()
        plain.run("hello", timeout=60)
    with Codex(codex_bin=codex_bin, env=env, cwd=tmp_path, experimental_api=True) as codex:
        resumed = codex.thread_resume(with_tools.id, tools=KERNEL)
        assert resumed.tool_names == {"kernel.inspect"}
        assert resumed.info["thread"]["turns"] == []  # excludeTurns: the history is not loaded
        again = resumed.run('CALL:kernel.inspect ARGS:{"name":"y"}', timeout=60)
        assert again.text == "tool said: y is a DataFrame (3, 2)"
        assert codex.thread_resume(plain.id).tool_names == frozenset()
        deprecations = [
            n for n in codex.notifications(timeout=0.5) if n.method == "deprecationNotice"
        ]
    assert deprecations == []  # 0.163 and 0.171 warn about full-history resume otherwise


def test_the_async_client_with_a_coroutine_handler(
    codex_bin: str, env: dict[str, str], tmp_path: Path
) -> None:
    async def inspect_async(call: ToolCall) -> str:
        await asyncio.sleep(0)
        return f"{call.arguments.get('name')} async"

    tools = Toolset("kernel", "k", [Tool("inspect", "d", SCHEMA, inspect_async)])

    async def main() -> str:
        async with AsyncCodex(
            codex_bin=codex_bin, env=env, cwd=tmp_path, experimental_api=True
        ) as codex:
            thread = await codex.thread_start(tools=tools)
            result = await thread.run('CALL:kernel.inspect ARGS:{"name":"df"}', timeout=60)
            return result.text

    assert asyncio.run(main()) == "tool said: df async"
