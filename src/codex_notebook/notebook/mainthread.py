"""The one FIFO queue of work that must run on the kernel's main thread, and the blocking wait.

Tool calls are answered on worker threads, but anything that calls user code (``repr``,
pandas ``.head()``, the agent's ``run_python``) must run on the kernel's main thread, between
cells (JUPYTER.md, "Running code in the kernel from a handler thread").  Every such job goes
through one :class:`MainThreadQueue`, one at a time, in order:

- **Idle kernel:** :meth:`MainThreadQueue.submit` schedules a callback on the kernel's event
  loop (``kernel.io_loop.add_callback``, thread-safe); it runs the next job within a few
  milliseconds.  While a job runs there, ``SIGINT`` raises ``KeyboardInterrupt`` (ipykernel
  ignores ``SIGINT`` between cells), so the Interrupt button stops a runaway job.  A cell with
  top-level ``await`` runs as a task on that same loop, which runs callbacks while the cell
  awaits: so the callback leaves the job queued while a cell runs (IPython's ``pre_run_cell``
  … ``post_run_cell``), and the cell's end schedules it again — jobs run between cells.
- **A cell is blocking in a wait** (``%%codex --wait``, ``%codex wait``, ``turn.result()``):
  :meth:`MainThreadQueue.blocking_wait` runs queued jobs itself, and also dispatches widget
  comm messages (button clicks) that arrive on the shell channel, so an approval asked in a
  ``--wait`` cell can be clicked.  Other shell messages (the next ``execute_request``,
  completions) are held and handed back to the kernel, in arrival order, when the wait ends.
- **A cell is busy otherwise** (a long computation): :meth:`MainThreadQueue.call` gives up after
  its ``timeout`` with :class:`KernelBusyError`, and the job is cancelled — it never runs late.

Measured on ipykernel 7.4 (bench/RESULTS.md, "Kernel tools"): ``jupyter-ui-poll`` 1.1.0, the
usual answer to "process widget messages while a cell blocks", does nothing there (it calls
``kernel.do_one_iteration()``, which ipykernel 7 removed; clicks waited for the cell to end),
so the wait reads the kernel's own shell socket: with subshells (ipykernel ≥ 7) the inproc
socket the shell-channel thread forwards main-shell messages to, else the shell socket itself.
Both are read only by the main thread, which is the thread that waits.

Off a kernel (plain Python, a terminal IPython, tests): there is no event loop to schedule on.
A worker's :meth:`~MainThreadQueue.call` then waits for the main thread to run the queue — in a
:meth:`~MainThreadQueue.blocking_wait` or an explicit :meth:`~MainThreadQueue.run_pending` — and
raises :class:`KernelBusyError` after its timeout otherwise.  A ``call`` made on the main thread
itself runs the job inline at once (waiting for itself would deadlock).

State: the job deque and the waiter count belong to the queue's lock; jobs run only on the main
thread; each :class:`concurrent.futures.Future` settles exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import select
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FuturesTimeoutError
from typing import Any, Final, TypeVar

from ..errors import CodexError, CodexTimeoutError
from .tools.kernel_state import RunningCells

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_PENDING",
    "POLL_INTERVAL",
    "JobCancelledError",
    "JobInterruptedError",
    "KernelBusyError",
    "MainThreadQueue",
    "MainThreadTimeoutError",
    "blocking_wait",
    "call",
    "main_queue",
]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: How long :func:`call` waits for the main thread to start a job, by default (seconds).
DEFAULT_TIMEOUT: Final = 10.0
#: Jobs waiting at most; one more is refused at once with :class:`KernelBusyError`.
MAX_PENDING: Final = 64
#: How often a blocking wait re-checks its condition when nothing wakes it (seconds).  Jobs,
#: shell messages and :meth:`MainThreadQueue.wake` wake it at once.
POLL_INTERVAL: Final = 0.025

_COMM_TYPES: Final = frozenset({"comm_open", "comm_msg", "comm_close"})


class KernelBusyError(CodexTimeoutError):
    """The main thread did not get to the job in time (a cell is running); it was cancelled."""


class MainThreadTimeoutError(CodexTimeoutError):
    """The job started but did not finish within ``run_timeout``; its result will be dropped."""


class JobCancelledError(CodexError):
    """The job was cancelled before it ran (the queue closed, or its future was cancelled)."""


class JobInterruptedError(CodexError):
    """The job was stopped by a kernel interrupt (``KeyboardInterrupt``) or a time budget."""


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class MainThreadQueue:
    """One FIFO queue of main-thread jobs (see the module docstring for when they run).

    ``schedule`` hands a callable to the main thread's event loop from any thread (for a
    kernel: ``kernel.io_loop.add_callback``); ``kernel`` enables comm processing in
    :meth:`blocking_wait`.  Use :meth:`for_kernel` for a running ipykernel.
    """

    def __init__(
        self,
        schedule: Callable[[Callable[[], None]], object] | None = None,
        *,
        kernel: Any = None,
    ) -> None:
        self._schedule = schedule
        self._kernel = kernel
        self._shell = getattr(kernel, "shell", None)
        self._cells: RunningCells[None] = RunningCells()  # main thread: the cells running now
        if self._shell is not None:
            self._shell.events.register("pre_run_cell", self._cell_started)
            self._shell.events.register("post_run_cell", self._cell_ended)
        self._lock = threading.Lock()
        self._jobs: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self._waiters = 0
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    @classmethod
    def for_kernel(cls, kernel: Any) -> MainThreadQueue:
        """The queue for a running ipykernel: jobs go to its io_loop; waits process comms."""
        return cls(kernel.io_loop.add_callback, kernel=kernel)

    # --- any thread ---------------------------------------------------------------------

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn`` to run on the main thread; returns its future.

        ``future.cancel()`` withdraws a job that has not started (it never runs).  Raises
        :class:`KernelBusyError` if :data:`MAX_PENDING` jobs are already waiting.
        """
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise JobCancelledError("the kernel's main-thread queue is closed")
            self._prune()
            if len(self._jobs) >= MAX_PENDING:
                raise KernelBusyError(
                    f"the kernel is busy: {MAX_PENDING} tool calls are already waiting for it"
                )
            self._jobs.append((future, fn))
            waiting = self._waiters > 0
        if waiting:
            self.wake()
        if self._schedule is not None:
            try:
                self._schedule(self._run_one_from_loop)
            except Exception:  # the loop is closing: a blocking wait may still run the job
                log.debug("could not schedule a main-thread job", exc_info=True)
        return future

    def call(
        self,
        fn: Callable[[], T],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        run_timeout: float | None = None,
    ) -> T:
        """Run ``fn`` on the main thread and return its result (or raise its exception).

        Waits ``timeout`` seconds for the job to finish.  If by then the main thread has not
        even started it, the job is cancelled (it never runs) and :class:`KernelBusyError` is
        raised.  If it is running, waits up to ``run_timeout`` more (None: until it ends — the
        job should carry its own time budget), else :class:`MainThreadTimeoutError`.  A
        ``KeyboardInterrupt`` or time-budget stop inside the job becomes
        :class:`JobInterruptedError`.  On the main thread, runs ``fn`` inline.
        """
        if _on_main_thread():
            return fn()
        future = self.submit(fn)
        try:
            try:
                return future.result(timeout)
            except FuturesTimeoutError:
                if self._withdraw(future):
                    raise KernelBusyError(
                        f"the kernel is busy (a cell has been running for the last {timeout:g} s);"
                        " the request was cancelled — try again when the cell finishes"
                    ) from None
            try:
                return future.result(run_timeout)
            except FuturesTimeoutError:
                raise MainThreadTimeoutError(
                    f"the kernel started the request but it did not finish within "
                    f"{run_timeout:g} s; its result will be dropped"
                ) from None
        except CancelledError:
            raise JobCancelledError("the request was cancelled before the kernel ran it") from None
        except BaseException as exc:
            if isinstance(exc, Exception):
                raise
            raise JobInterruptedError(
                f"the request was stopped on the kernel ({type(exc).__name__})"
            ) from exc

    def wake(self) -> None:
        """Make a blocking wait re-check its condition now (call after setting its event)."""
        with contextlib.suppress(OSError):  # a full buffer already means "wake up"
            self._wake_w.send(b"\0")

    @property
    def closed(self) -> bool:
        return self._closed

    def pending(self) -> int:
        """Jobs queued and not yet started (cancelled ones excluded)."""
        with self._lock:
            self._prune()
            return len(self._jobs)

    def close(self) -> None:
        """Cancel every queued job and refuse new ones.  Idempotent."""
        if self._shell is not None:
            for event, hook in (
                ("pre_run_cell", self._cell_started),
                ("post_run_cell", self._cell_ended),
            ):
                with contextlib.suppress(ValueError):
                    self._shell.events.unregister(event, hook)
        with self._lock:
            self._closed = True
            jobs = list(self._jobs)
            self._jobs.clear()
        for future, _fn in jobs:
            future.cancel()
        with contextlib.suppress(OSError):
            self._wake_r.close()
            self._wake_w.close()

    def _withdraw(self, future: Future[Any]) -> bool:
        """Cancel a job that has not started; False if it is already running or done."""
        with self._lock:
            if not future.cancel():
                return False
            self._prune()
        return True

    def _prune(self) -> None:
        """Drop cancelled jobs from the front (lock held)."""
        while self._jobs and self._jobs[0][0].cancelled():
            self._jobs.popleft()
        if any(f.cancelled() for f, _ in self._jobs):
            self._jobs = deque(job for job in self._jobs if not job[0].cancelled())

    # --- main thread ----------------------------------------------------------------------

    def run_pending(self, *, limit: int | None = None) -> int:
        """Run queued jobs now, in order (main thread).  Returns how many ran.

        A ``KeyboardInterrupt`` inside a job is stored as the job's outcome and then
        re-raised here: the interrupt was meant for whatever the main thread is doing.
        """
        __tracebackhide__ = True  # the user sees their own line, not the wait's insides
        ran = 0
        while limit is None or ran < limit:
            if not self._run_next(reraise=True):
                break
            ran += 1
        return ran

    def _next_job(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        with self._lock:
            while self._jobs:
                future, fn = self._jobs.popleft()
                if future.set_running_or_notify_cancel():
                    return future, fn
            return None

    def _run_next(self, *, reraise: bool) -> bool:
        __tracebackhide__ = True  # the user sees their own line, not the wait's insides
        job = self._next_job()
        if job is None:
            return False
        future, fn = job
        try:
            result = fn()
        except BaseException as exc:
            future.set_exception(exc)
            if reraise and isinstance(exc, KeyboardInterrupt):
                raise
        else:
            future.set_result(result)
        return True

    def _cell_started(self, info: Any) -> None:
        self._cells.started(info, None)

    def _cell_ended(self, result: Any) -> None:
        """The hook at a cell's end: the jobs held while it ran are scheduled now."""
        self._cells.ended(result)
        if self._cells or self._schedule is None:
            return
        with self._lock:
            self._prune()
            held = len(self._jobs)
        for _ in range(held):
            try:
                self._schedule(self._run_one_from_loop)
            except Exception:  # the loop is closing
                log.debug("could not schedule a main-thread job", exc_info=True)
                return

    def _run_one_from_loop(self) -> None:
        """The event-loop callback: run one job with Ctrl-C enabled — unless a cell is running
        (it awaits, so the loop is free): the job waits for the cell's end.  Never raises: a
        ``KeyboardInterrupt`` escaping into the kernel's loop would stop the kernel."""
        if self._cells:
            return
        try:
            previous = _enable_sigint()
            try:
                self._run_next(reraise=False)
            finally:
                _restore_sigint(previous)
        except KeyboardInterrupt:
            pass
        except Exception:
            log.exception("main-thread job runner failed")

    def blocking_wait(
        self,
        until: threading.Event | Callable[[], bool],
        timeout: float | None = None,
    ) -> bool:
        """Block until ``until`` is set / true, running queued jobs and widget clicks meanwhile.

        Returns True when the condition holds, False after ``timeout`` seconds (None: no
        limit — the caller's interrupt is the way out).  ``KeyboardInterrupt`` (Ctrl-C, the
        kernel's Interrupt) propagates; held shell messages are handed back to the kernel
        first.  Off the main thread this only waits (nothing can be drained there).
        """
        __tracebackhide__ = True  # the user sees their own line, not the wait's insides
        check = until.is_set if isinstance(until, threading.Event) else until
        deadline = None if timeout is None else time.monotonic() + timeout
        if not _on_main_thread():
            return self._plain_wait(until, check, deadline)
        with self._lock:
            self._waiters += 1
        shell = _ShellMessages.open(self._kernel, self._wake_r)
        try:
            while True:
                self.run_pending()
                if shell is not None:
                    shell.dispatch_comms()
                if check():
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                pause = POLL_INTERVAL if remaining is None else min(POLL_INTERVAL, remaining)
                self._sleep(pause, shell)
        finally:
            with self._lock:
                self._waiters -= 1
            if shell is not None:
                shell.release()

    def _plain_wait(
        self,
        until: threading.Event | Callable[[], bool],
        check: Callable[[], bool],
        deadline: float | None,
    ) -> bool:
        if isinstance(until, threading.Event):
            return until.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        while not check():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return True

    def _sleep(self, seconds: float, shell: _ShellMessages | None) -> None:
        """Sleep until a job is queued, a shell message arrives, or ``seconds`` pass."""
        __tracebackhide__ = True  # the user sees their own line, not the wait's insides
        with self._lock:
            if self._jobs:
                return
        try:
            if shell is not None:
                shell.poll(seconds)
            else:
                select.select([self._wake_r], [], [], seconds)
        except KeyboardInterrupt:
            # A fresh one: its traceback ends at the user's line, without pyzmq's frames
            # (which IPython would spend tens of milliseconds formatting).
            raise KeyboardInterrupt from None
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass


# --- the kernel's shell messages during a blocking wait ---------------------------------------


class _ShellMessages:
    """Reads the main shell's incoming messages while the main thread blocks in a wait.

    Comm messages are dispatched at once (the kernel's own comm handlers, with the parent
    header set to the message and restored after) — even when an ``execute_request`` is held
    before them, as ipykernel 7 itself lets comms overtake queued cells.  Everything else is
    held and, on :meth:`release`, scheduled on the kernel's loop in arrival order — ahead of
    anything the loop reads later — exactly as if it had been read after the cell.
    Main thread only.
    """

    def __init__(self, kernel: Any, sock: Any, wake: socket.socket) -> None:
        import zmq

        self._zmq = zmq
        self._kernel = kernel
        self._socket = sock
        self._held: list[list[Any]] = []
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(wake, zmq.POLLIN)

    @classmethod
    def open(cls, kernel: Any, wake: socket.socket) -> _ShellMessages | None:
        if kernel is None:
            return None
        sock = _main_shell_socket(kernel)
        if sock is None:
            log.warning("codex_notebook: this ipykernel's shell socket was not found; "
                        "widget clicks wait until the blocking cell ends")  # fmt: skip
            return None
        return cls(kernel, sock, wake)

    def poll(self, seconds: float) -> None:
        """Sleep until a shell message or a wake-up arrives, at most ``seconds``."""
        __tracebackhide__ = True  # the user sees their own line, not the wait's insides
        self._poller.poll(max(1, int(seconds * 1000)))

    def dispatch_comms(self) -> None:
        """Read every waiting message: dispatch comms now, hold the rest (in order)."""
        while (frames := self._recv()) is not None:
            if self._msg_type(frames) in _COMM_TYPES:
                self._dispatch(frames)
            else:
                self._held.append(frames)

    def release(self) -> None:
        """Hand every held (and still unread) message back to the kernel, in order."""
        with _sigint_deferred():
            while (frames := self._recv()) is not None:
                self._held.append(frames)
            kernel = self._kernel
            for frames in self._held:
                kernel.io_loop.add_callback(kernel.shell_main, None, frames)
            self._held = []

    def _recv(self) -> list[Any] | None:
        try:
            frames: list[Any] = self._socket.recv_multipart(self._zmq.NOBLOCK, copy=False)
        except self._zmq.Again:
            return None
        return frames

    def _msg_type(self, frames: list[Any]) -> str:
        session = self._kernel.session
        try:
            _idents, rest = session.feed_identities(frames, copy=False)
            # content=False peeks: the signature is checked but not recorded, so the kernel
            # can still deserialize the message when it is handed back.
            header = session.deserialize(rest, content=False, copy=False)["header"]
        except Exception:
            return ""
        return str(header.get("msg_type", ""))

    def _dispatch(self, frames: list[Any]) -> None:
        kernel = self._kernel
        try:
            idents, rest = kernel.session.feed_identities(frames, copy=False)
            msg = kernel.session.deserialize(rest, content=True, copy=False)
        except Exception:
            log.exception("codex_notebook: invalid shell message during a blocking wait")
            return
        handler = kernel.shell_handlers.get(msg["header"]["msg_type"])
        if handler is None:
            return
        parent = kernel.get_parent("shell")
        parent_ident = _shell_parent_ident(kernel)
        kernel.set_parent(idents, msg, channel="shell")
        try:
            handler(kernel.shell_stream, idents, msg)
        except Exception:
            log.exception("codex_notebook: a comm handler failed during a blocking wait")
        finally:
            kernel.set_parent(parent_ident, parent, channel="shell")


def _main_shell_socket(kernel: Any) -> Any:
    """The socket the main shell's messages arrive on, read by the main thread."""
    channel = getattr(kernel, "shell_channel_thread", None)
    if channel is not None:
        manager = getattr(channel, "manager", None)
        getter = getattr(manager, "get_shell_channel_to_subshell_pair", None)
        pair = (
            getter(None) if getter is not None else getattr(manager, "_shell_channel_to_main", None)
        )
        return getattr(pair, "to_socket", None)
    stream = getattr(kernel, "shell_stream", None)
    return getattr(stream, "socket", None)


def _shell_parent_ident(kernel: Any) -> Any:
    idents = getattr(kernel, "_parent_ident", None)
    try:
        return idents["shell"] if idents is not None else b""
    except (KeyError, TypeError):
        return b""


# --- SIGINT helpers (main thread only) --------------------------------------------------------


def _enable_sigint() -> Any:
    """Make Ctrl-C raise ``KeyboardInterrupt`` (ipykernel ignores it between cells)."""
    if not _on_main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.default_int_handler)


def _restore_sigint(previous: Any) -> None:
    if previous is not None and _on_main_thread():
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives during a critical section; raise it after, if it would have
    been raised (messages handed back to the kernel must not be lost half-way)."""
    if not _on_main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and previous is signal.default_int_handler:
            raise KeyboardInterrupt


# --- the process-wide queue -------------------------------------------------------------------

_default: MainThreadQueue | None = None
_default_lock = threading.Lock()


def main_queue() -> MainThreadQueue:
    """The process-wide queue, bound to the running ipykernel if there is one.

    Created on first use, and again after :meth:`MainThreadQueue.close` (extension unload);
    without a kernel it has no scheduler (see the module docstring).
    """
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            kernel = _running_kernel()
            if kernel is not None and getattr(kernel, "io_loop", None) is not None:
                _default = MainThreadQueue.for_kernel(kernel)
            else:
                _default = MainThreadQueue()
        return _default


def _running_kernel() -> Any:
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    return getattr(shell, "kernel", None)


def call(fn: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT) -> T:
    """:meth:`MainThreadQueue.call` on :func:`main_queue`."""
    return main_queue().call(fn, timeout=timeout)


def blocking_wait(
    until: threading.Event | Callable[[], bool], timeout: float | None = None
) -> bool:
    """:meth:`MainThreadQueue.blocking_wait` on :func:`main_queue`."""
    return main_queue().blocking_wait(until, timeout)
