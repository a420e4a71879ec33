"""Both clients against a real ``codex app-server --listen ws://…`` (capability token) and
the demo model, for each codex build (pinned and newest npm): turns, concurrency, approvals,
interrupts, refused tokens, a server killed or frozen mid-turn, endpoints that are no
app-server, the environment variables, and ``unix://``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from codex_notebook import AsyncCodex, Codex, ServerRequest, TransportClosedError
from codex_notebook.demo import DemoBackend
from codex_notebook.errors import (
    AuthenticationError,
    ConnectionLostError,
    IncompatibleServerError,
)
from codex_notebook.transport_ws import WebSocketTransport
from tests.fakes.listen import ListeningServer, listen

pytestmark = pytest.mark.e2e


def chunks(n: int) -> str:
    return " ".join(f"chunk{i}" for i in range(n))


@pytest.fixture
def backend(codex_bin: str) -> Iterator[DemoBackend]:
    with DemoBackend(codex_bin=codex_bin, approval_policy="never") as demo:
        yield demo


@pytest.fixture
def server(codex_bin: str, backend: DemoBackend, tmp_path: Path) -> Iterator[ListeningServer]:
    running = listen(codex_bin, token_dir=tmp_path, env=backend.env(), cwd=backend.workspace)
    yield running
    running.stop()


@pytest.fixture
def codex(server: ListeningServer) -> Iterator[Codex]:
    with Codex(url=server.url, token_file=server.token_file) as client:
        yield client


class Waiters:
    """Blocking calls, each on its own thread: what each raised and when it came back."""

    def __init__(self, calls: dict[str, Callable[[], Any]]) -> None:
        self.outcomes: dict[str, tuple[BaseException | None, float]] = {}
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=item) for item in calls.items()]
        for thread in self._threads:
            thread.start()

    def _run(self, name: str, call: Callable[[], Any]) -> None:
        try:
            call()
            error = None
        except BaseException as exc:
            error = exc
        with self._lock:
            self.outcomes[name] = (error, time.monotonic())

    def join(self, timeout: float) -> dict[str, tuple[BaseException | None, float]]:
        for thread in self._threads:
            thread.join(timeout)
        return self.outcomes


# -- the same API as over stdio ---------------------------------------------------------------


def test_one_turn_streams_over_the_websocket(
    codex: Codex, server: ListeningServer, codex_version: str
) -> None:
    assert codex.server_url == server.url
    assert codex.pid is None
    assert codex.server_version == codex_version
    turn = codex.thread_start().turn("DELTAS:8")
    assert "".join(turn.stream_text(timeout=60)) == chunks(8)
    result = turn.run(30)
    assert (result.status, result.text) == ("completed", chunks(8))


def test_four_concurrent_threads_each_get_their_own_text(codex: Codex) -> None:
    threads = [codex.thread_start() for _ in range(4)]
    turns = [t.turn(f"DELTAS:{30 + 10 * i} DELAY_MS:2") for i, t in enumerate(threads)]
    for i, turn in enumerate(turns):
        assert turn.run(60).text == chunks(30 + 10 * i)
        assert {e.turn_id for e in turn.stream()} == {turn.id}


@pytest.mark.parametrize(("decision", "ran"), [("accept", True), ("decline", False)])
def test_approvals_go_through_the_approval_handler(
    server: ListeningServer, decision: str, ran: bool
) -> None:
    asked: list[str] = []

    def handler(request: ServerRequest) -> dict[str, str]:
        asked.append(request.method)
        return {"decision": decision}

    with Codex(url=server.url, token_file=server.token_file, approval_handler=handler) as codex:
        thread = codex.thread_start(approval_policy="ask")
        result = thread.run(f"TOOL:echo remote-{decision} ESCALATE", timeout=60)
    assert asked == ["item/commandExecution/requestApproval"]
    assert result.status == "completed"
    outputs = [c.get("aggregatedOutput") or "" for c in result.items_of_type("commandExecution")]
    assert any(f"remote-{decision}" in out for out in outputs) is ran


def test_interrupt_ends_the_turn_as_interrupted(codex: Codex) -> None:
    turn = codex.thread_start().turn("DELTAS:400 DELAY_MS:20")
    next(iter(turn.stream_text(timeout=30)))
    turn.interrupt(timeout=10)
    assert turn.run(30).status == "interrupted"


def test_the_async_client_runs_concurrent_turns_and_interrupts(server: ListeningServer) -> None:
    async def main() -> tuple[list[str], str]:
        async with AsyncCodex(url=server.url, token_file=server.token_file) as codex:
            threads = await asyncio.gather(*(codex.thread_start() for _ in range(4)))
            prompts = [f"DELTAS:{5 + i}" for i in range(4)]
            pairs = zip(threads, prompts, strict=True)
            turns = await asyncio.gather(*(t.turn(p) for t, p in pairs))
            texts = [r.text for r in await asyncio.gather(*(t.run() for t in turns))]
            slow = await (await codex.thread_start()).turn("DELTAS:400 DELAY_MS:20")
            async for _ in slow.stream_text():
                break
            await slow.interrupt()
            return texts, (await slow.run()).status

    texts, status = asyncio.run(asyncio.wait_for(main(), 90))
    assert texts == [chunks(5 + i) for i in range(4)]
    assert status == "interrupted"


def test_stderr_tail_tells_the_connection_story(codex: Codex, server: ListeningServer) -> None:
    tail = codex.stderr_tail()
    assert server.url in tail
    assert "WebSocket open (token sent)" in tail
    assert server.token is not None and server.token not in tail


# -- tokens -----------------------------------------------------------------------------------


def test_a_wrong_token_is_refused(server: ListeningServer) -> None:
    with pytest.raises(AuthenticationError, match="refused the token") as caught:
        Codex(url=server.url, token="wrong-" + (server.token or ""))
    assert caught.value.status == 401
    assert server.url in str(caught.value)


def test_no_token_is_refused_with_how_to_pass_one(server: ListeningServer) -> None:
    with pytest.raises(AuthenticationError, match="requires a token"):
        Codex(url=server.url)


def test_the_environment_selects_the_server_and_spawns_nothing(
    server: ListeningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_APP_SERVER_URL", server.url)
    monkeypatch.setenv("CODEX_APP_SERVER_TOKEN_FILE", str(server.token_file))
    before = {p.pid for p in psutil.Process().children()}
    with Codex() as codex:
        assert codex.server_url == server.url
        assert codex.thread_start().run("DELTAS:3", timeout=60).text == chunks(3)
        assert {p.pid for p in psutil.Process().children()} == before


# -- a server that goes away ------------------------------------------------------------------


def test_a_server_killed_mid_turn_releases_every_waiter_at_once(
    codex: Codex, server: ListeningServer
) -> None:
    turns = [codex.thread_start().turn("DELTAS:2000 DELAY_MS:20") for _ in range(4)]
    for turn in turns:
        next(iter(turn.stream_text(timeout=30)))  # all four are streaming
    waiters: dict[str, Callable[[], Any]] = {
        f"run {i}": (lambda t=t: t.run(60)) for i, t in enumerate(turns)
    }
    waiters["stream"] = lambda: list(turns[1].stream(timeout=60))
    running = Waiters(waiters)
    time.sleep(0.2)
    killed = time.monotonic()
    server.signal(signal.SIGKILL)
    outcomes = running.join(30)
    assert set(outcomes) == set(waiters)  # every waiter came back
    for name, (error, _) in outcomes.items():
        assert isinstance(error, ConnectionLostError), (name, error)
        assert server.url in str(error)
        assert "without a close frame" in str(error)
    slowest = max(at for _, at in outcomes.values()) - killed
    print(f"every waiter released {slowest * 1000:.1f} ms after the kill")  # shown with -rP
    assert slowest < 10  # a hang guard only; measured ~0.01 s (bench/RESULTS.md)
    with pytest.raises(TransportClosedError):
        codex.thread_start()


def test_a_frozen_server_is_dropped_by_the_keepalive(server: ListeningServer) -> None:
    transport = WebSocketTransport(
        server.url, token=server.token, ping_interval=0.5, ping_timeout=0.5
    )
    with Codex(transport=transport) as codex:
        turn = codex.thread_start().turn("DELTAS:2000 DELAY_MS:20")
        next(iter(turn.stream_text(timeout=30)))
        running = Waiters({"run": lambda: turn.run(60)})
        frozen = time.monotonic()
        server.signal(signal.SIGSTOP)  # alive for TCP, answers nothing
        error, at = running.join(30)["run"]
    assert isinstance(error, ConnectionLostError), error
    assert "stopped answering" in str(error)
    print(f"dropped {at - frozen:.2f} s after the freeze (0.5 s silence + 0.5 s ping)")


# -- endpoints that are no app-server -----------------------------------------------------------


def test_an_http_endpoint_is_not_an_app_server(backend: DemoBackend) -> None:
    url = f"ws://127.0.0.1:{backend.port}"  # the demo model: HTTP, no WebSocket
    with pytest.raises(IncompatibleServerError, match="not a codex app-server") as caught:
        Codex(url=url)
    assert url in str(caught.value)


# -- unix:// (codex --listen unix://, as used by `codex app-server daemon`) ----------------------


def test_a_unix_socket_server_runs_turns(
    codex_bin: str, backend: DemoBackend, tmp_path: Path
) -> None:
    path = tmp_path / "app-server.sock"
    proc = subprocess.Popen(
        [codex_bin, "app-server", "--listen", f"unix://{path}"],
        env=backend.env(),
        cwd=backend.workspace,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        with Codex(url=f"unix://{path}") as codex:
            assert codex.server_url == f"unix://{path}"
            assert codex.thread_start().run("DELTAS:3", timeout=60).text == chunks(3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
