"""The widget's view run under node (a recording DOM, widget_dom.mjs): untrusted text from
the model, commands and the server only ever becomes text or a single class token."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from codex_notebook.notebook import widget as widget_module
from codex_notebook.notebook.sanitize import markdown_html
from codex_notebook.notebook.transcript import CellProposed, ToolAsked, Transcript
from tests.unit.transcript_helpers import HEADER, delta, fold, message, note, request

WIDGET_JS = Path(widget_module.__file__).parent / "static" / "turn_widget.js"
HARNESS = Path(__file__).parent / "widget_dom.mjs"
ATTACK = "<img src=x onerror=alert(1)><script>window.__pwned=1</script>"
#: a status with a space: as a class name it would add a class of the server's choosing
STATUS = "completed injected-class"


def _run(transcript: Transcript, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the widget's JavaScript")
    data = {
        "header": HEADER.to_json(),
        "blocks": [view.to_json() for view in transcript.views()],
        "messages": messages or [],
    }
    out = subprocess.run(
        [node, str(HARNESS), str(WIDGET_JS)],
        input=json.dumps(data), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _hostile() -> Transcript:
    command = {"type": "commandExecution", "id": "c1", "command": ATTACK, "cwd": ATTACK,
               "status": STATUS, "aggregatedOutput": ATTACK, "exitCode": 0}  # fmt: skip
    change = {"path": ATTACK, "kind": "add", "diff": ATTACK}
    return fold(
        message(f"# {ATTACK}\n\n- {ATTACK}\n\n```\n{ATTACK}\n```"),
        note("item/completed", item=command),
        note(
            "item/completed",
            item={"type": "fileChange", "id": "f1", "status": STATUS, "changes": [change]},
        ),
        note("turn/plan/updated", explanation=ATTACK, plan=[{"step": ATTACK, "status": STATUS}]),
        note("turn/diff/updated", diff=f"diff --git a/x b/x\n+{ATTACK}"),
        request(
            "item/commandExecution/requestApproval", 7, command=ATTACK, reason=ATTACK, cwd=ATTACK
        ),
        ToolAsked("call-1", key="call-1", code=ATTACK),
        CellProposed("call-2", 1, ATTACK, ATTACK),
        note("item/completed", item={"type": "webSearch", "id": "w1", "query": ATTACK}),
        note("error", error={"message": f"{ATTACK}\n{ATTACK}"}),
        note("warning", message=ATTACK),
    )


def _sanitized(blocks: list[dict[str, Any]]) -> set[str]:
    """The fields Python sanitized: the only ones the view may write as HTML."""
    found: set[str] = set()
    for block in blocks:
        found.update(block.get("html_segments", ()))
        found.update(
            block[k] for k in ("reason_html", "code_html", "explanation_html") if k in block
        )
    return found


def test_the_view_writes_as_html_only_what_python_sanitized() -> None:
    transcript = _hostile()
    blocks = [view.to_json() for view in transcript.views()]
    result = _run(transcript)
    assert result["innerHTML"]
    assert set(result["innerHTML"]) <= _sanitized(blocks)
    assert ATTACK in result["text"]  # shown as text


def test_a_commit_writes_the_segments_it_carries_and_nothing_else() -> None:
    transcript = fold(note("item/agentMessage/delta", itemId="m1", delta=f"{ATTACK}\n\n"))
    segment = "<p>&lt;img src=x onerror=alert(1)&gt;</p>\n"
    commit = {"type": "commit", "block": "m1", "upto": 10, "html": [segment],
              "offset": len(ATTACK) + 2, "text": ATTACK}  # fmt: skip
    result = _run(
        transcript, [commit, {"type": "append", "block": "m1", "offset": 0, "text": ATTACK}]
    )
    assert result["innerHTML"] == [segment]
    assert ATTACK in result["text"]


def test_a_server_status_becomes_one_class_token() -> None:
    result = _run(_hostile())
    tokens = {token for names in result["classes"] for token in names.split()}
    assert "injected-class" not in tokens


def test_a_snapshot_with_a_rewritten_final_text_builds_the_block_anew() -> None:
    # streamed and final renderings with as many segments and the same committed offset: only
    # the block's `rewritten` mark tells the view that what it shows is not the final text
    streamed = fold(delta("ab\n\ncd"))
    streamed.advance()
    final = fold(delta("ab\n\ncd"))
    final.advance()
    final.apply(message("xy\n\n"))
    (before,) = [view.to_json() for view in streamed.views()]
    (after,) = [view.to_json() for view in final.views()]
    assert (len(before["html_segments"]), before["committed"]) == (
        len(after["html_segments"]),
        after["committed"],
    )
    result = _run(streamed, [{"type": "snapshot", "blocks": [after]}])
    assert result["innerHTML"][-1] == markdown_html("xy\n\n")
