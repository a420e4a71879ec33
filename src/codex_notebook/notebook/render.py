"""What a person reads of a turn: fold its events into blocks, render them safely.

Pure and synchronous: no widgets, no threads.  :class:`TranscriptModel` folds a
turn's events (notifications and server requests, in wire order) into an
ordered list of blocks; the widget sends them to the browser and
:func:`render_static` turns them into a self-contained mime bundle that reads
well on GitHub / nbviewer.

Everything the model or a command produced is untrusted: markdown goes through
:func:`render_markdown` (markdown-it-py, then nh3), command output and diffs
are plain text (ANSI codes stripped) and are only ever inserted as text.
Images in model markdown are never loaded: they become a link the reader may
click (an image URL fetched automatically is a known way to leak data).
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import nh3
from markdown_it import MarkdownIt

from ..approvals import (
    APPROVAL_METHODS,
    COMMAND_APPROVAL,
    FILE_CHANGE_APPROVAL,
    LEGACY_EXEC_APPROVAL,
    LEGACY_PATCH_APPROVAL,
    PERMISSIONS_APPROVAL,
)
from ..messages import Notification, ServerRequest
from ..results import Usage

__all__ = [
    "DECISIONS",
    "STATUSES",
    "ApprovalBlock",
    "Block",
    "CommandBlock",
    "DiffBlock",
    "ErrorBlock",
    "FileChangeBlock",
    "LineBlock",
    "MessageBlock",
    "NoticeBlock",
    "PlanBlock",
    "ReasoningBlock",
    "TextStream",
    "TranscriptModel",
    "render_markdown",
    "render_static",
    "strip_ansi",
    "u16len",
]

#: Header statuses, in the order a turn goes through them.
STATUSES = (
    "queued",
    "starting",
    "running",
    "waiting for approval",
    "completed",
    "interrupted",
    "failed",
    "error",
)
TERMINAL_STATUSES = frozenset({"completed", "interrupted", "failed", "error"})
#: What a person may answer to an approval request, in button order.
DECISIONS = ("accept", "acceptForSession", "decline", "cancel")
DECISION_LABELS = {
    "accept": "Approved",
    "acceptForSession": "Approved for session",
    "decline": "Declined",
    "cancel": "Cancelled",
}

#: Command output / diff text kept in the widget state and the static rendering.
CAP_CHARS = 64 * 1024
CAP_LINES = 400


# --------------------------------------------------------------------------- text helpers


def u16len(text: str) -> int:
    """Length in UTF-16 code units: what JavaScript's ``string.length`` reports."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


_ANSI_RE = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]                  # CSI: colours, cursor moves
  | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)        # OSC: titles, hyperlinks
  | \x1b[PX^_][^\x1b]*\x1b\\                 # DCS / SOS / PM / APC
  | \x1b[ -/]*[0-~]                          # two-byte escapes
    """,
    re.VERBOSE,
)
#: An escape sequence cut short by the end of the text.
_INCOMPLETE_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[ -/]*)\Z")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
_LONE_ESC_RE = re.compile(r"\x1b")


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences and control characters (keeps tab and newline).

    ``\\r\\n`` becomes ``\\n``; a lone ``\\r`` (progress bars) becomes a newline.
    """
    text = _ANSI_RE.sub("", text)
    text = _LONE_ESC_RE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_RE.sub("", text)


class _AnsiStripper:
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


def _cap_text(text: str, *, chars: int = CAP_CHARS, lines: int = CAP_LINES) -> tuple[str, int]:
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
    how many units were let go from the head.
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
        shown, hidden = _cap_text(text)
        return shown, self.length - u16len(shown), self.dropped_lines + hidden

    def take_pending(self) -> tuple[int, str] | None:
        """``(offset, text)`` appended since the last flush, or None; marks it flushed.
        Call :attr:`overflowed` first: then send the whole :meth:`shown` instead."""
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


# --------------------------------------------------------------------------- markdown

# Raw HTML in model text is shown as text (escaped), never interpreted; nh3 then
# sanitizes what markdown itself produced, as a second line of defence.
_MD = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _render_image(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """Images are never loaded: an http(s) image becomes a link, anything else its alt text."""
    token = tokens[idx]
    alt = html.escape(self.renderInlineAsText(token.children or [], options, env) or "image")
    src = str(token.attrGet("src") or "")
    if src.startswith(("https://", "http://")):
        return f'<a href="{html.escape(src, quote=True)}">[image: {alt}]</a>'
    return f"[image: {alt}]"


_MD.add_render_rule("image", _render_image)

_MD_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "mark", "ol",
    "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
}  # fmt: skip
_MD_ATTRS: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"style", "colspan", "rowspan", "align"},
    "th": {"style", "colspan", "rowspan", "align"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}

_md_cleaner = nh3.Cleaner(
    tags=_MD_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=_MD_ATTRS,
    url_schemes=_URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties={"text-align"},
)


def render_markdown(text: str) -> str:
    """Model markdown → sanitized HTML (CommonMark + tables + strikethrough).

    Allowed: ordinary formatting, headings, lists, quotes, tables, code, and
    links with http/https/mailto (opened in a new tab, ``rel=noopener``).
    Removed: scripts, styles, iframes, event handlers, ``javascript:`` and
    other schemes, and every ``<img>`` (markdown images become links).
    """
    return str(_md_cleaner.clean(_MD.render(text)))


# --------------------------------------------------------------------------- blocks


@dataclass(eq=False)
class Block:
    """One thing shown in a turn.  ``trait()`` is its JSON form for the widget."""

    id: str
    kind: ClassVar[str] = "block"
    final: bool = False

    @property
    def stream(self) -> TextStream | None:
        """The text this block streams while it is not final (None if it does not stream)."""
        return None

    @property
    def visible(self) -> bool:
        return True

    def finalize(self) -> None:
        self.final = True

    def trait(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "final": self.final}


@dataclass(eq=False)
class _MarkdownBlock(Block):
    """Text that streams in as plain text and is rendered as markdown once final."""

    text_stream: TextStream = field(default_factory=TextStream)
    final_text: str | None = None
    html: str | None = None

    @property
    def stream(self) -> TextStream | None:
        return None if self.final else self.text_stream

    @property
    def text(self) -> str:
        return self.final_text if self.final_text is not None else self.text_stream.text

    @property
    def visible(self) -> bool:
        return not self.final or bool(self.text.strip())

    @property
    def source(self) -> str:
        """The markdown this block renders (its text, unless a subclass frames it)."""
        return self.text

    def finalize(self) -> None:
        if not self.final:
            self.final = True
            self.html = render_markdown(self.source)

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        if self.final:
            data["html"] = self.html or ""
        else:
            data["text"] = self.text_stream.text
        return data


@dataclass(eq=False)
class MessageBlock(_MarkdownBlock):
    """Agent text (``role``: answer / commentary) or a proposed plan (``role="plan"``)."""

    kind: ClassVar[str] = "message"
    role: str = "answer"
    language: str | None = None  # e.g. "json" for a structured-output answer: shown as code

    @property
    def source(self) -> str:
        if self.language:
            return f"```{self.language}\n{self.text.strip()}\n```"
        return self.text

    def trait(self) -> dict[str, Any]:
        return {**super().trait(), "role": self.role}


@dataclass(eq=False)
class ReasoningBlock(_MarkdownBlock):
    """The model's reasoning summary (collapsed by default)."""

    kind: ClassVar[str] = "reasoning"

    def trait(self) -> dict[str, Any]:
        return {**super().trait(), "title": _reasoning_title(self.text)}


_BOLD_TITLE_RE = re.compile(r"\*\*([^*\n]{1,120})\*\*")


def _reasoning_title(text: str) -> str:
    """The last bold heading of a reasoning summary (summaries start with one)."""
    titles = _BOLD_TITLE_RE.findall(text)
    return str(titles[-1]).strip() if titles else ""


@dataclass(eq=False)
class CommandBlock(Block):
    kind: ClassVar[str] = "command"
    command: str = ""
    cwd: str = ""
    status: str = "inProgress"  # inProgress / completed / failed / declined / incomplete
    exit_code: int | None = None
    duration_ms: int | None = None
    output: TextStream = field(default_factory=lambda: TextStream(cap=CAP_CHARS))
    _stripper: _AnsiStripper = field(default_factory=_AnsiStripper, repr=False)

    @property
    def display_command(self) -> str:
        return display_command(self.command)

    @property
    def stream(self) -> TextStream | None:
        return None if self.final else self.output

    def append_output(self, chunk: str) -> None:
        self.output.append(self._stripper.feed(chunk))

    def complete(self, item: Mapping[str, Any]) -> None:
        self.update(item)
        aggregated = item.get("aggregatedOutput")
        if isinstance(aggregated, str):  # the server's copy is authoritative
            self.output = TextStream(cap=CAP_CHARS)
            self.output.append(strip_ansi(aggregated))
            self._stripper = _AnsiStripper()
        self.finalize()

    def update(self, item: Mapping[str, Any]) -> None:
        self.command = _str(item.get("command")) or self.command
        self.cwd = _str(item.get("cwd")) or self.cwd
        status = item.get("status")
        if isinstance(status, str):
            self.status = status
        exit_code = item.get("exitCode")
        if isinstance(exit_code, int):
            self.exit_code = exit_code
        duration = item.get("durationMs")
        if isinstance(duration, int):
            self.duration_ms = duration

    def finalize(self) -> None:
        if not self.final:
            self.output.append(self._stripper.flush())
            if self.status == "inProgress":
                self.status = "incomplete"
            self.final = True

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        text, base, hidden = self.output.shown()
        data.update(
            command=self.display_command,
            full_command=self.command,
            cwd=self.cwd,
            status=self.status,
            exit_code=self.exit_code,
            duration_ms=self.duration_ms,
            text=text,
            base=base,
            hidden_lines=hidden,
        )
        return data


def display_command(command: str) -> str:
    """``/bin/bash -lc 'echo hi'`` → ``echo hi``: the shell wrapper is noise to a reader."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    if (
        len(argv) == 3
        and argv[0].rsplit("/", 1)[-1] in ("bash", "sh", "zsh", "dash")
        and argv[1] in ("-c", "-lc", "-ic")
    ):
        return argv[2]
    return command


@dataclass
class FileDiff:
    path: str
    kind: str = "update"  # add / delete / update
    move_path: str | None = None
    diff: str = ""

    @property
    def unified(self) -> str:
        """The change as unified-diff lines (added / deleted files get +/- prefixes)."""
        text = self.diff
        if self.kind in ("add", "delete") and not text.startswith(("@@", "---", "diff ")):
            sign = "+" if self.kind == "add" else "-"
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            return "\n".join(sign + line for line in lines)
        return text

    def counts(self) -> tuple[int, int]:
        return _diff_counts(self.unified)

    def trait(self) -> dict[str, Any]:
        added, removed = self.counts()
        diff, hidden = _cap_text(self.unified)
        return {
            "path": self.path,
            "kind": self.kind,
            "move_path": self.move_path,
            "added": added,
            "removed": removed,
            "diff": diff,
            "hidden_lines": hidden,
        }


def _diff_counts(diff: str) -> tuple[int, int]:
    added = removed = 0
    for line in diff.split("\n"):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def _file_diffs(changes: Any) -> list[FileDiff]:
    files: list[FileDiff] = []
    if isinstance(changes, list):
        for change in changes:
            if not isinstance(change, dict):
                continue
            kind_info = change.get("kind")
            kind = "update"
            move_path = None
            if isinstance(kind_info, dict):
                kind = _str(kind_info.get("type")) or "update"
                move_path = _str(kind_info.get("move_path")) or None
            elif isinstance(kind_info, str):
                kind = kind_info
            files.append(
                FileDiff(_str(change.get("path")) or "?", kind, move_path, _str(change.get("diff")))
            )
    return files


@dataclass(eq=False)
class FileChangeBlock(Block):
    kind: ClassVar[str] = "file_change"
    status: str = "inProgress"
    files: list[FileDiff] = field(default_factory=list)
    output: TextStream = field(default_factory=lambda: TextStream(cap=CAP_CHARS))

    @property
    def stream(self) -> TextStream | None:
        return None if self.final else self.output

    def finalize(self) -> None:
        if not self.final:
            if self.status == "inProgress":
                self.status = "incomplete"
            self.final = True

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        text, base, hidden = self.output.shown()
        data.update(
            status=self.status,
            files=[f.trait() for f in self.files],
            text=text,
            base=base,
            hidden_lines=hidden,
        )
        return data


def split_unified_diff(diff: str) -> list[FileDiff]:
    """A turn's aggregated ``git diff`` split per file."""
    files: list[FileDiff] = []
    current: list[str] = []
    path = ""

    def close() -> None:
        if current:
            files.append(FileDiff(path or "?", "update", None, "\n".join(current)))

    for line in diff.split("\n"):
        if line.startswith("diff --git "):
            close()
            current = [line]
            match = re.match(r"diff --git a/(.*?) b/(.*)$", line)
            path = match.group(2) if match else line[11:]
        else:
            if line.startswith("+++ ") and line[4:] != "/dev/null":
                path = line[4:].removeprefix("b/")
            elif line.startswith("--- ") and not path and line[4:] != "/dev/null":
                path = line[4:].removeprefix("a/")
            current.append(line)
    close()
    return files


@dataclass(eq=False)
class DiffBlock(Block):
    """The turn's aggregated diff (``turn/diff/updated``); always shown last."""

    kind: ClassVar[str] = "diff"
    diff: str = ""

    @property
    def visible(self) -> bool:
        return bool(self.diff.strip())

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        text, hidden = _cap_text(self.diff)
        added, removed = _diff_counts(self.diff)
        data.update(
            files=[
                {"path": f.path, "added": a, "removed": r}
                for f in split_unified_diff(self.diff)
                for a, r in [f.counts()]
            ],
            added=added,
            removed=removed,
            diff=text,
            hidden_lines=hidden,
        )
        return data


@dataclass(eq=False)
class PlanBlock(Block):
    kind: ClassVar[str] = "plan"
    explanation: str = ""
    steps: list[dict[str, str]] = field(default_factory=list)

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        data.update(explanation=self.explanation, steps=[dict(s) for s in self.steps])
        return data


@dataclass(eq=False)
class ApprovalBlock(Block):
    """A request for permission; ``state``: pending / decided / resolved / expired."""

    kind: ClassVar[str] = "approval"
    request_id: Any = None
    method: str = ""
    title: str = ""
    reason: str = ""
    command: str = ""
    cwd: str = ""
    details: str = ""
    decisions: tuple[str, ...] = DECISIONS
    state: str = "pending"
    decision: str | None = None
    request: ServerRequest | None = field(default=None, repr=False)

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    def finalize(self) -> None:
        if self.state == "pending":
            self.state = "expired"
        self.final = True

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        data.update(
            request=self.request_id,
            method=self.method,
            title=self.title,
            reason=self.reason,
            command=self.command,
            cwd=self.cwd,
            details=self.details,
            decisions=list(self.decisions),
            state=self.state,
            decision=self.decision,
        )
        return data


@dataclass(eq=False)
class ErrorBlock(Block):
    kind: ClassVar[str] = "error"
    message: str = ""
    hint: str = ""
    code: str = ""

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        data.update(message=self.message, hint=self.hint, code=self.code)
        return data


@dataclass(eq=False)
class NoticeBlock(Block):
    """A transient or informational note (a retried error, a model reroute, a warning)."""

    kind: ClassVar[str] = "notice"
    text: str = ""
    tone: str = "info"  # info / warn

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        data.update(text=self.text, tone=self.tone)
        return data


@dataclass(eq=False)
class LineBlock(Block):
    """A compact one-line item: web search, tool call, unsupported item, ..."""

    kind: ClassVar[str] = "line"
    icon: str = "•"
    label: str = ""
    text: str = ""
    status: str = ""
    detail: str = ""

    def trait(self) -> dict[str, Any]:
        data = super().trait()
        data.update(
            icon=self.icon, label=self.label, text=self.text, status=self.status, detail=self.detail
        )
        return data


# --------------------------------------------------------------------------- the fold


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def error_code(info: Any) -> str:
    if isinstance(info, str):
        return info
    if isinstance(info, dict) and info:
        return str(next(iter(info)))
    return ""


_HINTS = {
    "contextWindowExceeded": "The conversation no longer fits the model's context. "
    "Start a fresh thread with `%%codex --new`.",
    "usageLimitExceeded": "Your usage limit is reached. Wait for it to reset, or check your plan.",
    "sessionBudgetExceeded": "This session's budget is used up.",
    "rateLimitExceeded": "Rate limited by the model provider. Re-run the cell in a moment.",
    "serverOverloaded": "The model service is overloaded. Re-run the cell in a moment.",
    "internalServerError": "The model service had a temporary problem. "
    "Re-run the cell in a moment.",
    "httpConnectionFailed": "Could not reach the model service. Check the network and re-run.",
    "responseStreamConnectionFailed": "Could not reach the model service. "
    "Check the network and re-run.",
    "responseStreamDisconnected": "The connection to the model dropped. Re-run the cell.",
    "unauthorized": "Not signed in, or the key was rejected. Run `codex login` or set "
    "`OPENAI_API_KEY`, then `%codex restart`.",
    "badRequest": "The model rejected the request. Check `--model` and the prompt.",
    "sandboxError": "The sandbox could not run the command. See `%codex log` for details.",
    "tooManyDenials": "Too many actions were declined, so codex stopped. Re-run with "
    "different instructions.",
    "cyberPolicy": "The request was blocked by the provider's policy.",
    "misalignmentPolicyViolation": "The request was blocked by the provider's policy.",
}
_DEFAULT_HINT = "Re-run the cell; `%codex log` shows details."


def error_hint(code: str) -> str:
    """What to do about an error, by ``codexErrorInfo``."""
    return _HINTS.get(code, _DEFAULT_HINT)


_APPROVAL_TITLES = {
    COMMAND_APPROVAL: "Run this command?",
    LEGACY_EXEC_APPROVAL: "Run this command?",
    FILE_CHANGE_APPROVAL: "Apply these file changes?",
    LEGACY_PATCH_APPROVAL: "Apply these file changes?",
    PERMISSIONS_APPROVAL: "Grant these permissions?",
}
_LEGACY_TO_DECISION = {
    "approved": "accept",
    "approved_for_session": "acceptForSession",
    "denied": "decline",
    "abort": "cancel",
}


_B = TypeVar("_B", bound=Block)


class TranscriptModel:
    """A turn's events folded into ordered blocks.  Not thread-safe: guard it.

    ``changed`` is set whenever something other than streamed text changed (a
    block appeared, finished, or changed state); the widget resets it when it
    publishes the blocks.  Streamed text is tracked per block in
    :class:`TextStream` (what was appended since the last flush).
    """

    def __init__(self) -> None:
        self._blocks: dict[str, Block] = {}
        self._diff: DiffBlock | None = None
        self._seq = 0
        self._reviews: dict[str, LineBlock] = {}
        self._retries = 0
        self._retry_message = ""
        self.usage: Usage | None = None
        self.status: str | None = None  # completed / interrupted / failed, from turn/completed
        self.error: str | None = None
        self.duration_ms: int | None = None
        self.rerouted_to: str | None = None
        self.answer_language: str | None = None  # set for structured output, e.g. "json"
        self.changed = True

    # -- reading

    @property
    def blocks(self) -> list[Block]:
        """Visible blocks in order of first appearance (the turn diff last)."""
        blocks = [b for b in self._blocks.values() if b.visible]
        if self._diff is not None and self._diff.visible:
            blocks.append(self._diff)
        return blocks

    def streaming(self) -> list[Block]:
        """Visible blocks whose text is still streaming."""
        return [b for b in self.blocks if b.stream is not None]

    @property
    def text(self) -> str:
        """The last agent message (answer or commentary) so far, like ``TurnResult.text``."""
        for block in reversed(self._blocks.values()):
            if isinstance(block, MessageBlock) and block.role != "plan":
                return block.text
        return ""

    @property
    def pending_approvals(self) -> list[ApprovalBlock]:
        return [b for b in self._blocks.values() if isinstance(b, ApprovalBlock) and b.pending]

    def approval(self, request_id: Any) -> ApprovalBlock | None:
        for block in self._blocks.values():
            if isinstance(block, ApprovalBlock) and block.request_id == request_id:
                return block
        return None

    @property
    def has_diff(self) -> bool:
        return self._diff is not None and self._diff.visible

    # -- writing

    def apply_all(self, events: Iterable[Notification]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Notification) -> None:
        """Fold one event.  Never raises on unknown or malformed input."""
        try:
            self._apply(event)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a shape we misread
            self._add(
                LineBlock(self._next_id("bad"), icon="?", label="unreadable event", text=str(exc))
            )

    def record_decision(self, request_id: Any, decision: str) -> ApprovalBlock | None:
        """Mark a pending approval decided.  Returns the block, or None if there is no
        pending approval with that id (unknown, already decided, or moot)."""
        block = self.approval(request_id)
        if block is None or not block.pending:
            return None
        block.state = "decided"
        block.decision = decision
        self.changed = True
        return block

    def refresh_requests(self) -> None:
        """Reflect approvals answered or settled behind our back (a handler, a timeout)."""
        for block in self.pending_approvals:
            request = block.request
            if request is None:
                continue
            if request.response is not None:
                block.state = "decided"
                block.decision = _decision_from_response(request.response)
                if block.decision is None:
                    block.state = "resolved"
                self.changed = True
            elif request.settled:
                block.state = "resolved"
                self.changed = True

    def add_error(self, message: str, code: str = "", hint: str | None = None) -> None:
        """Show an error (once per message)."""
        for block in self._blocks.values():
            if isinstance(block, ErrorBlock) and block.message == message:
                return
        self.error = message
        self._add(
            ErrorBlock(
                self._next_id("error"),
                message=message,
                code=code,
                hint=hint if hint is not None else error_hint(code),
            )
        )

    def add_notice(self, text: str, tone: str = "info") -> None:
        self._add(NoticeBlock(self._next_id("notice"), text=text, tone=tone))

    def finalize(self) -> None:
        """The turn is over: every block final (streams rendered), pending approvals expired."""
        self.refresh_requests()
        retry = self._blocks.get("retry")
        if isinstance(retry, NoticeBlock) and not retry.final:
            times = f" {self._retries} times" if self._retries > 1 else ""
            retry.text = f"{self._retry_message} (retried{times})"
        for block in self._blocks.values():
            if not block.final or (isinstance(block, ApprovalBlock) and block.pending):
                block.finalize()
                self.changed = True
        if self._diff is not None and not self._diff.final:
            self._diff.finalize()
            self.changed = True

    # -- internals

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    def _add(self, block: Block, before: str | None = None) -> Block:
        """Append a block, or put it just before block ``before`` when that exists."""
        if before in self._blocks and block.id not in self._blocks:
            blocks = list(self._blocks.items())
            at = next(i for i, (key, _) in enumerate(blocks) if key == before)
            blocks.insert(at, (block.id, block))
            self._blocks = dict(blocks)
        else:
            self._blocks[block.id] = block
        self.changed = True
        return block

    def _apply(self, event: Notification) -> None:
        if isinstance(event, ServerRequest):
            self._on_request(event)
            return
        method = event.method
        params = event.params_dict
        handler = _HANDLERS.get(method)
        if handler is not None:
            handler(self, params)
        elif isinstance(params.get("item"), dict):
            self._unsupported(params["item"])

    def _on_request(self, request: ServerRequest) -> None:
        params = request.params_dict
        block_id = f"approval-{request.id}"
        if block_id in self._blocks:
            return
        if request.method not in APPROVAL_METHODS:
            self._add(
                LineBlock(
                    block_id,
                    icon="?",
                    label="request",
                    text=f"codex asked for {request.method} (not supported here; declined)",
                )
            )
            return
        block = ApprovalBlock(
            block_id,
            request_id=request.id,
            method=request.method,
            title=_APPROVAL_TITLES.get(request.method, "Allow this?"),
            reason=_str(params.get("reason")),
            cwd=_str(params.get("cwd")),
            decisions=_allowed_decisions(request.method, params),
            request=request,
        )
        if request.method == COMMAND_APPROVAL:
            block.command = display_command(_str(params.get("command")))
            item = self._blocks.get(_str(params.get("itemId")))
            if not block.command and isinstance(item, CommandBlock):
                block.command = item.display_command
            context = params.get("networkApprovalContext")
            if isinstance(context, dict) and context:
                block.details = "network access: " + ", ".join(
                    f"{k}={v}" for k, v in context.items() if isinstance(v, (str, int))
                )
        elif request.method == LEGACY_EXEC_APPROVAL:
            argv = params.get("command")
            if isinstance(argv, list):
                block.command = display_command(shlex.join(str(a) for a in argv))
        elif request.method == FILE_CHANGE_APPROVAL:
            item = self._blocks.get(_str(params.get("itemId")))
            paths = [f.path for f in item.files] if isinstance(item, FileChangeBlock) else []
            block.details = "\n".join(paths)
            root = _str(params.get("grantRoot"))
            if root:
                block.details = (block.details + "\n" if block.details else "") + (
                    f"write access under {root} for this session"
                )
        elif request.method == LEGACY_PATCH_APPROVAL:
            changes = params.get("fileChanges")
            if isinstance(changes, dict):
                block.details = "\n".join(str(path) for path in changes)
        elif request.method == PERMISSIONS_APPROVAL:
            block.details = _describe_permissions(params.get("permissions"))
        self._add(block, before=_str(params.get("itemId")) or None)  # asked before it ran

    def _unsupported(self, item: dict[str, Any]) -> None:
        item_type = _str(item.get("type")) or "?"
        item_id = _str(item.get("id")) or self._next_id("item")
        if item_id not in self._blocks:
            self._add(
                LineBlock(item_id, icon="·", label="unsupported item", text=item_type, final=True)
            )

    def _block(self, item_id: str, kind: type[_B], **fields: Any) -> _B:
        """The block for an item, created (with ``fields``) on first sight."""
        block = self._blocks.get(item_id)
        if not isinstance(block, kind):
            block = kind(item_id, **fields)
            self._add(block)
        return block

    def _message(self, item_id: str, role: str = "answer") -> MessageBlock:
        language = self.answer_language if role == "answer" else None
        return self._block(item_id, MessageBlock, role=role, language=language)

    def _reasoning(self, item_id: str) -> ReasoningBlock:
        return self._block(item_id, ReasoningBlock)

    def _command(self, item_id: str) -> CommandBlock:
        return self._block(item_id, CommandBlock)

    def _file_change(self, item_id: str) -> FileChangeBlock:
        return self._block(item_id, FileChangeBlock)

    # item/started and item/completed

    def _on_item(self, params: dict[str, Any], completed: bool) -> None:
        item = params.get("item")
        if not isinstance(item, dict):
            return
        item_type = _str(item.get("type"))
        item_id = _str(item.get("id")) or self._next_id(item_type or "item")
        if item_type == "userMessage":
            return  # the prompt is in the cell above
        if item_type == "agentMessage":
            role = "commentary" if item.get("phase") == "commentary" else "answer"
            block = self._message(item_id, role)
            if not block.final and block.role != role:
                block.role = role
                self.changed = True
            if completed and not block.final:
                block.final_text = _str(item.get("text"))
                block.finalize()
                self.changed = True
        elif item_type == "plan":
            block = self._message(item_id, "plan")
            if completed and not block.final:
                block.final_text = _str(item.get("text"))
                block.finalize()
                self.changed = True
        elif item_type == "reasoning":
            reasoning = self._reasoning(item_id)
            if completed and not reasoning.final:
                summary = item.get("summary")
                if isinstance(summary, list) and any(isinstance(s, str) for s in summary):
                    reasoning.final_text = "\n\n".join(s for s in summary if isinstance(s, str))
                reasoning.finalize()
                self.changed = True
        elif item_type == "commandExecution":
            command = self._command(item_id)
            if command.final:
                return
            if completed:
                command.complete(item)
            else:
                command.update(item)
            self.changed = True
        elif item_type == "fileChange":
            change = self._file_change(item_id)
            if change.final:
                return
            files = _file_diffs(item.get("changes"))
            if files:
                change.files = files
            change.status = _str(item.get("status")) or change.status
            if completed:
                change.finalize()
            self.changed = True
        else:
            line = _item_line(item_type, item, item_id)
            if line is None:
                self._unsupported(item)
                return
            line.final = completed
            existing = self._blocks.get(item_id)
            if existing is None or existing.trait() != line.trait():
                self._blocks[item_id] = line
                self.changed = True

    def _on_item_started(self, params: dict[str, Any]) -> None:
        self._on_item(params, completed=False)

    def _on_item_completed(self, params: dict[str, Any]) -> None:
        self._on_item(params, completed=True)

    # streaming deltas

    def _on_agent_delta(self, params: dict[str, Any]) -> None:
        block = self._message(_str(params.get("itemId")) or "message")
        if not block.final:
            block.text_stream.append(_str(params.get("delta")))

    def _on_plan_delta(self, params: dict[str, Any]) -> None:
        block = self._message(_str(params.get("itemId")) or "plan-item", "plan")
        if not block.final:
            block.text_stream.append(_str(params.get("delta")))

    def _on_summary_delta(self, params: dict[str, Any]) -> None:
        block = self._reasoning(_str(params.get("itemId")) or "reasoning")
        if not block.final:
            block.text_stream.append(_str(params.get("delta")))

    def _on_summary_part(self, params: dict[str, Any]) -> None:
        block = self._reasoning(_str(params.get("itemId")) or "reasoning")
        if not block.final and block.text_stream.length:
            block.text_stream.append("\n\n")

    def _on_output_delta(self, params: dict[str, Any]) -> None:
        block = self._command(_str(params.get("itemId")) or "command")
        if not block.final:
            block.append_output(_str(params.get("delta")))

    def _on_file_output_delta(self, params: dict[str, Any]) -> None:
        block = self._file_change(_str(params.get("itemId")) or "file-change")
        if not block.final:
            block.output.append(strip_ansi(_str(params.get("delta"))))

    def _on_patch_updated(self, params: dict[str, Any]) -> None:
        block = self._file_change(_str(params.get("itemId")) or "file-change")
        files = _file_diffs(params.get("changes"))
        if files and not block.final:
            block.files = files
            self.changed = True

    def _on_mcp_progress(self, params: dict[str, Any]) -> None:
        block = self._blocks.get(_str(params.get("itemId")))
        if isinstance(block, LineBlock) and not block.final:
            block.detail = _str(params.get("message"))
            self.changed = True

    def _on_review(self, params: dict[str, Any]) -> None:
        review_id = _str(params.get("reviewId")) or self._next_id("review")
        review = _dict(params.get("review"))
        action = _dict(params.get("action"))
        status = _str(review.get("status")) or "inProgress"
        subject = _str(action.get("command")) or _str(action.get("type")) or "an action"
        block = self._reviews.get(review_id)
        if block is None:
            block = LineBlock(self._next_id("review"), icon="⚖", label="auto-review")
            self._reviews[review_id] = block
            self._add(block)
        block.text = display_command(subject)
        block.status = status
        block.detail = _str(review.get("rationale"))
        self.changed = True

    # turn-level

    def _on_turn_started(self, params: dict[str, Any]) -> None:
        pass  # the view moves its status to "running" on any event

    def _on_turn_completed(self, params: dict[str, Any]) -> None:
        turn = params.get("turn")
        if not isinstance(turn, dict):
            return
        status = turn.get("status")
        if isinstance(status, str):
            self.status = status
        duration = turn.get("durationMs")
        if isinstance(duration, int):
            self.duration_ms = duration
        error = turn.get("error")
        if isinstance(error, dict) and error.get("message"):
            self.add_error(str(error["message"]), error_code(error.get("codexErrorInfo")))
        self.finalize()
        self.changed = True

    def _on_plan_updated(self, params: dict[str, Any]) -> None:
        block = self._blocks.get("plan")
        if not isinstance(block, PlanBlock):
            block = PlanBlock("plan")
            self._add(block)
        block.explanation = _str(params.get("explanation"))
        steps = params.get("plan")
        block.steps = [
            {"step": _str(s.get("step")), "status": _str(s.get("status")) or "pending"}
            for s in (steps if isinstance(steps, list) else [])
            if isinstance(s, dict)
        ]
        self.changed = True

    def _on_diff_updated(self, params: dict[str, Any]) -> None:
        if self._diff is None:
            self._diff = DiffBlock("turn-diff")
        diff = _str(params.get("diff"))
        if diff != self._diff.diff:
            self._diff.diff = diff
            self.changed = True

    def _on_token_usage(self, params: dict[str, Any]) -> None:
        usage = params.get("tokenUsage")
        if isinstance(usage, dict):
            last = Usage.from_wire(usage.get("last"))
            self.usage = last if self.usage is None else self.usage + last
            self.changed = True

    def _on_resolved(self, params: dict[str, Any]) -> None:
        block = self.approval(params.get("requestId"))
        if block is not None and block.pending:
            if block.request is not None and block.request.response is not None:
                block.decision = _decision_from_response(block.request.response)
                block.state = "decided" if block.decision else "resolved"
            else:
                block.state = "resolved"
            self.changed = True

    def _on_error(self, params: dict[str, Any]) -> None:
        error = _dict(params.get("error"))
        message = _str(error.get("message")) or "unknown error"
        code = error_code(error.get("codexErrorInfo"))
        if params.get("willRetry"):  # transient: one notice, updated in place
            self._retries += 1
            self._retry_message = message
            attempt = f" (attempt {self._retries})" if self._retries > 1 else ""
            self._blocks["retry"] = NoticeBlock(
                "retry", text=f"{message} — retrying{attempt}", tone="warn"
            )
            self.changed = True
        else:
            self.add_error(message, code)

    def _on_warning(self, params: dict[str, Any]) -> None:
        message = _str(params.get("message"))
        if message:
            self.add_notice(message)

    def _on_rerouted(self, params: dict[str, Any]) -> None:
        to_model = _str(params.get("toModel"))
        self.rerouted_to = to_model or None
        self.add_notice(f"Model switched from {_str(params.get('fromModel'))} to {to_model}.")

    def _ignore(self, params: dict[str, Any]) -> None:
        pass


_Handler = Callable[[TranscriptModel, dict[str, Any]], None]
_HANDLERS: dict[str, _Handler] = {
    "item/started": TranscriptModel._on_item_started,
    "item/completed": TranscriptModel._on_item_completed,
    "item/agentMessage/delta": TranscriptModel._on_agent_delta,
    "item/plan/delta": TranscriptModel._on_plan_delta,
    "item/reasoning/summaryTextDelta": TranscriptModel._on_summary_delta,
    "item/reasoning/summaryPartAdded": TranscriptModel._on_summary_part,
    "item/reasoning/textDelta": TranscriptModel._ignore,  # raw reasoning is not shown
    "item/commandExecution/outputDelta": TranscriptModel._on_output_delta,
    "item/commandExecution/terminalInteraction": TranscriptModel._ignore,
    "item/fileChange/outputDelta": TranscriptModel._on_file_output_delta,
    "item/fileChange/patchUpdated": TranscriptModel._on_patch_updated,
    "item/mcpToolCall/progress": TranscriptModel._on_mcp_progress,
    "item/autoApprovalReview/started": TranscriptModel._on_review,
    "item/autoApprovalReview/completed": TranscriptModel._on_review,
    "turn/started": TranscriptModel._on_turn_started,
    "turn/completed": TranscriptModel._on_turn_completed,
    "turn/plan/updated": TranscriptModel._on_plan_updated,
    "turn/diff/updated": TranscriptModel._on_diff_updated,
    "thread/tokenUsage/updated": TranscriptModel._on_token_usage,
    "serverRequest/resolved": TranscriptModel._on_resolved,
    "error": TranscriptModel._on_error,
    "warning": TranscriptModel._on_warning,
    "model/rerouted": TranscriptModel._on_rerouted,
}
#: Notifications this module understands (anything else that carries an item is
#: shown as "unsupported item"; anything else is ignored).
KNOWN_METHODS = frozenset(_HANDLERS)


def _allowed_decisions(method: str, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The buttons to offer: what ``availableDecisions`` allows, else the method's usual set."""
    available = params.get("availableDecisions")
    if isinstance(available, list):
        offered = tuple(d for d in DECISIONS if d in available)
        if offered:
            return offered
    if method == PERMISSIONS_APPROVAL:
        return ("accept", "acceptForSession", "decline")
    return DECISIONS


def _decision_from_response(response: Mapping[str, Any]) -> str | None:
    """Which decision an answer carried (None for an error answer or an unknown shape)."""
    result = response.get("result")
    if not isinstance(result, dict):
        return None
    decision = result.get("decision")
    if isinstance(decision, str):
        return _LEGACY_TO_DECISION.get(decision, decision if decision in DECISIONS else None)
    if isinstance(decision, dict):  # e.g. acceptWithExecpolicyAmendment
        return "acceptForSession" if "applyNetworkPolicyAmendment" in decision else "accept"
    if "permissions" in result:
        if not result["permissions"]:
            return "decline"
        return "acceptForSession" if result.get("scope") == "session" else "accept"
    return None


def _describe_permissions(permissions: Any) -> str:
    if not isinstance(permissions, dict) or not permissions:
        return ""
    lines = []
    for key, value in permissions.items():
        if value in (None, False, [], {}):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, False))
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _item_line(item_type: str, item: dict[str, Any], item_id: str) -> LineBlock | None:
    """A compact line for the known items that are not messages, commands or file changes."""
    status = _str(item.get("status"))
    if item_type == "webSearch":
        action = _dict(item.get("action"))
        text = _str(item.get("query"))
        if action.get("type") == "openPage":
            return LineBlock(
                item_id, icon="🌐", label="opened", text=_str(action.get("url")) or text
            )
        if action.get("type") == "findInPage":
            text = f"{_str(action.get('pattern'))} in {_str(action.get('url'))}"
            return LineBlock(item_id, icon="🔎", label="searched page", text=text)
        return LineBlock(item_id, icon="🔎", label="searched the web", text=text)
    if item_type == "mcpToolCall":
        error = item.get("error")
        detail = _str(error.get("message")) if isinstance(error, dict) else ""
        return LineBlock(
            item_id,
            icon="🔧",
            label="tool",
            text=f"{_str(item.get('server'))}.{_str(item.get('tool'))}",
            status=status,
            detail=detail,
        )
    if item_type == "dynamicToolCall":
        return LineBlock(
            item_id, icon="🔧", label="tool", text=_str(item.get("tool")), status=status
        )
    if item_type == "collabAgentToolCall":
        return LineBlock(
            item_id, icon="🤝", label="agent", text=_str(item.get("tool")), status=status
        )
    if item_type == "subAgentActivity":
        return LineBlock(
            item_id,
            icon="🤝",
            label=f"sub-agent {_str(item.get('kind'))}".strip(),
            text=_str(item.get("agentPath")),
        )
    if item_type == "imageView":
        return LineBlock(item_id, icon="🖼", label="viewed image", text=_str(item.get("path")))
    if item_type == "imageGeneration":
        text = _str(item.get("savedPath")) or _str(item.get("revisedPrompt"))
        return LineBlock(item_id, icon="🖼", label="generated image", text=text, status=status)
    if item_type == "contextCompaction":
        return LineBlock(item_id, icon="⇲", label="context compacted")
    if item_type == "enteredReviewMode":
        return LineBlock(item_id, icon="⚖", label="review started", text=_str(item.get("review")))
    if item_type == "exitedReviewMode":
        return LineBlock(item_id, icon="⚖", label="review finished")
    if item_type == "sleep":
        duration = item.get("durationMs")
        seconds = f"{duration / 1000:g} s" if isinstance(duration, int) else ""
        return LineBlock(item_id, icon="⏸", label="waited", text=seconds)
    if item_type == "hookPrompt":
        return LineBlock(item_id, icon="↪", label="hook prompt")
    if item_type == "functionCallOutput":
        return LineBlock(item_id, icon="🔧", label="tool output", text=_str(item.get("name")))
    return None


# --------------------------------------------------------------------------- static rendering

_E = html.escape


def _fmt_duration(ms: float | None) -> str:
    if ms is None or ms < 0:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _header_parts(model: TranscriptModel, header: Mapping[str, Any]) -> dict[str, str]:
    status = _str(header.get("status")) or model.status or ""
    started, ended = header.get("started_at"), header.get("ended_at")
    duration = ""
    if isinstance(started, (int, float)) and isinstance(ended, (int, float)):
        duration = _fmt_duration(ended - started)
    elif model.duration_ms is not None:
        duration = _fmt_duration(model.duration_ms)
    tokens = ""
    usage = model.usage
    total = header.get("tokens")
    if isinstance(total, dict):
        total = total.get("total")
    if isinstance(total, int) and total:
        tokens = f"{total:,} tokens"
    elif usage is not None and usage.total_tokens:
        tokens = f"{usage.total_tokens:,} tokens"
    return {
        "thread": _str(header.get("thread")) or "main",
        "status": status,
        "detail": _str(header.get("detail")),
        "duration": duration,
        "tokens": tokens,
        "model": _str(header.get("model")),
        "demo": "demo model" if header.get("demo") else "",
        "notice": _str(header.get("notice")),
    }


# Inline styles only: GitHub and nbviewer drop <style> and classes.  Colours are
# translucent or theme variables with fallbacks, so light and dark both read.
_BORDER = "rgba(127,127,127,.35)"
_SUBTLE = "rgba(127,127,127,.10)"
_MONO = "var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace)"
_OK = "var(--jp-success-color1, #2da44e)"
_WARN = "var(--jp-warn-color1, #bf8700)"
_ERR = "var(--jp-error-color1, #d1242f)"
_STATUS_COLORS = {
    "completed": _OK,
    "interrupted": _WARN,
    "failed": _ERR,
    "error": _ERR,
    "waiting for approval": _WARN,
}
_S_CARD = (
    f"border:1px solid {_BORDER};border-radius:8px;margin:4px 0;overflow:hidden;"
    "font-family:var(--jp-ui-font-family, system-ui, -apple-system, 'Segoe UI', sans-serif);"
    "font-size:13px;line-height:1.5"
)
_S_HEAD = f"padding:6px 12px;border-bottom:1px solid {_BORDER};background:{_SUBTLE};font-size:12px"
_S_BODY = "padding:6px 12px"
_S_MUTED = "opacity:.72"
_S_PRE = (
    f"margin:4px 0;padding:8px 10px;background:{_SUBTLE};border-radius:6px;overflow-x:auto;"
    f"font-family:{_MONO};font-size:12px;line-height:1.45;white-space:pre-wrap;"
    "word-break:break-word;max-height:none"
)
_S_CODE = f"background:{_SUBTLE};padding:0 3px;border-radius:3px"  # <code> is monospace already
_S_SUMMARY = "cursor:pointer;padding:2px 0"
_S_ROW = "margin:6px 0"
_S_QUOTE = "margin:6px 0;padding:6px 10px;border-left:3px solid {color};background:{bg}"
_S_BADGE = (
    "display:inline-block;padding:0 6px;border-radius:9px;border:1px solid {color};color:{color};"
    "font-size:11px;line-height:16px"
)
_DIFF_ADD = "background:rgba(46,160,67,.18);display:block"
_DIFF_DEL = "background:rgba(248,81,73,.18);display:block"
_DIFF_HUNK = "background:rgba(56,139,253,.14);display:block;opacity:.85"
_DIFF_META = "display:block;opacity:.65"
_COMMAND_ICONS = {
    "completed": "✓",
    "failed": "✗",
    "declined": "⊘",
    "inProgress": "…",
    "incomplete": "…",
}
_STEP_ICONS = {"completed": "✓", "inProgress": "▸", "pending": "○"}

_STATIC_STYLE_PROPS = {
    "background", "border", "border-bottom", "border-left", "border-radius", "color", "cursor",
    "display", "font-family", "font-size", "font-weight", "line-height", "margin", "max-height",
    "opacity", "overflow", "overflow-x", "padding", "text-align", "text-decoration",
    "white-space", "word-break", "border-collapse", "list-style", "padding-left",
}  # fmt: skip
_static_cleaner = nh3.Cleaner(
    tags=_MD_TAGS | {"details", "summary"},
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes={**_MD_ATTRS, "*": {"style", "title"}},
    url_schemes=_URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    filter_style_properties=_STATIC_STYLE_PROPS,
)


def _style_markdown(fragment: str) -> str:
    """Inline styles for sanitized markdown HTML (pre, code, tables, quotes)."""
    fragment = fragment.replace("<p>", '<p style="margin:6px 0">')
    fragment = fragment.replace("<pre>", f'<pre style="{_S_PRE}">')
    fragment = re.sub(r"<code>", f'<code style="{_S_CODE}">', fragment)
    fragment = fragment.replace(
        f'<pre style="{_S_PRE}"><code style="{_S_CODE}">',
        f'<pre style="{_S_PRE}"><code>',
    )
    fragment = fragment.replace("<table>", '<table style="border-collapse:collapse;margin:6px 0">')
    cell = f"border:1px solid {_BORDER};padding:3px 8px;text-align:left"

    def style_cell(match: re.Match[str]) -> str:
        extra = match.group(3) or ""
        return f'<{match.group(1)} style="{cell};{extra}"'

    fragment = re.sub(r'<(td|th)(?=[\s>])( style="([^"]*)")?', style_cell, fragment)
    fragment = fragment.replace("<a ", '<a style="color:var(--jp-content-link-color, #0969da)" ')
    return fragment.replace(
        "<blockquote>",
        f'<blockquote style="margin:6px 0;padding:0 10px;border-left:3px solid {_BORDER}">',
    )


def _diff_html(diff: str) -> str:
    lines = []
    for line in diff.split("\n"):
        if line.startswith("+") and not line.startswith("+++"):
            style = _DIFF_ADD
        elif line.startswith("-") and not line.startswith("---"):
            style = _DIFF_DEL
        elif line.startswith("@@"):
            style = _DIFF_HUNK
        elif line.startswith(("diff ", "index ", "+++", "---")):
            style = _DIFF_META
        else:
            style = "display:block"
        lines.append(f'<span style="{style}">{_E(line) or " "}</span>')
    return f'<pre style="{_S_PRE};white-space:pre">' + "".join(lines) + "</pre>"


def _hidden_note(hidden: int) -> str:
    if not hidden:
        return ""
    return f'<div style="{_S_MUTED};font-size:11px">… {hidden:,} earlier lines hidden</div>'


def _block_html(block: Block, model: TranscriptModel) -> str:
    if isinstance(block, MessageBlock):
        body = _style_markdown(block.html or render_markdown(block.source))
        if block.role == "plan":
            return (
                f'<div style="{_S_ROW}"><div style="{_S_MUTED};font-size:12px">Proposed plan</div>'
                f"{body}</div>"
            )
        style = _S_ROW + (";" + _S_MUTED if block.role == "commentary" else "")
        return f'<div style="{style}">{body}</div>'
    if isinstance(block, ReasoningBlock):
        title = _reasoning_title(block.text) or "Reasoning"
        body = _style_markdown(block.html or render_markdown(block.source))
        return (
            f'<details style="{_S_ROW};{_S_MUTED}"><summary style="{_S_SUMMARY}">💭 '
            f"{_E(title)}</summary>{body}</details>"
        )
    if isinstance(block, CommandBlock):
        text, _base, hidden = block.output.shown()
        icon = _COMMAND_ICONS.get(block.status, "•")
        meta = []
        if block.exit_code is not None:
            meta.append(f"exit {block.exit_code}")
        elif block.status not in ("completed", "inProgress"):
            meta.append(block.status)
        if block.duration_ms is not None:
            meta.append(_fmt_duration(block.duration_ms))
        color = _STATUS_COLORS["failed"] if block.status in ("failed", "declined") else ""
        if block.exit_code not in (None, 0):
            color = _STATUS_COLORS["failed"]
        meta_html = (
            f' <span style="{_S_MUTED};font-size:12px{";color:" + color if color else ""}">'
            f"{_E(' · '.join(meta))}</span>"
            if meta
            else ""
        )
        summary = (
            f'<summary style="{_S_SUMMARY}">{icon} <code style="{_S_CODE}" '
            f'title="{_E(block.command)}">$ {_E(block.display_command)}</code>{meta_html}</summary>'
        )
        cwd = (
            f'<div style="{_S_MUTED};font-size:11px">in {_E(block.cwd)}</div>' if block.cwd else ""
        )
        output = (
            f'{_hidden_note(hidden)}<pre style="{_S_PRE}">{_E(text)}</pre>'
            if text.strip()
            else f'<div style="{_S_MUTED};font-size:12px">(no output)</div>'
        )
        return f'<details style="{_S_ROW}">{summary}{cwd}{output}</details>'
    if isinstance(block, FileChangeBlock):
        rows = []
        verb = {"add": "Added", "delete": "Deleted"}
        for f in block.files:
            added, removed = f.counts()
            name = f.path + (f" → {f.move_path}" if f.move_path else "")
            counts = (
                f' <span style="color:{_OK}">+{added}</span> '
                f'<span style="color:{_ERR}">−{removed}</span>'
            )
            label = (
                f'📝 {verb.get(f.kind, "Edited")} <code style="{_S_CODE}">{_E(name)}</code>{counts}'
            )
            if block.status in ("declined", "failed"):
                label += f' <span style="{_S_MUTED}">({_E(block.status)})</span>'
            if model.has_diff:  # the turn diff below shows the lines once
                rows.append(f'<div style="{_S_ROW}">{label}</div>')
            else:
                diff, hidden = _cap_text(f.unified)
                rows.append(
                    f'<details style="{_S_ROW}"><summary style="{_S_SUMMARY}">{label}</summary>'
                    f"{_hidden_note(hidden)}{_diff_html(diff)}</details>"
                )
        return "".join(rows) or f'<div style="{_S_ROW}">📝 file change ({_E(block.status)})</div>'
    if isinstance(block, DiffBlock):
        trait = block.trait()
        files = ", ".join(f["path"] for f in trait["files"])
        return (
            f'<details style="{_S_ROW}"><summary style="{_S_SUMMARY}">Δ Changes in this turn: '
            f'{_E(files) or "diff"} <span style="color:{_OK}">+{trait["added"]}</span> '
            f'<span style="color:{_ERR}">−{trait["removed"]}</span></summary>'
            f"{_hidden_note(trait['hidden_lines'])}{_diff_html(trait['diff'])}</details>"
        )
    if isinstance(block, PlanBlock):
        items = "".join(
            f'<li style="list-style:none{";" + _S_MUTED if s["status"] == "completed" else ""}">'
            f"{_STEP_ICONS.get(s['status'], '○')} {_E(s['step'])}</li>"
            for s in block.steps
        )
        explanation = (
            f'<div style="{_S_MUTED}">{_E(block.explanation)}</div>' if block.explanation else ""
        )
        return (
            f'<div style="{_S_ROW}"><div style="font-weight:600;font-size:12px">Plan</div>'
            f'{explanation}<ul style="margin:2px 0;padding-left:8px">{items}</ul></div>'
        )
    if isinstance(block, ApprovalBlock):
        outcome = {
            "pending": "waiting for an answer",
            "decided": DECISION_LABELS.get(block.decision or "", block.decision or ""),
            "resolved": "answered elsewhere",
            "expired": "not answered (the turn ended)",
        }.get(block.state, block.state)
        parts = [f"<strong>⚠ {_E(block.title)}</strong>"]
        if block.command:
            parts.append(f'<pre style="{_S_PRE}">$ {_E(block.command)}</pre>')
        if block.details:
            parts.append(f'<pre style="{_S_PRE}">{_E(block.details)}</pre>')
        facts = []
        if block.reason:
            facts.append(_E(block.reason))
        if block.cwd:
            facts.append(f'in <code style="{_S_CODE}">{_E(block.cwd)}</code>')
        if facts:
            parts.append(f'<div style="{_S_MUTED}">{" · ".join(facts)}</div>')
        parts.append(f"<div>Decision: <strong>{_E(outcome)}</strong></div>")
        style = _S_QUOTE.format(color=_WARN, bg="rgba(191,135,0,.08)")
        return f'<blockquote style="{style}">{"".join(parts)}</blockquote>'
    if isinstance(block, ErrorBlock):
        style = _S_QUOTE.format(color=_ERR, bg="rgba(209,36,47,.08)")
        hint = f'<div style="{_S_MUTED}">{render_markdown(block.hint)}</div>' if block.hint else ""
        first, _, rest = block.message.strip().partition("\n")
        message = f"<strong>Error:</strong> {_E(first)}"
        if rest.strip():
            message += f'<pre style="{_S_PRE};max-height:none">{_E(rest.strip())}</pre>'
        return f'<blockquote style="{style}">{message}{hint}</blockquote>'
    if isinstance(block, NoticeBlock):
        return f'<div style="{_S_ROW};{_S_MUTED};font-size:12px">ℹ {_E(block.text)}</div>'
    if isinstance(block, LineBlock):
        status = f" ({_E(block.status)})" if block.status and block.status != "completed" else ""
        detail = f" — {_E(block.detail)}" if block.detail else ""
        text = f' <code style="{_S_CODE}">{_E(block.text)}</code>' if block.text else ""
        return (
            f'<div style="{_S_ROW};font-size:12px">{block.icon} '
            f'<span style="{_S_MUTED}">{_E(block.label)}</span>{text}{status}{detail}</div>'
        )
    return ""


def _static_html(model: TranscriptModel, head: dict[str, str]) -> str:
    color = _STATUS_COLORS.get(head["status"], "inherit")
    bits = [
        f"<strong>codex</strong> · <span>{_E(head['thread'])}</span>",
        f'<span style="color:{color};font-weight:600">● {_E(head["status"])}</span>'
        + (f' <span style="{_S_MUTED}">{_E(head["detail"])}</span>' if head["detail"] else ""),
    ]
    for key in ("duration", "tokens", "model"):
        if head[key]:
            bits.append(f'<span style="{_S_MUTED}">{_E(head[key])}</span>')
    if head["demo"]:
        bits.append(f'<span style="{_S_BADGE.format(color="#8250df")}">demo model</span>')
    header = f'<div style="{_S_HEAD}">{" · ".join(bits)}</div>'
    notice = (
        f'<div style="{_S_HEAD};{_S_MUTED}">ℹ {_E(head["notice"])}</div>' if head["notice"] else ""
    )
    body = "".join(_block_html(b, model) for b in model.blocks)
    if not body:
        body = f'<div style="{_S_MUTED}">(no output)</div>'
    fragment = f'<div style="{_S_CARD}">{header}{notice}<div style="{_S_BODY}">{body}</div></div>'
    return str(_static_cleaner.clean(fragment))


# -- markdown transcript

_FENCE_OPEN_RE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_AUTOLINK_RE = re.compile(r"<(?:https?://|mailto:)[^\s<>\"'`]*>")


def _escape_html_in_markdown(text: str) -> str:
    """Make raw HTML in model markdown inert: ``<`` outside code becomes ``&lt;``.

    A renderer that shows our text/markdown without sanitizing (a trusted
    output) must not run the model's HTML.  Code fences and code spans are
    left alone (their content is shown literally anyway); autolinks are kept.
    """
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is not None:
            out.append(line)
            stripped = line.strip()
            if (
                len(line) - len(line.lstrip(" ")) <= 3
                and stripped
                and set(stripped) == {fence[0]}
                and len(stripped) >= len(fence)
            ):
                fence = None
            continue
        match = _FENCE_OPEN_RE.match(line)
        if match and not (match.group(2)[0] == "`" and "`" in match.group(3)):
            fence = match.group(2)
            out.append(_escape_inline(line[: match.start(2)]) + line[match.start(2) :])
            continue
        out.append(_escape_inline(line))
    return "\n".join(out)


def _escape_inline(line: str) -> str:
    """Escape ``<`` in one line outside code spans (backslash-escaped backticks are text)."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        char = line[i]
        if char == "\\" and i + 1 < n:
            out.append(line[i : i + 2] if line[i + 1] != "<" else "\\&lt;")
            i += 2
            continue
        if char == "`":
            j = i
            while j < n and line[j] == "`":
                j += 1
            run = line[i:j]
            close = _find_run(line, run, j)
            if close == -1:
                out.append(run)
                i = j
                continue
            out.append(line[i : close + len(run)])
            i = close + len(run)
            continue
        if char == "<":
            match = _AUTOLINK_RE.match(line, i)
            if match:
                out.append(match.group(0))
                i = match.end()
                continue
            out.append("&lt;")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _find_run(line: str, run: str, start: int) -> int:
    """Index of the next backtick run of exactly ``len(run)`` at/after ``start``, or -1."""
    i = start
    while True:
        i = line.find(run, i)
        if i == -1:
            return -1
        j = i + len(run)
        if j < len(line) and line[j] == "`":
            while j < len(line) and line[j] == "`":
                j += 1
            i = j
            continue
        return i


def _fenced(text: str, info: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{fence}{info}\n{body}{fence}"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _md_inline_code(text: str) -> str:
    text = text.replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _block_markdown(block: Block, model: TranscriptModel) -> str:
    if isinstance(block, MessageBlock):
        if block.language:
            return block.source
        text = _escape_html_in_markdown(block.text.strip())
        if block.role == "plan":
            return "**Proposed plan**\n\n" + text
        return _quote(text) if block.role == "commentary" else text
    if isinstance(block, ReasoningBlock):
        return _quote("*Reasoning:* " + _escape_html_in_markdown(block.text.strip()))
    if isinstance(block, CommandBlock):
        text, _base, hidden = block.output.shown()
        meta = []
        if block.exit_code is not None:
            meta.append(f"exit code {block.exit_code}")
        elif block.status not in ("completed", "inProgress"):
            meta.append(block.status)
        if block.duration_ms is not None:
            meta.append(_fmt_duration(block.duration_ms))
        body = f"$ {block.display_command}\n"
        if hidden:
            body += f"… {hidden:,} earlier lines hidden\n"
        body += text
        return _fenced(body, "console") + (f"\n*{', '.join(meta)}*" if meta else "")
    if isinstance(block, FileChangeBlock):
        rows = []
        for f in block.files:
            added, removed = f.counts()
            status = f" ({block.status})" if block.status in ("declined", "failed") else ""
            rows.append(f"- {_md_inline_code(f.path)} +{added} −{removed}{status}")
            if not model.has_diff:
                rows.append("\n" + _fenced(_cap_text(f.unified)[0], "diff") + "\n")
        return "**Edited files**\n\n" + "\n".join(rows) if rows else ""
    if isinstance(block, DiffBlock):
        text, _hidden = _cap_text(block.diff)
        return "**Changes in this turn**\n\n" + _fenced(text, "diff")
    if isinstance(block, PlanBlock):
        marks = {"completed": "[x]", "inProgress": "[ ] ▸", "pending": "[ ]"}
        lines = ["**Plan**", ""]
        if block.explanation:
            lines += [block.explanation, ""]
        lines += [
            f"- {marks.get(s['status'], '[ ]')} {_escape_inline(s['step'])}" for s in block.steps
        ]
        return "\n".join(lines)
    if isinstance(block, ApprovalBlock):
        outcome = {
            "pending": "waiting for an answer",
            "decided": DECISION_LABELS.get(block.decision or "", block.decision or ""),
            "resolved": "answered elsewhere",
            "expired": "not answered (the turn ended)",
        }.get(block.state, block.state)
        lines = [f"**⚠ {block.title}**"]
        if block.command:
            lines.append(_md_inline_code(block.command))
        if block.details:
            lines.append(_escape_inline(block.details.replace("\n", "; ")))
        if block.reason:
            lines.append(_escape_inline(block.reason))
        lines.append(f"Decision: **{outcome}**")
        return _quote("  \n".join(lines))  # hard line breaks
    if isinstance(block, ErrorBlock):
        first, _, rest = block.message.strip().partition("\n")
        text = f"**Error:** {_escape_inline(first)}"
        if rest.strip():
            text += "\n\n" + _fenced(rest.strip())
        if block.hint:
            text += f"\n\n{block.hint}"
        return _quote(text)
    if isinstance(block, NoticeBlock):
        return "*" + _escape_inline(block.text) + "*"
    if isinstance(block, LineBlock):
        status = f" ({block.status})" if block.status and block.status != "completed" else ""
        text = f" {_md_inline_code(block.text)}" if block.text else ""
        return f"{block.icon} *{block.label}*{text}{status}"
    return ""


def _header_line(head: dict[str, str]) -> str:
    bits = [f"**codex** · thread `{head['thread']}` · **{head['status'] or 'unknown'}**"]
    if head["detail"]:
        bits.append(head["detail"])
    bits += [head[k] for k in ("duration", "tokens", "model", "demo") if head[k]]
    return " · ".join(bits)


def render_static(model: TranscriptModel, header: Mapping[str, Any]) -> dict[str, str]:
    """The turn as a self-contained mime bundle: ``text/html`` (inline styles,
    sanitized), ``text/markdown`` (a readable transcript) and ``text/plain``.

    ``header`` is the widget's header dict (thread, status, detail, started_at,
    ended_at, tokens, model, demo, notice); missing keys are fine.
    """
    head = _header_parts(model, header)
    parts = [_header_line(head)]
    if head["notice"]:
        parts.append(f"*{_escape_inline(head['notice'])}*")
    parts += [md for md in (_block_markdown(b, model) for b in model.blocks) if md]
    markdown = "\n\n".join(parts) + "\n"
    plain_head = f"codex [{head['thread']}] {head['status']}"
    extras = [head[k] for k in ("duration", "tokens", "demo") if head[k]]
    if extras:
        plain_head += " · " + " · ".join(extras)
    plain = [plain_head]
    if model.text:
        plain.append(model.text.strip())
    for block in model.blocks:
        if isinstance(block, ErrorBlock):
            plain.append(f"Error: {block.message}")
    return {
        "text/html": _static_html(model, head),
        "text/markdown": markdown,
        "text/plain": "\n\n".join(plain),
    }
