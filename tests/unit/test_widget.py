"""TurnView → TurnWidget traffic, captured from ipywidgets' dummy comm (no kernel)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from codex_notebook.messages import Notification, ServerRequest
from codex_notebook.notebook.blocks import HeaderView
from codex_notebook.notebook.sanitize import markdown_html
from codex_notebook.notebook.widget import TurnView
from tests.unit.transcript_helpers import delta, message, note

RUNNING = HeaderView(thread="main", status="running", started_at=1_000_000)


def approval_request(request_id: Any = 0) -> ServerRequest:
    method = "item/commandExecution/requestApproval"
    raw = {
        "id": request_id,
        "method": method,
        "params": {"command": "rm -rf build", "itemId": "c1"},
    }
    return ServerRequest(method, raw, "turn-1", "thread-1", lambda message: None)


class Wire:
    """Everything the widget would put on its comm."""

    def __init__(self, view: TurnView) -> None:
        self.messages: list[dict[str, Any]] = []
        view.widget._send = lambda msg, buffers=None: self.messages.append(msg)

    def custom(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            m["content"]
            for m in self.messages
            if m["method"] == "custom" and kind in (None, m["content"]["type"])
        ]

    def updates(self, key: str) -> list[Any]:
        return [
            m["state"][key] for m in self.messages if m["method"] == "update" and key in m["state"]
        ]

    def view_blocks(self, start: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The blocks a view that saw every message would show (as the JS applies them)."""
        blocks = list(start or [])
        for m in self.messages:
            if m["method"] == "update" and "blocks" in m["state"]:
                blocks = list(m["state"]["blocks"])
            elif m["method"] == "custom":
                c = m["content"]
                if c["type"] == "snapshot":
                    blocks = list(c["blocks"])
                elif c["type"] == "remove":
                    blocks = [b for b in blocks if b["id"] != c["block"]]
                elif c["type"] == "upsert":
                    blocks = [b for b in blocks if b["id"] != c["block"]["id"]]
                    blocks.insert(c["index"], c["block"])
        return blocks

    def view_text(self, block_id: str) -> tuple[str, str]:
        """``(rendered html, tail text)`` of a message, as the JS builds it from the messages."""
        html, _, tail = self.view_stream(block_id)
        return html, tail

    def view_stream(self, block_id: str) -> tuple[str, int, str]:
        """``(rendered html, base, tail)``: ``base`` is where the tail starts in the text
        (offsets count UTF-16 units, so the tail is kept as UTF-16)."""
        html: list[str] = []
        tail = b""
        base = 0

        def append(offset: int, text: str) -> bytes:
            have = base + len(tail) // 2
            assert offset <= have, "text must not leave a gap"
            return tail + text.encode("utf-16-le")[2 * (have - offset) :]

        for m in self.messages:
            if m["method"] == "update" and "blocks" in m["state"]:
                c = {"type": "snapshot", "blocks": m["state"]["blocks"]}
            elif m["method"] == "custom":
                c = m["content"]
            else:
                continue
            if c["type"] in ("upsert", "snapshot"):
                for b in [c["block"]] if c["type"] == "upsert" else c["blocks"]:
                    if b["id"] == block_id:
                        html, base = list(b["html_segments"]), b["committed"]
                        tail = b["tail"].encode("utf-16-le")
            elif c.get("block") == block_id and c["type"] == "append":
                tail = append(c["offset"], c["text"])
            elif c.get("block") == block_id and c["type"] == "commit":
                if c["upto"] > base:
                    html += c["html"]
                    tail = tail[2 * (c["upto"] - base) :]
                    base = c["upto"]
                if "text" in c:
                    tail = append(c["offset"], c["text"])
        return "".join(html), base, tail.decode("utf-16-le")


def click(view: TurnView, content: dict[str, Any]) -> None:
    """What ipywidgets does with a custom message from the browser."""
    view.widget._handle_custom_msg(content, [])


@pytest.fixture
def view() -> TurnView:
    return TurnView(RUNNING, clock=lambda: 1_000.0)


# --------------------------------------------------------------------------- streaming


def test_a_new_streaming_block_is_published_with_its_text_so_far(view: TurnView) -> None:
    wire = Wire(view)
    view.apply([delta("Hel"), delta("lo")])
    view.flush(RUNNING)
    (blocks,) = wire.updates("blocks")
    assert blocks == [
        {"kind": "message", "id": "m1", "final": False, "role": "answer", "language": None,
         "html_segments": [], "committed": 0, "tail": "Hello", "rewritten": False}
    ]  # fmt: skip
    assert wire.custom("append") == []


def test_appends_carry_the_offset_before_the_new_text(view: TurnView) -> None:
    view.apply([delta("Hello")])
    view.flush(RUNNING)
    wire = Wire(view)
    view.apply([delta(", wor"), delta("ld")])
    view.flush(RUNNING)
    view.apply([delta("!")])
    view.flush(RUNNING)
    assert wire.custom("append") == [
        {"type": "append", "block": "m1", "offset": 5, "text": ", world"},
        {"type": "append", "block": "m1", "offset": 12, "text": "!"},
    ]
    assert wire.updates("blocks") == []


def test_append_offsets_are_utf16_units(view: TurnView) -> None:
    view.apply([delta("😀")])
    view.flush(RUNNING)
    wire = Wire(view)
    view.apply([delta("a")])
    view.flush(RUNNING)
    assert wire.custom("append")[0]["offset"] == 2


def test_finished_markdown_is_committed_as_html_as_it_completes(view: TurnView) -> None:
    view.apply([delta("## A slow answer\n\n")])
    view.flush(RUNNING)
    wire = Wire(view)
    view.apply([delta("> quoted\n\n1. Each")])
    view.flush(RUNNING)
    assert wire.custom("commit") == [
        {"type": "commit", "block": "m1", "upto": 28,
         "html": ["<h2>A slow answer</h2>\n", "<blockquote>\n<p>quoted</p>\n</blockquote>\n"],
         "offset": 28, "text": "1. Each"}
    ]  # fmt: skip


def test_text_a_commit_covers_is_never_sent_as_text(view: TurnView) -> None:
    view.apply([delta("Intro")])
    view.flush(RUNNING)
    wire = Wire(view)
    view.apply([delta(" 😀 paragraph.\n\nNext one.\n\nLast")])
    view.flush(RUNNING)
    assert wire.custom("append") == []
    (commit,) = wire.custom("commit")
    assert (commit["upto"], commit["offset"], commit["text"]) == (32, 32, "Last")
    assert wire.view_text("m1") == ("<p>Intro 😀 paragraph.</p>\n<p>Next one.</p>\n", "Last")


def test_a_view_that_saw_every_message_shows_the_final_rendering_without_a_jump() -> None:
    view = TurnView(RUNNING)
    wire = Wire(view)
    text = "# Title\n\nOne paragraph.\n\n- a\n- b\n\n```py\nx < 1\n```\n\nThe end."
    for char in text:
        view.apply([delta(char)])
        view.flush(RUNNING)
    view.apply([message(text)])
    view.flush(RUNNING)
    html, tail = wire.view_text("m1")
    assert tail == ""
    assert html == markdown_html(text)
    assert wire.custom("final") == [{"type": "final", "block": "m1"}]


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(
            [
                *("# T", "\n", "\n\n", "word ", "*em* ", "- item", "```", "é", "😀", "| a |"),
                *("#", "***", "2", ". b", "|-", "\r"),  # line starts that a longer line undoes
            ]
        ),
        max_size=60,
    ),
    flushes=st.lists(st.booleans(), min_size=60, max_size=60),
)
@example(pieces=["word ", "😀", "\n\n", "word "], flushes=[True, False, False, True] + [False] * 56)
def test_a_view_following_the_wire_always_shows_the_streamed_text(
    pieces: list[str], flushes: list[bool]
) -> None:
    view = TurnView(RUNNING)
    wire = Wire(view)
    streamed = ""
    for piece, flush in zip(pieces, flushes, strict=False):
        view.apply([delta(piece)])
        streamed += piece
        if flush:
            view.flush(RUNNING)
            _, base, tail = wire.view_stream("m1")
            assert tail == streamed.encode("utf-16-le")[2 * base :].decode("utf-16-le")
    view.apply([message(streamed)])
    view.flush(RUNNING)
    if not streamed.strip():  # nothing to show: the block goes
        assert all(block["id"] != "m1" for block in wire.view_blocks())
        return
    html, tail = wire.view_text("m1")
    assert tail == ""
    assert html == markdown_html(streamed)


@pytest.mark.parametrize(
    ("streamed", "final"),
    [
        ("Hello\n\nWorld\n\nmore", "Totally different"),  # committed segments it lacks
        ("Hello world", "Hi"),  # shorter than the streamed tail
    ],
)
def test_a_final_text_unlike_the_streamed_one_replaces_what_the_view_shows(
    view: TurnView, streamed: str, final: str
) -> None:
    wire = Wire(view)
    view.apply([delta(streamed)])
    view.flush(RUNNING)
    view.apply([message(final)])
    view.flush(RUNNING)
    assert wire.view_text("m1") == (markdown_html(final), "")


def test_a_final_text_unlike_the_streamed_one_changes_the_blocks_shape(view: TurnView) -> None:
    # the view's signature covers every field but the streaming ones: a changed shape makes it
    # build the block anew, from an upsert or from a rewritten blocks trait alike
    wire = Wire(view)
    view.apply([delta("Hello world")])
    view.flush(RUNNING)
    view.apply([message("Hi")])
    view.flush(RUNNING)
    (published,) = [block for block in wire.view_blocks() if block["id"] == "m1"]
    assert published["rewritten"] is True


def test_flush_with_no_change_sends_nothing(view: TurnView) -> None:
    view.apply([delta("Hello")])
    view.flush(RUNNING)
    wire = Wire(view)
    assert view.flush(RUNNING) == 0
    assert wire.messages == []


def test_a_sync_request_gets_a_snapshot_with_all_text_so_far(view: TurnView) -> None:
    view.apply(
        [delta("Hello"), note("item/commandExecution/outputDelta", itemId="c1", delta="o\n")]
    )
    view.flush(RUNNING)
    view.apply([delta(" there")])  # not flushed yet: the snapshot carries it anyway
    wire = Wire(view)
    click(view, {"type": "sync"})
    (snapshot,) = wire.custom("snapshot")
    texts = {b["id"]: b.get("tail", b.get("text")) for b in snapshot["blocks"]}
    assert texts == {"m1": "Hello there", "c1": "o\n"}
    assert [m for m in wire.messages if m["method"] == "update"] == []


def test_appends_after_a_sync_continue_from_the_snapshot(view: TurnView) -> None:
    view.apply([delta("Hello")])
    view.flush(RUNNING)
    wire = Wire(view)
    click(view, {"type": "sync"})
    view.apply([delta("!")])
    view.flush(RUNNING)
    assert wire.custom("append") == [{"type": "append", "block": "m1", "offset": 5, "text": "!"}]


def test_later_blocks_go_as_upserts_until_they_add_up_to_the_trait(view: TurnView) -> None:
    view.apply([delta("x" * 2000)])
    view.flush(RUNNING)  # the first blocks are written to the trait
    wire = Wire(view)
    view.apply([note("item/completed", item={"type": "webSearch", "id": "w1", "query": "q"})])
    view.flush(RUNNING)
    assert wire.updates("blocks") == []
    (upsert,) = wire.custom("upsert")
    assert (upsert["index"], upsert["block"]["id"]) == (1, "w1")


def test_the_view_follows_upserts_and_removals_after_every_flush(view: TurnView) -> None:
    wire = Wire(view)
    reasoning = {"type": "reasoning", "id": "r1", "summary": []}
    script = [
        ([delta("a")], ["m1"]),
        ([note("item/started", item=reasoning)], ["m1", "r1"]),
        (
            [note("item/completed", item={"type": "webSearch", "id": "w1", "query": "q"})],
            ["m1", "r1", "w1"],
        ),
        ([note("item/completed", item=reasoning)], ["m1", "w1"]),
        ([note("turn/diff/updated", diff="+x")], ["m1", "w1", "turn-diff"]),
        ([delta("b", item="m2")], ["m1", "w1", "m2", "turn-diff"]),
    ]
    for events, expected in script:
        view.apply(events)
        view.flush(RUNNING)
        assert [b["id"] for b in wire.view_blocks()] == expected


def test_command_output_burst_beyond_the_cap_is_sent_as_one_reset(view: TurnView) -> None:
    view.apply([note("item/commandExecution/outputDelta", itemId="c1", delta="x\n")])
    view.flush(RUNNING)
    wire = Wire(view)
    chunk = note("item/commandExecution/outputDelta", itemId="c1", delta="y" * 100 + "\n")
    view.apply([chunk] * 1000)
    view.flush(RUNNING)
    (reset,) = wire.custom("reset")
    assert wire.custom("append") == []
    assert len(reset["text"]) <= 64 * 1024
    assert reset["base"] + len(reset["text"]) == 2 + 101 * 1000


def test_bytes_sent_matches_what_went_on_the_wire(view: TurnView) -> None:
    wire = Wire(view)
    view.apply([delta("Hello")])
    view.flush(RUNNING)
    view.apply([delta(" world")])
    sent = view.flush(RUNNING)
    assert sent == len(orjson.dumps(wire.messages[-1]["content"]))


# --------------------------------------------------------------------------- budgets


def test_a_streamed_100kb_markdown_answer_costs_at_most_three_times_its_size() -> None:
    now = [1_000.0]
    view = TurnView(RUNNING, clock=lambda: now[0])
    rng = random.Random(7)
    words = ["the", "quick", "**brown**", "fox", "`jumps`", "over", "a", "lazy", "dog"]
    parts = []
    for _ in range(20_000):
        parts.append(rng.choice(words))
        roll = rng.random()
        parts.append("\n\n" if roll < 0.02 else "\n- " if roll < 0.03 else " ")
    text = "".join(parts)
    assert len(text) > 100_000
    events: list[Notification] = [note("item/started", item={"type": "agentMessage", "id": "m1"})]
    events += [delta(p) for p in parts]
    events.append(message(text))
    # ~2,000 deltas/s arrive in reads of ~25; the driver flushes every 1/15 s of simulated time
    next_flush = now[0] + 1 / 15
    for start in range(0, len(events), 25):
        view.apply(events[start : start + 25])
        now[0] += 25 / 2000
        if now[0] >= next_flush:
            view.flush(RUNNING)
            next_flush = now[0] + 1 / 15
    view.finish()
    view.flush(replace(RUNNING, status="completed", ended_at=int(now[0] * 1000)))
    seconds = now[0] - 1_000.0
    assert view.bytes_sent <= 3 * len(text)
    assert view.messages_sent / seconds <= 20 * 2  # appends and commits travel together


def test_a_long_turn_with_many_commands_costs_linear_bytes(view: TurnView) -> None:
    output_chars = 0
    for i in range(40):
        item = {"type": "commandExecution", "id": f"c{i}", "command": "make", "cwd": "/w"}
        view.apply([note("item/started", item={**item, "status": "inProgress"})])
        view.flush(RUNNING)
        output = "".join(f"line {j} of command {i}\n" for j in range(150))
        output_chars += len(output)
        for start in range(0, len(output), 500):
            chunk = output[start : start + 500]
            view.apply([note("item/commandExecution/outputDelta", itemId=f"c{i}", delta=chunk)])
            view.flush(RUNNING)
        done = {**item, "status": "completed", "exitCode": 0, "aggregatedOutput": output}
        view.apply([note("item/completed", item=done)])
        view.flush(RUNNING)
    assert len(view.views()) == 40
    assert view.bytes_sent <= 6 * output_chars


# --------------------------------------------------------------------------- the person


def test_a_decision_click_calls_on_decision_and_writes_no_widget_state() -> None:
    calls: list[tuple[Any, str]] = []
    view = TurnView(RUNNING, on_decision=lambda key, d: calls.append((key, d)))
    view.apply([approval_request(5)])
    view.flush(RUNNING)
    wire = Wire(view)
    click(view, {"type": "decision", "request": 5, "decision": "decline"})
    click(view, {"type": "decision", "request": 5, "decision": "yolo"})
    assert calls == [(5, "decline")]
    assert wire.messages == []


def test_stop_message_calls_on_stop() -> None:
    stops: list[bool] = []
    view = TurnView(RUNNING, on_stop=lambda: stops.append(True))
    click(view, {"type": "stop"})
    assert stops == [True]


def test_callback_errors_do_not_escape_the_comm_handler(caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    click(TurnView(RUNNING, on_stop=boom), {"type": "stop"})
    assert "failed" in caplog.text


def test_the_header_goes_out_only_when_it_changed(view: TurnView) -> None:
    wire = Wire(view)
    view.flush(RUNNING)
    assert wire.updates("header") == []
    view.flush(replace(RUNNING, status="completed", ended_at=1_002_500))
    (header,) = wire.updates("header")
    assert (header["status"], header["elapsed"], header["clock"]) == (
        "completed",
        "2.5 s",
        1_000_000,
    )


# --------------------------------------------------------------------------- the end


def test_finish_shows_an_error_and_the_static_bundle_carries_it(view: TurnView) -> None:
    view.finish("codex app-server exited (code 1)\nstderr line 1\nstderr line 2")
    errored = replace(RUNNING, status="error")
    bundle = view.static_bundle(errored)
    assert "<strong>Error:</strong> codex app-server exited (code 1)<pre" in bundle["text/html"]
    assert "```\nstderr line 1\nstderr line 2\n```" in bundle["text/markdown"].replace("> ", "")
    assert "exited (code 1)" in bundle["text/plain"]


def test_finish_with_a_note_is_not_an_error(view: TurnView) -> None:
    view.finish(notice="Stopped before it started.")
    bundle = view.static_bundle(replace(RUNNING, status="interrupted"))
    assert [v.kind for v in view.views()] == ["notice"]
    assert "Error" not in bundle["text/markdown"]


def test_close_ends_the_comm_and_forgets_the_handlers(view: TurnView) -> None:
    from ipywidgets.widgets.widget import _instances

    ids = {view.widget.model_id, view.widget.layout.model_id}
    view.close()
    assert not ids & set(_instances)
    assert view.widget.comm is None


class _Manager:
    def __init__(self, live: set[str]) -> None:
        self.live = live

    def list_subshell(self) -> list[str]:
        return sorted(self.live)


class _Comm:
    """ipykernel 7.4's comm, as far as reply routing goes."""

    def __init__(self, remembered: str | None, live: set[str]) -> None:
        self.remembered = remembered
        self.kernel = type("K", (), {"shell_channel_thread": type("T", (), {})()})()
        self.kernel.shell_channel_thread.manager = _Manager(live)

    def _reply_subshell_for(self, data: Any, default: Any) -> Any:
        return self.remembered


def test_a_click_goes_to_the_subshell_it_names_when_the_remembered_one_is_gone() -> None:
    from codex_notebook.notebook.widget import route_replies_to_live_subshells

    comm = _Comm(remembered="deleted-by-a-reload", live={"current"})
    route_replies_to_live_subshells(comm)
    assert comm._reply_subshell_for({}, "current") == "current"
    comm.remembered = "current"
    assert comm._reply_subshell_for({}, None) == "current"  # still alive: kept
    comm.remembered = None
    assert comm._reply_subshell_for({}, "x") is None  # the main shell


def test_a_saved_mid_turn_output_says_what_it_is_to_readers_without_widgets() -> None:
    shown = TurnView(RUNNING).widget._repr_mimebundle_()
    assert shown is not None
    bundle = shown[0]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "saved while it was running" in bundle["text/plain"]
    assert "saved while it was running" in bundle["text/html"]
