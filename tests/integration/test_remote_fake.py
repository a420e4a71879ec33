"""Both clients over a WebSocket, against the scripted fake app-server behind one
(``tests/fakes/fake_ws_app_server.py``): the same API as over stdio, and the failure modes of a
remote server (death mid-turn, refused token, not an app-server)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from codex_notebook import AsyncCodex, Codex, ServerRequest, StartupError, TransportClosedError
from codex_notebook.errors import (
    AuthenticationError,
    ConnectionLostError,
    IncompatibleServerError,
    RemoteConnectError,
)
from codex_notebook.transport_ws import WebSocketTransport
from tests.fakes.listen import ListeningServer, fake_ws_argv, listen
from tests.fakes.ws_stub import StubConnection, StubServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ListeningServer]:
    running = listen(
        fake_ws_argv(), token_dir=tmp_path, env={**os.environ, "CODEX_HOME": str(tmp_path)}
    )
    yield running
    running.stop()


@pytest.fixture
def codex(server: ListeningServer) -> Iterator[Codex]:
    with Codex(url=server.url, token_file=server.token_file) as client:
        yield client


def test_turns_run_over_the_websocket(codex: Codex, server: ListeningServer) -> None:
    assert codex.server_url == server.url
    assert codex.pid is None
    assert codex.server_version == "0.163.0"
    turn = codex.thread_start().turn("DELTAS:4")
    assert "".join(turn.stream_text(timeout=10)) == "d0 d1 d2 d3 "
    assert turn.run(10).status == "completed"


def test_approvals_are_answered_by_the_handler(server: ListeningServer) -> None:
    asked: list[str] = []

    def accept(request: ServerRequest) -> dict[str, str]:
        asked.append(request.method)
        return {"decision": "accept"}

    with Codex(url=server.url, token_file=server.token_file, approval_handler=accept) as codex:
        result = codex.thread_start().run("APPROVAL", timeout=10)
    assert asked == ["item/commandExecution/requestApproval"]
    assert result.text.startswith("approval:accept ")


def test_the_server_dying_mid_turn_releases_every_waiter_at_once(
    codex: Codex, server: ListeningServer
) -> None:
    turns = [codex.thread_start().turn("DELTAS:1000 DELAY_MS:20") for _ in range(4)]
    for turn in turns:
        next(iter(turn.stream_text(timeout=10)))  # all four are streaming
    outcomes: list[tuple[str, BaseException | None, float]] = []
    lock = threading.Lock()

    def wait(name: str, fn: Any) -> None:
        try:
            fn()
            error = None
        except BaseException as exc:
            error = exc
        with lock:
            outcomes.append((name, error, time.monotonic()))

    waiters = [
        threading.Thread(target=wait, args=(f"run {i}", lambda t=t: t.run(30)))
        for i, t in enumerate(turns)
    ]
    waiters.append(
        threading.Thread(target=wait, args=("stream", lambda: list(turns[0].stream(timeout=30))))
    )
    waiters.append(
        threading.Thread(
            target=wait, args=("notifications", lambda: list(codex.notifications(timeout=30)))
        )
    )
    for waiter in waiters:
        waiter.start()
    time.sleep(0.1)
    codex.thread_start().turn("DIE")  # the fake exits: every connection drops
    died = time.monotonic()
    for waiter in waiters:
        waiter.join(20)
    assert len(outcomes) == len(waiters)  # every waiter came back
    for name, error, _ in outcomes:
        if name == "notifications":
            assert error is None  # the global channel just ends
        else:
            assert isinstance(error, ConnectionLostError), (name, error)
            assert server.url in str(error)
    slowest = max(at for _, _, at in outcomes) - died
    assert slowest < 10  # measured well under a second (bench/RESULTS.md); this only
    # guards against a hang on a loaded machine
    with pytest.raises(TransportClosedError):
        codex.thread_start()


def test_the_async_client_runs_turns_over_the_websocket(server: ListeningServer) -> None:
    async def main() -> tuple[list[str], str | None]:
        async with AsyncCodex(url=server.url, token_file=server.token_file) as codex:
            threads = await asyncio.gather(*(codex.thread_start() for _ in range(4)))
            turns = await asyncio.gather(
                *(t.turn(f"DELTAS:{i + 1}") for i, t in enumerate(threads))
            )
            results = await asyncio.gather(*(t.run() for t in turns))
            return [r.text for r in results], codex.server_url

    texts, url = asyncio.run(asyncio.wait_for(main(), 30))
    assert texts == ["d0 ", "d0 d1 ", "d0 d1 d2 ", "d0 d1 d2 d3 "]
    assert url == server.url


def test_the_async_client_fails_every_stream_when_the_server_dies(
    server: ListeningServer,
) -> None:
    async def main() -> list[BaseException]:
        async with AsyncCodex(url=server.url, token_file=server.token_file) as codex:
            turns = [
                await (await codex.thread_start()).turn("DELTAS:1000 DELAY_MS:20") for _ in range(3)
            ]

            async def consume(turn: Any) -> BaseException:
                try:
                    async for _ in turn.stream():
                        pass
                except BaseException as exc:
                    return exc
                raise AssertionError("the stream ended normally")

            consumers = [asyncio.create_task(consume(t)) for t in turns]
            await asyncio.sleep(0.1)
            await (await codex.thread_start()).turn("DIE")
            return list(await asyncio.gather(*consumers))

    errors = asyncio.run(asyncio.wait_for(main(), 30))
    assert all(isinstance(e, ConnectionLostError) for e in errors), errors


def test_a_wrong_token_is_an_authentication_error(server: ListeningServer) -> None:
    with pytest.raises(AuthenticationError, match="refused the token from token=") as caught:
        Codex(url=server.url, token="not-the-token")
    assert caught.value.status == 401
    assert "not-the-token" not in str(caught.value)


def test_no_token_is_an_authentication_error_that_says_how(server: ListeningServer) -> None:
    with pytest.raises(AuthenticationError, match="CODEX_APP_SERVER_TOKEN_FILE"):
        Codex(url=server.url)


def test_the_environment_selects_the_server_and_nothing_is_spawned(
    server: ListeningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_APP_SERVER_URL", server.url)
    monkeypatch.setenv("CODEX_APP_SERVER_TOKEN_FILE", str(server.token_file))
    before = {p.pid for p in psutil.Process().children()}
    with Codex() as codex:
        assert codex.server_url == server.url
        assert codex.thread_start().run("DELTAS:2", timeout=10).text == "d0 d1 "
        after = {p.pid for p in psutil.Process().children()}
    assert after == before


def test_an_unreachable_server_says_how_to_start_one() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(RemoteConnectError, match="nothing listens there") as caught:
        Codex(url=url)
    assert isinstance(caught.value, StartupError)
    assert "codex app-server --listen ws://" in str(caught.value)


def test_an_echo_server_is_not_an_app_server() -> None:
    def echo(conn: StubConnection) -> None:
        conn.accept()
        deadline = time.monotonic() + 10
        sent = 0
        while conn.pump(deadline):
            frames = conn.receive(0)
            for frame in frames[sent:]:
                conn.send_texts([bytes(frame.data)])
            sent = len(frames)

    with StubServer(echo) as stub:
        started = time.monotonic()
        with pytest.raises(IncompatibleServerError, match="refused our initialize") as caught:
            Codex(url=stub.url)
        assert time.monotonic() - started < 10
    assert stub.url in str(caught.value)


def test_a_silent_websocket_fails_the_client_quickly() -> None:
    def silent(conn: StubConnection) -> None:
        conn.accept()
        conn.serve_until_closed()

    quiet = pytest.raises(IncompatibleServerError, match=r"did not answer within 0\.5 s")
    with StubServer(silent) as stub, quiet:
        Codex(transport=WebSocketTransport(stub.url, hello_timeout=0.5))
