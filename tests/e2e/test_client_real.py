"""The sync and asyncio clients against the real codex binary and the demo model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from pydantic import BaseModel

from codex_notebook import AsyncCodex, Codex, ServerRequest
from codex_notebook.demo import DemoBackend

if TYPE_CHECKING:
    from tests.e2e.conftest import CodexBuild

pytestmark = pytest.mark.e2e


def chunks(n: int) -> str:
    return " ".join(f"chunk{i}" for i in range(n))


@pytest.fixture
def backend(codex_bin: str) -> Iterator[DemoBackend]:
    with DemoBackend(
        codex_bin=codex_bin, approval_policy="never", sandbox_mode="workspace-write"
    ) as demo:
        yield demo


@pytest.fixture
def codex(codex_bin: str, backend: DemoBackend) -> Iterator[Codex]:
    with Codex(codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace) as client:
        yield client


def test_one_turn_streams_and_returns_the_final_text(codex: Codex) -> None:
    turn = codex.thread_start().turn("DELTAS:8")
    assert "".join(turn.stream_text(timeout=30)) == chunks(8)
    result = turn.run(30)
    assert result.status == "completed"
    assert result.text == chunks(8)
    assert result.usage is not None and result.usage.total_tokens > 0


def test_server_version_is_the_binary_version(codex: Codex, codex_build: CodexBuild) -> None:
    assert codex.server_version == codex_build.version
    if codex_build.kind == "pinned":
        assert codex.server_version == "0.163.0"


def test_four_concurrent_threads_each_get_their_own_text(codex: Codex) -> None:
    threads = [codex.thread_start() for _ in range(4)]
    turns = [t.turn(f"DELTAS:{30 + 10 * i} DELAY_MS:2") for i, t in enumerate(threads)]
    for i, turn in enumerate(turns):
        assert turn.run(60).text == chunks(30 + 10 * i)
        assert {e.turn_id for e in turn.stream()} == {turn.id}


def test_shell_tool_call_streams_its_output(codex: Codex) -> None:
    turn = codex.thread_start().turn("TOOL:echo hello-from-the-tool")
    events = list(turn.stream(timeout=60))
    result = turn.run(1)
    commands = result.items_of_type("commandExecution")
    assert commands and "hello-from-the-tool" in (commands[0].get("aggregatedOutput") or "")
    assert commands[0]["exitCode"] == 0
    started = [
        e
        for e in events
        if e.method == "item/started" and e.params_dict["item"]["type"] == "commandExecution"
    ]
    assert started


@pytest.mark.parametrize(
    ("decision", "status", "ran"),
    [
        ("accept", "completed", True),
        ("decline", "completed", False),
        ("cancel", "interrupted", False),
    ],
)
def test_approval_decisions(
    codex_bin: str, backend: DemoBackend, decision: str, status: str, ran: bool
) -> None:
    asked: list[str] = []

    def handler(request: ServerRequest) -> dict[str, str]:
        asked.append(request.method)
        return {"decision": decision}

    with Codex(
        codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace, approval_handler=handler
    ) as codex:
        thread = codex.thread_start(approval_policy="ask")
        result = thread.run("TOOL:echo approved-run ESCALATE", timeout=60)
    assert asked == ["item/commandExecution/requestApproval"]
    assert result.status == status
    outputs = [c.get("aggregatedOutput") or "" for c in result.items_of_type("commandExecution")]
    assert any("approved-run" in out for out in outputs) is ran


def test_approvals_are_declined_by_default(codex_bin: str, backend: DemoBackend) -> None:
    with Codex(codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace) as codex:
        result = codex.thread_start(approval_policy="ask").run(
            "TOOL:echo never-runs ESCALATE", timeout=60
        )
    outputs = [c.get("aggregatedOutput") or "" for c in result.items_of_type("commandExecution")]
    assert not any("never-runs" in out for out in outputs)


def test_interrupt_ends_the_turn_as_interrupted(codex: Codex) -> None:
    turn = codex.thread_start().turn("DELTAS:400 DELAY_MS:20")
    next(iter(turn.stream_text(timeout=30)))
    turn.interrupt(timeout=10)
    assert turn.run(30).status == "interrupted"


def test_model_failure_ends_the_turn_as_failed(codex: Codex) -> None:
    result = codex.thread_start().run("FAIL", timeout=60)
    assert result.status == "failed"
    assert result.error is not None


class Verdict(BaseModel):
    title: str
    score: int
    tags: list[str]


def test_structured_output_is_parsed_into_the_model(codex: Codex) -> None:
    result = codex.thread_start().run("Rate this", output_schema=Verdict, timeout=60)
    assert isinstance(result.parsed, Verdict)


def test_a_conversation_continues_on_the_same_thread(codex: Codex) -> None:
    thread = codex.thread_start()
    thread.run("DELTAS:2", timeout=30)
    assert thread.run("ECHO second", timeout=30).text == "ECHO second"
    resumed = codex.thread_resume(thread.id)
    assert resumed.id == thread.id


def test_async_client_runs_turns_concurrently_with_gather(
    codex_bin: str, backend: DemoBackend
) -> None:
    async def main() -> list[str]:
        async with AsyncCodex(
            codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace
        ) as codex:
            threads = await asyncio.gather(*(codex.thread_start() for _ in range(4)))
            turns = await asyncio.gather(
                *(t.turn(f"DELTAS:{5 + i}") for i, t in enumerate(threads))
            )
            streamed = await asyncio.gather(*(_collect(t) for t in turns))
            results = await asyncio.gather(*(t.run() for t in turns))
            assert [r.text for r in results] == streamed
            failed = await (await codex.thread_start()).run("FAIL")
            assert failed.status == "failed"
            return streamed

    async def _collect(turn: object) -> str:
        return "".join([d async for d in turn.stream_text()])  # type: ignore[attr-defined]

    assert asyncio.run(asyncio.wait_for(main(), 90)) == [chunks(5 + i) for i in range(4)]


def test_async_client_approval_and_interrupt(codex_bin: str, backend: DemoBackend) -> None:
    async def main() -> tuple[str, str]:
        async with AsyncCodex(
            codex_bin=codex_bin,
            env=backend.env(),
            cwd=backend.workspace,
            approval_handler=lambda r: {"decision": "accept"},
        ) as codex:
            thread = await codex.thread_start(approval_policy="ask")
            approved = await thread.run("TOOL:echo async-approved ESCALATE")
            slow = await (await codex.thread_start()).turn("DELTAS:400 DELAY_MS:20")
            async for _ in slow.stream_text():
                break
            await slow.interrupt()
            return approved.status, (await slow.run()).status

    assert asyncio.run(asyncio.wait_for(main(), 90)) == ("completed", "interrupted")
