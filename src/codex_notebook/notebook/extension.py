"""Loading and unloading the IPython extension."""

from __future__ import annotations

import atexit
import os
from typing import Any

from .cells import CellTracker
from .magics import CodexMagics
from .session import NotebookSession

__all__ = ["current_session", "load", "unload"]

_LOADED: list[tuple[NotebookSession, CellTracker]] = []


def current_session() -> NotebookSession | None:
    return _LOADED[0][0] if _LOADED else None


def load(ipython: Any) -> None:
    if _LOADED:  # %load_ext twice: keep the running session
        return

    def notebook() -> str | None:
        """The notebook this kernel serves (JUPYTER.md: ``__session__``, ``JPY_SESSION_NAME``)."""
        name = ipython.user_ns.get("__session__") or os.environ.get("JPY_SESSION_NAME")
        return str(name) if name else None

    cells = CellTracker(ipython)
    session = NotebookSession(notebook=notebook, current_cell=lambda: cells.current)
    _LOADED.append((session, cells))
    ipython.register_magics(CodexMagics(ipython, session, cells))
    atexit.register(session.close)


def unload(ipython: Any) -> None:
    """Stop every turn and the app-server; remove the magics."""
    if not _LOADED:
        return
    session, cells = _LOADED.pop()
    atexit.unregister(session.close)
    cells.close()
    session.close()
    magics = ipython.magics_manager.magics
    magics["line"].pop("codex", None)
    magics["cell"].pop("codex", None)
