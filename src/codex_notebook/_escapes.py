"""Terminal escape sequences and control characters out of text that came from elsewhere.

Server stderr, command output and model text may carry escapes that a terminal acts on: a
hyperlink whose target is not its text (OSC 8), a clipboard write (OSC 52), a cleared screen.
Wherever such text is shown — an exception message, a log line, a plain-text output — it goes
through :func:`strip_ansi` first.  One owner for the pattern: the library and the notebook layer
both use it.
"""

from __future__ import annotations

import re

__all__ = ["strip_ansi"]

ANSI_RE = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]                  # CSI: colours, cursor moves
  | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)        # OSC: titles, hyperlinks, clipboard
  | \x1b[PX^_][^\x1b]*\x1b\\                 # DCS / SOS / PM / APC
  | \x1b[ -/]*[0-~]                          # two-byte escapes
    """,
    re.VERBOSE,
)
#: C0 controls but tab and newline, DEL, and the C1 controls: U+009B is CSI and U+009D OSC on
#: their own in a terminal that reads 8-bit controls (xterm, urxvt), no ESC needed.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f-\x9f]")


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences and control characters (keeps tab and newline).

    ``\\r\\n`` becomes ``\\n``; a lone ``\\r`` (progress bars) becomes a newline.
    """
    text = ANSI_RE.sub("", text).replace("\x1b", "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_RE.sub("", text)
