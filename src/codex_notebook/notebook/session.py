"""One kernel's Codex session: what the magics talk to.

It ties the parts together and owns little itself:

* :class:`.server.ServerRuntime` — the backend and the app-server client;
* :class:`.registry.ThreadRegistry` — thread names bound at submission, the
  per-name queues and the per-notebook name → id map;
* :class:`.turn.NotebookTurn` + :mod:`.driver` — one turn and its thread;
* the history of recent turns (``HISTORY`` of them) and the defaults set with
  ``%codex config``.

Everything the kernel's main thread calls here returns in milliseconds: no
server I/O happens under a lock it takes (``%codex restart`` and ``close``
stop the server, which is what they are for).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..client import Thread
from ..errors import TransportClosedError
from .backends import RemoteTarget
from .driver import start_driver
from .kernel_tools import NAMESPACE, TOOL_NAMES, NotebookTools
from .logs import LogLine, format_log, parse_log
from .registry import ThreadRegistry
from .server import ServerRuntime
from .threads import Scope, ThreadMap
from .turn import NotebookTurn, TurnOptions

__all__ = [
    "HISTORY",
    "NotebookSession",
    "NotebookTurn",
    "TurnOptions",
    "last_turn",
]

#: How many turns ``%codex status`` remembers (finished ones keep only their result); a live
#: turn is never forgotten, whatever the count.
HISTORY = 200
#: How long restart / close wait for live turns to end.
STOP_GRACE_S = 5.0

_LAST: list[NotebookTurn] = []


def last_turn() -> NotebookTurn | None:
    """The most recent turn started from a cell in this kernel."""
    return _LAST[-1] if _LAST else None


Waiter = Callable[[Callable[[], bool], float | None], bool]


class NotebookSession:
    """Everything the magics need, one per kernel.

    ``_lock`` guards ``turns`` and ``closing``; ``defaults`` is written by the
    main thread only (``%codex config``).
    """

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        backend: str | None = None,
        codex_bin: str | None = None,
        notebook: Callable[[], str | None] | None = None,
        current_cell: Callable[[], int | None] = lambda: None,
        waiter: Waiter | None = None,
        tools: Callable[[NotebookSession], NotebookTools] | None = None,
    ) -> None:
        self.state_dir = state_dir or Path.cwd() / ".codex_notebook"
        self.defaults = TurnOptions()
        self.server = ServerRuntime(self.state_dir, backend, codex_bin=codex_bin)
        self._notebook = notebook or _notebook_from_env
        self.current_cell = current_cell  # the numbered cell running now (main thread writes)
        self._waiter = waiter
        self.thread_map = ThreadMap(self.state_dir / "threads.json")
        self.registry = ThreadRegistry(self.thread_map, self.scope)
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._closing = False
        self._active: dict[str, NotebookTurn] = {}  # codex thread id -> the turn running on it
        self.turns: deque[NotebookTurn] = deque()  # submission order; see _remember
        self.tools = tools(self) if tools is not None else None

    # -- facts

    @property
    def closing(self) -> bool:
        with self._lock:
            return self._closing

    @property
    def backend_name(self) -> str:
        return self.server.backend_name

    @property
    def server_version(self) -> str | None:
        return self.server.server_version

    def log_text(self) -> str:
        """``%codex log``: what the server said, real problems first, known noise folded."""
        entries: list[LogLine | str] = list(self.server.log)
        entries += parse_log(self.server.stderr_tail())
        return format_log(entries)

    def scope(self) -> Scope:
        """Whose thread names: this notebook's, in the current conversation store."""
        return Scope(self.server.store, self._notebook())

    # -- turns (main thread)

    def with_defaults(self, **given: Any) -> TurnOptions:
        """Cell options over the session defaults set with ``%codex config``."""
        return self.defaults.over(**given)

    def submit(
        self,
        prompt: str,
        options: TurnOptions,
        *,
        cell: int | None = None,
        show: Callable[[NotebookTurn], Any] | None = None,
    ) -> NotebookTurn:
        """Bind a cell's turn to its thread (now, in submission order), show it with
        ``show`` (its result becomes ``turn.display``) and start its driver."""
        with self._lock:
            if self._closing:
                raise TransportClosedError("the codex session was unloaded; %load_ext it again")
            number = next(self._numbers)
        slot = self.registry.bind(options.thread, fresh=options.new)
        turn = NotebookTurn(
            number=number,
            cell=cell,
            prompt=prompt,
            options=options,
            slot=slot,
            badge=self.server.badge,
            waiter=self._waiter,
        )
        slot.enqueue(turn)
        with self._lock:
            self._remember(turn)
            _LAST[:] = [turn]
        try:
            if show is not None:
                turn.display = show(turn)
        except BaseException:
            turn.interrupt()  # it never starts; its place in the queue is given back
            raise
        finally:
            start_driver(turn, self)  # always: only the driver releases the queue
        return turn

    def turn_done(self, turn: NotebookTurn) -> None:
        """Driver thread, last thing it does (nothing to do yet; a hook for subclasses)."""

    def thread_options(self, options: TurnOptions) -> dict[str, Any]:
        """``thread/start`` (and resume) options: the folder, and the notebook's tools (declared
        on every new thread; a resumed one gets its handlers back)."""
        found: dict[str, Any] = {"cwd": options.cwd or self._default_cwd()}
        if self.tools is not None:
            found["tools"] = self.tools.toolset
        return found

    def missing_tools(self, thread: Thread) -> str | None:
        """A notice when a conversation cannot call the notebook's tools (started before they
        existed, or by another client); None when it can, or when nobody can tell."""
        if self.tools is None or thread.tool_names is None:
            return None
        missing = [n for n in TOOL_NAMES if f"{NAMESPACE}.{n}" not in thread.tool_names]
        if not missing:
            return None
        return (
            f"This conversation was started without the notebook's tools ({', '.join(missing)}): "
            "the agent cannot look at your kernel in it. `%%codex --new` starts a conversation "
            "that can."
        )

    # -- which turn runs on a codex thread (kernel tools find their cell's turn)

    def activate(self, thread_id: str, turn: NotebookTurn) -> None:
        """Driver thread, before ``turn/start``: one active turn per codex thread."""
        with self._lock:
            self._active[thread_id] = turn

    def deactivate(self, turn: NotebookTurn) -> None:
        with self._lock:
            for thread_id in [k for k, t in self._active.items() if t is turn]:
                del self._active[thread_id]

    def active_turn(self, thread_id: str) -> NotebookTurn | None:
        with self._lock:
            return self._active.get(thread_id)

    def turn_options(self, options: TurnOptions) -> dict[str, Any]:
        """``turn/start`` options of one cell."""
        return {
            "model": options.model,
            "cwd": options.cwd,
            "sandbox": options.sandbox,
            "output_schema": options.schema,
            "approval_policy": options.approval,
        }

    def _default_cwd(self) -> str | None:
        """The backend's folder (the demo's workspace), else the notebook's, except on a
        remote server, whose paths are its own: there the server decides."""
        if not self.server.local:
            return None
        return self.server.default_cwd or str(Path.cwd())

    def _remember(self, turn: NotebookTurn) -> None:
        """Lock held: add ``turn``; past ``HISTORY``, forget the oldest finished turns."""
        self.turns.append(turn)
        excess = len(self.turns) - HISTORY
        if excess <= 0:
            return
        kept: deque[NotebookTurn] = deque()
        for old in self.turns:
            if excess > 0 and old.done():
                excess -= 1
            else:
                kept.append(old)
        self.turns = kept

    def select(self, which: str | None) -> list[NotebookTurn]:
        """Turns by thread name; ``all``/None for every turn."""
        with self._lock:
            turns = list(self.turns)
        if which in (None, "all"):
            return turns
        return [t for t in turns if t.thread_name == which]

    def running(self) -> list[NotebookTurn]:
        return [t for t in self.select(None) if not t.done()]

    def wait(self, turns: Iterable[NotebookTurn], timeout: float | None = None) -> bool:
        """Until every turn ended (False on timeout); on the main thread, clicks and
        the kernel tools keep working meanwhile."""
        turns = list(turns)
        for turn in turns:
            turn.check_wait_allowed()
        if self._waiter is not None:
            return self._waiter(lambda: all(t.done() for t in turns), timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        for turn in turns:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not turn.wait(remaining):
                return False
        return True

    def forget_thread(self, name: str) -> None:
        """``%codex new NAME``: the next cell on NAME starts a fresh conversation."""
        self.registry.forget(name)

    def threads(self) -> dict[str, str]:
        """Known thread names of this notebook and store -> codex thread ids."""
        return self.registry.names()

    # -- lifecycle (main thread)

    def restart(self, backend: str | None = None, *, remote: RemoteTarget | None = None) -> None:
        """Stop every turn and the server; the next cell starts afresh (maybe another backend,
        maybe on the remote server ``remote``)."""
        self.server.check(backend, remote=remote)  # a refused switch stops nothing
        before = self.server.store
        live = self._stop_turns()
        try:
            self.server.restart(backend, remote=remote)
            if self.server.store != before:
                self.registry.clear()
            self.wait(live, STOP_GRACE_S)
        finally:  # whatever happened (even Ctrl-C in the wait), the next cell may run
            with self._lock:
                self._closing = False

    def close(self) -> None:
        live = self._stop_turns()
        self.server.close()
        self.wait(live, STOP_GRACE_S)

    def _stop_turns(self) -> list[NotebookTurn]:
        with self._lock:
            self._closing = True
            live = [t for t in self.turns if not t.done()]
        for turn in live:
            turn.interrupt()
        return live


def _notebook_from_env() -> str | None:
    """The notebook this kernel belongs to, as jupyter_server tells it (JUPYTER.md)."""
    return os.environ.get("JPY_SESSION_NAME") or None
