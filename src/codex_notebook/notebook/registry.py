"""Thread names → conversations, bound at submission, in submission order.

A cell names a thread (``-t NAME``, default ``main``).  When the cell is
submitted — on the kernel's main thread, in milliseconds — the registry binds
it to a :class:`ThreadSlot`: the conversation that name means *now*.  ``--new``
(or ``%codex new NAME``) makes a fresh slot the name's current one; cells
already bound to the old slot keep talking to the old conversation.  So two
turns never share a codex thread by accident, whatever order their drivers
run in.

Turns bound to one slot run one at a time, in submission order (codex folds a
second ``turn/start`` on a busy thread into the running turn).  The slot's
codex thread is started or resumed by the turn at the head of its queue, on
that turn's driver thread — never on the main thread, never under a lock the
main thread takes.

Ownership: :class:`ThreadRegistry` ``_lock`` guards which slot is current per
name; each slot's ``_cond`` guards its queue and its codex thread; the name →
id file is :class:`.threads.ThreadMap`'s.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import CodexRpcError

if TYPE_CHECKING:
    from ..client import Codex, Thread
    from .threads import Scope, ThreadMap
    from .turn import NotebookTurn

__all__ = ["ThreadRegistry", "ThreadSlot"]


class ThreadSlot:
    """One binding of a name to a conversation, and the queue of turns bound to it."""

    def __init__(
        self, registry: ThreadRegistry, name: str, *, fresh: bool, stored: str | None = None
    ) -> None:
        self.name = name
        self.fresh = fresh  # --new: a new conversation, whatever the map says
        self._registry = registry
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[NotebookTurn] = deque()
        self._thread: Thread | None = None
        self._thread_id = stored  # what the name meant when this slot was bound
        self._owner: weakref.ref[Codex] | None = None  # the client ``_thread`` belongs to

    def __repr__(self) -> str:
        return f"<ThreadSlot {self.name!r} {self._thread_id or '(not started)'}>"

    @property
    def thread_id(self) -> str | None:
        with self._cond:
            return self._thread_id

    # -- the queue

    def enqueue(self, turn: NotebookTurn) -> NotebookTurn | None:
        """Main thread: bind a turn; returns the turn it waits behind (None: it is first)."""
        with self._cond:
            ahead = self._queue[-1] if self._queue else None
            self._queue.append(turn)
            return ahead

    def ahead_of(self, turn: NotebookTurn) -> NotebookTurn | None:
        with self._cond:
            for index, queued in enumerate(self._queue):
                if queued is turn:
                    return self._queue[index - 1] if index else None
        return None

    def wait_for_place(self, turn: NotebookTurn, stop: Callable[[], bool]) -> bool:
        """Driver thread: block until ``turn`` heads the queue; False if ``stop()`` first."""
        with self._cond:
            while self._queue and self._queue[0] is not turn:
                if stop():
                    return False
                self._cond.wait(1.0)  # woken by release / wake; the timeout is a safety net
            return not stop()

    def release(self, turn: NotebookTurn) -> None:
        """Driver thread, always (``finally``): the turn is over or never started."""
        with self._cond:
            with contextlib.suppress(ValueError):
                self._queue.remove(turn)
            self._cond.notify_all()

    def wake(self) -> None:
        """Any thread: re-check stop conditions of waiting drivers."""
        with self._cond:
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    # -- the conversation

    def resolve(
        self, client: Codex, *, start: Mapping[str, Any], resume: Mapping[str, Any]
    ) -> tuple[Thread, str | None]:
        """Driver thread at the head of the queue: the codex thread behind this slot,
        started or resumed on ``client`` if not yet there (a restarted server
        resumes it by id); plus a notice for the person when a resume failed and
        a new conversation was started."""
        with self._cond:
            owner = self._owner() if self._owner is not None else None
            if self._thread is not None and owner is client:
                return self._thread, None
            known = self._thread_id
        thread: Thread | None = None
        notice = None
        if known is not None:
            try:
                thread = client.thread_resume(known, **resume)
            except CodexRpcError as exc:
                notice = (
                    f"Could not resume thread '{self.name}' ({known}): {exc.rpc_message}. "
                    "Started a new conversation."
                )
        if thread is None:
            thread = client.thread_start(**start)
        with self._cond:
            self._thread, self._thread_id = thread, thread.id
            self._owner = weakref.ref(client)
        self._registry.store(self, thread.id)
        return thread, notice


class ThreadRegistry:
    """Which slot each name means now; the persisted name → id map behind it."""

    def __init__(self, thread_map: ThreadMap, scope: Callable[[], Scope]) -> None:
        self._map = thread_map
        self._scope = scope
        self._lock = threading.Lock()
        self._current: dict[str, ThreadSlot] = {}

    def bind(self, name: str, *, fresh: bool) -> ThreadSlot:
        """Main thread, at submission: the slot a cell on ``name`` talks to."""
        with self._lock:
            slot = self._current.get(name)
            if slot is not None and not fresh:
                return slot
        stored = None if fresh else self._map.get(self._scope(), name)  # cached after one read
        with self._lock:
            slot = self._current.get(name)
            if slot is None or fresh:
                slot = self._current[name] = ThreadSlot(self, name, fresh=fresh, stored=stored)
            return slot

    def forget(self, name: str) -> None:
        """``%codex new NAME``: the next cell on NAME starts a new conversation."""
        with self._lock:
            slot = self._current[name] = ThreadSlot(self, name, fresh=True)
        self._map.set(self._scope(), name, None, only_if=lambda: self.is_current(slot))

    def is_current(self, slot: ThreadSlot) -> bool:
        with self._lock:
            return self._current.get(slot.name) is slot

    def store(self, slot: ThreadSlot, thread_id: str) -> None:
        """Remember the slot's thread for its name, unless a newer binding replaced it."""
        self._map.set(self._scope(), slot.name, thread_id, only_if=lambda: self.is_current(slot))

    def names(self) -> dict[str, str]:
        """Known names → codex thread ids (stored, and started in this session)."""
        names = self._map.names(self._scope())
        with self._lock:
            slots = list(self._current.values())
        for slot in slots:
            thread_id = slot.thread_id
            if thread_id is not None:
                names[slot.name] = thread_id
            elif slot.fresh:
                names.pop(slot.name, None)
        return names

    def clear(self) -> None:
        """Another conversation store (backend switch): every binding starts over."""
        with self._lock:
            self._current.clear()
