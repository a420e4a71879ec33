"""A turn's static renderings (HTML card, markdown, plain) from the block schema."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from codex_notebook.notebook.blocks import (
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
    StepView,
    ToolCallView,
)
from codex_notebook.notebook.sanitize import highlight_python, inline_markdown_html, markdown_html
from codex_notebook.notebook.static_html import render_html
from codex_notebook.notebook.static_markdown import render_markdown, render_plain
from codex_notebook.notebook.transcript import CellProposed, ToolAsked, Transcript
from tests.html_checks import assert_inert
from tests.unit.test_sanitize import _html_tokens
from tests.unit.transcript_helpers import HEADER, fold, message, note, replay

MATH_IGNORE = "tex2jax_ignore mathjax_ignore"


def bundle(transcript: Transcript, header: HeaderView = HEADER) -> dict[str, str]:
    views = transcript.views()
    return {
        "text/html": render_html(header, views),
        "text/markdown": render_markdown(header, views),
        "text/plain": render_plain(header, views, transcript.text),
    }


def test_every_format_has_the_answer_status_and_thread() -> None:
    for mime in bundle(replay("tool_call")).values():
        assert "analysis" in mime
        assert "completed" in mime
        assert "hello from the sandbox" in mime


def test_static_html_uses_inline_styles_only() -> None:
    html = bundle(replay("approval_accept"))["text/html"]
    assert "<style" not in html
    assert re.findall(r'class="[^"]*"', html) == [f'class="{MATH_IGNORE}"']  # see below
    assert "style=" in html


def test_static_html_keeps_model_html_inert() -> None:
    text = "<img src=x onerror=alert(1)><script>x()</script>"
    html = bundle(fold(message(text)))["text/html"]
    assert_inert(html, our_styles=True)
    assert "&lt;script&gt;x()&lt;/script&gt;" in html


def test_command_output_stays_text() -> None:
    transcript = fold(note("item/commandExecution/outputDelta", itemId="c1", delta="<b>x</b>\n"))
    html = bundle(transcript, replace(HEADER, status="running"))["text/html"]
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_static_markdown_fences_commands_with_their_meta() -> None:
    markdown = bundle(replay("tool_call"))["text/markdown"]
    assert "```console\n$ echo hello from the sandbox\nhello from the sandbox\n```" in markdown
    assert "*exit 0" in markdown


def test_static_markdown_puts_diffs_in_diff_fences() -> None:
    diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b"
    markdown = bundle(fold(note("turn/diff/updated", diff=diff)))["text/markdown"]
    assert f"```diff\n{diff}\n```" in markdown


def test_static_markdown_quotes_errors_and_approvals() -> None:
    failed = replace(HEADER, status="failed")
    markdown = bundle(replay("model_failure"), failed)["text/markdown"]
    assert re.search(r"^> \*\*Error:\*\* ", markdown, re.MULTILINE)
    markdown = bundle(replay("approval_accept"))["text/markdown"]
    assert "> **⚠ Run this command?**" in markdown
    assert "Decision: **Approved**" in markdown


def test_every_model_controlled_string_in_markdown_is_inert() -> None:
    attack = "<img src=x onerror=alert(1)>"
    transcript = fold(
        note("turn/plan/updated", explanation=attack, plan=[{"step": attack, "status": "pending"}]),
        note("item/completed", item={"type": "webSearch", "id": "w1", "query": attack}),
        note("error", error={"message": attack}),
        note("warning", message=attack),
        message(f"- item\n  ```\n  x\n  ```\n- {attack}"),
    )
    header = replace(HEADER, thread=attack, detail=attack, notice=attack, model=attack)
    markdown = bundle(transcript, header)["text/markdown"]
    assert _html_tokens(markdown) == []
    assert_inert(bundle(transcript, header)["text/html"], our_styles=True)


def test_static_header_shows_the_badge_and_the_notice() -> None:
    header = replace(HEADER, badge="demo model", notice="no sandbox")
    rendered = bundle(Transcript(), header)
    assert "demo model" in rendered["text/html"] and "no sandbox" in rendered["text/html"]
    assert "demo model" in rendered["text/markdown"]


def test_the_header_duration_uses_the_one_format() -> None:
    assert "2.5 s" in bundle(Transcript())["text/markdown"]


# --------------------------------------------------------------------------- adversarial


_BREAKOUT = "x\r<details open ontoggle=alert(1)>\r![leak](https://evil.example/p.png)"


def test_a_carriage_return_cannot_end_a_quote_a_code_span_or_a_line() -> None:
    # CommonMark ends a line at "\r" too: a quote prefixed only after "\n", a code span
    # joined only on "\n", would let the rest of the line start raw HTML or an image.
    change = {"path": _BREAKOUT, "kind": "add", "diff": "a\n"}
    transcript = fold(
        ToolAsked("call-1", key="call-1", code=f"a = 1\n{_BREAKOUT}"),
        note("error", error={"message": f"boom\ndetail {_BREAKOUT}"}),
        note("warning", message=_BREAKOUT),
        note("item/completed", item={"type": "fileChange", "id": "f1", "changes": [change]}),
        note("item/completed", item={"type": "webSearch", "id": "w1", "query": _BREAKOUT}),
        note("turn/plan/updated", explanation=_BREAKOUT, plan=[{"step": _BREAKOUT}]),
    )
    header = replace(HEADER, thread=_BREAKOUT, detail=_BREAKOUT)
    markdown = bundle(transcript, header)["text/markdown"]
    assert _html_tokens(markdown) == []
    assert "\r" not in markdown


#: Single characters and the fragments attacks are made of, in any order.
_PIECES = [
    *"ab <>/&`*_[]()!#-|~\\\n\r\t=:.1\"';{}", "\u2028", "\x00", "\u202e", "é",
    "<b>", "<details open>", "<img src=x>", "![i](https://e.example/i.png)", "[l](https://e.x)",
    "```", "~~~", "    ", "> ", "- ", "1. ", "[r]: https://e.example", "<https://e.x>", "***",
    "[r](rel/x)", "[p](//e.x/p)", "<a@b.c>", "[j](javascript:x)", "&#33;", "&lt;", "[^1]",
]  # fmt: skip
_HOSTILE_TEXT = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


def _md(text: str) -> dict[str, Any]:
    return {"text": text, "html_segments": (markdown_html(text),)}


@st.composite
def _views(draw: st.DrawFn) -> tuple[HeaderView, list[BlockView]]:
    """Every block kind with hostile text in every string a server or model controls
    (and the pre-rendered HTML made from it the way the transcript makes it)."""
    t = lambda: draw(_HOSTILE_TEXT)  # noqa: E731
    files = (FileView(t(), "add", t(), 1, 2, t(), 3),)
    reason, code, explanation = t(), t(), t()
    tool = {"namespace": t(), "tool": t(), "arguments": t(), "status": t(), "outcome": t()}
    blocks: list[BlockView] = [
        MessageView("m", True, role="answer", **_md(t())),
        MessageView("c", True, role="commentary", **_md(t())),
        MessageView("p", True, role="plan", **_md(t())),
        MessageView("j", True, language=t(), **_md(t())),
        MessageView("s", False, html_segments=(markdown_html(t()),), tail=t()),
        ReasoningView("r", True, **_md(t())),
        CommandView("x", True, command=t(), full_command=t(), cwd=t(), status=t(), text=t()),
        FileChangeView("f", True, status=t(), files=files, text=t()),
        DiffView("d", True, files=files, diff=t()),
        PlanView("pl", True, explanation=t(), steps=(StepView(t(), t()),)),
        ApprovalView("a", True, title=t(), reason=reason, reason_html=inline_markdown_html(reason),
                     command=t(), cwd=t(), details=t()),
        ApprovalView("ap", True, command=code, language="python", code_html=highlight_python(code),
                     state=t(), decision=t()),
        ToolCallView("t", True, **tool, code=code, code_html=highlight_python(code),
                     changed=(t(), t())),
        ProposalView("pr", True, number=1, code=code, code_html=highlight_python(code),
                     explanation=explanation,
                     explanation_html=inline_markdown_html(explanation)),
        ErrorView("e", True, message=t(), hint=t(), code=t()),
        NoticeView("n", True, text=t()),
        LineView("l", True, icon=t(), label=t(), text=t(), status=t(), detail=t()),
    ]  # fmt: skip
    header = HeaderView(thread=t(), status=t(), detail=t(), model=t(), badge=t(), notice=t())
    return header, blocks


@settings(max_examples=150, deadline=None)
@given(_views())
def test_no_string_in_any_block_becomes_markup_in_markdown(
    views: tuple[HeaderView, list[BlockView]],
) -> None:
    header, blocks = views
    assert _html_tokens(render_markdown(header, blocks)) == []


@settings(max_examples=150, deadline=None)
@given(_views())
def test_no_string_in_any_block_becomes_markup_in_html(
    views: tuple[HeaderView, list[BlockView]],
) -> None:
    header, blocks = views
    html = render_html(header, blocks)
    assert_inert(html, our_styles=True)
    assert all(
        href.startswith(("https://", "mailto:")) for href in re.findall(r'href="([^"]*)"', html)
    )


def test_static_outputs_show_the_direction_controls_of_proposed_code() -> None:
    code = 'ok = check(user)  # \u202e \u2066if user.admin\u2069 \u2066\nrm("/")'
    rendered = bundle(fold(CellProposed("call-2", 1, code, "")))
    for mime in ("text/html", "text/markdown"):
        assert "\u202e" not in rendered[mime] and "⟨U+202E⟩" in rendered[mime]


def test_plain_text_carries_no_terminal_escapes() -> None:
    # text/plain is what a terminal frontend prints: an escape there is live
    escapes = "\x1b]52;c;ZXZpbA==\x07\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x1b[2J\x08"
    transcript = fold(message(f"answer {escapes}"), note("error", error={"message": escapes}))
    header = replace(HEADER, thread=f"t{escapes}", notice=escapes, badge=escapes)
    plain = bundle(transcript, header)["text/plain"]
    assert "answer" in plain and "click" in plain
    assert not any(c in plain for c in "\x1b\x07\x08")


def test_dollar_amounts_are_not_read_as_math() -> None:
    # JupyterLab typesets $…$ in HTML outputs (and GitHub in markdown): "$5 and $10" would
    # show as the formula "5and" and model TeX would reach MathJax
    text = "It costs $5 and $10; $$\\href{javascript:alert(1)}{x}$$"
    rendered = bundle(fold(message(text), note("warning", message="$5 and $10")))
    assert rendered["text/html"].startswith(f'<div class="{MATH_IGNORE}"')
    assert "\\$5 and \\$10" in rendered["text/markdown"]
    assert "$" not in rendered["text/markdown"].replace("\\$", "")
