"""A remote app-server over WebSocket vs the local one over stdio, side by side in one run.

1. Router throughput: the scripted fake app-server, once as a child on stdio and once behind a
   WebSocket (``tests/fakes/fake_ws_app_server.py``, the same turns), 8 concurrent FLOOD turns
   consumed by 8 threads (sync client) and 8 tasks (asyncio client); notifications/s, median of
   the runs, and the ratio WebSocket / stdio.
2. A real turn: the codex binary and the demo model, one 2,000-delta answer (and 20,000),
   ``turn/start`` to ``turn/completed``, stdio and WebSocket runs alternating; median and ratio.
3. A dropped connection: a real server killed while 4 turns stream; how long until every
   waiter got its ``ConnectionLostError``.
4. Why the transport drives ``websockets``' Sans-I/O protocol itself: the
   same flood of real-shaped frames read by our transport, by ``websockets``' threading client
   and by ``websocket-client``; messages/s and client CPU per message.

    python bench/remote_transport.py [--turns 8] [--deltas 25000] [--runs 3] [--real 2000 20000]
                                     [--skip-libraries]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from _common import fake_bin, machine

from codex_notebook import AsyncCodex, Codex
from codex_notebook.demo import DemoBackend
from codex_notebook.transport import resolve_codex_bin
from tests.fakes.listen import ListeningServer, fake_ws_argv, listen

Connect = Callable[[], dict[str, Any]]


# -- 1. router throughput -----------------------------------------------------------------------


def _sync_rate(options: dict[str, Any], turns: int, deltas: int) -> tuple[float, float]:
    with Codex(**options) as codex:
        threads = [codex.thread_start() for _ in range(turns)]
        counts = [0] * turns
        cpu = time.process_time()
        started = time.perf_counter()
        handles = [t.turn(f"FLOOD:{deltas}") for t in threads]

        def consume(i: int) -> None:
            counts[i] = sum(1 for _ in handles[i].stream(timeout=120))

        workers = [threading.Thread(target=consume, args=(i,)) for i in range(turns)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        assert all(h.run(1).text == "x" * deltas for h in handles), "wrong text"
    return sum(counts) / elapsed, cpu / sum(counts)


def _async_rate(options: dict[str, Any], turns: int, deltas: int) -> tuple[float, float]:
    async def main() -> tuple[float, float]:
        async with AsyncCodex(**options) as codex:
            threads = await asyncio.gather(*(codex.thread_start() for _ in range(turns)))
            cpu = time.process_time()
            started = time.perf_counter()
            handles = await asyncio.gather(*(t.turn(f"FLOOD:{deltas}") for t in threads))

            async def consume(handle: Any) -> int:
                return sum([1 async for _ in handle.stream()])

            counts = await asyncio.gather(*(consume(h) for h in handles))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            results = await asyncio.gather(*(h.run() for h in handles))
            assert all(r.text == "x" * deltas for r in results), "wrong text"
            return sum(counts) / elapsed, cpu / sum(counts)

    return asyncio.run(main())


def router_throughput(turns: int, deltas: int, runs: int) -> None:
    print(
        f"1. router throughput, fake app-server: {turns} turns x {deltas:,} deltas = "
        f"{turns * deltas:,} notifications per run, {runs} runs"
    )
    server = listen(fake_ws_argv())
    try:
        transports = {"stdio": {"codex_bin": fake_bin()}, "WebSocket": {"url": server.url}}
        for face, fn in [("Codex (sync)", _sync_rate), ("AsyncCodex", _async_rate)]:
            rates: dict[str, float] = {}
            cpus: dict[str, float] = {}
            for name in transports:
                rates[name], cpus[name] = 0.0, 0.0
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in transports}
            for _ in range(runs):  # alternate, so drift hits both alike
                for name, options in transports.items():
                    samples[name].append(fn(options, turns, deltas))
            for name, values in samples.items():
                rates[name] = statistics.median(v[0] for v in values)
                cpus[name] = statistics.median(v[1] for v in values)
                shown = ", ".join(f"{v[0]:,.0f}" for v in values)
                print(
                    f"  {face:14s} {name:10s} {rates[name]:>10,.0f} notifications/s, "
                    f"client CPU {cpus[name] * 1e6:5.2f} us each  (runs: {shown})"
                )
            print(
                f"  {face:14s} WebSocket / stdio: rate {rates['WebSocket'] / rates['stdio']:.2f}, "
                f"CPU per notification {cpus['WebSocket'] / cpus['stdio']:.2f}"
            )
    finally:
        server.stop()


# -- 2. a real turn -----------------------------------------------------------------------------


def _turn_seconds(options: dict[str, Any], deltas: int) -> float:
    with Codex(**options) as codex:
        thread = codex.thread_start()
        started = time.perf_counter()
        result = thread.turn(f"DELTAS:{deltas}").run(300)
        elapsed = time.perf_counter() - started
        assert result.text.count("chunk") == deltas, "wrong text"
    return elapsed


def _bare_ws_seconds(server: ListeningServer, deltas: int) -> float:
    """The floor over WebSocket: ``websockets``' client, read and parse until turn/completed."""
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {server.token}"}
    with connect(server.url, additional_headers=headers, compression=None, max_size=None) as ws:

        def until(pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            while True:
                message: dict[str, Any] = orjson.loads(ws.recv(decode=False))
                if pred(message):
                    return message

        hello = {"clientInfo": {"name": "bare", "version": "0"}}
        ws.send(orjson.dumps({"id": 1, "method": "initialize", "params": hello}).decode())
        until(lambda m: m.get("id") == 1)
        ws.send(orjson.dumps({"method": "initialized"}).decode())
        ws.send(orjson.dumps({"id": 2, "method": "thread/start", "params": {}}).decode())
        thread_id = until(lambda m: m.get("id") == 2)["result"]["thread"]["id"]
        started = time.perf_counter()
        text = [{"type": "text", "text": f"DELTAS:{deltas}"}]
        params = {"threadId": thread_id, "input": text}
        ws.send(orjson.dumps({"id": 3, "method": "turn/start", "params": params}).decode())
        until(lambda m: m.get("method") == "turn/completed")
        return time.perf_counter() - started


def real_turn(sizes: list[int], runs: int) -> None:
    binary = resolve_codex_bin()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"2. one real turn, {version} + the demo model, {runs} runs each (medians)")
    with DemoBackend(server_process=True) as backend, tempfile.TemporaryDirectory() as tmp:
        server = listen(binary, token_dir=Path(tmp), env=backend.env(), cwd=backend.workspace)
        try:
            stdio = {"codex_bin": binary, "env": backend.env(), "cwd": backend.workspace}
            remote = {"url": server.url, "token_file": server.token_file}
            for deltas in sizes:
                times: dict[str, list[float]] = {"stdio": [], "ws": [], "bare": []}
                for _ in range(runs):  # alternate, so drift hits all alike
                    times["stdio"].append(_turn_seconds(stdio, deltas))
                    times["ws"].append(_turn_seconds(remote, deltas))
                    times["bare"].append(_bare_ws_seconds(server, deltas))
                s, w, b = (statistics.median(times[k]) for k in ("stdio", "ws", "bare"))
                print(
                    f"  {deltas:>6,} deltas: ours on stdio {s * 1000:7.1f} ms, ours on WebSocket "
                    f"{w * 1000:7.1f} ms (WebSocket / stdio {w / s:.2f}); a bare websockets "
                    f"loop on the same server {b * 1000:7.1f} ms (ours / bare {w / b:.2f})"
                )
                for name, values in times.items():
                    print(f"    runs {name:5s}: {', '.join(f'{x * 1000:.0f}' for x in values)} ms")
        finally:
            server.stop()


# -- 3. a dropped connection ---------------------------------------------------------------------


def dropped_connection(runs: int) -> None:
    binary = resolve_codex_bin()
    print("3. server killed while 4 turns stream: every waiter released after")
    released: list[float] = []
    with DemoBackend(server_process=True) as backend:
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                server = listen(
                    binary, token_dir=Path(tmp), env=backend.env(), cwd=backend.workspace
                )
                try:
                    released.append(_release_after_kill(server))
                finally:
                    server.stop()
    shown = ", ".join(f"{x * 1000:.1f}" for x in released)
    print(f"  median {statistics.median(released) * 1000:.1f} ms (runs: {shown} ms)")


def _release_after_kill(server: ListeningServer) -> float:
    back: list[float] = []
    lock = threading.Lock()
    with Codex(url=server.url, token_file=server.token_file) as codex:
        turns = [codex.thread_start().turn("DELTAS:2000 DELAY_MS:20") for _ in range(4)]
        for turn in turns:
            next(iter(turn.stream_text(timeout=60)))

        def wait(turn: Any) -> None:
            try:
                turn.run(60)
            except Exception:
                with lock:
                    back.append(time.perf_counter())

        waiters = [threading.Thread(target=wait, args=(t,)) for t in turns]
        for w in waiters:
            w.start()
        time.sleep(0.2)
        killed = time.perf_counter()
        server.signal(signal.SIGKILL)
        for w in waiters:
            w.join(30)
    assert len(back) == len(turns), "a waiter did not come back"
    return max(back) - killed


# -- 4. WebSocket client libraries ----------------------------------------------------------------


def _flood_server(count: int) -> None:
    """Run as ``--flood-server N`` in its own process: serves N real-shaped delta frames
    (built before the clock starts) then END to each client that says "go"; prints its port."""
    from websockets.http11 import Request
    from websockets.server import ServerProtocol

    thread_id, turn_id = str(uuid.uuid4()), str(uuid.uuid4())
    lines = [
        orjson.dumps(
            {
                "method": "item/agentMessage/delta",
                "params": {
                    "threadId": thread_id,
                    "turnId": turn_id,
                    "itemId": "msg_" + uuid.uuid4().hex,
                    "delta": f"word{i % 97} ",
                },
            }
        )
        for i in range(count)
    ]
    listener = socket.create_server(("127.0.0.1", 0))

    def serve_one(sock: socket.socket) -> None:
        protocol = ServerProtocol(max_size=None)
        with sock:
            request = None
            while request is None:
                protocol.receive_data(sock.recv(65536))
                request = next(
                    (e for e in protocol.events_received() if isinstance(e, Request)), None
                )
            protocol.send_response(protocol.accept(request))
            sock.sendall(b"".join(protocol.data_to_send()))
            for line in lines:
                protocol.send_text(line)
            protocol.send_text(b"END")
            blob = b"".join(protocol.data_to_send())
            sock.recv(65536)  # "go"
            sock.sendall(blob)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass

    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve_one, args=(sock,), daemon=True).start()


class _Clock:
    """Wall and CPU time from "go" to the END frame (connect and close are not counted)."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def _ours(url: str, clock: _Clock) -> int:
    from codex_notebook.transport_ws import WebSocketTransport

    done = threading.Event()
    count = [0]

    class Sink:
        def feed_batch(self, lines: Any) -> None:
            for line in lines:
                if line == b"END":
                    clock.stop()
                    done.set()
                    return
                orjson.loads(line)
                count[0] += 1

        def closed(self, error: Exception) -> None:
            done.set()

    transport = WebSocketTransport(url, hello_timeout=None)
    transport.start(Sink())
    clock.start()
    transport.send({"go": True})
    done.wait(120)
    transport.close()
    return count[0]


def _websockets_threading(url: str, clock: _Clock) -> int:
    """Its best use for a router: block for one message, then drain what is already queued."""
    from websockets.sync.client import connect

    count = 0
    with connect(url, compression=None, max_size=None, close_timeout=0.1) as ws:
        clock.start()
        ws.send("go")
        while True:
            batch = [ws.recv(decode=False)]
            while len(batch) < 4096:
                try:
                    batch.append(ws.recv(timeout=0, decode=False))
                except TimeoutError:
                    break
            for message in batch:
                if message == b"END":
                    clock.stop()
                    return count
                orjson.loads(message)
                count += 1


def _websocket_client(url: str, clock: _Clock) -> int:
    import websocket  # websocket-client

    count = 0
    ws = websocket.create_connection(url, skip_utf8_validation=True)
    try:
        clock.start()
        ws.send("go")
        while (message := ws.recv()) not in ("END", b"END"):
            orjson.loads(message)
            count += 1
        clock.stop()
    finally:
        ws.close(timeout=0.1)
    return count


def libraries(count: int, runs: int) -> None:
    print(f"4. WebSocket clients reading {count:,} real-shaped frames (+ orjson.loads each)")
    server = subprocess.Popen(
        [sys.executable, __file__, "--flood-server", str(count)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = f"ws://127.0.0.1:{server.stdout.readline().strip()}"
    clients = [
        ("codex-notebook transport (Sans-I/O)", _ours),
        ("websockets threading client", _websockets_threading),
        ("websocket-client", _websocket_client),
    ]
    try:
        for name, fn in clients:
            rates, cpus = [], []
            for _ in range(runs):
                clock = _Clock()
                got = fn(url, clock)
                assert got == count, f"{name}: {got} of {count}"
                rates.append(count / clock.wall)
                cpus.append(clock.cpu / count * 1e6)
            print(
                f"  {name:38s} {statistics.median(rates):>10,.0f} msg/s, "
                f"{statistics.median(cpus):5.2f} us CPU/msg"
            )
    except ImportError as exc:
        print(f"  (skipped: {exc})")
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--deltas", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--real", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--real-runs", type=int, default=5)
    parser.add_argument("--skip-libraries", action="store_true")
    parser.add_argument("--flood-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood_server:
        _flood_server(args.flood_server)
        return
    print(f"remote transport: {machine()}, pid {os.getpid()}")
    router_throughput(args.turns, args.deltas, args.runs)
    real_turn(args.real, args.real_runs)
    dropped_connection(args.runs)
    if not args.skip_libraries:
        libraries(200_000, args.runs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
