#!/usr/bin/env python3
"""The scripted fake app-server (``fake_app_server.py``) behind a WebSocket, like codex's own.

    fake_ws_app_server.py app-server --listen ws://127.0.0.1:0 \\
        [--ws-auth capability-token --ws-token-file FILE]

Same command line as ``codex app-server``, so tests and benchmarks start either the same way
(``tests/fakes/listen.py``). Prints ``listening on: ws://127.0.0.1:PORT`` on stderr as codex
does. Every connection gets its own fake server (its own threads and turns), one JSON-RPC
message per text frame (lines that are not UTF-8, from the GARBAGE directive, go as binary
frames). The bearer token is checked like codex: HTTP 401 with ``missing websocket bearer
token`` / ``invalid websocket bearer token``. Pings are answered. The fake's directives work
unchanged; ``DIE`` exits the whole process, so every connection drops without a close frame.
``--version`` prints the fake's version.

Needs ``websockets`` (its Sans-I/O server protocol over plain sockets, a thread per
connection).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

if __package__ in (None, ""):  # run as a script: import the fake beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fake_app_server as fake
else:
    from . import fake_app_server as fake

READ_SIZE = 1 << 16
CACHE_MIN = 1 << 16


class FrameStream:
    """What the fake's :class:`Wire` writes to: every complete line becomes one frame.

    ``write_lock`` orders socket writes (the fake's turns write from their own threads and
    the connection's reader answers pings); ``proto_lock`` guards the protocol object. After
    the connection ends, writes are dropped (a turn may still be running).
    """

    def __init__(self, sock: socket.socket, protocol: ServerProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.proto_lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.closed = False
        # FLOOD writes the same ~1 MB chunk over and over: frame it once (the benchmarks
        # measure the client, not this fake's framing)
        self._framed: tuple[bytes, bytes] | None = None

    def write(self, data: bytes) -> None:
        with self.write_lock:
            with self.proto_lock:
                if self.closed or self.protocol.state is not State.OPEN:
                    return
                cached = self._framed
                if cached is not None and cached[0] is data:
                    out = cached[1]
                else:
                    out = self._frame(data)
                    if len(data) >= CACHE_MIN:
                        self._framed = (data, out)
            self._sendall(out)

    def _frame(self, data: bytes) -> bytes:
        """Under ``proto_lock``: one frame per line (binary when the line is not UTF-8)."""
        for line in data.split(b"\n"):
            if not line:
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                self.protocol.send_binary(line)
            else:
                self.protocol.send_text(line)
        return b"".join(self.protocol.data_to_send())

    def flush(self) -> None:
        pass

    def pump(self) -> None:
        """Write what the protocol queued by itself (pongs, the closing handshake)."""
        with self.write_lock:
            with self.proto_lock:
                chunks = self.protocol.data_to_send()
            self._sendall(b"".join(chunks))
            if b"" in chunks:  # SEND_EOF: the server closes the TCP connection
                self.closed = True
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)

    def _sendall(self, out: bytes) -> None:
        if not out:
            return
        try:
            self.sock.sendall(out)
        except OSError:
            self.closed = True


def _token_of(request: Request) -> str | None:
    value = request.headers.get("Authorization")
    if value is None or not value.startswith("Bearer "):
        return None
    return value[len("Bearer ") :]


def serve_connection(sock: socket.socket, token: str | None) -> None:
    """One client: the handshake, then every text frame to a fresh fake server."""
    protocol = ServerProtocol()
    stream = FrameStream(sock, protocol)
    try:
        request = None
        while request is None:
            data = sock.recv(READ_SIZE)
            if not data:
                return
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Request):
                    request = event
        if token is not None and _token_of(request) != token:
            why = "missing" if _token_of(request) is None else "invalid"
            response = protocol.reject(401, f"{why} websocket bearer token")
        else:
            response = protocol.accept(request)
        protocol.send_response(response)
        stream.pump()
        if protocol.state is not State.OPEN:
            return
        server = fake.Server(fake.Wire(stream))  # type: ignore[arg-type]
        while True:
            data = sock.recv(READ_SIZE)
            with stream.proto_lock:
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                events = protocol.events_received()
            stream.pump()
            for frame in events:
                if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
                    server.handle_line(bytes(frame.data))
            if not data or protocol.state is State.CLOSED:
                return
    except OSError:
        return
    finally:
        stream.closed = True
        with contextlib.suppress(OSError):
            sock.close()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print(f"codex-cli {fake.CLI_VERSION}")
        return 0
    parser = argparse.ArgumentParser(prog="fake_ws_app_server.py")
    parser.add_argument("command", choices=["app-server"])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--ws-auth", choices=["capability-token"])
    parser.add_argument("--ws-token-file")
    parser.add_argument("-c", "--config", action="append", default=[])
    args = parser.parse_args(argv)
    if not args.listen.startswith("ws://"):
        parser.error("--listen must be ws://IP:PORT")
    host, _, port = args.listen[len("ws://") :].rstrip("/").rpartition(":")
    token = None
    if args.ws_auth:
        if not args.ws_token_file:
            parser.error("--ws-auth capability-token needs --ws-token-file")
        token = Path(args.ws_token_file).read_text(encoding="utf-8").strip()
    listener = socket.create_server((host, int(port)))
    bound = listener.getsockname()[1]
    sys.stderr.write(f"codex app-server (WebSockets)\n  listening on: ws://{host}:{bound}\n")
    sys.stderr.flush()
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_connection, args=(sock, token), daemon=True).start()


def _entry() -> Any:
    try:
        return main(sys.argv[1:])
    except KeyboardInterrupt:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(_entry())
