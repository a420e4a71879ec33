"""The markdown and plain-text transcripts of a turn.

The ``text/markdown`` output must stay inert under any renderer, including
ones that allow HTML in markdown: model markdown is re-written by
:func:`.sanitize.safe_markdown`, every other model-controlled string goes
through :func:`.sanitize.md_text` (plain text), :func:`.sanitize.md_code` or
:func:`.sanitize.md_fence` (verbatim code).  Nothing is inserted raw.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from .blocks import (
    ApprovalView,
    BlockView,
    CommandView,
    DiffView,
    ErrorView,
    FileChangeView,
    HeaderView,
    LineView,
    MessageView,
    NoticeView,
    PlanView,
    ProposalView,
    ReasoningView,
    ToolCallView,
)
from .sanitize import md_code, md_fence, md_text, safe_markdown
from .text import reveal_invisible, strip_ansi

__all__ = ["render_markdown", "render_plain"]


def _quote(text: str) -> str:
    # every line a renderer sees ("\r" ends one too) gets the prefix
    return "\n".join("> " + line if line else ">" for line in re.split(r"\r\n?|\n", text))


def _message(b: MessageView) -> str:
    if b.language:
        return md_fence(b.text.strip(), b.language)
    text = safe_markdown(b.text)
    if b.role == "plan":
        return "**Proposed plan**\n\n" + text
    return _quote(text) if b.role == "commentary" else text


def _reasoning(b: ReasoningView) -> str:
    return _quote("*Reasoning:*\n\n" + safe_markdown(b.text))


def _command(b: CommandView) -> str:
    body = f"$ {b.command}\n"
    if b.hidden_lines:
        body += f"… {b.hidden_lines:,} earlier lines hidden\n"
    body += b.text
    return md_fence(body, "console") + (f"\n\n*{md_text(b.meta)}*" if b.meta else "")


def _file_change(b: FileChangeView) -> str:
    rows = []
    for f in b.files:
        note = f" ({md_text(b.note)})" if b.note else ""
        rows.append(f"- {md_text(f.verb)} {md_code(f.name)} +{f.added} −{f.removed}{note}")
        if b.show_diffs:
            rows.append("\n" + md_fence(f.diff, "diff") + "\n")
    return "**Edited files**\n\n" + "\n".join(rows) if rows else ""


def _turn_diff(b: DiffView) -> str:
    return f"**{md_text(b.title)}**\n\n" + md_fence(b.diff, "diff")


def _plan(b: PlanView) -> str:
    marks = {"completed": "[x]", "inProgress": "[ ] ▸", "pending": "[ ]"}
    lines = ["**Plan**", ""]
    if b.explanation:
        lines += [md_text(b.explanation), ""]
    lines += [f"- {marks.get(s.status, '[ ]')} {md_text(s.step)}" for s in b.steps]
    return "\n".join(lines)


def _approval(b: ApprovalView) -> str:
    lines = [f"**⚠ {md_text(b.title)}**"]
    if b.command:
        lines.append(md_code(b.command) if not b.language else "")
    if b.details:
        lines.append(md_text(b.details.replace("\n", "; ")))
    if b.reason:
        lines.append(md_text(b.reason))
    lines.append(f"Decision: **{md_text(b.outcome)}**")
    text = "  \n".join(line for line in lines if line)  # hard line breaks
    if b.language:
        text += "\n\n" + md_fence(b.command, b.language)
    return _quote(text)


def _tool(b: ToolCallView) -> str:
    line = f"🔧 *tool* {md_code(b.title)}"
    if b.arguments:
        line += f" {md_code(b.arguments)}"
    if b.meta:
        line += f" ({md_text(b.meta)})"
    if b.outcome:
        line += f" — {md_text(b.outcome)}"
    parts = [line]
    if b.code:
        parts.append(md_fence(b.code, "python"))
    if b.changed:
        parts.append("changed: " + ", ".join(md_code(n) for n in b.changed))
    return "\n\n".join(parts)


def _proposal(b: ProposalView) -> str:
    parts = [f"**Proposed cell {b.number}**"]
    if b.explanation:
        parts.append(safe_markdown(b.explanation))
    parts.append(md_fence(reveal_invisible(b.code), "python"))  # shown as it runs
    parts.append(f"*Insert it with* {md_code(f'%codex insert {b.number}')}")
    return "\n\n".join(parts)


def _error(b: ErrorView) -> str:
    text = f"**Error:** {md_text(b.title)}"
    if b.detail:
        text += "\n\n" + md_fence(b.detail)
    if b.hint:
        text += f"\n\n{safe_markdown(b.hint)}"
    return _quote(text)


def _notice(b: NoticeView) -> str:
    return f"*{md_text(b.text)}*"


def _line(b: LineView) -> str:
    status = f" ({md_text(b.status)})" if b.status and b.status != "completed" else ""
    text = f" {md_code(b.text)}" if b.text else ""
    return f"{md_text(b.icon)} *{md_text(b.label)}*{text}{status}"


_RENDERERS: dict[type[BlockView], Callable[[Any], str]] = {
    MessageView: _message, ReasoningView: _reasoning, CommandView: _command,
    FileChangeView: _file_change, DiffView: _turn_diff, PlanView: _plan,
    ApprovalView: _approval, ToolCallView: _tool, ProposalView: _proposal,
    ErrorView: _error, NoticeView: _notice, LineView: _line,
}  # fmt: skip


def _block(b: BlockView) -> str:
    render = _RENDERERS.get(type(b))
    return render(b) if render is not None else ""


def _header(h: HeaderView) -> str:
    bits = [f"**codex** · thread {md_code(h.thread)} · **{md_text(h.status or 'unknown')}**"]
    bits += [md_text(v) for v in (h.detail, h.elapsed, h.tokens, h.model, h.badge) if v]
    return " · ".join(bits)


def render_markdown(header: HeaderView, blocks: Sequence[BlockView]) -> str:
    """A readable markdown transcript, inert under any renderer."""
    parts = [_header(header)]
    if header.notice:
        parts.append(f"*{md_text(header.notice)}*")
    parts += [md for md in (_block(b) for b in blocks) if md]
    return "\n\n".join(parts) + "\n"


def render_plain(header: HeaderView, blocks: Sequence[BlockView], answer: str) -> str:
    """What a terminal or a plain-text reader gets: the header, the answer, errors."""
    head = f"codex [{header.thread}] {header.status}"
    extras = [v for v in (header.elapsed, header.tokens, header.badge) if v]
    if extras:
        head += " · " + " · ".join(extras)
    plain = [head]
    if header.notice:
        plain.append(header.notice)
    if answer.strip():
        plain.append(answer.strip())
    plain += [f"Error: {b.message}" for b in blocks if isinstance(b, ErrorView)]
    return strip_ansi("\n\n".join(plain))  # a terminal would act on escapes in model text
