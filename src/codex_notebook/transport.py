"""The one narrow seam between the client and the app-server process.

A transport moves newline-delimited JSON between us and the server.  It knows
nothing about JSON-RPC semantics: it hands every stdout line to a sink on its
own reader thread and reports, exactly once, when the stream ended and why.
:class:`SubprocessTransport` is the real one; tests can swap in anything that
implements :class:`Transport`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import orjson

from ._escapes import strip_ansi
from .errors import BinaryNotFoundError, TransportClosedError, redact

__all__ = ["LineSink", "SubprocessTransport", "Transport", "resolve_codex_bin"]

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 60
_STDERR_LINE_MAX = 2000
#: After codex exited, how long its output may stay open before the end is reported anyway:
#: a process it started (a ``notify`` program inherits its stdio; a daemon) can hold the pipe.
EXIT_EOF_GRACE_S = 5.0


class LineSink(Protocol):
    """Receives what the transport reads, on the transport's own threads.

    ``feed_batch`` runs on the reader thread; ``closed`` runs once, on the reader
    thread or (codex gone while a process it started holds its output) on the
    subprocess transport's exit watcher.
    """

    def feed_batch(self, lines: Iterable[bytes]) -> None:
        """The complete lines of one read, without their newlines."""

    def closed(self, error: TransportClosedError) -> None: ...


class Transport(Protocol):
    def start(self, sink: LineSink) -> None: ...

    def send(self, message: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...

    def stderr_tail(self) -> str: ...


def resolve_codex_bin(codex_bin: str | os.PathLike[str] | None = None) -> str:
    """Find the codex executable: argument, ``$CODEX_BIN``, the bundled wheel, then PATH."""
    candidates: list[tuple[str, str]] = []
    if codex_bin is not None:
        candidates.append(("codex_bin=", os.fspath(codex_bin)))
    elif os.environ.get("CODEX_BIN"):
        candidates.append(("$CODEX_BIN", os.environ["CODEX_BIN"]))
    else:
        try:
            import codex_cli_bin

            candidates.append(("openai-codex-cli-bin", str(codex_cli_bin.bundled_codex_path())))
        except Exception:  # not installed, or a wheel for another platform
            pass
        on_path = shutil.which("codex")
        if on_path:
            candidates.append(("PATH", on_path))
    for where, path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            # absolute, so a child started with another cwd= still finds it
            return os.path.abspath(path) if os.sep in path else path
        if codex_bin is not None or where == "$CODEX_BIN":
            raise BinaryNotFoundError(
                f"codex binary from {where} is not an executable file: {path!r}. "
                "Fix the path, or unset it to use the bundled binary."
            )
    raise BinaryNotFoundError(
        "No codex binary found. Install it with `pip install openai-codex-cli-bin` "
        "(or `npm install -g @openai/codex`), or pass codex_bin= / set CODEX_BIN."
    )


class SubprocessTransport:
    """Runs ``<bin> app-server`` in its own session and speaks JSON lines on its stdio.

    The child gets its own session so the SIGINT of a kernel interrupt, which
    goes to the kernel's whole process group, never reaches it.  If the parent
    dies, the child sees EOF on stdin and exits by itself.
    """

    def __init__(
        self,
        codex_bin: str | os.PathLike[str] | None = None,
        *,
        args: Sequence[str] = (),
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        codex_home: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        close_grace: float = 1.0,
        nice: int = 0,
    ) -> None:
        self.binary = resolve_codex_bin(codex_bin)
        self._nice = nice
        argv = [self.binary, "app-server", *args]
        for key, value in (config or {}).items():
            argv += ["--config", f"{key}={_toml_value(value)}"]
        self.argv = argv
        child_env = dict(os.environ if env is None else env)
        if codex_home is not None:
            child_env["CODEX_HOME"] = os.fspath(codex_home)
        self._env = child_env
        self._cwd = os.fspath(cwd) if cwd is not None else None
        self._close_grace = close_grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._closing = False
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._reader: threading.Thread | None = None
        self._stderr_thread: threading.Thread | None = None
        self._reported = False  # the end was reported to the sink (under _report_lock)
        self._report_lock = threading.Lock()
        self._secrets = tuple(
            v for k, v in child_env.items() if k.endswith(("API_KEY", "_TOKEN")) and v
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def start(self, sink: LineSink) -> None:
        """Spawn the server and its reader threads.

        Under the close lock, so a :meth:`close` from another thread either comes
        first (then nothing is spawned) or sees the process and its threads.
        """
        with self._close_lock:
            if self._closing:
                raise TransportClosedError("the client was closed before the app-server started")
            try:
                self._proc = subprocess.Popen(
                    _niced(self.argv, self._nice),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self._env,
                    cwd=self._cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise BinaryNotFoundError(f"could not start {self.binary!r}: {exc}") from exc
            self._stderr_thread = threading.Thread(
                target=self._drain_stderr, name="codex-stderr", daemon=True
            )
            self._stderr_thread.start()
            assert self._proc.stdout is not None
            _widen_pipe(self._proc.stdout.fileno())
            self._reader = threading.Thread(
                target=self._read_loop, args=(sink,), name="codex-reader", daemon=True
            )
            self._reader.start()
            threading.Thread(
                target=self._watch_exit, args=(sink,), name="codex-exit", daemon=True
            ).start()

    def send(self, message: Mapping[str, Any]) -> None:
        """Write one message. Thread-safe; raises TransportClosedError if the pipe is gone."""
        data = orjson.dumps(message) + b"\n"
        proc = self._proc
        if proc is None or proc.stdin is None or self._closing:
            raise TransportClosedError("the codex app-server is not running")
        try:
            with self._write_lock:
                proc.stdin.write(data)
                proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise TransportClosedError(
                f"could not write to the codex app-server: {exc}",
                stderr_tail=self.stderr_tail(),
                returncode=proc.poll(),
            ) from exc

    def stderr_tail(self) -> str:
        return redact(strip_ansi("\n".join(self._stderr)), self._secrets)

    def _drain_stderr(self) -> None:
        """The stderr thread: the only reader of stderr, and the one that closes it."""
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        try:
            for raw in proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    self._stderr.append(line[:_STDERR_LINE_MAX])
        except (OSError, ValueError):
            pass
        finally:
            _close_quietly(proc.stderr)

    def _read_loop(self, sink: LineSink) -> None:
        """Runs on the reader thread: the only code that reads the server's stdout."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        reason = "the codex app-server closed its output"
        try:
            for lines in _read_lines(proc.stdout.fileno()):
                try:
                    sink.feed_batch(lines)
                except Exception:  # a routing bug must not kill the only reader
                    log.exception("codex_notebook: error while routing server messages")
        except (OSError, ValueError) as exc:
            reason = f"reading from the codex app-server failed: {exc}"
        finally:
            _close_quietly(proc.stdout)  # ours to close: nobody else reads it
        returncode = self._wait_exit()
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=0.5)  # let the last stderr lines land
        if self._closing:
            reason = "the client was closed"
        elif returncode is not None:
            reason = "the codex app-server exited"
        self._report(sink, reason, returncode)

    def _watch_exit(self, sink: LineSink) -> None:
        """The exit watcher: the end of codex is the end, even if its output stays open.

        Normally the reader sees EOF right after the exit and reports.  A process
        codex started can hold the pipe for as long as it lives; then, after a
        grace period, the end is reported from here (the reader, blocked in its
        read, ends whenever that process lets go).
        """
        proc = self._proc
        assert proc is not None
        returncode = proc.wait()
        reader = self._reader
        if reader is not None:
            reader.join(EXIT_EOF_GRACE_S)
            if not reader.is_alive():
                return  # the reader saw the end and reported it
        if not self._closing:
            log.warning(
                "codex_notebook: the codex app-server exited, but a process it started still "
                "holds its output open; reporting the end without waiting for it"
            )
        reason = "the client was closed" if self._closing else "the codex app-server exited"
        self._report(sink, reason, returncode)

    def _report(self, sink: LineSink, reason: str, returncode: int | None) -> None:
        """Tell the sink the stream ended, exactly once (the reader or the exit watcher)."""
        with self._report_lock:
            if self._reported:
                return
            self._reported = True
        try:
            sink.closed(
                TransportClosedError(reason, stderr_tail=self.stderr_tail(), returncode=returncode)
            )
        except Exception:  # the sink fails its waiters one by one; this is a last resort
            log.exception("codex_notebook: error while reporting the end of the server")

    def _wait_exit(self) -> int | None:
        proc = self._proc
        assert proc is not None
        try:
            return proc.wait(timeout=self._close_grace + 2.0)
        except subprocess.TimeoutExpired:
            return None  # stdout closed but the process lingers; close() will reap it

    def close(self) -> None:
        """Stop the server: close stdin, then SIGTERM the group, then SIGKILL; always reap.

        Idempotent and safe from any thread, including the reader thread.  Never
        waits for a writer stuck on a full pipe (a server that stopped reading):
        then stdin cannot be closed, so the signals come at once, and the stuck
        ``send()`` fails with :class:`TransportClosedError` when the process dies.
        """
        with self._close_lock:
            if self._closing:
                return
            self._closing = True
        proc = self._proc
        if proc is None:
            return
        budget = self._close_grace
        stdin_closed = False
        if self._write_lock.acquire(timeout=0.05):  # a stuck writer holds it for good
            try:
                with contextlib.suppress(OSError, ValueError):
                    if proc.stdin is not None:
                        proc.stdin.close()
                stdin_closed = True
            finally:
                self._write_lock.release()
        else:
            log.warning("codex_notebook: the app-server stopped reading its input; killing it")
        if not (stdin_closed and _wait(proc, budget)):
            _signal_group(proc, signal.SIGTERM)
            if not _wait(proc, budget):
                _signal_group(proc, signal.SIGKILL)
                _wait(proc, 5.0)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=budget + 3.0)
        # A stream still being read is left to its thread, which closes it at EOF: closing
        # a buffered stream waits for its reader (forever, if a process that left codex's
        # session still holds the pipe), and closing a descriptor under a blocked os.read()
        # lets the next read hit whatever file reuses that number.
        streams = [
            stream
            for stream, thread in ((proc.stdout, reader), (proc.stderr, self._stderr_thread))
            if thread is None or not thread.is_alive()
        ]
        if not stdin_closed and self._write_lock.acquire(timeout=budget):
            # the stuck writer got EPIPE when the process died and let go
            self._write_lock.release()
            streams.append(proc.stdin)
        for stream in streams:
            _close_quietly(stream)


#: The most one read takes.  A reader that keeps up gets what is there (a trickle: one
#: line); a reader that falls behind gets up to the pipe's size at once, so bursts are
#: routed, and consumers woken, in bigger batches: the batching adapts to the load.
READ_SIZE = 1 << 20
#: The pipe size we ask for (Linux; the default is 64 KiB, the unprivileged limit 1 MiB).
PIPE_SIZE = 1 << 20


def _widen_pipe(fd: int) -> None:
    """Let the server's output pipe hold up to PIPE_SIZE bytes (best effort, Linux only)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    for size in (PIPE_SIZE, PIPE_SIZE // 4):
        try:
            fcntl.fcntl(fd, set_size, size)
            return
        except OSError:  # above /proc/sys/fs/pipe-max-size, or out of pipe quota
            continue


def _niced(argv: list[str], niceness: int) -> list[str]:
    """Run ``argv`` at a lower CPU priority, so the kernel wins under contention.

    Through ``nice(1)``, so the niceness is set before exec and every thread
    (and every command the agent runs) inherits it; renicing the pid after
    the fact would miss the threads a multi-threaded server already started.
    """
    nice = shutil.which("nice") if niceness > 0 else None
    return [nice, "-n", str(niceness), *argv] if nice else argv


def _read_lines(fd: int) -> Iterator[list[bytes]]:
    """Yield the complete lines of each read (a partial line waits for the next read).

    Reading up to READ_SIZE at a time with ``os.read`` returns whatever is available:
    a burst arrives as one big batch, a trickle as single lines.  Lines of any
    length are reassembled.
    """
    partial: list[bytes] = []
    while data := os.read(fd, READ_SIZE):
        lines = data.split(b"\n")
        del data  # do not hold up to READ_SIZE bytes while blocked in the next read
        tail = lines.pop()  # after the last newline: b"" or an unfinished line
        if lines:
            if partial:
                partial.append(lines[0])
                lines[0] = b"".join(partial)
                partial = []
            yield lines
            del lines  # the turn logs keep the lines they need
        if tail:
            partial.append(tail)
    if partial:
        yield [b"".join(partial)]


def _close_quietly(stream: IO[bytes] | None) -> None:
    with contextlib.suppress(OSError, ValueError):
        if stream is not None:
            stream.close()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child's whole session (it may have spawned helpers); gone counts as done."""
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        if sys.platform != "win32":
            os.killpg(proc.pid, sig)
        else:  # pragma: no cover
            proc.send_signal(sig)


def _toml_value(value: Any) -> str:
    """Render a Python value as the TOML literal that ``--config key=value`` expects."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return orjson.dumps(str(value)).decode()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"cannot express {type(value).__name__} as a codex --config value")
