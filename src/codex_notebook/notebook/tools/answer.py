"""The answer every notebook tool returns, and the caps that keep it small.

codex shows the model at most ~12 KB of a tool's output (head + tail) but stores the client's
whole answer in the thread's history (PROTOCOL.md, "Client-defined tools"), so every answer is
capped here, client-side: a few KB of text and at most one small image.  Whatever is cut is
said in the text, with how much.

Capping and scrubbing go together (:func:`finish`): secrets are replaced in a window a little
larger than what is kept, so a key cut in half at the edge is never half-shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_IMAGES",
    "Answer",
    "cap",
    "finish",
]

#: The most text one answer carries (characters).  Every tool answer is cut to this.
MAX_ANSWER_CHARS: Final = 6_000
#: The most images one answer carries (each a small PNG, see :mod:`.figures`).
MAX_IMAGES: Final = 1
#: Extra characters scrubbed beyond a cut, so a secret straddling the cut is still found.
_SCRUB_MARGIN: Final = 512

Keep = Literal["head", "tail", "middle"]


@dataclass(frozen=True)
class Answer:
    """What a tool sends back: text (already capped and scrubbed) and at most one image.

    ``ok`` is False for a refusal or failure; the text then starts with ``ERROR:`` because the
    model sees only the content items, never the ``success`` flag.
    """

    text: str
    images: tuple[str, ...] = ()
    ok: bool = True

    @classmethod
    def error(cls, message: str) -> Answer:
        """A failed call, worded for the model."""
        return cls(text=f"ERROR: {message}", ok=False)

    def content_items(self) -> list[dict[str, str]]:
        """The ``contentItems`` of an ``item/tool/call`` answer."""
        items = [{"type": "inputText", "text": self.text}]
        items.extend({"type": "inputImage", "imageUrl": url} for url in self.images[:MAX_IMAGES])
        return items


def cap(text: str, limit: int, *, keep: Keep = "head", what: str = "characters") -> str:
    """Cut ``text`` to about ``limit`` characters, saying how much was cut and where.

    ``keep="head"`` keeps the start (reprs, listings), ``"tail"`` the end (output streams),
    ``"middle"`` keeps both ends and cuts the middle (tracebacks, long strings).  The marker
    itself is not counted in ``limit``.
    """
    if len(text) <= limit:
        return text
    head, tail = _split(limit, keep)
    return _join(text[:head], text[len(text) - tail :] if tail else "", len(text) - limit, what)


def finish(
    text: str,
    limit: int = MAX_ANSWER_CHARS,
    *,
    scrub: Callable[[str], str],
    keep: Keep = "head",
    what: str = "characters",
) -> str:
    """Scrub secrets and cap, in that order, without scrubbing more than needed.

    Only the part that can survive the cut (plus a margin) is scrubbed, so a 100 MB string
    costs no more than a small one.
    """
    if len(text) <= limit + 2 * _SCRUB_MARGIN:
        return cap(scrub(text), limit, keep=keep, what=what)
    head_len, tail_len = _split(limit, keep)
    head = scrub(text[: head_len + _SCRUB_MARGIN])[:head_len] if head_len else ""
    tail = scrub(text[len(text) - tail_len - _SCRUB_MARGIN :]) if tail_len else ""
    return _join(head, tail[len(tail) - tail_len :] if tail_len else "", len(text) - limit, what)


def _split(limit: int, keep: Keep) -> tuple[int, int]:
    """How many characters to keep at the head and at the tail."""
    if keep == "head":
        return limit, 0
    if keep == "tail":
        return 0, limit
    return limit // 3, limit - limit // 3


def _join(head: str, tail: str, cut: int, what: str) -> str:
    note = f"[… {cut:,} {what} cut …]"
    return "\n".join(part for part in (head, note, tail) if part)
