"""The WebSocket transport against scripted local servers: framing, batching, keep-alive,
closing, handshake failures, and the token staying secret."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.frames import Opcode

from codex_notebook.errors import (
    AuthenticationError,
    ConnectionLostError,
    IncompatibleServerError,
    RemoteConnectError,
    TransportClosedError,
)
from codex_notebook.transport_ws import WebSocketTransport
from tests.fakes.ws_stub import StubConnection, StubServer

TOKEN = "tok-Secret-4c1b9e7a2f"


class Sink:
    """Records what the reader thread delivers."""

    def __init__(self, on_batch: Callable[[list[bytes]], None] | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.errors: list[TransportClosedError] = []
        self.cond = threading.Condition()
        self.on_batch = on_batch
        self.threads: set[str] = set()

    def feed_batch(self, lines: Iterable[bytes]) -> None:
        batch = list(lines)
        with self.cond:
            self.batches.append(batch)
            self.threads.add(threading.current_thread().name)
            self.cond.notify_all()
        if self.on_batch is not None:
            self.on_batch(batch)

    def closed(self, error: TransportClosedError) -> None:
        with self.cond:
            self.errors.append(error)
            self.cond.notify_all()

    @property
    def messages(self) -> list[bytes]:
        with self.cond:
            return [line for batch in self.batches for line in batch]

    def wait_messages(self, count: int, timeout: float = 10) -> list[bytes]:
        with self.cond:
            self.cond.wait_for(lambda: sum(map(len, self.batches)) >= count, timeout)
        return self.messages

    def wait_closed(self, timeout: float = 10) -> TransportClosedError:
        with self.cond:
            assert self.cond.wait_for(lambda: self.errors, timeout), "closed() never came"
            return self.errors[0]


@pytest.fixture
def transports() -> Iterator[list[WebSocketTransport]]:
    made: list[WebSocketTransport] = []
    yield made
    for transport in made:
        transport.close()


def connect(
    made: list[WebSocketTransport], url: str, sink: Sink | None = None, **options: Any
) -> tuple[WebSocketTransport, Sink]:
    transport = WebSocketTransport(url, **options)
    made.append(transport)
    sink = sink or Sink()
    transport.start(sink)
    return transport, sink


def accept_and_serve(conn: StubConnection) -> None:
    conn.accept()
    conn.serve_until_closed()


# -- framing and batching -------------------------------------------------------------------------


def test_each_message_is_one_text_frame(transports: list[WebSocketTransport]) -> None:
    got: list[Any] = []

    def handler(conn: StubConnection) -> None:
        conn.accept()
        got.extend(conn.receive(3))
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport, _ = connect(transports, server.url)
        messages = [{"id": i, "method": "m", "params": {"text": "a\nb"}} for i in range(3)]
        for message in messages:
            transport.send(message)
        server.handled.wait(0)  # the handler reads on its own
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        transport.close()
    assert [f.opcode for f in got] == [Opcode.TEXT] * 3
    assert [bytes(f.data) for f in got] == [orjson.dumps(m) for m in messages]


def test_frames_of_one_read_arrive_as_one_batch(transports: list[WebSocketTransport]) -> None:
    lines = [orjson.dumps({"method": "x", "params": {"n": i}}) for i in range(300)]

    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.send_texts(lines)  # one socket write
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url)
        assert sink.wait_messages(300) == lines
        transport.close()
    assert len(sink.batches) < 30  # ~13 KB: one or a few reads, never one wake per message
    assert sink.threads == {"codex-ws-reader"}


def test_a_fragmented_message_arrives_whole(transports: list[WebSocketTransport]) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.send_fragmented([b'{"method":', b'"frag","par', b'ams":{}}'])
        conn.send_texts([b'{"method":"after"}'])
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url)
        assert sink.wait_messages(2) == [b'{"method":"frag","params":{}}', b'{"method":"after"}']
        transport.close()


def test_frames_sent_with_the_handshake_response_are_delivered(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept(then=[b'{"method":"early"}'])
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url)
        assert sink.wait_messages(1) == [b'{"method":"early"}']
        transport.close()


def test_the_token_goes_in_the_authorization_header(
    transports: list[WebSocketTransport],
) -> None:
    headers: list[Any] = []

    def handler(conn: StubConnection) -> None:
        headers.append(conn.read_request().headers)
        accept_and_serve(conn)

    with StubServer(handler) as server:
        transport, _ = connect(transports, server.url, token=TOKEN)
        transport.close()
    assert headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert headers[0]["User-Agent"].startswith("codex-notebook/")


def test_a_unix_socket_server_works(transports: list[WebSocketTransport], tmp_path: Path) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept(then=[b'{"method":"hello"}'])
        conn.serve_until_closed()

    with StubServer(handler, unix_path=tmp_path / "s.sock") as server:
        transport, sink = connect(transports, server.url)
        assert sink.wait_messages(1) == [b'{"method":"hello"}']
        assert transport.url == f"unix://{tmp_path / 's.sock'}"
        transport.close()


# -- closing --------------------------------------------------------------------------------------


def test_close_says_goodbye_and_reports_closed_once(transports: list[WebSocketTransport]) -> None:
    closes: list[Any] = []

    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.serve_until_closed()
        closes.append(conn.protocol.close_rcvd)

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url)
        transport.close()
        transport.close()  # idempotent
        error = sink.wait_closed()
        server.handled.wait(5)
    assert type(error) is TransportClosedError
    assert error.reason == "the client was closed"
    assert len(sink.errors) == 1
    assert closes and closes[0].code == 1000
    with pytest.raises(TransportClosedError):
        transport.send({"method": "late"})


def test_close_from_the_reader_thread_does_not_deadlock(
    transports: list[WebSocketTransport],
) -> None:
    holder: list[WebSocketTransport] = []
    sink = Sink(on_batch=lambda batch: holder[0].close())

    def handler(conn: StubConnection) -> None:
        conn.accept(then=[b'{"method":"bye"}'])
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport = WebSocketTransport(server.url)
        holder.append(transport)
        transports.append(transport)
        transport.start(sink)
        error = sink.wait_closed()
    assert error.reason == "the client was closed"
    assert len(sink.errors) == 1


def test_close_called_inside_the_protocol_lock_does_not_deadlock(
    transports: list[WebSocketTransport],
) -> None:
    """A garbage-collected client's finalizer may run on a thread that holds a transport lock."""
    with StubServer(accept_and_serve) as server:
        transport, sink = connect(transports, server.url, close_grace=0.2)
        with transport._proto_lock:  # as if the collection hit inside a locked section
            started = time.monotonic()
            transport.close()
            took = time.monotonic() - started
        assert sink.wait_closed().reason == "the client was closed"
    assert took < 5.0  # no goodbye; the reader (waiting for the lock) is given grace + 2 s


def test_close_cuts_a_send_stuck_on_a_server_that_stopped_reading(
    transports: list[WebSocketTransport],
) -> None:
    release = threading.Event()

    def handler(conn: StubConnection) -> None:
        conn.accept()
        release.wait(30)  # never reads: the client's socket buffers fill up

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url, close_grace=0.5)
        outcome: list[BaseException | None] = []
        entered = threading.Event()

        def stuck_send() -> None:
            entered.set()
            try:
                transport.send({"method": "big", "params": {"blob": "x" * (64 << 20)}})
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        sender = threading.Thread(target=stuck_send)
        sender.start()
        entered.wait()
        time.sleep(0.3)  # let it fill the buffers and block
        assert not outcome, "the send should be stuck"
        started = time.monotonic()
        transport.close()
        took = time.monotonic() - started
        sender.join(5)
        release.set()
    assert took < 3.0
    assert not sender.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], TransportClosedError)
    assert sink.wait_closed().reason == "the client was closed"


# -- the server ends it ---------------------------------------------------------------------------


def test_a_close_frame_from_the_server_is_connection_lost_with_its_code(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.close(1001, "shutting down")
        conn.serve_until_closed()

    with StubServer(handler) as server:
        started = time.monotonic()
        transport, sink = connect(transports, server.url, close_grace=5.0)
        error = sink.wait_closed()
        took = time.monotonic() - started
    assert took < 2.5  # the close was answered at once, not left to the grace period
    assert isinstance(error, ConnectionLostError)
    assert (error.close_code, error.close_reason) == (1001, "shutting down")
    assert server.url in str(error)
    assert "1001 going away: shutting down" in str(error)
    assert "thread_resume" in str(error)
    with pytest.raises(ConnectionLostError):
        transport.send({"method": "after"})


def test_a_dropped_connection_is_connection_lost_1006(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept(then=[b'{"method":"one"}'])
        time.sleep(0.1)
        conn.drop()

    with StubServer(handler) as server:
        _, sink = connect(transports, server.url)
        error = sink.wait_closed()
    assert sink.messages == [b'{"method":"one"}']
    assert isinstance(error, ConnectionLostError)
    assert error.close_code == 1006
    assert "without a close frame" in str(error)
    assert server.url in str(error)


def test_invalid_websocket_data_ends_the_connection(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.sock.sendall(b"\x8f\x00")  # a reserved opcode
        conn.serve_until_closed()

    with StubServer(handler) as server:
        _, sink = connect(transports, server.url, close_grace=0.5)
        error = sink.wait_closed()
    assert isinstance(error, ConnectionLostError)
    assert "invalid WebSocket data" in str(error)


# -- keep-alive -----------------------------------------------------------------------------------


def test_a_server_that_stops_answering_pings_is_dropped(
    transports: list[WebSocketTransport],
) -> None:
    release = threading.Event()

    def handler(conn: StubConnection) -> None:
        conn.accept()
        release.wait(30)  # alive on TCP, but never reads: no pong

    with StubServer(handler) as server:
        started = time.monotonic()
        _, sink = connect(transports, server.url, ping_interval=0.2, ping_timeout=0.3)
        error = sink.wait_closed(timeout=10)
        took = time.monotonic() - started
        release.set()
    assert isinstance(error, ConnectionLostError)
    assert "stopped answering" in str(error)
    assert server.url in str(error)
    assert took < 5.0  # 0.2 s of silence + 0.3 s without a pong, plus scheduling


def test_a_quiet_but_live_server_is_kept(transports: list[WebSocketTransport]) -> None:
    pings: list[bytes] = []

    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.serve_until_closed(timeout=10)  # answers pings, sends nothing
        pings.extend(bytes(f.data) for f in conn.received if f.opcode is Opcode.PING)

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url, ping_interval=0.1, ping_timeout=0.5)
        time.sleep(1.0)
        assert not sink.errors
        transport.close()
        server.handled.wait(5)
    assert len(pings) >= 3


def test_pings_from_the_server_are_answered(transports: list[WebSocketTransport]) -> None:
    pongs: list[bytes] = []

    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.send_ping(b"are-you-there")
        pong = conn.wait_for(lambda f: f.opcode is Opcode.PONG, timeout=5)
        pongs.append(bytes(pong.data) if pong is not None else b"")
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport, _ = connect(transports, server.url, ping_interval=None)
        deadline = time.monotonic() + 10
        while not pongs and time.monotonic() < deadline:
            time.sleep(0.01)
        answered = list(pongs)  # before close(), which would flush anything left behind
        transport.close()
    assert answered == [b"are-you-there"]


# -- not an app-server ----------------------------------------------------------------------------


def test_a_websocket_that_never_answers_is_incompatible(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.serve_until_closed()  # reads, never writes

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url, hello_timeout=0.3)
        transport.send({"id": 0, "method": "initialize"})  # as the client does at once
        error = sink.wait_closed()
    assert isinstance(error, IncompatibleServerError)
    assert "did not answer within 0.3 s" in str(error)


def test_a_late_first_request_is_not_judged_early(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept()
        conn.receive(1)
        time.sleep(0.2)  # answers within hello_timeout of the request, not of the connect
        conn.send_texts([b'{"id":0,"result":{}}'])
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url, hello_timeout=0.3)
        time.sleep(0.25)
        transport.send({"id": 0, "method": "initialize"})
        assert sink.wait_messages(1) == [b'{"id":0,"result":{}}']
        time.sleep(0.3)
        assert not sink.errors
        transport.close()


def test_a_first_message_that_is_not_json_rpc_is_incompatible(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.accept(then=[b"Welcome to the chat server!"])
        conn.serve_until_closed()

    with StubServer(handler) as server:
        _, sink = connect(transports, server.url)
        error = sink.wait_closed()
    assert isinstance(error, IncompatibleServerError)
    assert "Welcome to the chat server!" in str(error)
    assert sink.messages == []


@pytest.mark.parametrize(
    ("status", "token", "error_type", "says"),
    [
        (401, None, AuthenticationError, "requires a token"),
        (401, TOKEN, AuthenticationError, "refused the token from token="),
        (403, TOKEN, AuthenticationError, "refused the token"),
        (404, None, IncompatibleServerError, "is not a codex app-server WebSocket endpoint"),
        (502, None, RemoteConnectError, "not reachable"),
    ],
)
def test_a_refused_handshake_says_why(
    transports: list[WebSocketTransport],
    status: int,
    token: str | None,
    error_type: type[Exception],
    says: str,
) -> None:
    # the server quotes the token back: it must not reach the message
    refuse = StubServer(lambda conn: conn.reject(status, f"no ({token})"))
    with refuse as server, pytest.raises(error_type) as caught:
        connect(transports, server.url, token=token)
    message = str(caught.value)
    assert type(caught.value) is error_type
    assert says in message
    assert f"HTTP {status}" in message
    assert server.url in message
    assert TOKEN not in message


def test_a_server_that_does_not_speak_http_is_incompatible(
    transports: list[WebSocketTransport],
) -> None:
    def handler(conn: StubConnection) -> None:
        conn.answer_raw(b"SSH-2.0-OpenSSH_9.2p1\r\n")
        conn.drop()

    with StubServer(handler) as server, pytest.raises(IncompatibleServerError) as caught:
        connect(transports, server.url)
    assert "did not answer the WebSocket handshake with HTTP" in str(caught.value)


def test_nobody_listening_is_unreachable(transports: list[WebSocketTransport]) -> None:
    with StubServer(accept_and_serve) as server:
        url = server.url
    with pytest.raises(RemoteConnectError) as caught:
        connect(transports, url)
    assert type(caught.value) is RemoteConnectError
    assert "nothing listens there" in str(caught.value)
    assert "codex app-server --listen" in str(caught.value)


def test_a_missing_unix_socket_says_how_to_start_the_daemon(
    transports: list[WebSocketTransport], tmp_path: Path
) -> None:
    with pytest.raises(RemoteConnectError) as caught:
        connect(transports, f"unix://{tmp_path / 'none.sock'}")
    assert "codex app-server daemon start" in str(caught.value)


def test_a_handshake_that_never_completes_times_out(
    transports: list[WebSocketTransport],
) -> None:
    release = threading.Event()
    with StubServer(lambda conn: release.wait(10)) as server:
        started = time.monotonic()
        with pytest.raises(RemoteConnectError) as caught:
            connect(transports, server.url, open_timeout=0.3)
        took = time.monotonic() - started
        release.set()
    assert "did not complete the WebSocket handshake within 0.3 s" in str(caught.value)
    assert took < 3.0


# -- secrets --------------------------------------------------------------------------------------


def test_the_token_never_shows_in_logs_reprs_or_errors(
    transports: list[WebSocketTransport], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, websockets' own loggers included

    def handler(conn: StubConnection) -> None:
        conn.accept(then=[b'{"method":"hi","params":{"echo":"' + TOKEN.encode() + b'"}}'])
        conn.pump(time.monotonic() + 5)
        conn.close(1011, f"bad token {TOKEN}")
        conn.serve_until_closed()

    with StubServer(handler) as server:
        transport, sink = connect(transports, server.url, token=TOKEN)
        shown = [repr(transport), str(transport), repr(vars(transport))]
        transport.send({"method": "ping"})
        error = sink.wait_closed()
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("tests.")]
    shown += [str(error), repr(error), transport.stderr_tail(), *ours]
    stub_saw = [r.getMessage() for r in caplog.records if r.name == "tests.ws_stub"]
    assert any("Authorization" in line for line in stub_saw)  # DEBUG logging was really on
    for text in shown:
        assert TOKEN not in text
    assert "[REDACTED]" in str(error)  # the close reason quoted it: blanked out
    assert sink.messages  # (messages themselves are the router's, delivered verbatim)


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a throw-away self-signed cert."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no certificate for the TLS test")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_wss_through_tls_works_both_ways(
    transports: list[WebSocketTransport], tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    got: list[Any] = []
    lines = [orjson.dumps({"method": "x", "params": {"n": i}}) for i in range(200)]

    def handler(conn: StubConnection) -> None:
        conn.accept(then=lines[:1])
        conn.send_texts(lines[1:])
        got.extend(conn.receive(2))
        conn.serve_until_closed()

    server_ctx, client_ctx = tls_pair
    with StubServer(handler, tls=server_ctx) as server:
        transport, sink = connect(transports, server.url, ssl_context=client_ctx)
        assert sink.wait_messages(200) == lines
        transport.send({"id": 1, "method": "a"})
        transport.send({"id": 2, "method": "b"})
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        transport.close()
        assert sink.wait_closed().reason == "the client was closed"
    assert [orjson.loads(f.data)["id"] for f in got] == [1, 2]


def test_an_untrusted_certificate_is_refused(
    transports: list[WebSocketTransport], tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    untrusted = StubServer(accept_and_serve, tls=tls_pair[0])
    with untrusted as server, pytest.raises(RemoteConnectError) as caught:
        connect(transports, server.url)  # the system CAs do not know it
    assert "TLS handshake" in str(caught.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)


def test_a_close_during_the_handshake_leaves_no_connection_behind() -> None:
    """``close()`` while ``start()`` is still connecting (a restart, a cancelled
    ``AsyncCodex.start()``) must end that connection: nothing else ever would."""
    asked, answer = threading.Event(), threading.Event()
    ended: list[float] = []

    def handler(conn: StubConnection) -> None:
        conn.read_request()
        asked.set()
        answer.wait(10)
        conn.accept()
        conn.serve_until_closed()
        ended.append(time.monotonic())

    with StubServer(handler) as server:
        transport = WebSocketTransport(server.url)
        outcome: list[BaseException | None] = []

        def start() -> None:
            try:
                transport.start(Sink())
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        starter = threading.Thread(target=start, daemon=True)
        starter.start()
        assert asked.wait(10)
        transport.close()  # start() is inside the handshake
        answer.set()
        starter.join(10)
        closed_at = time.monotonic()
        assert server.handled.wait(5), "the connection is still open"
    assert [type(e) for e in outcome] == [TransportClosedError]
    assert transport._reader is None or not transport._reader.is_alive()
    assert ended and ended[0] - closed_at < 5
