"""A scriptable WebSocket server for transport tests (``websockets``' Sans-I/O, real sockets).

Each test gives a handler; every accepted connection runs it on its own thread with a
:class:`StubConnection` that has not done the handshake yet, so a handler can refuse it,
answer something that is not HTTP, stall, stop reading, send frames in exact byte groupings,
or close with a given code. Listens on 127.0.0.1 (or a Unix socket), optionally with TLS.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

__all__ = ["StubConnection", "StubServer"]

READ_SIZE = 1 << 16


class StubConnection:
    """One accepted connection, seen from the server side (used on the handler's thread)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # its own logger: the server side logs the request headers (the token) at DEBUG
        self.protocol = ServerProtocol(max_size=None, logger=logging.getLogger("tests.ws_stub"))
        self.request: Request | None = None
        self.received: list[Frame] = []

    # -- handshake ---------------------------------------------------------------------------
    def read_request(self, timeout: float = 10.0) -> Request:
        deadline = time.monotonic() + timeout
        while self.request is None:
            data = self._recv(deadline)
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Request):
                    self.request = event
        return self.request

    def accept(self, *, then: Iterable[bytes] = ()) -> None:
        """Answer 101; ``then``: text frames sent in the same write as the response."""
        request = self.read_request()
        self.protocol.send_response(self.protocol.accept(request))
        for text in then:
            self.protocol.send_text(text)
        self.flush()

    def reject(self, status: int, body: str) -> None:
        request = self.read_request()
        del request
        self.protocol.send_response(self.protocol.reject(status, body))
        self.flush()

    def answer_raw(self, data: bytes) -> None:
        self.read_request()
        self.sock.sendall(data)

    # -- frames ------------------------------------------------------------------------------
    def send_texts(self, texts: Iterable[bytes]) -> None:
        """Several text frames in one socket write."""
        for text in texts:
            self.protocol.send_text(text)
        self.flush()

    def send_fragmented(self, parts: list[bytes]) -> None:
        self.protocol.send_text(parts[0], fin=False)
        for part in parts[1:-1]:
            self.protocol.send_continuation(part, fin=False)
        self.protocol.send_continuation(parts[-1], fin=True)
        self.flush()

    def send_ping(self, payload: bytes) -> None:
        self.protocol.send_ping(payload)
        self.flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.protocol.send_close(code, reason)
        self.flush()

    def drop(self) -> None:
        """Close the TCP connection without a close frame."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def receive(self, count: int = 1, timeout: float = 10.0) -> list[Frame]:
        """Read until ``count`` data frames arrived (control frames are answered and kept)."""
        deadline = time.monotonic() + timeout
        while sum(f.opcode in (Opcode.TEXT, Opcode.BINARY) for f in self.received) < count:
            if not self.pump(deadline):
                break
        return [f for f in self.received if f.opcode in (Opcode.TEXT, Opcode.BINARY)]

    def wait_for(self, predicate: Callable[[Frame], bool], timeout: float = 10.0) -> Frame | None:
        deadline = time.monotonic() + timeout
        while True:
            for frame in self.received:
                if predicate(frame):
                    return frame
            if not self.pump(deadline):
                return None

    def pump(self, deadline: float) -> bool:
        """One read: feed it, answer pings/closes, keep the frames. False at EOF/timeout."""
        try:
            data = self._recv(deadline)
        except (TimeoutError, OSError):
            return False
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self.received.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
        self.flush()
        return bool(data) and self.protocol.state is not State.CLOSED

    def serve_until_closed(self, timeout: float = 10.0) -> None:
        """Keep answering (pongs, the closing handshake) until the client goes."""
        deadline = time.monotonic() + timeout
        while self.pump(deadline):
            pass

    def flush(self) -> None:
        chunks = self.protocol.data_to_send()
        data = b"".join(chunks)
        with contextlib.suppress(OSError):
            if data:
                self.sock.sendall(data)
            if b"" in chunks:
                self.sock.shutdown(socket.SHUT_WR)

    def _recv(self, deadline: float) -> bytes:
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            return self.sock.recv(READ_SIZE)
        finally:
            with contextlib.suppress(OSError):
                self.sock.settimeout(None)


Handler = Callable[[StubConnection], None]


class StubServer:
    """``with StubServer(handler) as server: ... server.url``; handler errors are re-raised."""

    def __init__(
        self,
        handler: Handler,
        *,
        unix_path: Path | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.tls = tls
        if unix_path is not None:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(str(unix_path))
            self.listener.listen()
            self.url = f"unix://{unix_path}"
        else:
            self.listener = socket.create_server(("127.0.0.1", 0))
            scheme = "wss" if tls is not None else "ws"
            self.url = f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[StubConnection] = []
        self.errors: list[BaseException] = []
        self.handled = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> StubServer:
        self._accepting.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        self.listener.close()
        self._accepting.join(5)
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.sock.close()
        for thread in self._threads:
            thread.join(5)
        if self.errors and exc_info[0] is None:
            raise self.errors[0]

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError):
                    sock.close()
                    continue
            conn = StubConnection(sock)
            self.connections.append(conn)
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: StubConnection) -> None:
        try:
            self.handler(conn)
        except (OSError, TimeoutError):
            pass  # the client went away: that is what many tests do
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.handled.set()
