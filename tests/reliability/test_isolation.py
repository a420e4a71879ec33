"""One slow or stuck participant never holds up the others."""

from __future__ import annotations

import threading
from pathlib import Path

from codex_notebook import Codex, ServerRequest
from tests.fakes import fake_codex_bin


def test_a_stuck_consumer_does_not_slow_other_turns(tmp_path: Path) -> None:
    with Codex(codex_bin=fake_codex_bin(tmp_path)) as codex:
        stuck = codex.thread_start().turn("FLOOD:20000")
        others = [codex.thread_start().turn("FLOOD:20000") for _ in range(3)]
        unblock = threading.Event()
        consumed: list[int] = []

        def stuck_consumer() -> None:
            count = 0
            for _ in stuck.stream(timeout=30):
                count += 1
                if count == 1:
                    unblock.wait(30)  # a consumer that stops reading
            consumed.append(count)

        worker = threading.Thread(target=stuck_consumer)
        worker.start()
        for turn in others:
            assert turn.run(30).text == "x" * 20000
        assert not consumed, "the stuck consumer finished first?"
        unblock.set()
        worker.join(30)
        assert consumed and consumed[0] == len(stuck._core.log)


def test_a_handler_that_never_answers_does_not_block_other_turns(tmp_path: Path) -> None:
    log = tmp_path / "received.jsonl"
    started = threading.Event()

    def never(request: ServerRequest) -> None:
        started.set()
        request.wait_settled()  # until the turn ends (interrupt) or the server withdraws it

    binary = fake_codex_bin(tmp_path, FAKE_CODEX_LOG=str(log))
    with Codex(codex_bin=binary, approval_handler=never) as codex:
        waiting = codex.thread_start().turn("APPROVAL DELTAS:1")
        assert started.wait(10)
        assert codex.thread_start().run("DELTAS:20", timeout=10).status == "completed"
        waiting.interrupt(timeout=5)
        assert waiting.run(10).status == "interrupted"


def test_a_raising_handler_still_gets_the_server_an_answer(tmp_path: Path) -> None:
    log = tmp_path / "received.jsonl"

    def broken(request: ServerRequest) -> None:
        raise RuntimeError("bug in user code")

    binary = fake_codex_bin(tmp_path, FAKE_CODEX_LOG=str(log))
    with Codex(codex_bin=binary, approval_handler=broken) as codex:
        result = codex.thread_start().run("APPROVAL UNKNOWN_REQUEST DELTAS:1", timeout=10)
    assert result.text.startswith("approval:decline unknown:error:-32601 ")
