"""The WebSocket transport: a running ``codex app-server --listen ws://…`` instead of a child.

Same seam as :class:`~codex_notebook.transport.SubprocessTransport`: ``start(sink)``
connects and starts one reader thread, ``send(message)`` writes one JSON-RPC
message as one text frame, the reader hands the messages of each socket read
to ``sink.feed_batch`` and reports the end exactly once through
``sink.closed``.  The router and both clients do not know which transport
they have.  ``unix://PATH`` (codex's ``--listen unix://``, also the socket of
``codex app-server daemon``) speaks the same WebSocket protocol over a Unix
socket; ``wss://`` is for a TLS-terminating proxy in front of the server.

Framing, the opening handshake and close codes are ``websockets``' Sans-I/O
protocol (:class:`websockets.client.ClientProtocol`); this module only moves
bytes.  Why not its threading client: that client reads the socket on a second
thread and hands every frame over through a queue (with flow control between
the two threads).  Measured on a flood of 200,000 real-shaped deltas
(``bench/remote_transport.py``, 2 cores): this transport 200–230k messages/s at
~2.8 µs of CPU per message; the threading client 165–190k/s at 4.2–5.0 µs;
websocket-client 65–127k/s at ~6.8 µs.  Driving the Sans-I/O protocol from our
one reader thread costs a third to a half less CPU per message in a process
that also runs the user's kernel, makes every frame of one socket read one
batch (exactly like a 64 KiB read of the server's stdout), and leaves
``close()`` in our hands: a writer stuck on a server that stopped reading must
not stop it.

Threads and state:

* the reader thread owns the socket's read side, the keep-alive clock and the
  fragment buffer;
* ``_close_lock`` guards ``_closing`` and the hand-over of the connected socket
  to the reader at the end of ``start()``, so a ``close()`` during the
  handshake either finds the socket or makes ``start()`` drop it;
* ``_proto_lock`` guards the protocol object, the TLS object and
  ``_flush_wanted``; it is never held across a socket call;
* ``_write_lock`` orders socket writes.  A sender holds it across its
  ``sendall``; the reader never waits for it (its pongs and pings are left to
  the holder, who looks again after letting go), so a slow or stuck writer
  never stops the reading.

Secrets: the bearer token is only ever in the handshake request.  It is kept
in a holder whose ``repr`` hides it, ``websockets``' debug logging (which would
print the request headers) is never enabled for our connections, and every
text taken from the server is passed through :func:`~codex_notebook.errors.redact`
with the token as a known secret.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import orjson
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import SEND_EOF, State
from websockets.uri import parse_uri
from websockets.version import version as websockets_version

from ._endpoint import Endpoint, Secret, parse_endpoint
from ._escapes import strip_ansi
from .errors import (
    AuthenticationError,
    ConnectionLostError,
    IncompatibleServerError,
    RemoteConnectError,
    TransportClosedError,
    redact,
)
from .transport import READ_SIZE, LineSink

__all__ = ["WebSocketTransport"]

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 20.0
#: After the first message we send, the server must say something within this.
HELLO_TIMEOUT_S = 15.0
CLOSE_GRACE_S = 1.0
_EVENTS_KEPT = 40
_CLOSE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "no close frame",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
}
_WHAT_NOW = (
    "Nothing was retried (a retried turn/start could start a turn twice): connect again "
    "(Codex(url=...); in a notebook %codex connect or %codex restart) and continue a "
    "conversation with thread_resume(thread_id)."
)


if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter


class _QuietLogger(_Adapter):
    """``websockets``' logger with DEBUG off for good: it would print request headers."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOGGER = _QuietLogger(logging.getLogger("websockets.client"), {})


# -- the transport ----------------------------------------------------------------------------


class WebSocketTransport:
    """One WebSocket connection to a running ``codex app-server``.

    ``token`` goes in ``Authorization: Bearer`` on the opening handshake (codex's
    ``--ws-auth capability-token`` or ``signed-bearer-token``).  ``url_source``
    and ``token_source`` only word error messages ("from $CODEX_APP_SERVER_URL").
    Keep-alive: after ``ping_interval`` s without a byte from the server, a ping;
    no answer within ``ping_timeout`` s ends the connection (``None`` turns it
    off).  ``ssl_context`` is for ``wss://`` (default: the system's CAs).

    There is no automatic reconnect: a lost connection fails every waiter at
    once with :class:`~codex_notebook.errors.ConnectionLostError`.
    """

    pid: int | None = None  # not a process

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        url_source: str = "url=",
        token_source: str = "token=",
        open_timeout: float = OPEN_TIMEOUT_S,
        ping_interval: float | None = PING_INTERVAL_S,
        ping_timeout: float | None = PING_TIMEOUT_S,
        hello_timeout: float | None = HELLO_TIMEOUT_S,
        close_grace: float = CLOSE_GRACE_S,
        ssl_context: ssl.SSLContext | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.endpoint = parse_endpoint(url, environ=environ)
        self.url = self.endpoint.url
        self._token = Secret(token) if token else None
        self._url_source = url_source
        self._token_source = token_source
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout if ping_interval is not None else None
        self._hello_timeout = hello_timeout
        self._close_grace = close_grace
        self._ssl_context = ssl_context
        self._events: deque[str] = deque(maxlen=_EVENTS_KEPT)
        self._close_lock = threading.Lock()
        self._closing = False  # set once, under _close_lock
        self._proto_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._flush_wanted = False  # under _proto_lock
        self._sock: socket.socket | None = None
        self._protocol: ClientProtocol | None = None
        self._tls: ssl.SSLObject | None = None
        self._tls_in = ssl.MemoryBIO()
        self._tls_out = ssl.MemoryBIO()
        self._early: list[Frame] = []  # frames that came with the handshake response
        self._reader: threading.Thread | None = None
        self._error: TransportClosedError | None = None  # the reader's verdict, once
        self._first_sent_at: float | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    def __repr__(self) -> str:
        if self._protocol is None:
            state = "closed" if self._closing else "unstarted"
        else:
            state = "closed" if self._error is not None else self._protocol.state.name.lower()
        return f"<WebSocketTransport {self.url} {state}>"

    @property
    def returncode(self) -> int | None:
        return None

    def stderr_tail(self) -> str:
        """No remote stderr reaches us: the recent connection events instead (token hidden)."""
        return self._redact("\n".join(self._events))

    # -- start ---------------------------------------------------------------------------------

    def start(self, sink: LineSink) -> None:
        """Connect and complete the WebSocket handshake, then start the reader thread.

        Raises :class:`~codex_notebook.errors.RemoteConnectError` (unreachable),
        :class:`~codex_notebook.errors.AuthenticationError` (token refused) or
        :class:`~codex_notebook.errors.IncompatibleServerError` (not an app-server).
        """
        if self._protocol is not None or self._closing:
            state = "closed" if self._closing else "started"
            raise TransportClosedError(
                f"this connection to {self.url} was already {state}; create a new transport"
            )
        deadline = time.monotonic() + self._open_timeout
        sock = self._open_socket(deadline)
        try:
            if self.endpoint.secure:
                self._start_tls(sock, deadline)
            self._handshake(sock, deadline)
        except BaseException:
            with contextlib.suppress(OSError):
                sock.close()
            raise
        sock.settimeout(None)  # from here on, the reader's selector and close() bound waits
        with self._close_lock:  # a close() during the handshake found no socket to cut
            if not self._closing:
                self._sock = sock
                self._reader = threading.Thread(
                    target=self._run, args=(sink,), name="codex-ws-reader", daemon=True
                )
                self._reader.start()
                return
        with contextlib.suppress(OSError):
            sock.close()
        raise TransportClosedError(f"the connection to {self.url} was closed while it was opened")

    def _open_socket(self, deadline: float) -> socket.socket:
        endpoint = self.endpoint
        started = time.monotonic()
        try:
            if endpoint.unix_path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(max(deadline - started, 0.001))
                    sock.connect(endpoint.unix_path)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection(
                    (endpoint.host, endpoint.port), timeout=max(deadline - started, 0.001)
                )
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise RemoteConnectError(self._unreachable(exc), url=self.url) from exc
        self._event(f"connected in {1000 * (time.monotonic() - started):.0f} ms")
        return sock

    def _unreachable(self, exc: OSError) -> str:
        where = f"the codex app-server at {self.url}{self._from(self._url_source)}"
        if isinstance(exc, socket.gaierror):
            what = f"cannot resolve host {self.endpoint.host!r} ({exc.strerror})"
            hint = "Check the host name."
        elif isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
            what = "nothing listens there" if self.endpoint.unix_path is None else "no socket"
            what += f" ({exc.strerror})"
            hint = (
                "Start it with `codex app-server daemon start` or "
                "`codex app-server --listen unix://PATH`."
                if self.endpoint.unix_path is not None
                else "Start it with `codex app-server --listen ws://IP:PORT --ws-auth "
                "capability-token --ws-token-file FILE` (or check the SSH port forwarding)."
            )
        elif isinstance(exc, TimeoutError):
            what = f"no answer within {self._open_timeout:g} s"
            hint = "Check the host, the port and any firewall in between."
        else:
            what = exc.strerror or str(exc) or type(exc).__name__
            hint = "Check the address and that the server is running."
        return f"could not connect to {where}: {what}. {hint}"

    def _start_tls(self, sock: socket.socket, deadline: float) -> None:
        context = self._ssl_context or ssl.create_default_context()
        tls = context.wrap_bio(self._tls_in, self._tls_out, server_hostname=self.endpoint.host)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if pending := self._tls_out.read():
                    sock.sendall(pending)
                data = self._recv_until(sock, deadline, "the TLS handshake")
                if not data:
                    raise RemoteConnectError(
                        f"{self.url} closed the connection during the TLS handshake", url=self.url
                    ) from None
                self._tls_in.write(data)
            except ssl.SSLError as exc:
                raise RemoteConnectError(
                    f"the TLS handshake with {self.url} failed: {exc.reason or exc}. "
                    "Check the certificate (or pass a WebSocketTransport with ssl_context=).",
                    url=self.url,
                ) from exc
        if pending := self._tls_out.read():
            sock.sendall(pending)
        self._tls = tls

    def _recv_until(self, sock: socket.socket, deadline: float, what: str) -> bytes:
        """Blocking read during start() (no reader thread yet), bounded by the open deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RemoteConnectError(
                f"{self.url} did not complete {what} within {self._open_timeout:g} s",
                url=self.url,
            )
        sock.settimeout(remaining)
        try:
            return sock.recv(READ_SIZE)
        except TimeoutError:
            raise RemoteConnectError(
                f"{self.url} did not complete {what} within {self._open_timeout:g} s",
                url=self.url,
            ) from None
        except OSError as exc:
            raise RemoteConnectError(
                f"the connection to {self.url} failed during {what}: {exc}", url=self.url
            ) from exc
        finally:
            sock.settimeout(None)

    def _handshake(self, sock: socket.socket, deadline: float) -> None:
        protocol = ClientProtocol(_ws_uri(self.endpoint), max_size=None, logger=_WS_LOGGER)
        request = protocol.connect()
        request.headers["User-Agent"] = _user_agent()
        if self._token is not None:
            request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        protocol.send_request(request)
        del request  # the only object holding the header
        self._protocol = protocol
        with self._proto_lock:
            out, _ = self._pull()
        sock.sendall(out)
        events: list[Any] = []
        while not events and protocol.handshake_exc is None:
            data = self._recv_until(sock, deadline, "the WebSocket handshake")
            with self._proto_lock:
                if data:
                    protocol.receive_data(self._decrypt(data))
                else:
                    protocol.receive_eof()
                events = protocol.events_received()
            if not data and not events and protocol.handshake_exc is None:
                raise RemoteConnectError(
                    f"{self.url} closed the connection during the WebSocket handshake. "
                    "Is it a codex app-server (`codex app-server --listen ws://IP:PORT`)?",
                    url=self.url,
                )
        failure, response = protocol.handshake_exc, events[0] if events else None
        if failure is not None or not isinstance(response, Response):
            raise self._handshake_error(failure, response) from failure
        self._early = [e for e in events[1:] if isinstance(e, Frame)]
        self._event(f"WebSocket open{' (token sent)' if self._token else ''}")

    def _handshake_error(self, failure: Exception | None, response: Any) -> RemoteConnectError:
        url = self.url
        status = response.status_code if isinstance(response, Response) else None
        body = ""
        if isinstance(response, Response) and response.body:
            body = bytes(response.body[:300]).decode("utf-8", "replace").strip()
        detail = self._redact(f"HTTP {status}" + (f": {body}" if body else ""))
        self._event(f"handshake refused: {detail if status else failure}")
        if status in (401, 403):
            assert status is not None
            if self._token is None:
                return AuthenticationError(
                    f"the codex app-server at {url} requires a token ({detail}). Pass "
                    "token_file= (or token=), or set CODEX_APP_SERVER_TOKEN_FILE to the file "
                    "the server was started with (its --ws-token-file).",
                    url=url,
                    status=status,
                )
            return AuthenticationError(
                f"the codex app-server at {url} refused the token from {self._token_source} "
                f"({detail}). Use the token the server was started with (its --ws-token-file), "
                "or a fresh one for --ws-auth signed-bearer-token.",
                url=url,
                status=status,
            )
        if status is not None and status >= 500:
            return RemoteConnectError(
                f"{url} answered {detail}: the app-server behind it is not reachable "
                "(a proxy with no server behind it?). Check that it is running.",
                url=url,
            )
        if status is not None and status != 101:
            return IncompatibleServerError(
                f"{url} is not a codex app-server WebSocket endpoint: it answered {detail} "
                "to the WebSocket handshake. Use the address `codex app-server --listen` "
                "printed (ws://IP:PORT).",
                url=url,
            )
        cause = failure.__cause__ if isinstance(failure, InvalidMessage) else failure
        detail = self._redact(str(cause or failure))
        if status is None:
            what = f"it did not answer the WebSocket handshake with HTTP ({detail})"
        else:
            what = f"the WebSocket handshake failed ({detail})"
        return IncompatibleServerError(
            f"{url} does not look like a codex app-server: {what}. Use the address "
            "`codex app-server --listen` printed (ws://IP:PORT).",
            url=url,
        )

    # -- sending -------------------------------------------------------------------------------

    def send(self, message: Mapping[str, Any]) -> None:
        """Write one message as one text frame. Thread-safe.

        Raises :class:`~codex_notebook.errors.TransportClosedError` once the
        connection is gone, and when :meth:`close` cuts a send that was stuck
        on a server that stopped reading.
        """
        data = orjson.dumps(message)
        sock, protocol = self._sock, self._protocol
        if sock is None or protocol is None or self._closing or self._error is not None:
            raise self._send_failure(None)
        try:
            with self._write_lock:
                with self._proto_lock:
                    if protocol.state is not State.OPEN:
                        raise self._send_failure(None)
                    protocol.send_text(data)
                    if self._first_sent_at is None:
                        self._first_sent_at = time.monotonic()
                    out, eof = self._pull()
                sock.sendall(out)
                if eof:
                    sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError) as exc:
            raise self._send_failure(exc) from exc
        self._after_write()

    def _send_failure(self, exc: BaseException | None) -> TransportClosedError:
        if self._error is not None:
            return self._error
        if self._closing:
            return TransportClosedError(f"the connection to {self.url} was closed by the client")
        if self._protocol is None:
            return TransportClosedError(f"not connected to {self.url} (start() was not called)")
        detail = f": {exc}" if exc is not None else ""
        return ConnectionLostError(
            f"could not send to the codex app-server at {self.url}{detail}. {_WHAT_NOW}",
            url=self.url,
        )

    def _pull(self) -> tuple[bytes, bool]:
        """Under ``_proto_lock``: the bytes the protocol (and TLS) want written, and EOF."""
        assert self._protocol is not None
        self._flush_wanted = False
        chunks = self._protocol.data_to_send()
        eof = SEND_EOF in chunks
        plain = b"".join(chunks)
        if self._tls is None:
            return plain, eof
        if plain:
            self._tls.write(plain)
        return self._tls_out.read(), eof

    def _write_queued(self, sock: socket.socket) -> None:
        """Holding ``_write_lock``: write the queued control frames. Errors are the reader's."""
        with self._proto_lock:
            out, eof = self._pull()
        with contextlib.suppress(OSError, ValueError):
            if out:
                sock.sendall(out)
            if eof:
                sock.shutdown(socket.SHUT_WR)

    def _after_write(self) -> None:
        """After letting go of ``_write_lock``: write what the reader queued meanwhile."""
        sock = self._sock
        while sock is not None:
            with self._proto_lock:
                if not self._flush_wanted:
                    return
            if not self._write_lock.acquire(blocking=False):
                return  # its new holder looks again when it lets go
            try:
                self._write_queued(sock)
            finally:
                self._write_lock.release()

    def _queue_write(self, sock: socket.socket) -> bool:
        """Reader thread: the protocol queued a pong, ping or close frame.

        Written at once when that cannot block; if a sender holds the write lock
        it writes them when it lets go.  Returns True when the reader should wait
        for the socket to become writable and try again.
        """
        with self._proto_lock:
            self._flush_wanted = True
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            if not _writable(sock):
                return True
            self._write_queued(sock)
        finally:
            self._write_lock.release()
        self._after_write()
        return False

    # -- reading (reader thread) ---------------------------------------------------------------

    def _run(self, sink: LineSink) -> None:
        """The reader thread: read, deliver, keep alive; at the end report exactly once."""
        try:
            error = self._read_loop(sink)
        except Exception as exc:  # a bug here must still release every waiter
            log.exception("codex_notebook: the WebSocket reader failed")
            error = self._lost(f"the reader failed ({exc!r})")
        if self._closing:
            error = TransportClosedError("the client was closed")
        self._error = error
        self._event(f"closed: {error.reason}")
        sock = self._sock
        if sock is not None:  # wake a writer blocked on a dead peer before anyone waits
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        try:
            sink.closed(error)
        except Exception:
            log.exception("codex_notebook: error while reporting the end of the connection")
        if sock is not None and self._write_lock.acquire(timeout=self._close_grace + 1.0):
            try:  # no writer can be inside a call on it now
                sock.close()
            finally:
                self._write_lock.release()

    def _read_loop(self, sink: LineSink) -> TransportClosedError:
        """Reader thread: the only code that reads the socket; returns why it ended."""
        sock, protocol = self._sock, self._protocol
        assert sock is not None and protocol is not None
        fragments: list[bytes] = []
        answered = False
        last_rx = time.monotonic()
        ping: bytes | None = None
        ping_sent = 0.0
        closing_since: float | None = None
        # the first answer is due hello_timeout after our first message (the client sends
        # initialize right after start(), so this clock starts here and is moved if needed)
        hello = None if self._hello_timeout is None else last_rx + self._hello_timeout
        want_writable = False
        frames, self._early = self._early, []
        if frames:  # the handshake's read may have brought a ping or a close to answer
            want_writable = self._queue_write(sock)
        selector = selectors.DefaultSelector()
        interest = selectors.EVENT_READ
        selector.register(sock, interest)
        try:
            while True:
                if frames:
                    lines: list[bytes] = []
                    for frame in frames:
                        opcode = frame.opcode
                        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                            if frame.fin:
                                lines.append(bytes(frame.data))
                            else:
                                fragments = [bytes(frame.data)]
                        elif opcode is Opcode.CONT:
                            fragments.append(bytes(frame.data))
                            if frame.fin:
                                lines.append(b"".join(fragments))
                                fragments = []
                    if lines:
                        if not answered:
                            answered = True
                            if (failure := self._check_first(lines[0])) is not None:
                                return failure
                        try:
                            sink.feed_batch(lines)
                        except Exception:  # a routing bug must not kill the only reader
                            log.exception("codex_notebook: error while routing server messages")
                    frames = []
                state = protocol.state
                if state is State.CLOSED:
                    return self._ended(protocol)
                now = time.monotonic()
                if state is State.CLOSING and closing_since is None:
                    closing_since = now
                # the next deadline: keep-alive, the first answer, or the end of a close
                deadline: float | None = None
                if closing_since is not None:
                    deadline = closing_since + self._close_grace
                elif ping is not None and self._ping_timeout is not None:
                    deadline = ping_sent + self._ping_timeout
                elif self._ping_interval is not None:
                    deadline = last_rx + self._ping_interval
                if hello is not None and not answered:
                    deadline = hello if deadline is None else min(deadline, hello)
                wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_writable else 0)
                if wanted != interest:
                    interest = wanted
                    selector.modify(sock, interest)
                ready = selector.select(None if deadline is None else max(deadline - now, 0.0))
                mask = ready[0][1] if ready else 0
                if mask & selectors.EVENT_WRITE:
                    want_writable = self._queue_write(sock)
                if not mask & selectors.EVENT_READ:
                    now = time.monotonic()
                    if closing_since is not None and now >= closing_since + self._close_grace:
                        return self._ended(protocol)
                    if hello is not None and not answered and now >= hello:
                        # judged from our first message; nothing asked yet: no verdict
                        first = self._first_sent_at
                        assert self._hello_timeout is not None
                        if first is None:
                            hello = None
                        elif now >= first + self._hello_timeout:
                            return self._silent()
                        else:
                            hello = first + self._hello_timeout
                    if ping is not None and self._ping_timeout is not None:
                        if now >= ping_sent + self._ping_timeout:
                            return self._unresponsive(now - last_rx)
                    elif (
                        self._ping_interval is not None
                        and closing_since is None
                        and now >= last_rx + self._ping_interval
                    ):
                        ping, ping_sent = os.urandom(4), now
                        with self._proto_lock:
                            if protocol.state is State.OPEN:  # close() may have begun meanwhile
                                protocol.send_ping(ping)
                        want_writable = self._queue_write(sock)
                    continue
                try:
                    data = sock.recv(READ_SIZE)
                except OSError as exc:
                    return self._lost(f"reading failed ({exc})")
                last_rx = time.monotonic()
                ping = None  # any byte from the server proves it alive
                with self._proto_lock:
                    try:
                        if data:
                            protocol.receive_data(self._decrypt(data))
                        else:
                            protocol.receive_eof()
                    except ssl.SSLError as exc:
                        return self._lost(f"TLS failed ({exc})")
                    frames = cast(list[Frame], protocol.events_received())  # after the handshake
                    replies = protocol.state is not State.OPEN or self._tls_out.pending > 0
                if replies or any(f.opcode is Opcode.PING for f in frames):
                    want_writable = self._queue_write(sock)
                if not data and protocol.state is not State.CLOSED:
                    return self._ended(protocol)
        finally:
            selector.close()

    def _decrypt(self, data: bytes) -> bytes:
        """Under ``_proto_lock``: raw bytes from the socket -> WebSocket bytes."""
        if self._tls is None:
            return data
        self._tls_in.write(data)
        out: list[bytes] = []
        while True:
            try:
                chunk = self._tls.read(READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            out.append(chunk)
        return b"".join(out)

    def _check_first(self, line: bytes) -> TransportClosedError | None:
        """The first message must be a JSON object, or this is no JSON-RPC peer."""
        try:
            ok = isinstance(orjson.loads(line), dict)
        except orjson.JSONDecodeError:
            ok = False
        if ok:
            return None
        shown = self._redact(line[:120].decode("utf-8", "replace"))
        return IncompatibleServerError(
            f"{self.url} does not speak the codex app-server protocol: its first message "
            f"was not a JSON-RPC object ({shown!r}). Use the address `codex app-server "
            "--listen` printed.",
            url=self.url,
        )

    def _silent(self) -> TransportClosedError:
        return IncompatibleServerError(
            f"{self.url} accepted the WebSocket but did not answer within "
            f"{self._hello_timeout:g} s: it does not behave like a codex app-server. Use the "
            "address `codex app-server --listen` printed.",
            url=self.url,
        )

    def _unresponsive(self, silent_for: float) -> TransportClosedError:
        self._event(f"no pong within {self._ping_timeout:g} s")
        return ConnectionLostError(
            f"the codex app-server at {self.url} stopped answering: nothing for "
            f"{silent_for:.0f} s and no answer to a ping within {self._ping_timeout:g} s "
            f"(the server is stuck, or the network dropped). {_WHAT_NOW}",
            url=self.url,
        )

    def _ended(self, protocol: ClientProtocol) -> TransportClosedError:
        """Why a connection that reached the end of its stream ended."""
        if self._closing:
            return TransportClosedError("the client was closed")
        received, sent = protocol.close_rcvd, protocol.close_sent
        if sent is not None and not protocol.close_rcvd_then_sent and sent.code != 1000:
            # the protocol closed it: the server broke the WebSocket rules
            return self._lost(f"it sent invalid WebSocket data ({sent.reason or sent.code})")
        if received is None:
            return self._lost(
                "it ended without a close frame (code 1006): the server exited or the "
                "network dropped"
            )
        code, reason = int(received.code), self._redact(received.reason)
        self.close_code, self.close_reason = code, reason
        name = _CLOSE_NAMES.get(code, "")
        why = f"code {code}" + (f" {name}" if name else "") + (f": {reason}" if reason else "")
        return ConnectionLostError(
            f"the codex app-server at {self.url} closed the connection ({why}). {_WHAT_NOW}",
            url=self.url,
            close_code=code,
            close_reason=reason,
        )

    def _lost(self, what: str) -> TransportClosedError:
        if self._closing:
            return TransportClosedError("the client was closed")
        self.close_code = 1006
        return ConnectionLostError(
            f"the connection to the codex app-server at {self.url} was lost: {what}. {_WHAT_NOW}",
            url=self.url,
            close_code=1006,
        )

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Say goodbye (a close frame), give the server ``close_grace`` s to answer, then
        cut the connection.  Idempotent, any thread (the reader's too).

        Never waits for a writer stuck on a server that stopped reading: then
        the connection is cut at once, and that ``send()`` fails with
        :class:`~codex_notebook.errors.TransportClosedError`.
        """
        with self._close_lock:
            if self._closing:
                return
            self._closing = True
        sock, protocol, reader = self._sock, self._protocol, self._reader
        if sock is None or protocol is None:
            return
        on_reader = reader is threading.current_thread()
        said_goodbye = False
        # The goodbye needs both locks. Never wait for them: a stuck writer holds the write
        # lock for good, and close() may run inside a lock's holder (a garbage-collected
        # client's finalizer runs on whatever thread the collection happens to hit).
        if not on_reader and self._write_lock.acquire(timeout=0.05):
            try:
                out = self._goodbye(protocol)
                if out and _writable(sock):
                    with contextlib.suppress(OSError, ValueError):
                        sock.sendall(out)
                        said_goodbye = True
            finally:
                self._write_lock.release()
        elif not on_reader:
            self._event("a send was stuck (the server stopped reading): cutting the connection")
        if said_goodbye and reader is not None:
            reader.join(self._close_grace)  # the server answers and closes its side
        with contextlib.suppress(OSError, ValueError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the reader and a stuck writer
        if reader is not None and not on_reader:
            reader.join(self._close_grace + 2.0)

    def _goodbye(self, protocol: ClientProtocol) -> bytes:
        """Holding ``_write_lock``: queue a close frame; the bytes to write (b"" if the
        protocol lock is busy)."""
        if not self._proto_lock.acquire(timeout=0.05):
            return b""
        try:
            if protocol.state is State.OPEN:
                protocol.send_close(1000, "client closed")
            return self._pull()[0]
        finally:
            self._proto_lock.release()

    # -- helpers -------------------------------------------------------------------------------

    def _event(self, what: str) -> None:
        self._events.append(f"{time.strftime('%H:%M:%S')} {self.url}: {self._redact(what)}")

    def _redact(self, text: str) -> str:
        secrets = (self._token.reveal(),) if self._token is not None else ()
        return redact(strip_ansi(text), secrets)

    @staticmethod
    def _from(source: str) -> str:
        return f" (from {source})" if source.startswith("$") else ""


def _ws_uri(endpoint: Endpoint) -> Any:
    if endpoint.unix_path is not None:
        return parse_uri("ws://localhost/")
    scheme = "wss" if endpoint.secure else "ws"
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return parse_uri(f"{scheme}://{host}:{endpoint.port}{endpoint.resource}")


def _writable(sock: socket.socket) -> bool:
    """Whether a small write would not block (``poll``: any descriptor number works)."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLOUT)
            return bool(poller.poll(0))
        return bool(select.select([], [sock], [], 0)[1])
    except (OSError, ValueError):
        return False


def _user_agent() -> str:
    from . import __version__

    return f"codex-notebook/{__version__} websockets/{websockets_version}"
