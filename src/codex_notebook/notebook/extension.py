"""Loading and unloading the IPython extension."""

from __future__ import annotations

import atexit
from typing import Any

from .magics import CodexMagics
from .session import NotebookSession

__all__ = ["current_session", "load", "unload"]

_SESSION: list[NotebookSession] = []


def current_session() -> NotebookSession | None:
    return _SESSION[0] if _SESSION else None


def load(ipython: Any) -> None:
    if _SESSION:  # %load_ext twice: keep the running session
        return
    session = NotebookSession()
    _SESSION.append(session)
    ipython.register_magics(CodexMagics(ipython, session))
    atexit.register(session.close)


def unload(ipython: Any) -> None:
    """Stop every turn and the app-server; remove the magics."""
    if not _SESSION:
        return
    session = _SESSION.pop()
    atexit.unregister(session.close)
    session.close()
    magics = ipython.magics_manager.magics
    magics["line"].pop("codex", None)
    magics["cell"].pop("codex", None)
