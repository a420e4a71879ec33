"""Folding a turn's events into blocks (the transcript model; no widgets, no kernel)."""

from __future__ import annotations

import random

import pytest

from codex_notebook.messages import Notification
from codex_notebook.notebook import sanitize
from codex_notebook.notebook.blocks import (
    ApprovalView,
    CommandView,
    DiffView,
    ErrorView,
    FileChangeView,
    LineView,
    MessageView,
    NoticeView,
    PlanView,
    ProposalView,
    ReasoningView,
    StepView,
    ToolCallView,
)
from codex_notebook.notebook.text import u16len
from codex_notebook.notebook.transcript import (
    SEGMENT_TAIL_LIMIT,
    CellProposed,
    ToolAsked,
    ToolDone,
    Transcript,
)
from tests.unit.transcript_helpers import delta, fold, kinds, message, note, only, replay, request


def stream(transcript: Transcript, text: str) -> None:
    """One more piece of the answer, and the flush that follows it."""
    transcript.apply(delta(text))
    transcript.advance()


# --------------------------------------------------------------------------- recorded turns


def test_text_turn_folds_into_one_final_answer() -> None:
    transcript = replay("text_turn")
    assert kinds(transcript) == ["message"]
    assert transcript.text.strip() == "chunk0 chunk1 chunk2 chunk3 chunk4 chunk5 chunk6 chunk7"
    assert transcript.status == "completed"
    answer = only(transcript, MessageView)
    assert answer.final
    assert "".join(answer.html_segments).startswith("<p>chunk0")


def test_tool_call_folds_into_command_then_answer() -> None:
    transcript = replay("tool_call")
    assert kinds(transcript) == ["command", "message"]
    command = only(transcript, CommandView)
    assert command.command == "echo hello from the sandbox"
    assert (command.exit_code, command.status) == (0, "completed")
    assert command.text == "hello from the sandbox\n"
    assert command.meta.startswith("exit 0")
    assert transcript.usage is not None and transcript.usage.total_tokens == 30


def test_approval_accept_folds_into_approval_command_answer() -> None:
    transcript = replay("approval_accept")
    assert kinds(transcript) == ["approval", "command", "message"]  # asked before it ran
    approval = only(transcript, ApprovalView)
    assert approval.command == "echo needs approval"
    assert approval.reason == "Allow the harness to run this command?"
    assert (approval.state, approval.decision, approval.outcome) == (
        "decided",
        "accept",
        "Approved",
    )


def test_command_approvals_offer_every_decision_the_server_accepts() -> None:
    transcript = replay("approval_accept")  # codex 0.163 lists only accept and cancel
    decisions = only(transcript, ApprovalView).decisions
    assert [d.decision for d in decisions] == ["accept", "acceptForSession", "decline", "cancel"]
    assert [d.decision for d in decisions if d.recommended] == ["accept", "cancel"]
    assert [d.label for d in decisions] == [
        "Approve",
        "Approve for session",
        "Decline",
        "Cancel turn",
    ]


def test_a_declined_command_says_declined_by_you() -> None:
    transcript = replay("approval_decline")
    approval = only(transcript, ApprovalView)
    command = only(transcript, CommandView)
    assert command.status == "declined"
    assert command.meta == "declined by you"
    assert approval.outcome == "Declined by you"
    assert "CreateProcess" not in command.text


def test_approval_cancel_ends_interrupted() -> None:
    transcript = replay("approval_cancel")
    assert transcript.status == "interrupted"
    assert only(transcript, ApprovalView).decision == "cancel"


def test_model_failure_folds_into_one_error_with_a_hint() -> None:
    transcript = replay("model_failure")
    assert transcript.status == "failed"
    error = only(transcript, ErrorView)
    assert error.code == "internalServerError"
    assert "Re-run" in error.hint


def test_interrupted_turn_keeps_the_partial_answer() -> None:
    transcript = replay("interrupt")
    assert transcript.status == "interrupted"
    assert only(transcript, MessageView).final
    assert transcript.text == "chunk0 "


# --------------------------------------------------------------------------- items


def test_user_message_is_not_repeated() -> None:
    transcript = fold(
        note("item/started", item={"type": "userMessage", "id": "u1", "content": []}),
        note("item/completed", item={"type": "userMessage", "id": "u1", "content": []}),
    )
    assert transcript.views() == []


def test_unknown_item_type_becomes_an_unsupported_line() -> None:
    line = only(fold(note("item/completed", item={"type": "hologram", "id": "h1"})), LineView)
    assert (line.label, line.text) == ("unsupported item", "hologram")


def test_unknown_notification_carrying_an_item_becomes_an_unsupported_line() -> None:
    line = only(fold(note("item/teleported", item={"type": "portal", "id": "p1"})), LineView)
    assert (line.label, line.text) == ("unsupported item", "portal")


def test_unknown_notification_without_an_item_is_ignored() -> None:
    assert fold(note("thread/weather/changed", sunny=True)).views() == []


def test_malformed_params_do_not_raise() -> None:
    transcript = fold(
        note("item/completed", item="not a dict"),
        note("item/agentMessage/delta", itemId=3, delta=None),
        note("turn/plan/updated", plan="nope"),
        note("error", error="boom"),
    )
    assert set(kinds(transcript)) <= {"message", "plan", "error"}


def test_retried_error_is_a_notice_not_a_failure() -> None:
    transcript = fold(
        note("error", error={"message": "stream disconnected"}, willRetry=True),
        note("error", error={"message": "stream disconnected"}, willRetry=True),
    )
    notice = only(transcript, NoticeView)
    assert "retrying (attempt 2)" in notice.text
    assert transcript.error is None


def test_token_usage_sums_last_of_each_update() -> None:
    last = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, "cachedInputTokens": 2}
    transcript = fold(
        note("thread/tokenUsage/updated", tokenUsage={"last": last, "total": last}),
        note("thread/tokenUsage/updated", tokenUsage={"last": last, "total": last}),
    )
    assert transcript.usage is not None
    assert (transcript.usage.total_tokens, transcript.usage.cached_input_tokens) == (30, 4)


def test_reasoning_summary_streams_then_renders_with_its_title() -> None:
    transcript = fold(
        note("item/started", item={"type": "reasoning", "id": "r1", "summary": []}),
        note("item/reasoning/summaryTextDelta", itemId="r1", delta="**Reading files**\n\nI"),
    )
    reasoning = only(transcript, ReasoningView)
    assert reasoning.title == "Reading files"
    assert not reasoning.final
    transcript.apply(
        note(
            "item/completed",
            item={"type": "reasoning", "id": "r1", "summary": ["**Reading files**\n\nI look."]},
        )
    )
    reasoning = only(transcript, ReasoningView)
    assert "<strong>Reading files</strong>" in "".join(reasoning.html_segments)


def test_empty_reasoning_is_hidden_once_complete() -> None:
    transcript = fold(
        note("item/started", item={"type": "reasoning", "id": "r1", "summary": []}),
        note("item/completed", item={"type": "reasoning", "id": "r1", "summary": []}),
    )
    assert transcript.views() == []


def test_plan_updates_in_place() -> None:
    steps = [{"step": "read", "status": "completed"}, {"step": "write", "status": "inProgress"}]
    transcript = fold(
        note("turn/plan/updated", plan=[{"step": "read", "status": "pending"}]),
        note("turn/plan/updated", plan=steps, explanation="two steps"),
    )
    plan = only(transcript, PlanView)
    assert plan.steps == (StepView("read", "completed"), StepView("write", "inProgress"))
    assert plan.explanation == "two steps"


def test_file_change_and_turn_diff_are_shown_with_counts() -> None:
    diff = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1,2 @@\n-a\n+b\n+c"
    change = {"path": "app.py", "kind": {"type": "update", "move_path": None}, "diff": diff}
    item = {"type": "fileChange", "id": "f1", "changes": [change]}
    transcript = fold(
        note("item/started", item={**item, "status": "inProgress"}),
        note("turn/diff/updated", diff=diff),
        note("item/completed", item={**item, "status": "completed"}),
    )
    assert kinds(transcript) == ["file_change", "diff"]
    file_change = only(transcript, FileChangeView)
    assert file_change.files[0].added == 2
    assert not file_change.show_diffs  # the turn diff shows the lines once
    turn_diff = only(transcript, DiffView)
    assert [(f.path, f.added, f.removed) for f in turn_diff.files] == [("app.py", 2, 1)]


def test_added_file_content_is_shown_as_added_lines() -> None:
    change = {"path": "new.txt", "kind": {"type": "add"}, "diff": "one\ntwo\n"}
    item = {"type": "fileChange", "id": "f1", "changes": [change], "status": "completed"}
    file_change = only(fold(note("item/completed", item=item)), FileChangeView)
    assert file_change.files[0].diff == "+one\n+two"
    assert file_change.files[0].verb == "Added"


def test_web_search_and_mcp_calls_are_compact_lines() -> None:
    mcp = {
        "type": "mcpToolCall", "id": "m1", "server": "gh", "tool": "search", "status": "failed",
        "error": {"message": "nope"}, "arguments": {},
    }  # fmt: skip
    transcript = fold(
        note("item/completed", item={"type": "webSearch", "id": "w1", "query": "codex docs"}),
        note("item/completed", item=mcp),
    )
    lines = [(b.label, b.text, b.status, b.detail) for b in transcript.views()]
    assert lines == [
        ("searched the web", "codex docs", "", ""),
        ("tool", "gh.search", "failed", "nope"),
    ]


def test_command_output_is_capped_with_a_hidden_lines_count() -> None:
    transcript = fold(
        *[
            note("item/commandExecution/outputDelta", itemId="c1", delta=f"line {i}\n")
            for i in range(1000)
        ]
    )
    command = only(transcript, CommandView)
    assert command.text.count("\n") == 400
    assert command.text.endswith("line 999\n")
    assert command.hidden_lines == 600
    ((_, stream),) = transcript.streams()
    assert command.base + u16len(command.text) == stream.length


def test_ansi_sequence_split_across_deltas_is_stripped() -> None:
    transcript = fold(
        note("item/commandExecution/outputDelta", itemId="c1", delta="a\x1b[3"),
        note("item/commandExecution/outputDelta", itemId="c1", delta="1mred\x1b[0m\r"),
        note("item/commandExecution/outputDelta", itemId="c1", delta="\nb"),
        note(
            "item/completed", item={"type": "commandExecution", "id": "c1", "status": "completed"}
        ),
    )
    assert only(transcript, CommandView).text == "ared\nb"


# --------------------------------------------------------------------------- approvals


def test_approval_without_available_decisions_offers_all_four() -> None:
    transcript = fold(request("item/commandExecution/requestApproval", 7, command="ls"))
    approval = only(transcript, ApprovalView)
    assert [d.decision for d in approval.decisions] == [
        "accept",
        "acceptForSession",
        "decline",
        "cancel",
    ]
    assert not any(d.recommended for d in approval.decisions)
    assert [a.key for a in transcript.pending_approvals] == [7]


def test_permission_requests_offer_what_their_answer_can_carry() -> None:
    transcript = fold(request("item/permissions/requestApproval", 2, permissions={"network": True}))
    approval = only(transcript, ApprovalView)
    assert [d.decision for d in approval.decisions] == ["accept", "acceptForSession", "decline"]
    assert approval.details == "network: True"


def test_the_reason_is_rendered_as_inline_markdown_and_the_command_shown_once() -> None:
    req = request(
        "item/commandExecution/requestApproval",
        1,
        command="/bin/bash -lc 'rm -rf build'",
        reason="Needs `rm` to clean <b>build</b>",
    )
    approval = only(fold(req), ApprovalView)
    assert approval.command == "rm -rf build"
    assert approval.reason_html == "Needs <code>rm</code> to clean &lt;b&gt;build&lt;/b&gt;"
    assert approval.details == ""


def test_approval_answered_elsewhere_is_shown_resolved() -> None:
    req = request("item/fileChange/requestApproval", 3, itemId="f1")
    transcript = fold(req)
    req.settle()
    transcript.refresh_requests()
    assert only(transcript, ApprovalView).state == "resolved"


def test_pending_approval_expires_when_the_turn_ends() -> None:
    transcript = fold(
        request("item/commandExecution/requestApproval", 1, command="ls"),
        note("turn/completed", turn={"id": "turn-1", "status": "interrupted"}),
    )
    approval = only(transcript, ApprovalView)
    assert (approval.state, approval.outcome) == ("expired", "Not answered — the turn ended")


# --------------------------------------------------------------------------- streaming markdown


def test_finished_markdown_blocks_become_segments_while_the_tail_streams() -> None:
    transcript = fold(delta("## A slow answer\n\n"))
    transcript.advance()
    assert only(transcript, MessageView).html_segments == ()  # the heading may still grow
    stream(transcript, "> a quote\n\n1. Each")
    answer = only(transcript, MessageView)
    assert answer.html_segments == (
        "<h2>A slow answer</h2>\n",
        "<blockquote>\n<p>a quote</p>\n</blockquote>\n",
    )
    assert answer.tail == "1. Each"
    assert answer.committed == len("## A slow answer\n\n> a quote\n\n")


def test_the_end_of_a_message_renders_its_tail_without_changing_what_was_shown() -> None:
    text = "# Title\n\nFirst paragraph.\n\n- a\n- b"
    transcript = fold(delta(text))
    transcript.advance()
    shown = only(transcript, MessageView).html_segments
    transcript.apply(message(text))
    final = only(transcript, MessageView)
    assert final.final and final.tail == ""
    assert final.html_segments[: len(shown)] == shown
    assert "<li>b</li>" in final.html_segments[-1]


def test_commits_are_handed_out_once() -> None:
    transcript = fold(delta("one\n\ntwo\n\nthr"))
    transcript.advance()
    assert transcript.take_commits() == [
        ("m1", len("one\n\ntwo\n\n"), ["<p>one</p>\n", "<p>two</p>\n"])
    ]
    assert transcript.take_commits() == []


def test_a_burst_longer_than_the_tail_limit_still_commits_its_finished_blocks() -> None:
    burst = "".join(f"Paragraph {i} of a long answer.\n\n" for i in range(2000))
    assert len(burst) > SEGMENT_TAIL_LIMIT
    transcript = fold(delta(burst + "Last"))
    transcript.advance()
    answer = only(transcript, MessageView)
    assert len(answer.html_segments) == 2000
    assert answer.tail == "Last"


def test_blocks_after_one_huge_block_are_committed_once_it_ends() -> None:
    fence = "```\n" + "x = 1\n" * (SEGMENT_TAIL_LIMIT // 4)
    transcript = fold(delta("Intro.\n\n" + fence))
    transcript.advance()
    assert only(transcript, MessageView).html_segments == ("<p>Intro.</p>\n",)
    stream(transcript, "```\n\nAfter.\n\nMore")
    answer = only(transcript, MessageView)
    assert answer.html_segments[-1] == "<p>After.</p>\n"
    assert answer.tail == "More"


def test_a_closed_huge_fence_commits_when_the_next_block_starts_later() -> None:
    fence = "~~~~\n" + "z = 3\n" * (SEGMENT_TAIL_LIMIT // 4)
    transcript = fold(delta(fence))
    transcript.advance()
    stream(transcript, "~~~~\n")
    assert only(transcript, MessageView).html_segments == ()  # it might still be the last block
    stream(transcript, "\nNext.\n")
    (segment,) = only(transcript, MessageView).html_segments
    assert segment.startswith("<pre><code>z = 3")


def test_blocks_after_a_huge_list_are_committed_once_the_tail_grew_enough() -> None:
    items = "".join(f"- item {i}\n" for i in range(SEGMENT_TAIL_LIMIT // 8)) + "\n"
    transcript = fold(delta(items))
    transcript.advance()
    grow = max(SEGMENT_TAIL_LIMIT, len(items) // 2)  # the window, or half the tail
    paragraphs = "Paragraph.\n\n" * ((grow - 100) // 12)
    stream(transcript, paragraphs)
    assert only(transcript, MessageView).html_segments == ()  # not yet: no parse per line
    stream(transcript, "More.\n\n" * 40)
    answer = only(transcript, MessageView)
    assert answer.html_segments[0].startswith("<ul>")
    assert answer.html_segments[-1] == "<p>More.</p>\n"


@pytest.mark.parametrize("seed", range(6))
def test_segments_streamed_in_any_chunks_add_up_to_the_whole_rendering(seed: int) -> None:
    rng = random.Random(seed)
    parts = []
    while sum(map(len, parts)) < 5 * SEGMENT_TAIL_LIMIT:
        kind = rng.choice(["para", "list", "fence", "big fence", "big list", "quote"])
        lines = rng.randint(2000, 4000) if kind.startswith("big") else rng.randint(1, 8)
        if kind == "para":
            parts.append(" ".join(["word *em*"] * lines) + "\n\n")
        elif kind.endswith("list"):
            parts.append("".join(f"- point {i} `x`\n" for i in range(lines)) + "\n")
        elif kind.endswith("fence"):
            parts.append("```py\n" + "print(1)\n" * lines + "```\n\n")
        else:
            parts.append("".join(f"> quoted {i}\n" for i in range(lines)) + "\n")
    text = "".join(parts)
    transcript = fold()
    position = 0
    while position < len(text):
        step = rng.choice([1, 7, 80, 900, 20_000])
        chunk = text[position : position + step]
        position += len(chunk)
        stream(transcript, chunk)
        answer = only(transcript, MessageView)
        assert text[:position].endswith(answer.tail)
    streamed = only(transcript, MessageView).html_segments
    transcript.apply(message(text))
    final = only(transcript, MessageView)
    assert final.html_segments[: len(streamed)] == streamed
    assert "".join(final.html_segments) == sanitize.markdown_html(text)


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text the streaming markdown parses for finished blocks."""
    lengths: list[int] = []
    real = sanitize.split_finished_blocks
    monkeypatch.setattr(
        sanitize, "split_finished_blocks", lambda text: lengths.append(len(text)) or real(text)
    )
    return lengths


def test_a_huge_unfinished_block_is_not_reparsed_on_every_new_line(parsed: list[int]) -> None:
    transcript = fold(delta("```\n"))
    line = "y = 2\n"
    for _ in range(40_000):  # 240 KB of one code block, a line per flush
        stream(transcript, line)
    big = [n for n in parsed if n >= SEGMENT_TAIL_LIMIT]  # parses once the block outgrew the limit
    assert sum(big) < 4 * 240_000  # geometric back-off: linear, not a parse per line


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("Use\n#", "include <stdio.h>\n\nEnd."),  # "#" alone is an empty heading
        ("Note:\n***", "bold***\n\nEnd."),  # "***" alone is a thematic break
        ("- a\n```", "x`\n\nEnd."),  # "```" alone opens a fence
        ("Cols\n| a |\n|-", "x\n\nEnd."),  # "|-" alone is a table's delimiter row
        ("1. a\n\n2", ". b\n\nEnd."),  # "2" alone ends the list, "2. b" continues it
    ],
)
def test_a_line_whose_start_reads_as_a_new_block_does_not_split_what_it_continues(
    first: str, then: str
) -> None:
    # The start of a line can interrupt the block above ("#" is an empty heading) while the
    # whole line does not ("#include" is paragraph text): only complete lines are committed.
    transcript = fold(delta(first))
    transcript.advance()
    stream(transcript, then)
    transcript.apply(message(first + then))
    final = only(transcript, MessageView)
    assert "".join(final.html_segments) == sanitize.markdown_html(first + then)


def test_blank_lines_after_a_huge_closed_fence_do_not_reparse_it(parsed: list[int]) -> None:
    fence = "```\n" + "x = 1\n" * (2 * SEGMENT_TAIL_LIMIT) + "```\n"
    transcript = fold(delta(fence))
    transcript.advance()
    for _ in range(200):  # a blank line per flush: the next block has not started
        stream(transcript, "\n")
    assert sum(parsed) < 4 * len(fence)  # was a parse of the whole fence per blank line
    stream(transcript, "After.\n")
    (segment,) = only(transcript, MessageView).html_segments
    assert segment.startswith("<pre><code>x = 1")


def test_a_huge_fence_closed_by_a_crlf_line_commits_when_the_next_block_starts() -> None:
    fence = "```\r\n" + "x = 1\r\n" * (SEGMENT_TAIL_LIMIT // 4)
    transcript = fold(delta(fence))
    transcript.advance()
    stream(transcript, "```\r\n\r\nAfter.\r\n")
    (segment,) = only(transcript, MessageView).html_segments
    assert segment.startswith("<pre><code>x = 1")


def test_structured_answers_are_not_split_while_they_stream() -> None:
    transcript = fold(delta('{"a": 1,\n\n"b": 2}'), language="json")
    transcript.advance()
    assert only(transcript, MessageView).html_segments == ()
    transcript.apply(message('{"a": 1,\n\n"b": 2}'))
    (segment,) = only(transcript, MessageView).html_segments
    assert segment.startswith('<pre><code class="language-json">')


def test_commentary_phase_is_marked() -> None:
    transcript = fold(message("Looking…", phase="commentary"))
    assert only(transcript, MessageView).role == "commentary"


# --------------------------------------------------------------------------- local events


def run_python_started(code: str) -> Notification:
    """The agent's ``notebook.run_python`` call with ``code``, as codex announces it."""
    item = {"type": "dynamicToolCall", "id": "call-1", "namespace": "notebook",
            "tool": "run_python", "arguments": {"code": code}, "status": "inProgress"}  # fmt: skip
    return note("item/started", item=item)


def test_kernel_code_asks_then_shows_its_outcome() -> None:
    transcript = fold(
        run_python_started("x = 1"),
        ToolAsked("call-1", key="call-1", code="x = 1"),
    )
    assert kinds(transcript) == ["approval", "tool"]
    approval = only(transcript, ApprovalView)
    assert [d.label for d in approval.decisions] == ["Run", "Decline"]
    assert approval.language == "python" and 'class="cxn-hl-n"' in approval.code_html
    transcript.apply(ToolDone("call-1", True, "ran: no output", ("x",), decision="accept"))
    tool = only(transcript, ToolCallView)
    assert (tool.title, tool.status, tool.changed) == ("notebook.run_python", "completed", ("x",))
    assert only(transcript, ApprovalView).outcome == "Approved — it ran in the kernel"


def test_a_proposed_cell_is_a_block_of_its_own() -> None:
    proposal = only(fold(CellProposed("call-2", 1, "df.head()", "look first")), ProposalView)
    assert (proposal.number, proposal.code, proposal.explanation) == (1, "df.head()", "look first")
    assert "inserted" not in proposal.to_json()


def test_a_tool_call_from_the_server_shows_its_answer() -> None:
    item = {
        "type": "dynamicToolCall", "id": "call-3", "namespace": "notebook", "tool": "variables",
        "arguments": {"pattern": "df*"}, "status": "completed", "success": True,
        "contentItems": [{"type": "inputText", "text": "df: DataFrame (3, 2)\nmore"}],
        "durationMs": 12,
    }  # fmt: skip
    tool = only(fold(note("item/completed", item=item)), ToolCallView)
    assert (tool.arguments, tool.outcome, tool.meta) == (
        "pattern=df*",
        "df: DataFrame (3, 2)",
        "12 ms",
    )


def test_a_long_paragraph_is_not_reparsed_while_it_streams(parsed: list[int]) -> None:
    transcript = fold()
    for i in range(200):
        stream(transcript, f"chunk{i} ")
    assert parsed == []  # no new line: no block can have finished
    stream(transcript, "\n\nnext")
    assert len(parsed) == 1
    assert only(transcript, MessageView).html_segments[0].startswith("<p>chunk0")


# --------------------------------------------------------------------------- adversarial

#: Trojan Source: shown, this reads as a comment; run, the code after it is live.
_TROJAN = 'ok = check(user)  # \u202e \u2066if user.admin\u2069 \u2066\nrm("/")'


def test_code_a_person_approves_or_inserts_shows_its_direction_controls() -> None:
    transcript = fold(
        run_python_started(_TROJAN),
        ToolAsked("call-1", key="call-1", code=_TROJAN),
        CellProposed("call-2", 1, _TROJAN, "try it"),
    )
    approval, proposal = only(transcript, ApprovalView), only(transcript, ProposalView)
    for shown in (approval.code_html, approval.command, proposal.code_html,
                  only(transcript, ToolCallView).code_html):  # fmt: skip
        assert "\u202e" not in shown and "\u2066" not in shown
        assert "⟨U+202E⟩" in shown and "⟨U+2066⟩" in shown
    assert proposal.code == _TROJAN  # what "Insert below" and Copy put in: exactly the code


def test_commands_paths_and_diffs_show_invisible_characters() -> None:
    command = {"type": "commandExecution", "id": "c1", "status": "inProgress",
               "command": "rm -rf ./build\u202e/txt.*", "cwd": "/tmp/wo\u200brk"}  # fmt: skip
    change = {"path": "src/ma\u200bin.py", "kind": "add", "diff": "x = 1\u2067\n"}
    transcript = fold(
        note("item/started", item=command),
        note("item/completed", item={"type": "fileChange", "id": "f1", "changes": [change]}),
        note("item/completed", item={"type": "webSearch", "id": "w1", "query": "a\u200bb"}),
    )
    shown = only(transcript, CommandView)
    assert (shown.command, shown.cwd) == ("rm -rf ./build⟨U+202E⟩/txt.*", "/tmp/wo⟨U+200B⟩rk")
    file = only(transcript, FileChangeView).files[0]
    assert (file.name, file.diff) == ("src/ma⟨U+200B⟩in.py", "+x = 1⟨U+2067⟩")
    assert only(transcript, LineView).text == "a⟨U+200B⟩b"


def test_a_streamed_answer_with_carriage_returns_loses_no_text() -> None:
    final = "para one\r\rpara two\n\nthird and more"
    transcript = fold(delta(final[:-12]))
    transcript.advance()  # commits the finished paragraphs
    transcript.apply(delta(final[-12:]))
    transcript.apply(message(final))
    assert "".join(only(transcript, MessageView).html_segments).endswith("<p>third and more</p>\n")


def test_code_is_highlighted_once_not_at_every_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    # views() runs at every flush that changed anything: re-highlighting every block's code
    # there made 40 large run_python calls cost 4 s per flush on the driver thread
    calls: list[str] = []
    highlight = sanitize.highlight_python
    monkeypatch.setattr(
        sanitize, "highlight_python", lambda code: calls.append(code) or highlight(code)
    )
    transcript = fold(
        run_python_started("x = 1"),
        ToolAsked("call-1", key="call-1", code="x = 1"),
        CellProposed("call-2", 1, "y = 2", "then this"),
    )
    for _ in range(3):
        transcript.views()
    assert sorted(calls) == ["x = 1", "x = 1", "y = 2"]  # the approval's, the call's, the cell's
