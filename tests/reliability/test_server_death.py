"""SIGKILL the app-server mid-stream: everything waiting is released at once, nothing hangs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from codex_notebook import Codex, TransportClosedError
from codex_notebook import transport as transport_module
from codex_notebook.demo import DemoBackend
from codex_notebook.notebook.session import NotebookSession, NotebookTurn
from tests.fakes import fake_codex_bin
from tests.notebook_helpers import submit, wait_for

#: Released by the server's end of output, not by a fallback: the exit watcher's grace period
#: is raised to a minute below, so any release within this (generous: a shared machine) came
#: from the EOF path. How fast that is: bench/remote_transport.py (~7 ms).
RELEASE_BUDGET_S = 10.0


@pytest.fixture(autouse=True)
def only_the_eof_path_can_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "EXIT_EOF_GRACE_S", 60.0)


def _consume(turn: object, outcome: Future[BaseException | None]) -> None:
    try:
        for _ in turn.stream():  # type: ignore[attr-defined]
            pass
        outcome.set_result(None)
    except BaseException as exc:
        outcome.set_result(exc)


def _kill_and_time(pid: int, outcomes: list[Future[BaseException | None]]) -> float:
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    for outcome in outcomes:
        outcome.result(timeout=10)
    return time.monotonic() - killed_at


def test_killing_the_fake_server_releases_eight_consumers_and_a_pending_request(
    tmp_path: Path,
) -> None:
    with Codex(codex_bin=fake_codex_bin(tmp_path)) as codex:
        turns = [codex.thread_start().turn("HANG DELTAS:2") for _ in range(8)]
        outcomes: list[Future[BaseException | None]] = [Future() for _ in turns]
        for turn, outcome in zip(turns, outcomes, strict=True):
            threading.Thread(target=_consume, args=(turn, outcome), daemon=True).start()
        # a request in flight: the EARLY turn's response comes only after its delays
        slow_thread = codex.thread_start()
        pending: Future[BaseException | None] = Future()

        def start_slow() -> None:
            try:
                slow_thread.turn("EARLY DELAY_MS:5000 DELTAS:3")
                pending.set_result(None)
            except BaseException as exc:
                pending.set_result(exc)

        threading.Thread(target=start_slow, daemon=True).start()
        assert codex.pid is not None
        elapsed = _kill_and_time(codex.pid, [*outcomes, pending])
    errors = [o.result() for o in [*outcomes, pending]]
    assert all(isinstance(e, TransportClosedError) for e in errors), errors
    assert all("model stream broke" not in str(e) for e in errors)  # killed, not the DIE path
    assert elapsed < RELEASE_BUDGET_S, f"released after {elapsed:.2f} s"


def test_transport_errors_carry_the_stderr_tail(tmp_path: Path) -> None:
    binary = fake_codex_bin(tmp_path, FAKE_CODEX_STDERR_SPAM=3)
    with Codex(codex_bin=binary) as codex:
        turn = codex.thread_start().turn("HANG DELTAS:1")
        assert codex.pid is not None
        os.kill(codex.pid, signal.SIGKILL)
        with pytest.raises(TransportClosedError) as info:
            turn.run(10)
    assert "codex app-server stderr" in str(info.value)
    assert info.value.stderr_tail


@pytest.fixture
def demo() -> Iterator[DemoBackend]:
    with DemoBackend() as backend:
        yield backend


@pytest.mark.e2e
def test_killing_the_real_server_releases_eight_streaming_turns(demo: DemoBackend) -> None:
    with Codex(env=demo.env(), cwd=demo.workspace) as codex:
        turns = [codex.thread_start().turn("DELTAS:2000 DELAY_MS:5") for _ in range(8)]
        for turn in turns:
            next(iter(turn.stream_text(timeout=30)))  # all eight are streaming
        outcomes: list[Future[BaseException | None]] = [Future() for _ in turns]
        for turn, outcome in zip(turns, outcomes, strict=True):
            threading.Thread(target=_consume, args=(turn, outcome), daemon=True).start()
        assert codex.pid is not None
        elapsed = _kill_and_time(codex.pid, outcomes)
    assert all(isinstance(o.result(), TransportClosedError) for o in outcomes)
    assert elapsed < RELEASE_BUDGET_S, f"released after {elapsed:.2f} s"


def test_killing_the_server_ends_every_live_widget_and_the_next_turn_starts_fresh(
    tmp_path: Path,
) -> None:
    binary = fake_codex_bin(tmp_path)
    session = NotebookSession(state_dir=tmp_path / "state", backend="codex", codex_bin=binary)
    try:
        turns: list[NotebookTurn] = []
        for i in range(8):
            turns.append(submit(session, "HANG DELTAS:1", thread=f"t{i}"))
        for turn in turns:
            wait_for(lambda t=turn: t.state == "running")  # type: ignore[misc]
        client = session.server.current()
        assert client is not None
        assert client.pid is not None
        killed_at = time.monotonic()
        os.kill(client.pid, signal.SIGKILL)
        for turn in turns:
            assert turn.wait(10)
        elapsed = time.monotonic() - killed_at
        assert {t.state for t in turns} == {"error"}
        assert all("app-server stopped" in t.widget.bundle["text/markdown"] for t in turns)
        assert elapsed < RELEASE_BUDGET_S, f"widgets released after {elapsed:.2f} s"
        fresh = submit(session, "DELTAS:2", thread="t0")
        assert fresh.result(10).status == "completed"
        restarted = session.server.current()
        assert restarted is not None and restarted.pid != client.pid
    finally:
        session.close()
