"""An exception as plain text, the way the notebook showed it, without ANSI colours.

IPython's formatter (``shell.InteractiveTB``) gives the familiar notebook traceback — cell
labels (``Cell In[7], line 3``), context lines, the user's ``%xmode`` — with colour codes,
which are stripped here.  It stores the last traceback it formatted on itself (``%debug``
reads it); that attribute is restored, so formatting for the agent leaves the user's debugger
state alone.  Without a shell, or if IPython's formatter fails, the standard library's
``traceback`` module is used.

Main thread (the exception's frames may be inspected for context lines).
"""

from __future__ import annotations

import contextlib
import traceback
from typing import Any

from ..._escapes import strip_ansi

__all__ = ["exception_line", "format_exception"]

_MISSING = object()


def exception_line(exc: BaseException) -> str:
    """``TypeError: message`` — the last line of a traceback."""
    try:
        return "".join(traceback.format_exception_only(type(exc), exc)).strip()
    except Exception:
        return type(exc).__name__


def format_exception(exc: BaseException, *, shell: Any = None, skip_frames: int = 0) -> str:
    """The plain-text traceback of ``exc``.

    ``skip_frames`` leaves out the outermost frames (``1`` hides the caller's own ``exec``).
    """
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is None or tb.tb_next is None:
            break
        tb = tb.tb_next
    formatter = getattr(shell, "InteractiveTB", None) if shell is not None else None
    if formatter is not None:
        saved = getattr(formatter, "tb", _MISSING)
        try:
            lines = formatter.structured_traceback(type(exc), exc, tb)
            text = strip_ansi("\n".join(lines))
            if text.strip():
                return text.strip("\n")
        except Exception:
            pass
        finally:
            if saved is not _MISSING:
                formatter.tb = saved
            elif hasattr(formatter, "tb"):
                with contextlib.suppress(AttributeError):
                    del formatter.tb
    return "".join(traceback.format_exception(type(exc), exc, tb)).strip("\n")
