"""The typed block schema: the one input of every renderer of a turn.

A turn is shown as an ordered list of blocks.  :mod:`.transcript` folds the
server's events into them; three renderers read the same immutable views:

* the live widget (``view.to_json()`` → the JavaScript view),
* the static HTML card (:mod:`.static_html`),
* the markdown / plain-text transcript (:mod:`.static_markdown`).

Every label a person reads (button captions, outcomes, command meta, the
duration format) is decided here once, so the three cannot drift apart; the
JavaScript view displays the strings it is given.

Model-controlled strings are stored raw; each renderer escapes them for its
own format.  The only pre-rendered HTML is ``html_segments`` / ``reason_html``,
produced by :mod:`.sanitize`.  What a person approves or inserts (commands,
code, paths, diffs) has its invisible and direction-changing characters written
out (``⟨U+202E⟩``, :func:`.text.reveal_invisible`) so that every renderer shows
what runs; only ``ProposalView.code``, what "Insert below" inserts, stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..results import Usage
from .text import format_duration, format_tokens

__all__ = [
    "DECISIONS",
    "DECISION_BUTTONS",
    "DECISION_OUTCOMES",
    "ApprovalView",
    "BlockView",
    "CommandView",
    "DecisionView",
    "DiffView",
    "ErrorView",
    "FileChangeView",
    "FileView",
    "HeaderView",
    "LineView",
    "MessageView",
    "NoticeView",
    "PlanView",
    "ProposalView",
    "ReasoningView",
    "StepView",
    "ToolCallView",
    "approval_outcome",
]

#: What a person may answer to an approval request, in button order.
DECISIONS = ("accept", "acceptForSession", "decline", "cancel")
#: Button caption and tooltip per decision.
DECISION_BUTTONS: dict[str, tuple[str, str]] = {
    "accept": ("Approve", "Run it once"),
    "acceptForSession": (
        "Approve for session",
        "Allow it, and do not ask again for similar actions in this session",
    ),
    "decline": ("Decline", "Do not run it; codex continues without it"),
    "cancel": ("Cancel turn", "Do not run it, and stop this turn"),
}
#: What the card says once a decision was made.
DECISION_OUTCOMES = {
    "accept": "Approved",
    "acceptForSession": "Approved for this session",
    "decline": "Declined by you",
    "cancel": "Cancelled — the turn stopped",
}
#: ... for code the agent asked to run in the kernel (``notebook.run_python``)
CODE_OUTCOMES = {"accept": "Approved — it ran in the kernel", "decline": "Declined by you"}
_STATE_OUTCOMES = {
    "pending": "Waiting for your decision",
    "resolved": "Answered elsewhere",
    "expired": "Not answered — the turn ended",
}


def approval_outcome(state: str, decision: str | None, *, code: bool = False) -> str:
    if state == "decided" and decision:
        labels = CODE_OUTCOMES if code else DECISION_OUTCOMES
        return labels.get(decision, decision)
    return _STATE_OUTCOMES.get(state, state)


@dataclass(frozen=True)
class BlockView:
    """One thing shown in a turn.  ``to_json`` is what the widget receives."""

    kind: ClassVar[str] = "block"
    #: fields the widget does not need (the renderers in Python do)
    local_only: ClassVar[frozenset[str]] = frozenset()

    id: str
    final: bool

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            if f.name not in self.local_only:
                data[f.name] = _json(getattr(self, f.name))
        return data


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    if hasattr(value, "to_json"):
        return value.to_json()
    return value


@dataclass(frozen=True)
class MessageView(BlockView):
    """Agent text (``role``: answer / commentary) or a proposed plan (``role="plan"``).

    While it streams, ``html_segments`` holds the markdown blocks that are
    finished (sanitized HTML) and ``tail`` the unfinished rest as text;
    ``committed`` is the UTF-16 offset in the text where ``tail`` starts.  Once
    final, the whole text is in ``html_segments``.  ``language`` (e.g.
    ``"json"`` for structured output) shows the answer as code.  ``rewritten``:
    the final text does not continue the streamed one, so a view must build the
    block anew (streamed text is only ever added to).
    """

    kind: ClassVar[str] = "message"
    local_only: ClassVar[frozenset[str]] = frozenset({"text"})

    role: str = "answer"
    language: str | None = None
    html_segments: tuple[str, ...] = ()
    committed: int = 0
    tail: str = ""
    rewritten: bool = False
    text: str = ""  # the whole markdown source, for the markdown and plain renderers

    @property
    def label(self) -> str:
        return "Proposed plan" if self.role == "plan" else ""


@dataclass(frozen=True)
class ReasoningView(BlockView):
    """The model's reasoning summary, collapsed; ``title`` is its last bold heading.

    Streams like :class:`MessageView`.
    """

    kind: ClassVar[str] = "reasoning"
    local_only: ClassVar[frozenset[str]] = frozenset({"text"})

    title: str = ""
    html_segments: tuple[str, ...] = ()
    committed: int = 0
    tail: str = ""
    rewritten: bool = False
    text: str = ""


@dataclass(frozen=True)
class CommandView(BlockView):
    """A shell command the agent ran, with its (capped) output."""

    kind: ClassVar[str] = "command"

    command: str = ""  # as a reader wants it (the shell wrapper removed)
    full_command: str = ""
    cwd: str = ""
    status: str = "inProgress"  # inProgress / completed / failed / declined / incomplete
    exit_code: int | None = None
    duration_ms: int | None = None
    text: str = ""  # the output shown (its tail when capped)
    base: int = 0  # UTF-16 offset where ``text`` starts in the whole output
    hidden_lines: int = 0

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "declined") or self.exit_code not in (None, 0)

    @property
    def meta(self) -> str:
        """``exit 1 · 1.2 s``; ``declined by you``; ``incomplete``."""
        parts = []
        if self.status == "declined":
            parts.append("declined by you")
        elif self.exit_code is not None:
            parts.append(f"exit {self.exit_code}")
        elif self.final and self.status not in ("completed", "inProgress"):
            parts.append(self.status)
        if self.duration_ms is not None:
            parts.append(format_duration(self.duration_ms))
        return " · ".join(parts)

    @property
    def empty_note(self) -> str:
        return "(not run)" if self.status == "declined" else "(no output)"

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        return {**data, "meta": self.meta, "failed": self.failed, "empty_note": self.empty_note}


@dataclass(frozen=True)
class FileView:
    """One file of a change: its unified diff (capped) and line counts."""

    path: str
    kind: str = "update"  # add / delete / update
    move_path: str | None = None
    added: int = 0
    removed: int = 0
    diff: str = ""
    hidden_lines: int = 0

    @property
    def verb(self) -> str:
        return {"add": "Added", "delete": "Deleted"}.get(self.kind, "Edited")

    @property
    def name(self) -> str:
        return self.path + (f" → {self.move_path}" if self.move_path else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "verb": self.verb,
            "added": self.added,
            "removed": self.removed,
            "diff": self.diff,
            "hidden_lines": self.hidden_lines,
        }


@dataclass(frozen=True)
class FileChangeView(BlockView):
    """Files the agent edited in one step (``show_diffs`` off when the turn diff shows them)."""

    kind: ClassVar[str] = "file_change"

    status: str = "inProgress"
    files: tuple[FileView, ...] = ()
    show_diffs: bool = True
    text: str = ""
    base: int = 0
    hidden_lines: int = 0

    @property
    def note(self) -> str:
        return {"declined": "changes declined by you", "failed": "changes failed"}.get(
            self.status, ""
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "note": self.note}


@dataclass(frozen=True)
class DiffView(BlockView):
    """The turn's aggregated diff; always shown last."""

    kind: ClassVar[str] = "diff"

    files: tuple[FileView, ...] = ()  # paths and counts only (no per-file diff)
    added: int = 0
    removed: int = 0
    diff: str = ""
    hidden_lines: int = 0

    @property
    def title(self) -> str:
        n = len(self.files)
        return f"Changes in this turn · {n} file{'' if n == 1 else 's'}"

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "title": self.title}


@dataclass(frozen=True)
class StepView:
    step: str
    status: str  # completed / inProgress / pending

    @property
    def icon(self) -> str:
        return {"completed": "✓", "inProgress": "▸"}.get(self.status, "○")

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "status": self.status, "icon": self.icon}


@dataclass(frozen=True)
class PlanView(BlockView):
    kind: ClassVar[str] = "plan"

    explanation: str = ""
    steps: tuple[StepView, ...] = ()


@dataclass(frozen=True)
class DecisionView:
    """One button of an approval card."""

    decision: str
    label: str
    hint: str
    recommended: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "label": self.label,
            "hint": self.hint,
            "recommended": self.recommended,
        }


@dataclass(frozen=True)
class ApprovalView(BlockView):
    """A request for permission; ``state``: pending / decided / resolved / expired."""

    kind: ClassVar[str] = "approval"

    request: Any = None  # the server request id, echoed back with the decision
    method: str = ""
    title: str = ""
    reason: str = ""
    reason_html: str = ""  # ``reason`` as sanitized inline markdown
    command: str = ""  # shown once, as code
    language: str = ""  # "python" for code run in the kernel
    code_html: str = ""  # ``command`` highlighted, when it is code
    cwd: str = ""
    details: str = ""
    decisions: tuple[DecisionView, ...] = ()
    state: str = "pending"
    decision: str | None = None

    @property
    def outcome(self) -> str:
        return approval_outcome(self.state, self.decision, code=bool(self.language))

    @property
    def good(self) -> bool:
        return self.state == "decided" and self.decision in ("accept", "acceptForSession")

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "outcome": self.outcome, "good": self.good}


@dataclass(frozen=True)
class ToolCallView(BlockView):
    """A call of one of the notebook's own tools (or another client tool)."""

    kind: ClassVar[str] = "tool"

    namespace: str = ""
    tool: str = ""
    arguments: str = ""  # a short, readable summary of the arguments
    status: str = "inProgress"  # inProgress / completed / failed
    outcome: str = ""  # one line: what the tool answered, or why it failed
    duration_ms: int | None = None
    code: str = ""  # run_python: the code that ran (or would have)
    code_html: str = ""
    changed: tuple[str, ...] = ()  # run_python: names it created or rebound

    @property
    def title(self) -> str:
        return f"{self.namespace}.{self.tool}" if self.namespace else self.tool

    @property
    def meta(self) -> str:
        parts = [] if self.status == "completed" else [self.status]
        if self.duration_ms is not None:
            parts.append(format_duration(self.duration_ms))
        return " · ".join(p for p in parts if p and p != "inProgress")

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "title": self.title, "meta": self.meta}


@dataclass(frozen=True)
class ProposalView(BlockView):
    """A cell the agent proposed (``%codex insert N`` or "Insert below" puts it in the notebook)."""

    local_only: ClassVar[frozenset[str]] = frozenset({"inserted"})

    kind: ClassVar[str] = "proposal"

    number: int = 0  # 1-based, per turn: what ``%codex insert N`` takes
    code: str = ""
    code_html: str = ""
    explanation: str = ""
    explanation_html: str = ""  # the explanation as sanitized inline markdown
    inserted: bool = False


@dataclass(frozen=True)
class ErrorView(BlockView):
    kind: ClassVar[str] = "error"

    message: str = ""
    hint: str = ""
    code: str = ""

    @property
    def title(self) -> str:
        return self.message.strip().partition("\n")[0]

    @property
    def detail(self) -> str:
        return self.message.strip().partition("\n")[2].strip()

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "title": self.title, "detail": self.detail}


@dataclass(frozen=True)
class NoticeView(BlockView):
    """A transient or informational note (a retried error, a model reroute, a warning)."""

    kind: ClassVar[str] = "notice"

    text: str = ""
    tone: str = "info"  # info / warn


@dataclass(frozen=True)
class LineView(BlockView):
    """A compact one-line item: web search, MCP tool call, unsupported item, ..."""

    kind: ClassVar[str] = "line"

    icon: str = "•"
    label: str = ""
    text: str = ""
    status: str = ""
    detail: str = ""


@dataclass(frozen=True)
class HeaderView:
    """The line above the blocks: where, what state, how long, how much.

    Times are epoch milliseconds from the turn's one clock (the same the
    ``%codex status`` table reads); ``elapsed`` is formatted once it ended.
    """

    thread: str
    status: str
    detail: str = ""
    started_at: int | None = None
    ended_at: int | None = None
    usage: Usage | None = None
    model: str = ""
    badge: str = ""  # "demo model", or where a remote server runs
    notice: str = ""
    can_stop: bool = False
    stopping: bool = False
    pending: int = 0

    @property
    def elapsed(self) -> str:
        if self.started_at is None or self.ended_at is None:
            return ""
        return format_duration(self.ended_at - self.started_at)

    @property
    def tokens(self) -> str:
        return format_tokens(self.usage.total_tokens if self.usage is not None else None)

    @property
    def tokens_detail(self) -> str:
        u = self.usage
        if u is None:
            return ""
        return (
            f"input {u.input_tokens:,} (cached {u.cached_input_tokens:,}) · "
            f"output {u.output_tokens:,} (reasoning {u.reasoning_output_tokens:,})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "thread": self.thread,
            "status": self.status,
            "detail": self.detail,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "elapsed": self.elapsed,
            "tokens": self.tokens,
            "tokens_detail": self.tokens_detail,
            "model": self.model,
            "badge": self.badge,
            "notice": self.notice,
            "can_stop": self.can_stop,
            "stopping": self.stopping,
            "pending": self.pending,
        }
