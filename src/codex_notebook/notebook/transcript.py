"""A turn's events folded into ordered blocks: the transcript model.

:class:`Transcript` keeps one mutable record per block (streams grow, commands
finish, approvals get decided) and hands out immutable views
(:mod:`.blocks`) — the one input of the live widget and the static
renderers.  It is pure and not thread-safe: its owner (the turn's view, under
its lock) is the only writer.

Besides server events it folds a few local events the notebook itself
produces (:class:`ToolAsked`, :class:`ToolDone`, :class:`CellProposed`), so
that what the kernel tools did shows in the same place, in order.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

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
from . import sanitize
from .blocks import (
    DECISION_BUTTONS,
    DECISIONS,
    ApprovalView,
    BlockView,
    CommandView,
    DecisionView,
    DiffView,
    ErrorView,
    FileChangeView,
    FileView,
    LineView,
    MessageView,
    NoticeView,
    PlanView,
    ProposalView,
    ReasoningView,
    StepView,
    ToolCallView,
)
from .text import (
    CAP_CHARS,
    AnsiStripper,
    TextStream,
    cap_text,
    reveal_invisible,
    strip_ansi,
    u16len,
)

__all__ = [
    "ApprovalDecided",
    "CellProposed",
    "ToolAsked",
    "ToolDone",
    "Transcript",
    "display_command",
    "error_code",
    "error_hint",
]

#: A character that makes a line not blank for markdown.
_NOT_BLANK_RE = re.compile(r"[^ \t\r\n]")

#: Streaming markdown is parsed at most this much at a time.  A first block longer than this
#: stays plain text in the tail until it may have ended (see ``_Markdown.advance``).
SEGMENT_TAIL_LIMIT = 16 * 1024

# --------------------------------------------------------------------------- local events


@dataclass(frozen=True)
class ToolAsked:
    """The kernel tools ask the person before running code (``run_python``)."""

    call_id: str
    key: Any  # what ``decide()`` answers: echoed back by the widget's buttons
    code: str


@dataclass(frozen=True)
class ApprovalDecided:
    """The person answered a kernel-tool approval (the outcome follows as :class:`ToolDone`)."""

    call_id: str
    decision: str


@dataclass(frozen=True)
class ToolDone:
    """A kernel tool finished: one line of outcome, the names code changed."""

    call_id: str
    success: bool
    outcome: str
    changed: tuple[str, ...] = ()
    decision: str | None = None  # for a tool that asked: accept / decline


@dataclass(frozen=True)
class CellProposed:
    """The agent proposed a cell (``propose_cell``)."""

    call_id: str
    number: int
    code: str
    explanation: str = ""


LocalEvent = ToolAsked | ApprovalDecided | ToolDone | CellProposed

# --------------------------------------------------------------------------- helpers


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
#: Decisions codex accepts for command approvals even where ``availableDecisions``
#: leaves them out (measured on 0.163.0: ``decline`` and ``acceptForSession`` work).
_ALWAYS_ACCEPTED = {
    COMMAND_APPROVAL: DECISIONS,
    FILE_CHANGE_APPROVAL: DECISIONS,
    PERMISSIONS_APPROVAL: ("accept", "acceptForSession", "decline"),
}
_CODE_BUTTONS = {
    "accept": ("Run", "Run this code in the kernel, in your namespace"),
    "decline": ("Decline", "Do not run it; the agent is told you declined"),
}


def allowed_decisions(method: str, params: Mapping[str, Any]) -> tuple[DecisionView, ...]:
    """Every decision the server really accepts for this request, the ones it
    listed in ``availableDecisions`` marked recommended."""
    listed = params.get("availableDecisions")
    listed_names = {d for d in listed if isinstance(d, str)} if isinstance(listed, list) else set()
    listed_names |= {next(iter(d)) for d in (listed or []) if isinstance(d, dict) and d}
    offered = _ALWAYS_ACCEPTED.get(method, DECISIONS)
    if method not in _ALWAYS_ACCEPTED and listed_names:
        offered = tuple(d for d in DECISIONS if d in listed_names) or DECISIONS
    return tuple(
        DecisionView(d, *DECISION_BUTTONS[d], recommended=d in listed_names) for d in offered
    )


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


def _diff_counts(diff: str) -> tuple[int, int]:
    added = removed = 0
    for line in diff.split("\n"):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def _unified(kind: str, diff: str) -> str:
    """A change as unified-diff lines (added / deleted files get +/- prefixes)."""
    if kind in ("add", "delete") and not diff.startswith(("@@", "---", "diff ")):
        sign = "+" if kind == "add" else "-"
        lines = diff.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return "\n".join(sign + line for line in lines)
    return diff


def _file_view(path: str, kind: str, move_path: str | None, diff: str) -> FileView:
    unified = _unified(kind, diff)
    added, removed = _diff_counts(unified)
    shown, hidden = cap_text(unified)
    move_path = reveal_invisible(move_path) if move_path else None
    return FileView(
        reveal_invisible(path), kind, move_path, added, removed, reveal_invisible(shown), hidden
    )


def _file_views(changes: Any) -> tuple[FileView, ...]:
    files: list[FileView] = []
    for change in changes if isinstance(changes, list) else []:
        if not isinstance(change, dict):
            continue
        kind_info = change.get("kind")
        kind, move_path = "update", None
        if isinstance(kind_info, dict):
            kind = _str(kind_info.get("type")) or "update"
            move_path = _str(kind_info.get("move_path")) or None
        elif isinstance(kind_info, str):
            kind = kind_info
        files.append(
            _file_view(_str(change.get("path")) or "?", kind, move_path, _str(change.get("diff")))
        )
    return tuple(files)


_DIFF_PATH_RE = re.compile(r"diff --git a/(.*?) b/(.*)$")


def split_unified_diff(diff: str) -> list[tuple[str, str]]:
    """A turn's aggregated ``git diff`` split per file: ``(path, diff)``."""
    files: list[tuple[str, str]] = []
    current: list[str] = []
    path = ""
    for line in diff.split("\n"):
        if line.startswith("diff --git "):
            if current:
                files.append((path or "?", "\n".join(current)))
            current = [line]
            match = _DIFF_PATH_RE.match(line)
            path = match.group(2) if match else line[11:]
            continue
        if line.startswith("+++ ") and line[4:] != "/dev/null":
            path = line[4:].removeprefix("b/")
        elif line.startswith("--- ") and not path and line[4:] != "/dev/null":
            path = line[4:].removeprefix("a/")
        current.append(line)
    if current:
        files.append((path or "?", "\n".join(current)))
    return files


_BOLD_TITLE_RE = re.compile(r"\*\*([^*\n]{1,120})\*\*")


def _reasoning_title(text: str) -> str:
    """The last bold heading of a reasoning summary (summaries start with one)."""
    titles = _BOLD_TITLE_RE.findall(text)
    return str(titles[-1]).strip() if titles else ""


def _summarize_arguments(arguments: Any) -> str:
    """A short, readable line for a tool call's arguments."""
    if not isinstance(arguments, dict) or not arguments:
        return ""
    parts = []
    for key, value in arguments.items():
        if key == "code":
            continue  # shown as code
        text = value if isinstance(value, str) else repr(value)
        text = " ".join(text.split())
        parts.append(f"{key}={text[:60] + '…' if len(text) > 60 else text}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- records


class _Memo:
    """``fn(text)`` for the last ``text`` it was given.

    Views are rebuilt at every flush that changed anything; code is highlighted (a reason
    rendered, a command unwrapped) again only when its text changed.  Owned by its record.
    """

    __slots__ = ("_fn", "_text", "_value")

    def __init__(self, fn: Callable[[str], str]) -> None:
        self._fn = fn
        self._text: str | None = None
        self._value = ""

    def __call__(self, text: str) -> str:
        if text != self._text:
            self._text, self._value = text, self._fn(text)
        return self._value


def _shown_command(command: str) -> str:
    return reveal_invisible(display_command(command))


class _Record:
    """One mutable block.  ``view()`` freezes it for the renderers."""

    def __init__(self, block_id: str) -> None:
        self.id = block_id
        self.final = False

    @property
    def stream(self) -> TextStream | None:
        """The text this block streams while it is not final (None if it does not stream)."""
        return None

    @property
    def visible(self) -> bool:
        return True

    def finalize(self) -> None:
        self.final = True

    def view(self) -> BlockView:
        raise NotImplementedError


class _Markdown(_Record):
    """Text that streams in and is shown as markdown block by block.

    ``segments`` are the sanitized HTML of the markdown blocks that are
    finished; ``committed`` (characters) / ``committed_u16`` where the
    unfinished tail starts.  ``sent_segments`` counts the segments the widget
    already has (it sends the rest as a ``commit``).
    """

    language: str | None = None  # code, not markdown: no segments until final

    def __init__(self, block_id: str) -> None:
        super().__init__(block_id)
        self.text_stream = TextStream()
        self.final_text: str | None = None
        self.segments: list[str] = []
        self.committed = 0
        self.committed_u16 = 0
        self.sent_segments = 0
        self.rewritten = False  # the final text does not continue the streamed one
        self.scanned = 0  # characters looked at for a new line (where a new block could start)
        # When the first unfinished block outgrew the window, what to wait for before parsing
        # the whole tail again: the line closing its fence (looked for from ``fence_from``),
        # the next new line once that closing line came (``fence_closed``), or the tail
        # reaching ``grown_to`` characters.  ``stuck`` is False when a window parse will do.
        self.stuck = False
        self.fence: re.Pattern[str] | None = None
        self.fence_from = 0
        self.fence_closed = False
        self.grown_to = 0

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
        """The markdown this block renders."""
        if self.language:
            return sanitize.md_fence(self.text.strip(), self.language)
        return self.text

    def advance(self) -> None:
        """Turn the finished markdown blocks of the streamed text into segments.

        A block can only finish when another starts, and blocks start on a new
        line: without a newline since the last look there is nothing to parse
        (a long single paragraph costs nothing per flush).  At most a window of
        ``SEGMENT_TAIL_LIMIT`` is parsed per look: any prefix of streamed text
        is a state the stream could have been in, so what is finished in the
        window is finished in the whole (:func:`.sanitize.split_finished_blocks`
        leaves out a last line that could still change that).  A first block
        longer than the window is parsed whole again only when it may have
        ended — its fence closed and a line after it is not blank, or the tail
        grew by half — so even a huge block costs linear time.
        """
        if self.final or self.language:
            return
        text = self.text_stream.text
        fresh = text.find("\n", self.scanned) >= 0
        self.scanned = len(text)
        if not fresh:
            return
        while True:
            rest = text[self.committed :]
            if self.stuck and not self._may_have_ended(text, rest):
                return
            window = rest if self.stuck else rest[:SEGMENT_TAIL_LIMIT]
            segments, offset = sanitize.split_finished_blocks(window)
            if not segments:
                if self.stuck or len(window) < len(rest):
                    self._stick(text, rest)
                return
            self.stuck = self.fence_closed = False
            self.segments.extend(segments)
            self.committed += offset
            self.committed_u16 += u16len(rest[:offset])
            if len(window) == len(rest):
                return

    def _stick(self, text: str, rest: str) -> None:
        """The first block is longer than the window: wait for a sign it ended."""
        self.stuck = True
        self.grown_to = len(rest) + max(SEGMENT_TAIL_LIMIT, len(rest) // 2)
        if self.fence_closed:
            if _NOT_BLANK_RE.search(text, self.fence_from, text.rfind("\n") + 1) is None:
                return  # only blank lines after the fence yet: the next block starts later
            # a complete line after the closing one, yet one block: not the fence's end after all
            self.fence, self.fence_closed = None, False
            return
        self.fence = sanitize.fence_closing(rest)
        self.fence_from = self.committed + rest.find("\n") + 1 if self.fence else 0
        if self.fence is not None:
            self.fence_closed = self._fence_closes(text)

    def _may_have_ended(self, text: str, rest: str) -> bool:
        if len(rest) >= self.grown_to:
            return True
        if self.fence is None:
            return False
        if not self.fence_closed:
            self.fence_closed = self._fence_closes(text)
        return self.fence_closed and self._next_block_started(text)

    def _fence_closes(self, text: str) -> bool:
        """Whether a complete line since ``fence_from`` closes the fence (each line is
        looked at once); once it did, ``fence_from`` is where that line ends."""
        assert self.fence is not None
        end = text.rfind("\n") + 1
        if end <= self.fence_from:
            return False
        closing = self.fence.search(text, self.fence_from, end)
        self.fence_from = end if closing is None else closing.end()
        return closing is not None

    def _next_block_started(self, text: str) -> bool:
        """Whether a complete line after the closing one is not blank (blank lines are
        looked at once)."""
        end = text.rfind("\n") + 1
        if _NOT_BLANK_RE.search(text, self.fence_from, end) is not None:
            return True
        self.fence_from = max(self.fence_from, end)
        return False

    def finalize(self) -> None:
        if self.final:
            return
        self.final = True
        text = self.text
        streamed = self.text_stream.text
        # views only add to what streamed: one that showed text the final one lacks (a
        # different or shorter text) must build the block again
        self.rewritten = not text.startswith(streamed)
        if self.language or not text.startswith(streamed[: self.committed]):
            # a different final text, or code: render it whole (the widget rebuilds the block)
            self.segments = [sanitize.markdown_html(self.source)] if text.strip() else []
            self.sent_segments = 0
            self.committed = len(text)
            self.committed_u16 = u16len(text)
            return
        rest = text[self.committed :]
        if rest.strip():
            self.segments.append(sanitize.markdown_html(rest))
        self.committed = len(text)
        self.committed_u16 = u16len(text)

    def _tail(self) -> str:
        return "" if self.final else self.text_stream.text[self.committed :]


class _Message(_Markdown):
    def __init__(self, block_id: str, role: str, language: str | None) -> None:
        super().__init__(block_id)
        self.role = role
        self.language = language

    def view(self) -> MessageView:
        return MessageView(
            self.id,
            self.final,
            role=self.role,
            language=self.language,
            html_segments=tuple(self.segments),
            committed=self.committed_u16,
            tail=self._tail(),
            rewritten=self.rewritten,
            text=self.text,
        )


class _Reasoning(_Markdown):
    def view(self) -> ReasoningView:
        return ReasoningView(
            self.id,
            self.final,
            title=_reasoning_title(self.text),
            html_segments=tuple(self.segments),
            committed=self.committed_u16,
            tail=self._tail(),
            rewritten=self.rewritten,
            text=self.text,
        )


class _Command(_Record):
    def __init__(self, block_id: str) -> None:
        super().__init__(block_id)
        self.command = ""
        self.cwd = ""
        self.status = "inProgress"
        self.exit_code: int | None = None
        self.duration_ms: int | None = None
        self.output = TextStream(cap=CAP_CHARS)
        self._stripper = AnsiStripper()
        self._shown = _Memo(_shown_command)
        self._full = _Memo(reveal_invisible)

    @property
    def stream(self) -> TextStream | None:
        return None if self.final else self.output

    def append_output(self, chunk: str) -> None:
        self.output.append(self._stripper.feed(chunk))

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

    def complete(self, item: Mapping[str, Any]) -> None:
        self.update(item)
        aggregated = item.get("aggregatedOutput")
        if isinstance(aggregated, str):  # the server's copy is authoritative
            self.output = TextStream(cap=CAP_CHARS)
            self.output.append(strip_ansi(aggregated))
            self._stripper = AnsiStripper()
        self.finalize()

    def finalize(self) -> None:
        if not self.final:
            self.output.append(self._stripper.flush())
            if self.status == "inProgress":
                self.status = "incomplete"
            self.final = True

    def view(self) -> CommandView:
        text, base, hidden = self.output.shown()
        return CommandView(
            self.id,
            self.final,
            command=self._shown(self.command),
            full_command=self._full(self.command),
            cwd=reveal_invisible(self.cwd),
            status=self.status,
            exit_code=self.exit_code,
            duration_ms=self.duration_ms,
            text=text,
            base=base,
            hidden_lines=hidden,
        )


class _FileChange(_Record):
    def __init__(self, block_id: str, transcript: Transcript) -> None:
        super().__init__(block_id)
        self.status = "inProgress"
        self.files: tuple[FileView, ...] = ()
        self.output = TextStream(cap=CAP_CHARS)
        self._transcript = transcript

    @property
    def stream(self) -> TextStream | None:
        return None if self.final else self.output

    def finalize(self) -> None:
        if not self.final:
            if self.status == "inProgress":
                self.status = "incomplete"
            self.final = True

    def view(self) -> FileChangeView:
        text, base, hidden = self.output.shown()
        return FileChangeView(
            self.id,
            self.final,
            status=self.status,
            files=self.files,
            show_diffs=not self._transcript.has_diff,
            text=text,
            base=base,
            hidden_lines=hidden,
        )


class _Diff(_Record):
    def __init__(self) -> None:
        super().__init__("turn-diff")
        self.diff = ""
        self._view: tuple[str, bool, DiffView] | None = None  # made for (diff, final)

    @property
    def visible(self) -> bool:
        return bool(self.diff.strip())

    def view(self) -> DiffView:
        if self._view is None or self._view[:2] != (self.diff, self.final):
            self._view = (self.diff, self.final, self._make_view())
        return self._view[2]

    def _make_view(self) -> DiffView:
        text, hidden = cap_text(self.diff)
        added, removed = _diff_counts(self.diff)
        files = tuple(
            FileView(reveal_invisible(path), added=a, removed=r)
            for path, diff in split_unified_diff(self.diff)
            for a, r in [_diff_counts(diff)]
        )
        return DiffView(
            self.id,
            self.final,
            files=files,
            added=added,
            removed=removed,
            diff=reveal_invisible(text),
            hidden_lines=hidden,
        )


class _Plan(_Record):
    def __init__(self) -> None:
        super().__init__("plan")
        self.explanation = ""
        self.steps: tuple[StepView, ...] = ()

    def view(self) -> PlanView:
        return PlanView(self.id, self.final, explanation=self.explanation, steps=self.steps)


class _Approval(_Record):
    """A request for permission; ``state``: pending / decided / resolved / expired."""

    def __init__(self, block_id: str, key: Any, request: ServerRequest | None = None) -> None:
        super().__init__(block_id)
        self.key = key
        self.request = request
        self.method = request.method if request is not None else ""
        self.title = ""
        self.reason = ""
        self.command = ""
        self.language = ""
        self.cwd = ""
        self.details = ""
        self.decisions: tuple[DecisionView, ...] = ()
        self.state = "pending"
        self.decision: str | None = None
        self._reason_html = _Memo(sanitize.inline_markdown_html)
        self._code_html = _Memo(sanitize.highlight_python)

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    def finalize(self) -> None:
        if self.state == "pending":
            self.state = "expired"
        self.final = True

    def view(self) -> ApprovalView:
        return ApprovalView(
            self.id,
            self.final,
            request=self.key,
            method=self.method,
            title=self.title,
            reason=self.reason,
            reason_html=self._reason_html(self.reason) if self.reason else "",
            command=reveal_invisible(self.command),
            language=self.language,
            code_html=self._code_html(self.command) if self.language else "",
            cwd=reveal_invisible(self.cwd),
            details=reveal_invisible(self.details),
            decisions=self.decisions,
            state=self.state,
            decision=self.decision,
        )


class _ToolCall(_Record):
    def __init__(self, block_id: str) -> None:
        super().__init__(block_id)
        self.namespace = ""
        self.tool = ""
        self.arguments = ""
        self.code = ""
        self.status = "inProgress"
        self.outcome = ""
        self.duration_ms: int | None = None
        self.changed: tuple[str, ...] = ()
        self._code_html = _Memo(sanitize.highlight_python)

    def finalize(self) -> None:
        if not self.final:
            if self.status == "inProgress":
                self.status = "incomplete"
            self.final = True

    def view(self) -> ToolCallView:
        return ToolCallView(
            self.id,
            self.final,
            namespace=self.namespace,
            tool=self.tool,
            arguments=reveal_invisible(self.arguments),
            status=self.status,
            outcome=self.outcome,
            duration_ms=self.duration_ms,
            code=reveal_invisible(self.code),
            code_html=self._code_html(self.code) if self.code else "",
            changed=tuple(reveal_invisible(name) for name in self.changed),
        )


class _Proposal(_Record):
    def __init__(self, block_id: str, number: int, code: str, explanation: str) -> None:
        super().__init__(block_id)
        self.final = True
        self._view = ProposalView(  # it never changes: rendered once
            self.id,
            True,
            number=number,
            code=code,
            code_html=sanitize.highlight_python(code),
            explanation=explanation,
            explanation_html=sanitize.inline_markdown_html(explanation),
        )

    def view(self) -> ProposalView:
        return self._view


class _Static(_Record):
    """A block whose view never changes once made (errors, notices, lines)."""

    def __init__(self, view: BlockView) -> None:
        super().__init__(view.id)
        self._view = view
        self.final = view.final

    def view(self) -> BlockView:
        return self._view

    def replace(self, view: BlockView) -> None:
        self._view = view


_R = TypeVar("_R", bound=_Record)


# --------------------------------------------------------------------------- the fold


class Transcript:
    """A turn's events folded into ordered blocks.  Not thread-safe: guard it.

    ``changed`` is set whenever something other than streamed text changed (a
    block appeared, finished, or changed state); the widget resets it when it
    publishes.  Streamed text is tracked per block in :class:`TextStream`.
    """

    def __init__(self, *, answer_language: str | None = None) -> None:
        self._records: dict[str, _Record] = {}
        self._diff: _Diff | None = None
        self._seq = 0
        self._reviews: dict[str, str] = {}  # review id -> block id
        self._retries = 0
        self._retry_message = ""
        self.answer_language = answer_language  # "json" for structured output
        self.usage: Usage | None = None
        self.status: str | None = None  # completed / interrupted / failed, from turn/completed
        self.error: str | None = None
        self.duration_ms: int | None = None
        self.rerouted_to: str | None = None
        self.changed = True

    # -- reading

    def _visible(self) -> list[_Record]:
        records = [r for r in self._records.values() if r.visible]
        if self._diff is not None and self._diff.visible:
            records.append(self._diff)
        return records

    def views(self) -> list[BlockView]:
        """Visible blocks in order of first appearance (the turn diff last)."""
        return [record.view() for record in self._visible()]

    def streams(self) -> list[tuple[str, TextStream]]:
        """``(block id, stream)`` of the visible blocks whose text is still streaming."""
        return [(r.id, s) for r in self._visible() if (s := r.stream) is not None]

    def advance(self) -> None:
        """Cut the finished markdown blocks of streaming text into HTML segments."""
        for record in self._records.values():
            if isinstance(record, _Markdown) and not record.final:
                record.advance()

    def take_commits(self) -> list[tuple[str, int, list[str]]]:
        """``(block id, committed UTF-16 offset, new segments)`` the widget does not have yet."""
        commits = []
        for record in self._visible():
            if isinstance(record, _Markdown) and len(record.segments) > record.sent_segments:
                commits.append(
                    (record.id, record.committed_u16, record.segments[record.sent_segments :])
                )
                record.sent_segments = len(record.segments)
        return commits

    def mark_sent(self, block_ids: set[str] | None) -> None:
        """Everything streamed so far by these blocks (None: all) is in the views just
        published: no append or commit is owed for it."""
        for record in self._visible():
            if block_ids is not None and record.id not in block_ids:
                continue
            stream = record.stream
            if stream is not None:
                stream.mark_flushed()
            if isinstance(record, _Markdown):
                record.sent_segments = len(record.segments)

    @property
    def text(self) -> str:
        """The last agent message (answer or commentary) so far, like ``TurnResult.text``."""
        for record in reversed(self._records.values()):
            if isinstance(record, _Message) and record.role != "plan":
                return record.text
        return ""

    @property
    def pending_approvals(self) -> list[_Approval]:
        return [r for r in self._records.values() if isinstance(r, _Approval) and r.pending]

    def _approval(self, key: Any) -> _Approval | None:
        for record in self._records.values():
            if isinstance(record, _Approval) and record.key == key:
                return record
        return None

    @property
    def has_diff(self) -> bool:
        return self._diff is not None and self._diff.visible

    # -- writing

    def apply_all(self, events: Iterable[Notification | LocalEvent]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Notification | LocalEvent) -> None:
        """Fold one event.  Never raises on unknown or malformed input."""
        try:
            if isinstance(event, (ToolAsked, ApprovalDecided, ToolDone, CellProposed)):
                self._local(event)
            else:
                self._apply(event)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a shape we misread
            self._add(
                _Static(
                    LineView(
                        self._next_id("bad"),
                        True,
                        icon="?",
                        label="unreadable event",
                        text=str(exc),
                    )
                )
            )

    def record_decision(self, key: Any, decision: str) -> ServerRequest | None:
        """Mark a pending approval decided.  Returns its server request (None for a
        kernel-tool approval), or raises LookupError if no approval with that key
        is pending (unknown, already decided, or moot)."""
        record = self._approval(key)
        if record is None or not record.pending:
            raise LookupError(key)
        record.state = "decided"
        record.decision = decision
        self.changed = True
        return record.request

    def refresh_requests(self) -> None:
        """Reflect approvals answered or settled behind our back (a handler, a timeout)."""
        for record in self.pending_approvals:
            request = record.request
            if request is None:
                continue
            if request.response is not None:
                record.decision = _decision_from_response(request.response)
                record.state = "decided" if record.decision else "resolved"
                self.changed = True
            elif request.settled:
                record.state = "resolved"
                self.changed = True

    def add_error(self, message: str, code: str = "", hint: str | None = None) -> None:
        """Show an error (once per message)."""
        for record in self._records.values():
            view = record.view() if isinstance(record, _Static) else None
            if isinstance(view, ErrorView) and view.message == message:
                return
        self.error = message
        view = ErrorView(
            self._next_id("error"),
            True,
            message=message,
            code=code,
            hint=hint if hint is not None else error_hint(code),
        )
        self._add(_Static(view))

    def add_notice(self, text: str, tone: str = "info") -> None:
        self._add(_Static(NoticeView(self._next_id("notice"), True, text=text, tone=tone)))

    def finalize(self) -> None:
        """The turn is over: every block final (streams rendered), pending approvals expired."""
        self.refresh_requests()
        retry = self._records.get("retry")
        if isinstance(retry, _Static) and self._retries:
            times = f" {self._retries} times" if self._retries > 1 else ""
            retry.replace(
                NoticeView(
                    "retry", True, text=f"{self._retry_message} (retried{times})", tone="warn"
                )
            )
        for record in self._records.values():
            if not record.final or (isinstance(record, _Approval) and record.pending):
                record.finalize()
                self.changed = True
        if self._diff is not None and not self._diff.final:
            self._diff.finalize()
            self.changed = True

    # -- internals

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}-{self._seq}"

    def _add(self, record: _R, before: str | None = None) -> _R:
        """Append a block, or put it just before block ``before`` when that exists."""
        if before is not None and before in self._records and record.id not in self._records:
            items = list(self._records.items())
            at = next(i for i, (key, _) in enumerate(items) if key == before)
            items.insert(at, (record.id, record))
            self._records = dict(items)
        else:
            self._records[record.id] = record
        self.changed = True
        return record

    def _record(self, block_id: str, kind: type[_R], factory: Callable[[], _R]) -> _R:
        """The record for an item, created on first sight."""
        record = self._records.get(block_id)
        if not isinstance(record, kind):
            record = self._add(factory())
        return record

    def _message(self, item_id: str, role: str = "answer") -> _Message:
        language = self.answer_language if role == "answer" else None
        return self._record(item_id, _Message, lambda: _Message(item_id, role, language))

    def _reasoning(self, item_id: str) -> _Reasoning:
        return self._record(item_id, _Reasoning, lambda: _Reasoning(item_id))

    def _command(self, item_id: str) -> _Command:
        return self._record(item_id, _Command, lambda: _Command(item_id))

    def _file_change(self, item_id: str) -> _FileChange:
        return self._record(item_id, _FileChange, lambda: _FileChange(item_id, self))

    def _tool_call(self, item_id: str) -> _ToolCall:
        return self._record(item_id, _ToolCall, lambda: _ToolCall(item_id))

    def _apply(self, event: Notification) -> None:
        if isinstance(event, ServerRequest):
            self._on_request(event)
            return
        handler = _HANDLERS.get(event.method)
        params = event.params_dict
        if handler is not None:
            handler(self, params)
        elif isinstance(params.get("item"), dict):
            self._unsupported(params["item"])

    def _local(self, event: LocalEvent) -> None:
        if isinstance(event, ToolAsked):
            call = self._tool_call(event.call_id)
            call.code = event.code
            approval = _Approval(f"approval-{event.call_id}", event.key)
            approval.method = "item/tool/call"
            approval.title = "Run this code in your kernel?"
            approval.command = event.code
            approval.language = "python"
            approval.decisions = tuple(
                DecisionView(d, *_CODE_BUTTONS[d], recommended=False) for d in ("accept", "decline")
            )
            self._add(approval, before=call.id)
        elif isinstance(event, ApprovalDecided):
            asked = self._records.get(f"approval-{event.call_id}")
            if isinstance(asked, _Approval) and asked.pending:
                asked.state, asked.decision = "decided", event.decision
        elif isinstance(event, ToolDone):
            call = self._tool_call(event.call_id)
            call.outcome = event.outcome
            call.changed = event.changed
            call.status = "completed" if event.success else "failed"
            asked = self._records.get(f"approval-{event.call_id}")
            if isinstance(asked, _Approval) and asked.pending:
                asked.state = "decided" if event.decision else "expired"
                asked.decision = event.decision
        elif isinstance(event, CellProposed):
            self._add(
                _Proposal(f"proposal-{event.call_id}", event.number, event.code, event.explanation)
            )
        self.changed = True

    def _on_request(self, request: ServerRequest) -> None:
        params = request.params_dict
        block_id = f"approval-{request.id}"
        if block_id in self._records or request.method == "item/tool/call":
            return  # tool calls show as their dynamicToolCall item
        if request.method not in APPROVAL_METHODS:
            text = f"codex asked for {request.method} (not supported here; declined)"
            self._add(_Static(LineView(block_id, True, icon="?", label="request", text=text)))
            return
        record = _Approval(block_id, request.id, request)
        record.title = _APPROVAL_TITLES.get(request.method, "Allow this?")
        record.reason = _str(params.get("reason"))
        record.cwd = _str(params.get("cwd"))
        record.decisions = allowed_decisions(request.method, params)
        item = self._records.get(_str(params.get("itemId")))
        if request.method == COMMAND_APPROVAL:
            record.command = display_command(_str(params.get("command")))
            if not record.command and isinstance(item, _Command):
                record.command = display_command(item.command)
            context = params.get("networkApprovalContext")
            if isinstance(context, dict) and context:
                record.details = "network access: " + ", ".join(
                    f"{k}={v}" for k, v in context.items() if isinstance(v, (str, int))
                )
        elif request.method == LEGACY_EXEC_APPROVAL:
            argv = params.get("command")
            if isinstance(argv, list):
                record.command = display_command(shlex.join(str(a) for a in argv))
        elif request.method == FILE_CHANGE_APPROVAL:
            paths = [f.name for f in item.files] if isinstance(item, _FileChange) else []
            root = _str(params.get("grantRoot"))
            if root:
                paths.append(f"write access under {root} for this session")
            record.details = "\n".join(paths)
        elif request.method == LEGACY_PATCH_APPROVAL:
            changes = params.get("fileChanges")
            if isinstance(changes, dict):
                record.details = "\n".join(str(path) for path in changes)
        elif request.method == PERMISSIONS_APPROVAL:
            record.details = _describe_permissions(params.get("permissions"))
        self._add(record, before=_str(params.get("itemId")) or None)  # asked before it ran

    def _unsupported(self, item: dict[str, Any]) -> None:
        item_type = _str(item.get("type")) or "?"
        item_id = _str(item.get("id")) or self._next_id("item")
        if item_id not in self._records:
            view = LineView(item_id, True, icon="·", label="unsupported item", text=item_type)
            self._add(_Static(view))

    # item/started and item/completed

    def _on_item(self, params: dict[str, Any], completed: bool) -> None:
        item = params.get("item")
        if not isinstance(item, dict):
            return
        item_type = _str(item.get("type"))
        item_id = _str(item.get("id")) or self._next_id(item_type or "item")
        if item_type == "userMessage":
            return  # the prompt is in the cell above
        if item_type in ("agentMessage", "plan"):
            role = "plan" if item_type == "plan" else "answer"
            if item.get("phase") == "commentary":
                role = "commentary"
            message = self._message(item_id, role)
            if not message.final and message.role != role:
                message.role = role
                self.changed = True
            if completed and not message.final:
                message.final_text = _str(item.get("text"))
                message.finalize()
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
            if not command.final:
                if completed:
                    command.complete(item)
                else:
                    command.update(item)
                self.changed = True
        elif item_type == "fileChange":
            change = self._file_change(item_id)
            if not change.final:
                files = _file_views(item.get("changes"))
                if files:
                    change.files = files
                change.status = _str(item.get("status")) or change.status
                if completed:
                    change.finalize()
                self.changed = True
        elif item_type == "dynamicToolCall":
            self._on_tool_item(item_id, item, completed)
        else:
            view = _item_line(item_type, item, item_id, completed)
            if view is None:
                self._unsupported(item)
                return
            existing = self._records.get(item_id)
            if isinstance(existing, _Static):
                if existing.view() != view:
                    existing.replace(view)
                    self.changed = True
            elif existing is None:
                self._add(_Static(view))

    def _on_tool_item(self, item_id: str, item: dict[str, Any], completed: bool) -> None:
        call = self._tool_call(item_id)
        if call.final:
            return
        call.namespace = _str(item.get("namespace"))
        call.tool = _str(item.get("tool"))
        arguments = item.get("arguments")
        call.arguments = _summarize_arguments(arguments)
        code = arguments.get("code") if isinstance(arguments, dict) else None
        if call.tool == "run_python" and isinstance(code, str):  # a proposal shows its own
            call.code = call.code or code
        if completed:
            status = _str(item.get("status"))
            if item.get("success") is False or status == "failed":
                call.status = "failed"
                if not call.outcome:
                    call.outcome = _tool_text(item.get("contentItems"))
            elif call.status == "inProgress":
                call.status = "completed"
                if not call.outcome:
                    call.outcome = _tool_text(item.get("contentItems"))
            duration = item.get("durationMs")
            if isinstance(duration, int):
                call.duration_ms = duration
            call.finalize()
        self.changed = True

    def _on_item_started(self, params: dict[str, Any]) -> None:
        self._on_item(params, completed=False)

    def _on_item_completed(self, params: dict[str, Any]) -> None:
        self._on_item(params, completed=True)

    # streaming deltas

    def _on_agent_delta(self, params: dict[str, Any]) -> None:
        message = self._message(_str(params.get("itemId")) or "message")
        if not message.final:
            message.text_stream.append(_str(params.get("delta")))

    def _on_plan_delta(self, params: dict[str, Any]) -> None:
        message = self._message(_str(params.get("itemId")) or "plan-item", "plan")
        if not message.final:
            message.text_stream.append(_str(params.get("delta")))

    def _on_summary_delta(self, params: dict[str, Any]) -> None:
        reasoning = self._reasoning(_str(params.get("itemId")) or "reasoning")
        if not reasoning.final:
            reasoning.text_stream.append(_str(params.get("delta")))

    def _on_summary_part(self, params: dict[str, Any]) -> None:
        reasoning = self._reasoning(_str(params.get("itemId")) or "reasoning")
        if not reasoning.final and reasoning.text_stream.length:
            reasoning.text_stream.append("\n\n")

    def _on_output_delta(self, params: dict[str, Any]) -> None:
        command = self._command(_str(params.get("itemId")) or "command")
        if not command.final:
            command.append_output(_str(params.get("delta")))

    def _on_file_output_delta(self, params: dict[str, Any]) -> None:
        change = self._file_change(_str(params.get("itemId")) or "file-change")
        if not change.final:
            change.output.append(strip_ansi(_str(params.get("delta"))))

    def _on_patch_updated(self, params: dict[str, Any]) -> None:
        change = self._file_change(_str(params.get("itemId")) or "file-change")
        files = _file_views(params.get("changes"))
        if files and not change.final:
            change.files = files
            self.changed = True

    def _on_mcp_progress(self, params: dict[str, Any]) -> None:
        record = self._records.get(_str(params.get("itemId")))
        if isinstance(record, _Static) and isinstance(record.view(), LineView) and not record.final:
            view = record.view()
            assert isinstance(view, LineView)
            record.replace(replace(view, detail=_str(params.get("message"))))
            self.changed = True

    def _on_review(self, params: dict[str, Any]) -> None:
        review_id = _str(params.get("reviewId")) or self._next_id("review")
        review = _dict(params.get("review"))
        action = _dict(params.get("action"))
        subject = _str(action.get("command")) or _str(action.get("type")) or "an action"
        block_id = self._reviews.get(review_id)
        if block_id is None:
            block_id = self._reviews[review_id] = self._next_id("review")
        view = LineView(
            block_id,
            True,
            icon="⚖",
            label="auto-review",
            text=reveal_invisible(display_command(subject)),
            status=_str(review.get("status")) or "inProgress",
            detail=_str(review.get("rationale")),
        )
        existing = self._records.get(block_id)
        if isinstance(existing, _Static):
            existing.replace(view)
        else:
            self._add(_Static(view))
        self.changed = True

    # turn-level

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
        plan = self._record("plan", _Plan, _Plan)
        plan.explanation = _str(params.get("explanation"))
        steps = params.get("plan")
        plan.steps = tuple(
            StepView(_str(s.get("step")), _str(s.get("status")) or "pending")
            for s in (steps if isinstance(steps, list) else [])
            if isinstance(s, dict)
        )
        self.changed = True

    def _on_diff_updated(self, params: dict[str, Any]) -> None:
        if self._diff is None:
            self._diff = _Diff()
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
        record = self._approval(params.get("requestId"))
        if record is not None and record.pending:
            if record.request is not None and record.request.response is not None:
                record.decision = _decision_from_response(record.request.response)
                record.state = "decided" if record.decision else "resolved"
            else:
                record.state = "resolved"
            self.changed = True

    def _on_error(self, params: dict[str, Any]) -> None:
        error = _dict(params.get("error"))
        message = _str(error.get("message")) or "unknown error"
        if params.get("willRetry"):  # transient: one notice, updated in place
            self._retries += 1
            self._retry_message = message
            attempt = f" (attempt {self._retries})" if self._retries > 1 else ""
            view = NoticeView("retry", False, text=f"{message} — retrying{attempt}", tone="warn")
            existing = self._records.get("retry")
            if isinstance(existing, _Static):
                existing.replace(view)
            else:
                self._add(_Static(view))
            self.changed = True
        else:
            self.add_error(message, error_code(error.get("codexErrorInfo")))

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


def _tool_text(content: Any) -> str:
    """The first line of a tool answer's text content (for the block's outcome line)."""
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            line = str(part["text"]).strip().partition("\n")[0]
            return line[:200] + ("…" if len(line) > 200 else "")
    return ""


_Handler = Callable[[Transcript, dict[str, Any]], None]
_HANDLERS: dict[str, _Handler] = {
    "item/started": Transcript._on_item_started,
    "item/completed": Transcript._on_item_completed,
    "item/agentMessage/delta": Transcript._on_agent_delta,
    "item/plan/delta": Transcript._on_plan_delta,
    "item/reasoning/summaryTextDelta": Transcript._on_summary_delta,
    "item/reasoning/summaryPartAdded": Transcript._on_summary_part,
    "item/reasoning/textDelta": Transcript._ignore,  # raw reasoning is not shown
    "item/commandExecution/outputDelta": Transcript._on_output_delta,
    "item/commandExecution/terminalInteraction": Transcript._ignore,
    "item/fileChange/outputDelta": Transcript._on_file_output_delta,
    "item/fileChange/patchUpdated": Transcript._on_patch_updated,
    "item/mcpToolCall/progress": Transcript._on_mcp_progress,
    "item/autoApprovalReview/started": Transcript._on_review,
    "item/autoApprovalReview/completed": Transcript._on_review,
    "turn/started": Transcript._ignore,  # the view moves its status to "running" on any event
    "turn/completed": Transcript._on_turn_completed,
    "turn/plan/updated": Transcript._on_plan_updated,
    "turn/diff/updated": Transcript._on_diff_updated,
    "thread/tokenUsage/updated": Transcript._on_token_usage,
    "serverRequest/resolved": Transcript._on_resolved,
    "error": Transcript._on_error,
    "warning": Transcript._on_warning,
    "model/rerouted": Transcript._on_rerouted,
}
#: Notifications this module understands (anything else that carries an item is
#: shown as "unsupported item"; anything else is ignored).
KNOWN_METHODS = frozenset(_HANDLERS)


def _item_line(item_type: str, item: dict[str, Any], item_id: str, final: bool) -> LineView | None:
    """A compact line for the known items that are not messages, commands or file changes."""
    status = _str(item.get("status"))

    def line(icon: str, label: str, text: str = "", **extra: str) -> LineView:
        return LineView(
            item_id, final, icon=icon, label=label, text=reveal_invisible(text), **extra
        )

    if item_type == "webSearch":
        action = _dict(item.get("action"))
        query = _str(item.get("query"))
        if action.get("type") == "openPage":
            return line("🌐", "opened", _str(action.get("url")) or query)
        if action.get("type") == "findInPage":
            return line(
                "🔎", "searched page", f"{_str(action.get('pattern'))} in {_str(action.get('url'))}"
            )
        return line("🔎", "searched the web", query)
    if item_type == "mcpToolCall":
        error = item.get("error")
        detail = _str(error.get("message")) if isinstance(error, dict) else ""
        text = f"{_str(item.get('server'))}.{_str(item.get('tool'))}"
        return line("🔧", "tool", text, status=status, detail=detail)
    if item_type == "collabAgentToolCall":
        return line("🤝", "agent", _str(item.get("tool")), status=status)
    if item_type == "subAgentActivity":
        return line(
            "🤝", f"sub-agent {_str(item.get('kind'))}".strip(), _str(item.get("agentPath"))
        )
    if item_type == "imageView":
        return line("🖼", "viewed image", _str(item.get("path")))
    if item_type == "imageGeneration":
        text = _str(item.get("savedPath")) or _str(item.get("revisedPrompt"))
        return line("🖼", "generated image", text, status=status)
    if item_type == "contextCompaction":
        return line("⇲", "context compacted")
    if item_type == "enteredReviewMode":
        return line("⚖", "review started", _str(item.get("review")))
    if item_type == "exitedReviewMode":
        return line("⚖", "review finished")
    if item_type == "sleep":
        duration = item.get("durationMs")
        return line("⏸", "waited", f"{duration / 1000:g} s" if isinstance(duration, int) else "")
    if item_type == "hookPrompt":
        return line("↪", "hook prompt")
    if item_type == "functionCallOutput":
        return line("🔧", "tool output", _str(item.get("name")))
    return None
