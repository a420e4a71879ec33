"""Loading and unloading the IPython extension."""

from __future__ import annotations

import atexit
import os
from typing import Any

from .kernel_tools import NotebookTools
from .magics import CodexMagics
from .mainthread import main_queue
from .session import NotebookSession
from .tools.kernel_state import CellWatcher

__all__ = ["current_session", "load", "unload"]

_LOADED: list[tuple[NotebookSession, CellWatcher]] = []


def current_session() -> NotebookSession | None:
    return _LOADED[0][0] if _LOADED else None


def load(ipython: Any) -> None:
    if _LOADED:  # %load_ext twice: keep the running session
        return

    def notebook() -> str | None:
        """The notebook this kernel serves (JUPYTER.md: ``__session__``, ``JPY_SESSION_NAME``)."""
        name = ipython.user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
        return str(name) if name else None

    cells = CellWatcher(ipython).install()
    queue = main_queue()  # the one FIFO of work for the kernel's main thread
    session = NotebookSession(
        notebook=notebook,
        current_cell=cells.running_count,
        waiter=queue.blocking_wait,
        tools=lambda s: NotebookTools(ipython, queue, cells, s.active_turn),
    )
    _LOADED.append((session, cells))
    ipython.register_magics(CodexMagics(ipython, session, cells))
    atexit.register(session.close)


def unload(ipython: Any) -> None:
    """Stop every turn and the app-server; remove the magics."""
    if not _LOADED:
        return
    session, cells = _LOADED.pop()
    atexit.unregister(session.close)
    cells.uninstall()
    session.close()
    main_queue().close()  # nothing queued for the kernel survives the extension
    magics = ipython.magics_manager.magics
    magics["line"].pop("codex", None)
    magics["cell"].pop("codex", None)
