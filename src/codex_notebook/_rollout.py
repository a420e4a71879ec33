"""What a thread's stored session record says about its client tools.

``thread/start`` / ``thread/resume`` responses do not mention tools (checked on
codex 0.163.0 and 0.171.0), but every thread's record — the rollout file at
``thread.path`` — starts with a ``session_meta`` line whose ``dynamic_tools``
holds the specs declared at ``thread/start`` (absent for a thread without
tools).  That first line is the only place to learn whether a resumed thread
can call our tools.  Best effort: anything unreadable means "unknown".
"""

from __future__ import annotations

import os
import stat

import orjson

from .tools import names_from_specs

__all__ = ["stored_tool_names"]

#: The first line carries the base instructions (~20 KB); never read more than this.
_MAX_META_BYTES = 4 * 1024 * 1024


def stored_tool_names(path: str | None) -> frozenset[str] | None:
    """Qualified names of the tools stored with a thread; None when that cannot be known."""
    if not path:
        return None
    try:
        # non-blocking, and regular files only: the path comes from the server, and a FIFO
        # (or a device) there would block the open or the read of thread_resume() for good
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as record:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            first = record.readline(_MAX_META_BYTES)
        meta = orjson.loads(first)
    except (OSError, orjson.JSONDecodeError):
        return None
    payload = meta.get("payload") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or meta.get("type") != "session_meta":
        return None
    if not isinstance(payload, dict):
        return None
    return names_from_specs(payload.get("dynamic_tools"))
