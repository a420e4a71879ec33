"""The demo model's HTTP face: an OpenAI Responses API look-alike on 127.0.0.1.

The real ``codex app-server`` is pointed here through ``config.toml`` (see
:mod:`codex_notebook.demo.home`). It posts ``/v1/responses`` with ``"stream": true`` and reads
server-sent events; this module turns the :mod:`~codex_notebook.demo.script` decision into that
event stream and owns nothing else.

Design points, each with its reason:

* ``ThreadingHTTPServer``: codex calls the model concurrently for concurrent turns, so every
  request gets its own thread; the standard library suffices and adds no dependency.
* Binds ``127.0.0.1`` on a random free port: the demo must never be reachable from outside, and
  parallel tests must not collide.
* ``Connection: close`` after each stream: the body has no length, so closing marks its end, and
  no idle keep-alive connection lingers to delay :meth:`DemoModelServer.stop`.
* Delays wait on the stop event, and :meth:`DemoModelServer.stop` shuts the sockets of streams in
  flight, so stopping never waits for a slow scripted answer.
* Scripted failures are HTTP 400 with a plain-text body: codex 0.163.0 and 0.171.0 show that
  text verbatim as the turn's error, while any 500 becomes "We're currently experiencing high
  demand...", which would make a demonstration read like a real outage.
* A client that goes away mid-stream (codex interrupted, process killed) is normal: the handler
  returns quietly instead of printing a traceback on stderr.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from codex_notebook.demo.replies import HttpFailure, TextAnswer, ToolCall
from codex_notebook.demo.script import reply_for_request

__all__ = ["DemoModelServer", "Pause", "SseEvent", "response_events"]

_log = logging.getLogger(__name__)

_MODELS_BODY = {"models": [], "data": [], "object": "list"}
_MAX_BODY_BYTES = 64 * 1024 * 1024
_RECENT_REQUESTS = 16
_FLUSH_BYTES = 64 * 1024
_CONNECTION_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass(frozen=True)
class SseEvent:
    """One server-sent event: ``event: <type>`` and ``data: <json>`` (which repeats the type)."""

    type: str
    data: dict[str, Any]

    def encode(self) -> bytes:
        """The wire form, terminated by the blank line that ends an SSE event."""
        payload = {"type": self.type, **self.data}
        return f"event: {self.type}\ndata: {json.dumps(payload)}\n\n".encode()


@dataclass(frozen=True)
class Pause:
    """Wait this long before the next event (a scripted ``DELAY_MS``)."""

    seconds: float


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def response_events(
    reply: TextAnswer | ToolCall, *, input_tokens: int = 1
) -> Iterator[SseEvent | Pause]:
    """The Responses API stream for one reply, with :class:`Pause` markers for delays.

    Pure apart from fresh ids, so the exact event sequence is unit-testable without a socket.
    Usage is an estimate (about four characters per token) so codex's token counters move.
    """
    response_id = _new_id("resp")
    yield SseEvent("response.created", {"response": {"id": response_id}})
    if isinstance(reply, ToolCall):
        output_tokens = max(1, len(reply.arguments) // 4)
        item = {
            "type": "function_call",
            "id": _new_id("fc"),
            "call_id": _new_id("call"),
            "name": reply.name,
            "arguments": reply.arguments,
        }
        if reply.namespace is not None:
            item["namespace"] = reply.namespace  # how codex routes it to a client tool
        yield SseEvent("response.output_item.done", {"output_index": 0, "item": item})
    else:
        output_tokens = max(1, len(reply.text) // 4)
        item_id = _new_id("msg")
        message = {
            "type": "message",
            "role": "assistant",
            "id": item_id,
            "status": "in_progress",
            "content": [],
        }
        yield SseEvent("response.output_item.added", {"output_index": 0, "item": message})
        yield SseEvent(
            "response.content_part.added",
            {
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": []},
            },
        )
        for delta in reply.deltas:
            if reply.delay_ms > 0:
                yield Pause(reply.delay_ms / 1000.0)
            yield SseEvent(
                "response.output_text.delta",
                {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": delta},
            )
        done = {
            **message,
            "status": "completed",
            "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
        }
        yield SseEvent("response.output_item.done", {"output_index": 0, "item": done})
    usage = _usage(max(1, input_tokens), output_tokens)
    yield SseEvent("response.completed", {"response": {"id": response_id, "usage": usage}})


class _HTTPServer(ThreadingHTTPServer):
    """Tracks live connections so :meth:`DemoModelServer.stop` can cut them."""

    daemon_threads = True
    block_on_close = False  # stop() joins its own tracked threads, on a time budget

    def __init__(self, workspace: str | None) -> None:
        self.workspace = workspace
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.live: dict[threading.Thread, socket.socket] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=_RECENT_REQUESTS)
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Runs on the connection's own thread: register it, serve, unregister."""
        me = threading.current_thread()
        with self.lock:
            self.live[me] = request
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                self.live.pop(me, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A vanished client is routine; anything else goes to logging, not raw stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, _CONNECTION_ERRORS) or self.stopping.is_set():
            return
        _log.exception("demo model server: error while handling %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection; answers one request and closes."""

    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "codex-notebook-demo/1"
    timeout = 60.0  # a silent client cannot pin a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("demo model server: " + format, *args)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send_json(200, _MODELS_BODY)
        else:
            self._send_json(404, {"error": {"message": f"no route for GET {path}"}})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        try:
            raw = self._read_body()
        except ValueError as exc:
            self._send_json(400, {"error": {"message": str(exc)}})
            return
        if path not in ("/v1/responses", "/responses"):
            self._send_json(404, {"error": {"message": f"no route for POST {path}"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        if not isinstance(body, dict):
            self._send_json(400, {"error": {"message": "request body is not a JSON object"}})
            return
        self._record(body)
        reply = reply_for_request(body, workspace=self.server.workspace)
        if isinstance(reply, HttpFailure):
            self._send_text(reply.status, reply.message)
            return
        self._stream(reply, input_tokens=len(raw) // 4)

    def _record(self, body: dict[str, Any]) -> None:
        entry = {"path": self.path, "headers": dict(self.headers.items()), "body": body}
        with self.server.lock:
            self.server.recent.append(entry)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        else:
            length = int(self.headers.get("content-length") or 0)
            if length < 0 or length > _MAX_BODY_BYTES:
                raise ValueError("request body too large")
            raw = self.rfile.read(length)
        encoding = self.headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding not in ("", "identity"):
            raise ValueError(f"unsupported content-encoding {encoding!r}")
        return raw

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_BODY_BYTES:
                raise ValueError("request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send_json(self, status: int, payload: Mapping[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send_text(self, status: int, text: str) -> None:
        """A plain-text body: codex shows a 400's text verbatim as the turn's error message."""
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.close_connection = True
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except _CONNECTION_ERRORS:
            pass

    def _stream(self, reply: TextAnswer | ToolCall, *, input_tokens: int) -> None:
        """Write the SSE stream; batches writes unless a pause forces a flush."""
        self.close_connection = True
        stopping = self.server.stopping
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            buffer = bytearray()
            for step in response_events(reply, input_tokens=input_tokens):
                if isinstance(step, Pause):
                    if buffer:
                        self.wfile.write(bytes(buffer))
                        self.wfile.flush()
                        buffer.clear()
                    if stopping.wait(step.seconds):
                        return
                    continue
                if stopping.is_set():
                    return
                buffer += step.encode()
                if len(buffer) >= _FLUSH_BYTES:
                    self.wfile.write(bytes(buffer))
                    buffer.clear()
            self.wfile.write(bytes(buffer))
            self.wfile.flush()
        except _CONNECTION_ERRORS:
            return
        except OSError:
            if stopping.is_set():  # stop() shut the socket under us
                return
            raise


def _shutdown(httpd: _HTTPServer, serve_thread: threading.Thread, timeout: float) -> None:
    """Stop accepting, cut live streams, join threads, close the socket; bounded by *timeout*.

    A module function (not a method) so ``weakref.finalize`` can call it without keeping the
    :class:`DemoModelServer` alive.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    httpd.stopping.set()
    if serve_thread.is_alive():
        httpd.shutdown()  # returns within the serve_forever poll interval
    with httpd.lock:
        live = list(httpd.live.items())
    for _thread, sock in live:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    for thread, _sock in live:
        thread.join(max(0.0, deadline - time.monotonic()))
    serve_thread.join(max(0.0, deadline - time.monotonic()))
    httpd.server_close()


class DemoModelServer:
    """A scripted OpenAI Responses API model on ``127.0.0.1:<random port>``.

    Thread-safe: :meth:`start` and :meth:`stop` may be called from any thread, and :meth:`stop`
    is idempotent and returns promptly even while answers are streaming. ``workspace`` (an
    absolute path) is where natural-language demos run commands and write files.

    >>> with DemoModelServer() as server:          # doctest: +SKIP
    ...     server.base_url                        # 'http://127.0.0.1:41234/v1'
    """

    def __init__(self, *, workspace: str | None = None) -> None:
        self._workspace = workspace
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._finalizer: (
            weakref.finalize[[_HTTPServer, threading.Thread, float], DemoModelServer] | None
        ) = None
        self._closed = False

    def start(self) -> DemoModelServer:
        """Bind and begin serving on a background thread; returns self. Idempotent."""
        with self._lock:
            if self._closed:
                raise RuntimeError("DemoModelServer was stopped; create a new one")
            if self._httpd is not None:
                return self
            httpd = _HTTPServer(self._workspace)
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"codex-demo-model:{httpd.server_address[1]}",
                daemon=True,
            )
            thread.start()
            self._httpd, self._thread = httpd, thread
            self._finalizer = weakref.finalize(self, _shutdown, httpd, thread, 2.0)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and cut streams in flight; waits at most *timeout* seconds."""
        with self._lock:
            self._closed = True
            finalizer, self._finalizer = self._finalizer, None
            httpd, thread = self._httpd, self._thread
        if finalizer is not None and finalizer.detach() is not None and httpd and thread:
            _shutdown(httpd, thread, timeout)

    close = stop

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._httpd is not None and not self._closed

    @property
    def port(self) -> int:
        """The bound TCP port (only after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("DemoModelServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What ``model_providers.<id>.base_url`` must be: ``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def workspace(self) -> str | None:
        """The directory natural-language demos work in, if one was given."""
        return self._workspace

    def recent_requests(self) -> list[dict[str, Any]]:
        """The last few request bodies received (newest last), for debugging and tests.

        Each entry has ``path``, ``headers`` (e.g. ``x-codex-turn-metadata``, JSON with the turn
        and thread ids) and ``body`` (the decoded JSON). Bounded to the last 16 requests.
        """
        if self._httpd is None:
            return []
        with self._httpd.lock:
            return list(self._httpd.recent)

    def __enter__(self) -> DemoModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._closed else "unstarted")
        where = f" {self.base_url}" if self._httpd is not None and not self._closed else ""
        return f"<DemoModelServer {state}{where}>"


class DemoServerProcess:
    """The demo model server in a child process.

    In a notebook the kernel's own threads compete for the GIL; the demo model
    stands in for a remote service, so it runs in its own process and streams
    without slowing the user's cells.  It exits when we close its stdin (or
    die), so it never outlives the kernel.  Same surface as
    :class:`DemoModelServer` (``start``/``stop``/``port``/``base_url``).
    """

    def __init__(self, *, workspace: str | None = None, start_timeout: float = 30.0) -> None:
        self._workspace = workspace
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._lock = threading.Lock()

    def start(self) -> DemoServerProcess:
        with self._lock:
            if self._proc is not None:
                return self
            argv = [sys.executable, "-m", "codex_notebook.demo"]
            if self._workspace:
                argv += ["--workspace", self._workspace]
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
            )
            self._proc = proc
        stdout = proc.stdout
        assert stdout is not None
        ready: list[bytes] = []
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self._start_timeout)
        line = ready[0].decode().strip() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(
                f"the demo model server did not start (said {line!r}, exit code {proc.poll()})"
            )
        self._port = int(line.split()[1])
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        if proc.stdout is not None:
            proc.stdout.close()

    close = stop

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("DemoServerProcess is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def workspace(self) -> str | None:
        return self._workspace

    def recent_requests(self) -> list[dict[str, Any]]:
        """Not available across processes (use :class:`DemoModelServer` in tests)."""
        return []

    def __enter__(self) -> DemoServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m codex_notebook.demo``: serve until stdin closes."""
    import argparse

    parser = argparse.ArgumentParser(description="codex-notebook's demo model server")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--nice", type=int, default=10, help="lower our CPU priority by this")
    args = parser.parse_args(argv)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(args.nice)  # a remote model's stand-in: never ahead of the notebook kernel
    with DemoModelServer(workspace=args.workspace) as server:
        sys.stdout.write(f"PORT {server.port}\n")
        sys.stdout.flush()
        sys.stdin.buffer.read()  # until our parent closes the pipe or dies


if __name__ == "__main__":
    main()
