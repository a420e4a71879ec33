"""Garbage on stdout is logged and skipped; no consumer notices, nothing escapes the reader."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from codex_notebook import Codex
from codex_notebook.router import Router
from codex_notebook.transport import _read_lines
from tests.fakes import fake_codex_bin


@pytest.fixture
def reader_exceptions(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Any exception that would kill a thread (the reader above all)."""
    seen: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


def test_garbage_lines_do_not_affect_the_turn(
    tmp_path: Path, reader_exceptions: list[BaseException]
) -> None:
    with Codex(codex_bin=fake_codex_bin(tmp_path)) as codex:
        other = codex.thread_start().turn("DELTAS:50 DELAY_MS:1")
        result = codex.thread_start().run("GARBAGE DELTAS:5", timeout=10)
        assert result.text == "d0 d1 d2 d3 d4 "
        assert other.run(10).text == "".join(f"d{i} " for i in range(50))
        assert codex.router.malformed >= 5
    assert reader_exceptions == []


def test_a_ten_megabyte_line_is_routed_whole(
    tmp_path: Path, reader_exceptions: list[BaseException]
) -> None:
    with Codex(codex_bin=fake_codex_bin(tmp_path)) as codex:
        turn = codex.thread_start().turn("GARBAGE:big DELTAS:3")
        big = [e for e in turn.stream(timeout=30) if e.method == "x/bigEvent"]
        assert len(big[0].params_dict["data"]) == 10 * 1024 * 1024
        assert turn.run(10).text == "d0 d1 d2 "
    assert reader_exceptions == []


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff\xfe\xfd not utf-8 \xc3\x28",
        b'{"method": "item/agentMessage/delta", "params": {"turnId": ',
        b'{"method": 5}',
        b'{"id": "x", "result": {}}',
        b'{"method": "turn/completed", "params": {"turn": "not an object"}}',
        b'{"method": "item/agentMessage/delta", "params": ["a", "list"]}',
        b"null",
        b"x" * (10 * 1024 * 1024),
    ],
)
def test_router_survives_wrong_shapes(garbage: bytes) -> None:
    sent: list[dict[str, Any]] = []
    router = Router(sent.append, default_handler=lambda r: None)
    log = router.claim("t1", "th")
    router.feed(garbage)
    ok = {"method": "turn/completed", "params": {"threadId": "th", "turn": {"id": "t1"}}}
    router.feed(orjson.dumps(ok))
    assert [e.method for e in log.cursor()] == ["turn/completed"]


def test_line_splitter_reassembles_lines_across_reads(tmp_path: Path) -> None:
    import os

    read_end, write_end = os.pipe()
    payload = b'{"a":1}\n' + b"y" * 200_000 + b"\n" + b"tail-without-newline"
    writer = threading.Thread(target=lambda: (os.write(write_end, payload), os.close(write_end)))
    writer.start()
    lines = [line for batch in _read_lines(read_end) for line in batch]
    writer.join()
    os.close(read_end)
    assert lines == [b'{"a":1}', b"y" * 200_000, b"tail-without-newline"]
