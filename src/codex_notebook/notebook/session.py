"""One kernel's Codex session: the app-server, named threads, and running turns.

Data flows one way: the magic creates a :class:`NotebookTurn`; its driver
thread waits for its place in the thread's queue, starts the turn, reads the
turn's events through its own cursor and is the single writer of the turn's
widget, flushing coalesced updates ~15 times a second.  The kernel's main
thread is never blocked (unless the cell asked for ``--wait``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..approvals import APPROVAL_METHODS, answer_for
from ..client import Codex, Thread, TurnHandle
from ..errors import CodexError, CodexRpcError, CodexTimeoutError, TransportClosedError
from ..messages import ServerRequest
from ..results import TurnResult
from ..transport import SubprocessTransport
from .backends import BackendRuntime, choose_backend, store_key
from .threads import ThreadMap
from .widget import TurnView

__all__ = ["APPROVAL_MODES", "NotebookSession", "NotebookTurn", "TurnOptions", "last_turn"]

log = logging.getLogger("codex_notebook")

#: How often a live widget is updated (seconds between flushes).
FLUSH_INTERVAL_S = 1 / 15
#: The agent yields the CPU to the kernel under contention: cells stay snappy while turns stream.
AGENT_NICENESS = 10
#: How many finished turns ``%codex status`` remembers.
HISTORY = 200

APPROVAL_MODES: dict[str, dict[str, str]] = {
    "ask": {"approval_policy": "on-request", "approvals_reviewer": "user"},
    "review": {"approval_policy": "on-request", "approvals_reviewer": "auto_review"},
    "deny": {"approval_policy": "never"},
}

_LAST: list[NotebookTurn] = []


def last_turn() -> NotebookTurn | None:
    """The most recent turn started from a cell in this kernel."""
    return _LAST[-1] if _LAST else None


@dataclass(frozen=True)
class TurnOptions:
    thread: str = "main"
    new: bool = False
    model: str | None = None
    cwd: str | None = None
    sandbox: str | None = None
    approval: str = "ask"
    wait: bool = False
    output: str | None = None
    schema: type[BaseModel] | None = field(default=None, compare=False)
    timeout: float | None = None


class NotebookTurn:
    """A cell's turn: bound to ``-o VAR`` at once, usable while it runs.

    ``result()`` blocks until the end (or ``timeout``) and returns the
    :class:`~codex_notebook.TurnResult`; ``text`` is the answer so far.
    """

    def __init__(
        self,
        session: NotebookSession,
        number: int,
        prompt: str,
        options: TurnOptions,
        cell: int | None,
        previous: NotebookTurn | None,
    ) -> None:
        self.session = session
        self.number = number
        self.prompt = prompt
        self.options = options
        self.cell = cell
        self.previous = previous
        self.state = "queued"
        self.created_at = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.thread_id: str | None = None
        self.handle: TurnHandle | None = None
        self.error: BaseException | None = None
        self._result: TurnResult[Any] | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._pending: dict[Any, ServerRequest] = {}
        self._final: dict[str, str] | None = None
        self.display: Any = None
        self.view = TurnView(
            thread_name=options.thread,
            prompt=prompt,
            demo=session.backend_name == "demo",
            model=options.model,
            on_stop=self.interrupt,
            on_decision=self._decide,
            answer_language="json" if options.schema is not None else None,
        )
        self._driver = threading.Thread(
            target=self._drive, name=f"codex-turn-{number}", daemon=True
        )

    # -- public -----------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        return self.view.widget

    @property
    def text(self) -> str:
        """The agent's answer so far (final once done)."""
        return self._result.text if self._result is not None else self.view.text

    @property
    def turn_id(self) -> str | None:
        return self.handle.id if self.handle is not None else None

    @property
    def thread_name(self) -> str:
        return self.options.thread

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the turn ended and its final rendering was sent. False on timeout."""
        return self._done.wait(timeout)

    def result(self, timeout: float | None = None) -> TurnResult[Any]:
        """The result, once the turn is over. Raises what stopped it from running at all."""
        if not self._done.wait(timeout):
            raise CodexTimeoutError(
                f"turn [{self.number}] on thread '{self.thread_name}' is still {self.state} "
                f"after {timeout} s"
            )
        if self._result is None:
            assert self.error is not None
            raise self.error
        return self._result

    def interrupt(self) -> None:
        """Stop this turn (or drop it from the queue if it has not started)."""
        self._stop.set()
        self.session._notify()
        handle = self.handle
        if handle is not None and not handle.done():
            try:
                handle.interrupt(timeout=5)
            except CodexError as exc:
                log.info("codex_notebook: interrupt of turn %s failed: %s", handle.id, exc)

    @property
    def elapsed(self) -> float:
        start = self.started_at or self.created_at
        return (self.ended_at or time.time()) - start

    def __repr__(self) -> str:
        return f"<NotebookTurn [{self.number}] thread={self.thread_name!r} {self.state}>"

    # -- driver -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the driver thread (idempotent)."""
        with self.session._lock:
            if self._driver.ident is None:
                self._driver.start()

    def _status(self, state: str, detail: str = "") -> None:
        self.state = state
        self.view.set_status(state, detail)
        self.session._notify()

    def _drive(self) -> None:
        """Driver thread: queue, start, stream into the widget, finish. Never raises."""
        bundle: dict[str, str] | None = None
        try:
            if not self._wait_for_place():
                self._status("interrupted", "stopped before it started")
                bundle = self.view.finish(None, "Stopped before it started.")
                return
            self._status("starting")
            self.view.flush()
            handle = self._start()
            self._status("running")
            self._stream(handle)
            result = handle.run(0)
            self._result = result
            self.state = result.status
            if result.status == "interrupted" and self._stop.is_set():
                self.view.set_status("interrupted", "stopped from the notebook")
            bundle = self.view.finish(result)
        except BaseException as exc:  # report everything in the cell; never kill the thread
            self.error = exc
            self.state = "error"
            bundle = self.view.finish(None, _explain(exc))
        finally:
            self.ended_at = time.time()
            with contextlib.suppress(Exception):
                self.view.flush()
            self._publish(bundle)
            self._done.set()
            self.session._turn_finished(self)

    def _wait_for_place(self) -> bool:
        """Same-name turns run one after another: the server would fold them together."""
        previous = self.previous
        if previous is not None and not previous.done():
            cell = f"cell [{previous.cell}]" if previous.cell else f"turn [{previous.number}]"
            self._status("queued", f"queued behind {cell} on thread '{self.thread_name}'")
            self.view.flush()
            self.session._wait_until(lambda: previous.done() or self._stop.is_set())
        self.previous = None  # do not keep a chain of finished turns alive
        return not self._stop.is_set() and not self.session.closing

    def _start(self) -> TurnHandle:
        client = self.session.client()
        thread, notice = self.session.thread_for(self.options)
        notices = [n for n in (self.session.backend_notice, notice) if n]
        if notices:  # e.g. the demo's sandbox fallback, a conversation that could not resume
            self.view.set_notice(" ".join(notices))
        self.thread_id = thread.id
        opts = self.options
        handle = thread.turn(
            self.prompt,
            model=opts.model,
            cwd=opts.cwd,
            sandbox=opts.sandbox,  # type: ignore[arg-type]  # checked by the magics
            output_schema=opts.schema,
            request_handler=self._on_request,
            timeout=client.request_timeout,
            approval_policy=opts.approval,  # type: ignore[arg-type]  # checked by the magics
        )
        self.handle = handle
        self.started_at = time.time()
        if self._stop.is_set():  # Stop was pressed while we were starting
            self.interrupt()
        return handle

    def _stream(self, handle: TurnHandle) -> None:
        """Sleep a flush interval, fold everything that arrived, flush; until the turn ends.

        Sleeping on the log's done event (not on every new event) keeps this
        thread off the GIL between flushes however fast the turn streams.
        """
        turn_log = handle._core.log
        cursor = turn_log.cursor()
        timeout = self.options.timeout
        deadline = time.monotonic() + timeout if timeout is not None else None
        while True:
            finished = turn_log.done.wait(FLUSH_INTERVAL_S)
            batch = cursor.take()
            if batch:
                self.view.apply(batch)
            self.view.flush()
            if batch is None or (finished and not batch):
                return
            if deadline is not None and time.monotonic() >= deadline:
                deadline = None
                self.view.set_notice(f"Stopped after the --timeout of {timeout} s.")
                self.interrupt()

    def _publish(self, bundle: dict[str, str] | None) -> None:
        """Replace the live widget by the static rendering, with provenance metadata."""
        self._final = bundle
        if self.display is None or bundle is None:
            return
        try:
            self.display.update(bundle, raw=True, metadata=self.provenance())
        except Exception:
            log.exception("codex_notebook: could not publish the final rendering")

    def republish(self) -> None:
        """Send the final rendering again, from the cell running now.

        An update sent from the driver thread belongs to whichever cell ran
        last; headless runners (nbclient, nbconvert) drop it if that cell had
        already finished.  ``%codex wait`` calls this so the rendering surely
        lands in the saved notebook; replacing by display id is idempotent.
        """
        if self._done.is_set():
            self._publish(self._final)

    def provenance(self) -> dict[str, Any]:
        result = self._result
        usage = result.usage if result is not None else None
        return {
            "codex_notebook": {
                "thread_name": self.thread_name,
                "thread_id": self.thread_id,
                "turn_id": self.turn_id,
                "status": self.state,
                "model": self.options.model or self.session.model_name,
                "backend": self.session.backend_name,
                "server_version": self.session.server_version,
                "duration_ms": result.duration_ms if result is not None else None,
                "usage": usage.__dict__ if usage is not None else None,
            }
        }

    # -- approvals --------------------------------------------------------------------
    def _on_request(self, request: ServerRequest) -> Any:
        """Router worker thread: wait for the person's decision in the widget."""
        if request.method not in APPROVAL_METHODS or self.options.approval != "ask":
            return None  # the safe refusal
        self._pending[request.id] = request
        self._status("waiting for approval")
        request.wait_settled()  # a click, the turn ending, or the server withdrawing it
        self._pending.pop(request.id, None)
        if not self.done() and self.state == "waiting for approval" and not self._pending:
            self._status("running")
        return None

    @property
    def pending_approvals(self) -> list[ServerRequest]:
        """Approval requests waiting for a decision, oldest first."""
        return list(self._pending.values())

    def decide(self, decision: str, request_id: Any = None) -> None:
        """Answer a pending approval from code, as its button would.

        ``decision``: accept, acceptForSession, decline or cancel.  Without
        ``request_id`` the oldest pending approval is answered.
        """
        pending = dict(self._pending)
        if not pending:
            raise ValueError(f"turn [{self.number}] has no pending approval")
        key = next(iter(pending)) if request_id is None else request_id
        if key not in pending:
            raise ValueError(f"no pending approval with id {request_id!r}")
        self._decide(pending[key], decision)

    def _decide(self, request: ServerRequest, decision: str) -> None:
        """A button was clicked (kernel shell thread)."""
        request.respond(answer_for(request.method, request.params_dict, decision))


def _explain(exc: BaseException) -> str:
    if isinstance(exc, TransportClosedError):
        return (
            f"The codex app-server stopped: {exc.reason}. The next %%codex cell starts a "
            f"fresh one (`%codex log` shows its last messages).\n\n{exc.stderr_tail}".strip()
        )
    if isinstance(exc, CodexError):
        return f"{type(exc).__name__}: {exc}"
    return f"Unexpected {type(exc).__name__}: {exc}"


class NotebookSession:
    """Everything the magics need, one per kernel."""

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        backend: str | None = None,
        codex_bin: str | None = None,
    ) -> None:
        self.state_dir = state_dir or Path.cwd() / ".codex_notebook"
        self.codex_bin = codex_bin
        self.backend_name = choose_backend(backend)
        self.defaults = TurnOptions()
        self.closing = False
        self.thread_map = ThreadMap(self.state_dir / "threads.json")
        self._lock = threading.RLock()
        self._changed = threading.Condition(threading.Lock())
        self._client: Codex | None = None
        self._backend: BackendRuntime | None = None
        self._threads: dict[str, Thread] = {}
        self._tails: dict[str, NotebookTurn] = {}
        self._numbers = itertools.count(1)
        self.turns: deque[NotebookTurn] = deque(maxlen=HISTORY)
        self.log: deque[str] = deque(maxlen=200)
        self.model_name: str | None = None

    # -- the app-server ---------------------------------------------------------------
    def client(self) -> Codex:
        """The live client, started on first use and restarted if the server died."""
        with self._lock:
            if self.closing:
                raise TransportClosedError("the codex session was unloaded")
            if self._client is not None and not self._client.closed:
                return self._client
            if self._client is not None:
                self.log.append(
                    f"app-server died; restarting. Last stderr:\n{self._client.stderr_tail()}"
                )
                self._client.close()
                self._threads.clear()
            if self._backend is None:
                self._backend = BackendRuntime.start(
                    self.backend_name, self.state_dir, codex_bin=self.codex_bin
                )
                if self._backend.notice:
                    self.log.append(self._backend.notice)
            self._client = Codex(
                transport=SubprocessTransport(**self._backend.client_kwargs, nice=AGENT_NICENESS)
            )
            threading.Thread(
                target=self._drain_notifications,
                args=(self._client,),
                name="codex-notifications",
                daemon=True,
            ).start()
            return self._client

    @property
    def server_version(self) -> str | None:
        return self._client.server_version if self._client is not None else None

    @property
    def backend_notice(self) -> str | None:
        return self._backend.notice if self._backend is not None else None

    def _drain_notifications(self, client: Codex) -> None:
        """Keep warnings for ``%codex log``; the global channel stays drained."""
        for note in client.notifications():
            if note.method in ("warning", "configWarning", "error", "deprecationNotice"):
                params = note.params_dict
                text = params.get("message") or params.get("summary") or params
                self.log.append(f"{note.method}: {text}")

    def thread_for(self, options: TurnOptions) -> tuple[Thread, str | None]:
        """The codex thread behind a name: cached, resumed from the map, or new."""
        client = self.client()
        assert self._backend is not None
        store, name = self.store, options.thread
        with self._lock:
            if not options.new and name in self._threads:
                return self._threads[name], None
            notice = None
            thread_opts: dict[str, Any] = {}
            cwd = options.cwd or self._backend.client_kwargs.get("cwd") or str(Path.cwd())
            thread_opts["cwd"] = cwd
            known = None if options.new else self.thread_map.get(store, name)
            thread: Thread | None = None
            if known is not None:
                try:
                    thread = client.thread_resume(known, **thread_opts)
                except CodexRpcError as exc:
                    notice = (
                        f"Could not resume thread '{name}' ({known}): {exc.rpc_message}. "
                        "Started a new conversation."
                    )
            if thread is None:
                thread = client.thread_start(**thread_opts)
                self.thread_map.set(store, name, thread.id)
            self.model_name = str(thread.info.get("model") or self.model_name or "")
            self._threads[name] = thread
            return thread, notice

    # -- turns ------------------------------------------------------------------------
    def start_turn(
        self, prompt: str, options: TurnOptions, *, cell: int | None = None
    ) -> NotebookTurn:
        with self._lock:
            if self.closing:
                raise TransportClosedError("the codex session was unloaded")
            previous = None if options.new else self._tails.get(options.thread)
            turn = NotebookTurn(self, next(self._numbers), prompt, options, cell, previous)
            self._tails[options.thread] = turn
            self.turns.append(turn)
            _LAST[:] = [turn]
        return turn

    def with_defaults(self, **given: Any) -> TurnOptions:
        """Cell options over the session defaults set with ``%codex config``."""
        return replace(self.defaults, **{k: v for k, v in given.items() if v is not None})

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _wait_until(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate() or self.closing, timeout)

    def _turn_finished(self, turn: NotebookTurn) -> None:
        with self._lock:
            if self._tails.get(turn.thread_name) is turn:
                del self._tails[turn.thread_name]
        self._notify()

    def select(self, which: str | None) -> list[NotebookTurn]:
        """Turns by thread name; ``all``/None for every turn."""
        turns = list(self.turns)
        if which in (None, "all"):
            return turns
        return [t for t in turns if t.thread_name == which]

    def running(self) -> list[NotebookTurn]:
        return [t for t in self.turns if not t.done()]

    def wait(self, turns: Iterable[NotebookTurn], timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for turn in turns:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not turn.wait(remaining):
                return False
        return True

    @property
    def store(self) -> str:
        return store_key(self.backend_name, self.state_dir)

    def forget_thread(self, name: str) -> None:
        """``%codex new NAME``: the next cell on NAME starts a fresh conversation."""
        with self._lock:
            self._threads.pop(name, None)
            self.thread_map.set(self.store, name, None)

    def threads(self) -> dict[str, str]:
        """Known thread names of the current backend -> codex thread ids."""
        return self.thread_map.names(self.store)

    # -- lifecycle --------------------------------------------------------------------
    def restart(self, backend: str | None = None) -> None:
        """Stop every turn and the server; the next cell starts afresh (maybe another backend)."""
        self._shutdown(join_timeout=5.0)
        with self._lock:
            if backend is not None:
                self.backend_name = choose_backend(backend)
            self.closing = False

    def close(self) -> None:
        self._shutdown(join_timeout=5.0)

    def _shutdown(self, join_timeout: float) -> None:
        with self._lock:
            self.closing = True
            live = self.running()
            client, self._client = self._client, None
            backend, self._backend = self._backend, None
            self._threads.clear()
            self._tails.clear()
        self._notify()
        for turn in live:
            turn._stop.set()
        if client is not None:
            client.close()
        deadline = time.monotonic() + join_timeout
        for turn in live:
            turn.wait(max(0.0, deadline - time.monotonic()))
        if backend is not None:
            backend.close()
