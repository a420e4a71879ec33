"""The static HTML card of a turn: what a saved notebook shows without widgets.

Inline styles only (GitHub and nbviewer drop ``<style>`` and classes; the card's
one class only asks MathJax not to typeset model text); colours
are translucent or theme variables with fallbacks, so light and dark both
read.  Input is the typed block schema; every model-controlled string is
escaped here, the pre-rendered markdown segments were sanitized by
:mod:`.sanitize`, and the whole card is sanitized once more at the end.
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
    FileView,
    HeaderView,
    LineView,
    MessageView,
    NoticeView,
    PlanView,
    ProposalView,
    ReasoningView,
    ToolCallView,
)
from .sanitize import MATH_IGNORE_CLASS, clean_static_html, inline_markdown_html
from .sanitize import escape_html as _e
from .text import reveal_invisible

__all__ = ["render_html"]

_BORDER = "rgba(127,127,127,.35)"
_SUBTLE = "rgba(127,127,127,.10)"
_MONO = "var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace)"
_OK = "var(--jp-success-color1, #2da44e)"
_WARN = "var(--jp-warn-color1, #bf8700)"
_ERR = "var(--jp-error-color1, #d1242f)"
_STATUS_COLORS = {
    "completed": _OK,
    "interrupted": _WARN,
    "unfinished": _WARN,
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
_S_SMALL = f"{_S_MUTED};font-size:12px"
_S_PRE = (
    f"margin:4px 0;padding:8px 10px;background:{_SUBTLE};border-radius:6px;overflow-x:auto;"
    f"font-family:{_MONO};font-size:12px;line-height:1.45;white-space:pre-wrap;"
    "word-break:break-word;max-height:none"
)
_S_CODE = f"background:{_SUBTLE};padding:0 3px;border-radius:3px"
_S_SUMMARY = "cursor:pointer;padding:2px 0"
_S_ROW = "margin:6px 0"
_S_QUOTE = "margin:6px 0;padding:6px 10px;border-left:3px solid {color};background:{bg}"
_S_BADGE = (
    "display:inline-block;padding:0 6px;border-radius:9px;border:1px solid {color};color:{color};"
    "font-size:11px;line-height:16px"
)
_DIFF_STYLES = {
    "add": "background:rgba(46,160,67,.18);display:block",
    "del": "background:rgba(248,81,73,.18);display:block",
    "hunk": "background:rgba(56,139,253,.14);display:block;opacity:.85",
    "meta": "display:block;opacity:.65",
    "": "display:block",
}
_COMMAND_ICONS = {"completed": "✓", "failed": "✗", "declined": "⊘"}


def _code(text: str) -> str:
    return f'<code style="{_S_CODE}">{_e(text)}</code>'


def _pre(text: str, extra: str = "") -> str:
    return f'<pre style="{_S_PRE}{extra}">{_e(text)}</pre>'


def _diff_line_kind(line: str) -> str:
    if line.startswith("+") and not line.startswith("+++"):
        return "add"
    if line.startswith("-") and not line.startswith("---"):
        return "del"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith(("diff ", "index ", "+++", "---")):
        return "meta"
    return ""


def _diff(diff: str) -> str:
    lines = "".join(
        f'<span style="{_DIFF_STYLES[_diff_line_kind(line)]}">{_e(line) or " "}</span>'
        for line in diff.split("\n")
    )
    return f'<pre style="{_S_PRE};white-space:pre">{lines}</pre>'


def _hidden(lines: int) -> str:
    if not lines:
        return ""
    return f'<div style="{_S_MUTED};font-size:11px">… {lines:,} earlier lines hidden</div>'


def _counts(added: int, removed: int) -> str:
    return (
        f' <span style="color:{_OK}">+{added}</span> <span style="color:{_ERR}">−{removed}</span>'
    )


def _style_markdown(fragment: str) -> str:
    """Inline styles for sanitized markdown HTML (pre, code, tables, quotes, links)."""
    fragment = fragment.replace("<p>", '<p style="margin:6px 0">')
    fragment = re.sub(r"<pre>\s*<code[^>]*>", f'<pre style="{_S_PRE}"><code>', fragment)
    fragment = fragment.replace("<code>", f'<code style="{_S_CODE}">')
    fragment = fragment.replace(
        f'<pre style="{_S_PRE}"><code style="{_S_CODE}">', f'<pre style="{_S_PRE}"><code>'
    )
    fragment = fragment.replace("<table>", '<table style="border-collapse:collapse;margin:6px 0">')
    cell = f"border:1px solid {_BORDER};padding:3px 8px;text-align:left"
    fragment = re.sub(
        r'<(td|th)(?=[\s>])( style="([^"]*)")?',
        lambda m: f'<{m.group(1)} style="{cell};{m.group(3) or ""}"',
        fragment,
    )
    fragment = fragment.replace("<a ", '<a style="color:var(--jp-content-link-color, #0969da)" ')
    return fragment.replace(
        "<blockquote>",
        f'<blockquote style="margin:6px 0;padding:0 10px;border-left:3px solid {_BORDER}">',
    )


def _markdown(segments: Sequence[str], tail: str) -> str:
    body = _style_markdown("".join(segments))
    if tail:
        body += f'<p style="margin:6px 0;white-space:pre-wrap">{_e(tail)}</p>'
    return body


def _message(b: MessageView) -> str:
    body = _markdown(b.html_segments, b.tail)
    if b.label:
        body = f'<div style="{_S_SMALL}">{_e(b.label)}</div>{body}'
    style = _S_ROW + (";" + _S_MUTED if b.role == "commentary" else "")
    return f'<div style="{style}">{body}</div>'


def _reasoning(b: ReasoningView) -> str:
    return (
        f'<details style="{_S_ROW};{_S_MUTED}"><summary style="{_S_SUMMARY}">💭 '
        f"{_e(b.title or 'Reasoning')}</summary>{_markdown(b.html_segments, b.tail)}</details>"
    )


def _command(b: CommandView) -> str:
    icon = _COMMAND_ICONS.get(b.status, "…" if not b.final else "•")
    meta = ""
    if b.meta:
        color = f";color:{_ERR}" if b.failed else ""
        meta = f' <span style="{_S_SMALL}{color}">{_e(b.meta)}</span>'
    summary = (
        f'<summary style="{_S_SUMMARY}">{icon} <code style="{_S_CODE}" '
        f'title="{_e(b.full_command)}">$ {_e(b.command)}</code>{meta}</summary>'
    )
    cwd = f'<div style="{_S_MUTED};font-size:11px">in {_e(b.cwd)}</div>' if b.cwd else ""
    output = (
        f"{_hidden(b.hidden_lines)}{_pre(b.text)}"
        if b.text.strip()
        else f'<div style="{_S_SMALL}">{_e(b.empty_note)}</div>'
    )
    return f'<details style="{_S_ROW}">{summary}{cwd}{output}</details>'


def _file(f: FileView, show_diff: bool, note: str) -> str:
    label = f"📝 {_e(f.verb)} {_code(f.name)}{_counts(f.added, f.removed)}"
    if note:
        label += f' <span style="{_S_MUTED}">({_e(note)})</span>'
    if not show_diff:
        return f'<div style="{_S_ROW}">{label}</div>'
    return (
        f'<details style="{_S_ROW}"><summary style="{_S_SUMMARY}">{label}</summary>'
        f"{_hidden(f.hidden_lines)}{_diff(f.diff)}</details>"
    )


def _file_change(b: FileChangeView) -> str:
    rows = "".join(_file(f, b.show_diffs, b.note) for f in b.files)
    return rows or f'<div style="{_S_ROW}">📝 file change ({_e(b.status)})</div>'


def _turn_diff(b: DiffView) -> str:
    files = ", ".join(f.path for f in b.files)
    return (
        f'<details style="{_S_ROW}"><summary style="{_S_SUMMARY}">Δ {_e(b.title)}: '
        f"{_e(files) or 'diff'}{_counts(b.added, b.removed)}</summary>"
        f"{_hidden(b.hidden_lines)}{_diff(b.diff)}</details>"
    )


def _plan(b: PlanView) -> str:
    items = "".join(
        f'<li style="list-style:none{";" + _S_MUTED if s.status == "completed" else ""}">'
        f"{s.icon} {_e(s.step)}</li>"
        for s in b.steps
    )
    explanation = f'<div style="{_S_MUTED}">{_e(b.explanation)}</div>' if b.explanation else ""
    return (
        f'<div style="{_S_ROW}"><div style="font-weight:600;font-size:12px">Plan</div>'
        f'{explanation}<ul style="margin:2px 0;padding-left:8px">{items}</ul></div>'
    )


def _approval(b: ApprovalView) -> str:
    parts = [f"<strong>⚠ {_e(b.title)}</strong>"]
    if b.command:
        parts.append(_pre(b.command) if b.language else _pre("$ " + b.command))
    if b.details:
        parts.append(_pre(b.details))
    facts = [b.reason_html] if b.reason else []
    if b.cwd:
        facts.append(f"in {_code(b.cwd)}")
    if facts:
        parts.append(f'<div style="{_S_MUTED}">{" · ".join(facts)}</div>')
    parts.append(f"<div>Decision: <strong>{_e(b.outcome)}</strong></div>")
    style = _S_QUOTE.format(color=_WARN, bg="rgba(191,135,0,.08)")
    return f'<blockquote style="{style}">{"".join(parts)}</blockquote>'


def _tool(b: ToolCallView) -> str:
    args = f" {_code(b.arguments)}" if b.arguments else ""
    meta = f' <span style="{_S_SMALL}">({_e(b.meta)})</span>' if b.meta else ""
    outcome = f' — <span style="{_S_MUTED}">{_e(b.outcome)}</span>' if b.outcome else ""
    head = f'🔧 <span style="{_S_MUTED}">tool</span> {_code(b.title)}{args}{meta}{outcome}'
    code = _pre(b.code) if b.code else ""
    changed = (
        f'<div style="{_S_SMALL}">changed: {", ".join(_code(n) for n in b.changed)}</div>'
        if b.changed
        else ""
    )
    return f'<div style="{_S_ROW};font-size:12px">{head}{code}{changed}</div>'


def _proposal(b: ProposalView) -> str:
    explanation = f'<div style="{_S_MUTED}">{b.explanation_html}</div>' if b.explanation else ""
    return (
        f'<div style="{_S_ROW}"><div style="font-weight:600;font-size:12px">'
        f"Proposed cell {b.number}</div>{explanation}{_pre(reveal_invisible(b.code))}"
        f'<div style="{_S_SMALL}">Insert it with {_code(f"%codex insert {b.number}")}</div></div>'
    )


def _error(b: ErrorView) -> str:
    style = _S_QUOTE.format(color=_ERR, bg="rgba(209,36,47,.08)")
    message = f"<strong>Error:</strong> {_e(b.title)}"
    if b.detail:
        message += _pre(b.detail)
    hint = f'<div style="{_S_MUTED}">{inline_markdown_html(b.hint)}</div>' if b.hint else ""
    return f'<blockquote style="{style}">{message}{hint}</blockquote>'


def _notice(b: NoticeView) -> str:
    return f'<div style="{_S_ROW};{_S_SMALL}">ℹ {_e(b.text)}</div>'


def _line(b: LineView) -> str:
    status = f" ({_e(b.status)})" if b.status and b.status != "completed" else ""
    detail = f" — {_e(b.detail)}" if b.detail else ""
    text = f" {_code(b.text)}" if b.text else ""
    return (
        f'<div style="{_S_ROW};font-size:12px">{_e(b.icon)} '
        f'<span style="{_S_MUTED}">{_e(b.label)}</span>{text}{status}{detail}</div>'
    )


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
    color = _STATUS_COLORS.get(h.status, "inherit")
    bits = [
        f"<strong>codex</strong> · <span>{_e(h.thread)}</span>",
        f'<span style="color:{color};font-weight:600">● {_e(h.status)}</span>'
        + (f' <span style="{_S_MUTED}">{_e(h.detail)}</span>' if h.detail else ""),
    ]
    for value in (h.elapsed, h.tokens, h.model):
        if value:
            bits.append(f'<span style="{_S_MUTED}">{_e(value)}</span>')
    if h.badge:
        bits.append(f'<span style="{_S_BADGE.format(color="#8250df")}">{_e(h.badge)}</span>')
    head = f'<div style="{_S_HEAD}">{" · ".join(bits)}</div>'
    if h.notice:
        head += f'<div style="{_S_HEAD};{_S_MUTED}">ℹ {_e(h.notice)}</div>'
    return head


def render_html(header: HeaderView, blocks: Sequence[BlockView]) -> str:
    """The turn as one self-contained, sanitized HTML card."""
    body = "".join(_block(b) for b in blocks) or f'<div style="{_S_MUTED}">(no output)</div>'
    # JupyterLab typesets $…$ in HTML outputs: model text is not TeX ("$5 and $10")
    card = (
        f'<div class="{MATH_IGNORE_CLASS}" style="{_S_CARD}">{_header(header)}'
        f'<div style="{_S_BODY}">{body}</div></div>'
    )
    return clean_static_html(card)
