"""Plain-text utilities the transcript and its renderers share.

Nothing here interprets text as markup: lengths the browser agrees with
(UTF-16), terminal escapes removed, long output capped, growing text
remembered per flush, and the one way durations and token counts are
written (the widget's JavaScript formats the live clock the same way; a test
runs both).
"""

from __future__ import annotations

import re

from .._escapes import strip_ansi

__all__ = [
    "CAP_CHARS",
    "CAP_LINES",
    "AnsiStripper",
    "TextStream",
    "cap_text",
    "format_duration",
    "format_tokens",
    "reveal_invisible",
    "strip_ansi",
    "u16len",
]

#: Command output / diff text kept in the widget state and the static rendering.
CAP_CHARS = 64 * 1024
CAP_LINES = 400


def u16len(text: str) -> int:
    """Length in UTF-16 code units: what JavaScript's ``string.length`` reports."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def u16tail(text: str, units: int) -> str:
    """``text`` without its first ``units`` UTF-16 code units (a character boundary)."""
    if units <= 0:
        return text
    if text.isascii():
        return text[units:]
    return text.encode("utf-16-le")[2 * units :].decode("utf-16-le")


#: An escape sequence cut short by the end of the text.
_INCOMPLETE_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[ -/]*)\Z")


class AnsiStripper:
    """:func:`strip_ansi` for a stream of chunks: a sequence split across two
    chunks is held back until its end arrives."""

    __slots__ = ("_carry",)
    _MAX_CARRY = 256

    def __init__(self) -> None:
        self._carry = ""

    def feed(self, chunk: str) -> str:
        text = self._carry + chunk
        self._carry = ""
        cut = len(text)
        esc = text.rfind("\x1b")
        if esc != -1 and len(text) - esc <= self._MAX_CARRY and _INCOMPLETE_RE.match(text, esc):
            cut = esc  # the sequence's end has not arrived yet
        if cut > 0 and text[cut - 1] == "\r":  # maybe the first half of \r\n
            cut -= 1
        self._carry = text[cut:]
        return strip_ansi(text[:cut])

    def flush(self) -> str:
        rest, self._carry = self._carry, ""
        return strip_ansi(rest)


#: Characters that are not shown, or that reorder what is shown around them: bidi
#: marks, embeddings, overrides and isolates ("Trojan Source"), zero-width characters,
#: invisible operators, Hangul fillers (blank-looking identifiers), tag characters.
_INVISIBLE_RE = re.compile(
    "[\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069"
    "\u3164\ufeff\uffa0\U000e0000-\U000e007f]"
)


def reveal_invisible(text: str) -> str:
    """``text`` with each invisible or direction-changing character written as ``⟨U+202E⟩``.

    For what a person approves or inserts (code, commands, paths, diffs): shown raw,
    ``x\u202e…`` displays in an order that is not the one that runs.
    """
    if text.isascii():
        return text
    return _INVISIBLE_RE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text)


def cap_text(text: str, *, chars: int = CAP_CHARS, lines: int = CAP_LINES) -> tuple[str, int]:
    """The tail of ``text`` within the caps, and how many lines were cut from its head."""
    hidden = 0
    if len(text) > chars:
        head, text = text[:-chars], text[-chars:]
        hidden += head.count("\n")
        newline = text.find("\n")
        if 0 <= newline < len(text) - 1:  # do not start in the middle of a line
            text = text[newline + 1 :]
            hidden += 1
    count = text.count("\n")
    if count > lines:
        parts = text.split("\n")
        keep = lines if parts[-1] else lines + 1  # a trailing newline is not a line
        hidden += len(parts) - keep
        text = "\n".join(parts[-keep:])
    return text, hidden


class TextStream:
    """Text that grows by appends and remembers how much of it was already sent.

    Offsets and lengths are in UTF-16 code units, as the browser counts them.
    With ``cap`` (characters) only a bounded tail is stored; ``dropped`` says
    how many units were let go from the head.  Not thread-safe: its owner
    (the transcript, under the view's lock) is the only writer.
    """

    __slots__ = (
        "_parts",
        "_pending",
        "_pending_chars",
        "_stored_chars",
        "cap",
        "dropped",
        "dropped_lines",
        "flushed",
        "length",
        "overflowed",
    )

    def __init__(self, cap: int | None = None) -> None:
        self.cap = cap
        self._parts: list[str] = []
        self._stored_chars = 0
        self._pending: list[str] = []
        self._pending_chars = 0
        self.length = 0
        self.dropped = 0
        self.dropped_lines = 0
        self.flushed = 0
        self.overflowed = False  # more arrived since the last flush than one message should carry

    def append(self, text: str) -> None:
        if not text:
            return
        self._parts.append(text)
        self._stored_chars += len(text)
        self.length += u16len(text)
        if not self.overflowed:
            self._pending.append(text)
            self._pending_chars += len(text)
        if self.cap is not None:
            if self._pending_chars > self.cap:
                self.overflowed = True
                self._pending.clear()
                self._pending_chars = 0
            if self._stored_chars > 2 * self.cap:
                whole = "".join(self._parts)
                head, keep = whole[: -self.cap], whole[-self.cap :]
                self.dropped += u16len(head)
                self.dropped_lines += head.count("\n")
                self._parts = [keep]
                self._stored_chars = len(keep)

    @property
    def text(self) -> str:
        """Everything stored (for a capped stream: the tail kept in memory)."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def shown(self) -> tuple[str, int, int]:
        """``(text, base, hidden_lines)``: what a view displays.  ``base`` is the
        UTF-16 offset where ``text`` starts, so ``base + u16len(text) == length``."""
        text = self.text
        if self.cap is None:
            return text, 0, 0
        shown, hidden = cap_text(text)
        return shown, self.length - u16len(shown), self.dropped_lines + hidden

    def take_pending(self) -> tuple[int, str] | None:
        """``(offset, text)`` appended since the last flush, or None; marks it flushed.
        Check :attr:`overflowed` first: then send the whole :meth:`shown` instead."""
        if self.length == self.flushed:
            return None
        offset, text = self.flushed, "".join(self._pending)
        self.mark_flushed()
        return offset, text

    def mark_flushed(self) -> None:
        self.flushed = self.length
        self._pending.clear()
        self._pending_chars = 0
        self.overflowed = False


def format_duration(ms: float | None) -> str:
    """``850 ms``, ``1.3 s``, ``12 s``, ``2 min 05 s``, ``1 h 02 min`` (empty for None).

    The one format for every duration a person reads: the widget header (its
    JavaScript twin ``fmtDuration``), the static output, ``%codex status``.
    """
    if ms is None or ms < 0:
        return ""
    ms = int(ms)  # integer arithmetic only: the JavaScript twin must agree to the digit
    if ms < 1000:
        return f"{ms} ms"
    if ms < 10_000:
        tenths = ms // 100
        return f"{tenths // 10}.{tenths % 10} s"
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def format_tokens(total: int | None) -> str:
    """``812 tokens``, ``12.3k tokens``, ``1.2M tokens`` (empty for none)."""
    if not total:
        return ""
    if total < 1000:
        return f"{total} tokens"
    if total < 10_000:
        return f"{total // 1000}.{total // 100 % 10}k tokens"
    if total < 1_000_000:
        return f"{total // 1000}k tokens"
    return f"{total // 1_000_000}.{total // 100_000 % 10}M tokens"
