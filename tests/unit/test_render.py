"""The transcript model and the safe renderings of a turn (no widgets, no kernel)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from codex_notebook.messages import Notification, ServerRequest
from codex_notebook.notebook.render import (
    ApprovalBlock,
    CommandBlock,
    DiffBlock,
    ErrorBlock,
    FileChangeBlock,
    LineBlock,
    MessageBlock,
    NoticeBlock,
    PlanBlock,
    ReasoningBlock,
    TextStream,
    TranscriptModel,
    render_markdown,
    render_static,
    strip_ansi,
    u16len,
)
from tests.html_checks import assert_inert

TURN = "turn-1"
THREAD = "thread-1"


def _transcripts_dir() -> Path:
    local = Path(__file__).parents[1] / "fixtures" / "transcripts"
    return local if any(local.glob("*.jsonl")) else Path("/work/shared/fixtures/transcripts")


def note(method: str, **params: Any) -> Notification:
    return Notification(method, {"method": method, "params": params}, TURN, THREAD)


def request(method: str, request_id: Any = 0, **params: Any) -> ServerRequest:
    raw = {"id": request_id, "method": method, "params": params}
    return ServerRequest(method, raw, TURN, THREAD, lambda message: None)


def fold(*events: Notification) -> TranscriptModel:
    model = TranscriptModel()
    model.apply_all(events)
    return model


def replay(name: str) -> TranscriptModel:
    """Fold the first turn of a recorded transcript; server requests get the recorded answer."""
    path = _transcripts_dir() / f"{name}.jsonl"
    if not path.exists():
        pytest.skip(f"no transcript {path}")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    answers = {
        r["msg"]["id"]: r["msg"]["result"]
        for r in records
        if r["dir"] == "to_server" and "result" in r["msg"] and "method" not in r["msg"]
    }
    model = TranscriptModel()
    turn_id = None
    for record in records:
        msg = record["msg"]
        if record["dir"] != "from_server" or "method" not in msg:
            continue
        params = msg.get("params") or {}
        tid = params.get("turnId") or (params.get("turn") or {}).get("id")
        if tid is None:
            continue
        turn_id = turn_id or tid
        if tid != turn_id:
            continue
        if "id" in msg:
            req = ServerRequest(msg["method"], msg, tid, params.get("threadId"), lambda m: None)
            model.apply(req)
            req.respond(answers[msg["id"]])
        else:
            model.apply(Notification(msg["method"], msg, tid, params.get("threadId")))
    return model


def kinds(model: TranscriptModel) -> list[str]:
    return [block.kind for block in model.blocks]


# --------------------------------------------------------------------------- markdown safety


def test_script_tags_are_shown_as_text_and_never_run() -> None:
    html = render_markdown("hi <script>window.__pwned=1</script> there")
    assert_inert(html)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_raw_img_with_onerror_is_shown_as_text() -> None:
    html = render_markdown("<img src=x onerror=alert(1)>")
    assert_inert(html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_javascript_links_are_inert() -> None:
    html = render_markdown("[x](javascript:alert(1)) and <a href='javascript:alert(2)'>y</a>")
    assert_inert(html)
    assert "<a " not in html


def test_event_handler_attributes_never_become_attributes() -> None:
    html = render_markdown('<p onclick="alert(1)" style="color:red">x</p><iframe src="x"></iframe>')
    assert_inert(html)


def test_markdown_image_becomes_a_link_and_is_never_loaded() -> None:
    html = render_markdown("![chart](https://example.com/c.png)")
    assert "<img" not in html
    assert 'href="https://example.com/c.png"' in html
    assert "[image: chart]" in html


def test_https_links_open_in_a_new_tab_without_opener() -> None:
    html = render_markdown("[docs](https://example.com)")
    assert 'href="https://example.com"' in html
    assert 'target="_blank"' in html
    assert "noopener" in html


def test_tables_render() -> None:
    html = render_markdown("| a | b |\n|:-|-:|\n| 1 | 2 |")
    assert "<table>" in html
    assert "<th" in html
    assert "<td" in html
    assert "text-align:right" in html


def test_fenced_code_renders_escaped() -> None:
    html = render_markdown("```python\nif a < b:\n    print('<b>')\n```")
    assert "<pre><code>" in html
    assert "&lt;b&gt;" in html


def test_strikethrough_renders() -> None:
    assert "<s>gone</s>" in render_markdown("~~gone~~")


# --------------------------------------------------------------------------- text helpers


def test_ansi_colour_and_cursor_codes_are_stripped() -> None:
    assert strip_ansi("\x1b[31mred\x1b[0m \x1b[2K\x1b]0;title\x07ok\r\n") == "red ok\n"


def test_ansi_sequence_split_across_deltas_is_stripped() -> None:
    model = fold(
        note("item/commandExecution/outputDelta", itemId="c1", delta="a\x1b[3"),
        note("item/commandExecution/outputDelta", itemId="c1", delta="1mred\x1b[0m\r"),
        note("item/commandExecution/outputDelta", itemId="c1", delta="\nb"),
    )
    block = model.blocks[0]
    assert isinstance(block, CommandBlock)
    assert block.output.text == "ared\nb"


def test_command_output_stays_text() -> None:
    model = fold(
        note("item/commandExecution/outputDelta", itemId="c1", delta="<b>bold</b>\n"),
    )
    assert model.blocks[0].trait()["text"] == "<b>bold</b>\n"
    html = render_static(model, {"status": "running"})["text/html"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_offsets_count_utf16_units_like_javascript() -> None:
    assert u16len("a😀é") == 4
    stream = TextStream()
    stream.append("😀")
    stream.append("x")
    assert stream.take_pending() == (0, "😀x")
    stream.append("y")
    assert stream.take_pending() == (3, "y")


def test_stream_remembers_only_what_was_appended_since_the_flush() -> None:
    stream = TextStream()
    stream.append("hello ")
    stream.mark_flushed()
    stream.append("world")
    assert stream.take_pending() == (6, "world")
    assert stream.take_pending() is None


def test_long_command_output_is_capped_with_a_hidden_lines_count() -> None:
    model = fold(
        *[
            note("item/commandExecution/outputDelta", itemId="c1", delta=f"line {i}\n")
            for i in range(1000)
        ]
    )
    block = model.blocks[0]
    assert isinstance(block, CommandBlock)
    trait = block.trait()
    assert trait["text"].count("\n") == 400
    assert trait["text"].endswith("line 999\n")
    assert trait["hidden_lines"] == 600
    assert trait["base"] + u16len(trait["text"]) == block.output.length


# --------------------------------------------------------------------------- the fold


def test_text_turn_folds_into_one_final_answer() -> None:
    model = replay("text_turn")
    assert kinds(model) == ["message"]
    assert model.text.strip() == "chunk0 chunk1 chunk2 chunk3 chunk4 chunk5 chunk6 chunk7"
    assert model.status == "completed"
    assert model.blocks[0].trait()["html"].startswith("<p>chunk0")


def test_tool_call_folds_into_command_then_answer() -> None:
    model = replay("tool_call")
    assert kinds(model) == ["command", "message"]
    command = model.blocks[0].trait()
    assert command["command"] == "echo hello from the sandbox"
    assert command["exit_code"] == 0
    assert command["status"] == "completed"
    assert command["text"] == "hello from the sandbox\n"
    assert model.usage is not None
    assert model.usage.total_tokens == 30


def test_approval_accept_folds_into_command_approval_answer() -> None:
    model = replay("approval_accept")
    assert kinds(model) == ["approval", "command", "message"]  # asked before it ran
    approval = model.blocks[0]
    assert isinstance(approval, ApprovalBlock)
    assert approval.command == "echo needs approval"
    assert approval.reason == "Allow the harness to run this command?"
    assert approval.decisions == ("accept", "cancel")  # what availableDecisions allows
    assert (approval.state, approval.decision) == ("decided", "accept")


def test_approval_decline_shows_the_command_as_declined() -> None:
    model = replay("approval_decline")
    approval, command, _message = model.blocks
    assert isinstance(command, CommandBlock)
    assert command.status == "declined"
    assert isinstance(approval, ApprovalBlock)
    assert approval.decision == "decline"


def test_approval_cancel_ends_interrupted() -> None:
    model = replay("approval_cancel")
    assert model.status == "interrupted"
    approval = model.blocks[0]
    assert isinstance(approval, ApprovalBlock)
    assert approval.decision == "cancel"


def test_model_failure_folds_into_one_error_with_a_hint() -> None:
    model = replay("model_failure")
    assert model.status == "failed"
    (error,) = model.blocks
    assert isinstance(error, ErrorBlock)
    assert error.code == "internalServerError"
    assert "high demand" in error.message
    assert "Re-run" in error.hint


def test_interrupted_turn_keeps_the_partial_answer() -> None:
    model = replay("interrupt")
    assert model.status == "interrupted"
    (message,) = model.blocks
    assert message.final
    assert model.text == "chunk0 "


def test_user_message_is_not_repeated() -> None:
    model = fold(
        note("item/started", item={"type": "userMessage", "id": "u1", "content": []}),
        note("item/completed", item={"type": "userMessage", "id": "u1", "content": []}),
    )
    assert model.blocks == []


def test_unknown_item_type_becomes_an_unsupported_line() -> None:
    model = fold(note("item/completed", item={"type": "hologram", "id": "h1"}))
    (line,) = model.blocks
    assert isinstance(line, LineBlock)
    assert (line.label, line.text) == ("unsupported item", "hologram")


def test_unknown_notification_carrying_an_item_becomes_an_unsupported_line() -> None:
    model = fold(note("item/teleported", item={"type": "portal", "id": "p1"}))
    assert [(b.label, b.text) for b in model.blocks if isinstance(b, LineBlock)] == [
        ("unsupported item", "portal")
    ]


def test_unknown_notification_without_an_item_is_ignored() -> None:
    assert fold(note("thread/weather/changed", sunny=True)).blocks == []


def test_malformed_params_do_not_raise() -> None:
    model = fold(
        note("item/completed", item="not a dict"),
        note("item/agentMessage/delta", itemId=3, delta=None),
        note("turn/plan/updated", plan="nope"),
        note("error", error="boom"),
    )
    assert all(block.kind in ("message", "plan", "error") for block in model.blocks)


def test_retried_error_is_a_notice_not_a_failure() -> None:
    model = fold(
        note("error", error={"message": "stream disconnected"}, willRetry=True),
        note("error", error={"message": "stream disconnected"}, willRetry=True),
    )
    (notice,) = model.blocks
    assert isinstance(notice, NoticeBlock)
    assert "retrying (attempt 2)" in notice.text
    assert model.error is None


def test_token_usage_sums_last_of_each_update() -> None:
    last = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, "cachedInputTokens": 2}
    model = fold(
        note("thread/tokenUsage/updated", tokenUsage={"last": last, "total": last}),
        note("thread/tokenUsage/updated", tokenUsage={"last": last, "total": last}),
    )
    assert model.usage is not None
    assert (model.usage.total_tokens, model.usage.cached_input_tokens) == (30, 4)


def test_reasoning_summary_streams_then_renders_with_its_title() -> None:
    model = fold(
        note("item/started", item={"type": "reasoning", "id": "r1", "summary": []}),
        note(
            "item/reasoning/summaryTextDelta",
            itemId="r1",
            delta="**Reading files**\n\nI",
            summaryIndex=0,
        ),
    )
    block = model.blocks[0]
    assert isinstance(block, ReasoningBlock)
    assert block.trait()["text"].startswith("**Reading")
    assert block.trait()["title"] == "Reading files"
    model.apply(
        note(
            "item/completed",
            item={"type": "reasoning", "id": "r1", "summary": ["**Reading files**\n\nI look."]},
        )
    )
    assert "<strong>Reading files</strong>" in model.blocks[0].trait()["html"]


def test_empty_reasoning_is_hidden_once_complete() -> None:
    model = fold(
        note("item/started", item={"type": "reasoning", "id": "r1", "summary": []}),
        note("item/completed", item={"type": "reasoning", "id": "r1", "summary": []}),
    )
    assert model.blocks == []


def test_plan_updates_in_place() -> None:
    steps = [{"step": "read", "status": "completed"}, {"step": "write", "status": "inProgress"}]
    model = fold(
        note("turn/plan/updated", plan=[{"step": "read", "status": "pending"}]),
        note("turn/plan/updated", plan=steps, explanation="two steps"),
    )
    (plan,) = model.blocks
    assert isinstance(plan, PlanBlock)
    assert plan.steps == steps
    assert plan.explanation == "two steps"


def test_file_change_and_turn_diff_are_shown_with_counts() -> None:
    diff = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1,2 @@\n-a\n+b\n+c"
    change = {"path": "app.py", "kind": {"type": "update", "move_path": None}, "diff": diff}
    model = fold(
        note(
            "item/started",
            item={"type": "fileChange", "id": "f1", "changes": [change], "status": "inProgress"},
        ),
        note("turn/diff/updated", diff=diff),
        note(
            "item/completed",
            item={"type": "fileChange", "id": "f1", "changes": [change], "status": "completed"},
        ),
    )
    assert kinds(model) == ["file_change", "diff"]
    file_change, turn_diff = model.blocks
    assert isinstance(file_change, FileChangeBlock)
    assert isinstance(turn_diff, DiffBlock)
    assert file_change.trait()["files"][0]["added"] == 2
    assert turn_diff.trait()["files"] == [{"path": "app.py", "added": 2, "removed": 1}]


def test_added_file_content_is_shown_as_added_lines() -> None:
    change = {"path": "new.txt", "kind": {"type": "add"}, "diff": "one\ntwo\n"}
    model = fold(
        note(
            "item/completed",
            item={"type": "fileChange", "id": "f1", "changes": [change], "status": "completed"},
        )
    )
    assert model.blocks[0].trait()["files"][0]["diff"] == "+one\n+two"


def test_web_search_and_mcp_calls_are_compact_lines() -> None:
    model = fold(
        note("item/completed", item={"type": "webSearch", "id": "w1", "query": "codex docs"}),
        note(
            "item/completed",
            item={
                "type": "mcpToolCall",
                "id": "m1",
                "server": "gh",
                "tool": "search",
                "status": "failed",
                "error": {"message": "nope"},
                "arguments": {},
            },
        ),
    )
    lines = [
        (b.label, b.text, b.status, b.detail) for b in model.blocks if isinstance(b, LineBlock)
    ]
    assert lines == [
        ("searched the web", "codex docs", "", ""),
        ("tool", "gh.search", "failed", "nope"),
    ]


def test_approval_without_available_decisions_offers_all_four() -> None:
    model = fold(request("item/commandExecution/requestApproval", 7, command="ls", itemId="c1"))
    block = model.approval(7)
    assert block is not None
    assert block.decisions == ("accept", "acceptForSession", "decline", "cancel")
    assert model.pending_approvals == [block]


def test_approval_answered_elsewhere_is_shown_resolved() -> None:
    req = request("item/fileChange/requestApproval", 3, itemId="f1")
    model = fold(req)
    req.settle()
    model.refresh_requests()
    block = model.approval(3)
    assert block is not None
    assert block.state == "resolved"


def test_pending_approval_expires_when_the_turn_ends() -> None:
    model = fold(
        request("item/commandExecution/requestApproval", 1, command="ls"),
        note("turn/completed", turn={"id": TURN, "status": "interrupted"}),
    )
    block = model.approval(1)
    assert block is not None
    assert block.state == "expired"


def test_streaming_message_becomes_final_html_on_completion() -> None:
    model = fold(note("item/agentMessage/delta", itemId="m1", delta="**hi**"))
    assert model.blocks[0].trait() == {
        "id": "m1", "kind": "message", "final": False, "role": "answer", "text": "**hi**",
    }  # fmt: skip
    model.apply(note("item/completed", item={"type": "agentMessage", "id": "m1", "text": "**hi**"}))
    assert model.blocks[0].trait()["html"] == "<p><strong>hi</strong></p>\n"


def test_commentary_phase_is_marked() -> None:
    model = fold(
        note(
            "item/completed",
            item={"type": "agentMessage", "id": "m1", "text": "Looking…", "phase": "commentary"},
        )
    )
    block = model.blocks[0]
    assert isinstance(block, MessageBlock)
    assert block.role == "commentary"


# --------------------------------------------------------------------------- static bundle


HEADER = {"thread": "analysis", "status": "completed", "started_at": 0, "ended_at": 2500}


def test_static_bundle_contains_answer_status_and_thread() -> None:
    model = replay("tool_call")
    bundle = render_static(model, HEADER)
    assert set(bundle) == {"text/html", "text/markdown", "text/plain"}
    for mime in bundle.values():
        assert "analysis" in mime
        assert "completed" in mime
        assert "hello from the sandbox" in mime


def test_static_html_uses_inline_styles_only() -> None:
    bundle = render_static(replay("approval_accept"), HEADER)
    html = bundle["text/html"]
    assert "<style" not in html
    assert "class=" not in html
    assert "style=" in html


def test_static_html_keeps_model_html_inert() -> None:
    model = fold(
        note(
            "item/completed",
            item={
                "type": "agentMessage",
                "id": "m1",
                "text": "<img src=x onerror=alert(1)><script>x()</script>",
            },
        )
    )
    html = render_static(model, HEADER)["text/html"]
    assert_inert(html, our_styles=True)
    assert "&lt;script&gt;x()&lt;/script&gt;" in html


def test_static_markdown_fences_commands_with_exit_codes() -> None:
    markdown = render_static(replay("tool_call"), HEADER)["text/markdown"]
    assert "```console\n$ echo hello from the sandbox\nhello from the sandbox\n```" in markdown
    assert "exit code 0" in markdown


def test_static_markdown_puts_diffs_in_diff_fences() -> None:
    diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b"
    markdown = render_static(fold(note("turn/diff/updated", diff=diff)), HEADER)["text/markdown"]
    assert f"```diff\n{diff}\n```" in markdown


def test_static_markdown_quotes_errors_and_approvals() -> None:
    markdown = render_static(replay("model_failure"), {**HEADER, "status": "failed"})[
        "text/markdown"
    ]
    assert re.search(r"^> \*\*Error:\*\* We", markdown, re.MULTILINE)
    markdown = render_static(replay("approval_accept"), HEADER)["text/markdown"]
    assert "> **⚠ Run this command?**" in markdown
    assert "Decision: **Approved**" in markdown


def test_static_markdown_neutralizes_raw_html_but_keeps_code() -> None:
    text = "Use `List<int>` here <img src=x onerror=alert(1)>\n\n```\n<b>kept</b>\n```"
    model = fold(note("item/completed", item={"type": "agentMessage", "id": "m1", "text": text}))
    markdown = render_static(model, HEADER)["text/markdown"]
    assert "`List<int>`" in markdown
    assert "&lt;img src=x" in markdown
    assert "\n<b>kept</b>\n" in markdown


def test_static_markdown_does_not_trust_escaped_backticks() -> None:
    model = fold(
        note(
            "item/completed",
            item={"type": "agentMessage", "id": "m1", "text": r"\`<img src=x onerror=alert(1)>\`"},
        )
    )
    markdown = render_static(model, HEADER)["text/markdown"]
    assert "<img" not in markdown


def test_static_header_shows_demo_badge_and_notice() -> None:
    bundle = render_static(TranscriptModel(), {**HEADER, "demo": True, "notice": "no sandbox"})
    assert "demo model" in bundle["text/html"]
    assert "no sandbox" in bundle["text/html"]
    assert "demo model" in bundle["text/markdown"]
