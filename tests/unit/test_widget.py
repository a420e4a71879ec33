"""TurnView → TurnWidget traffic, captured from ipywidgets' dummy comm (no kernel)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from codex_notebook.messages import Notification, ServerRequest
from codex_notebook.notebook.widget import TurnView
from codex_notebook.results import TurnResult, Usage

TURN = "turn-1"
THREAD = "thread-1"


def note(method: str, **params: Any) -> Notification:
    return Notification(method, {"method": method, "params": params}, TURN, THREAD)


def delta(text: str, item: str = "m1") -> Notification:
    return note("item/agentMessage/delta", itemId=item, delta=text)


def approval_request(
    request_id: Any = 0, sent: list[dict[str, Any]] | None = None
) -> ServerRequest:
    method = "item/commandExecution/requestApproval"
    raw = {
        "id": request_id,
        "method": method,
        "params": {"command": "rm -rf build", "itemId": "c1"},
    }
    return ServerRequest(method, raw, TURN, THREAD, (sent if sent is not None else []).append)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


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

    def clear(self) -> None:
        self.messages.clear()

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


def click(view: TurnView, content: dict[str, Any]) -> None:
    """What ipywidgets does with a custom message from the browser."""
    view.widget._handle_custom_msg(content, [])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def view(clock: Clock) -> TurnView:
    return TurnView(thread_name="main", prompt="hello", clock=clock)


def test_new_streaming_block_is_published_with_its_text_so_far(view: TurnView) -> None:
    wire = Wire(view)
    view.apply([delta("Hel"), delta("lo")])
    view.flush()
    (blocks,) = wire.updates("blocks")
    assert blocks == [
        {"id": "m1", "kind": "message", "final": False, "role": "answer", "text": "Hello"}
    ]
    assert wire.custom("append") == []


def test_appends_carry_the_offset_before_the_new_text(view: TurnView) -> None:
    view.apply([delta("Hello")])
    view.flush()
    wire = Wire(view)
    view.apply([delta(", wor"), delta("ld")])
    view.flush()
    view.apply([delta("!")])
    view.flush()
    assert wire.custom("append") == [
        {"type": "append", "block": "m1", "offset": 5, "text": ", world"},
        {"type": "append", "block": "m1", "offset": 12, "text": "!"},
    ]
    assert wire.updates("blocks") == []


def test_append_offsets_are_utf16_units(view: TurnView) -> None:
    view.apply([delta("😀")])
    view.flush()
    wire = Wire(view)
    view.apply([delta("a")])
    view.flush()
    assert wire.custom("append")[0]["offset"] == 2


def test_flush_with_no_change_sends_nothing(view: TurnView) -> None:
    view.apply([delta("Hello")])
    view.flush()
    wire = Wire(view)
    assert view.flush() == 0
    assert wire.messages == []


def test_sync_request_gets_a_snapshot_with_all_text_so_far(view: TurnView) -> None:
    view.apply(
        [delta("Hello"), note("item/commandExecution/outputDelta", itemId="c1", delta="out\n")]
    )
    view.flush()
    view.apply([delta(" there")])  # not flushed yet: the snapshot carries it anyway
    wire = Wire(view)
    click(view, {"type": "sync"})
    (snapshot,) = wire.custom("snapshot")
    assert {b["id"]: b["text"] for b in snapshot["blocks"]} == {"m1": "Hello there", "c1": "out\n"}
    assert [m for m in wire.messages if m["method"] == "update"] == []


def test_appends_after_a_sync_continue_from_the_snapshot(view: TurnView) -> None:
    view.apply([delta("Hello")])
    view.flush()
    wire = Wire(view)
    click(view, {"type": "sync"})
    view.apply([delta("!")])
    view.flush()
    assert wire.custom("append") == [{"type": "append", "block": "m1", "offset": 5, "text": "!"}]


def test_later_blocks_go_as_upserts_until_they_add_up_to_the_trait(view: TurnView) -> None:
    view.apply([delta("x" * 2000)])
    view.flush()  # the first blocks are written to the trait
    wire = Wire(view)
    view.apply([note("item/completed", item={"type": "webSearch", "id": "w1", "query": "q"})])
    view.flush()
    assert wire.updates("blocks") == []
    (upsert,) = wire.custom("upsert")
    assert (upsert["index"], upsert["block"]["id"]) == (1, "w1")


def test_blocks_trait_is_complete_once_the_turn_ends(view: TurnView) -> None:
    view.apply([delta("x" * 2000)])
    view.flush()
    view.apply([note("item/completed", item={"type": "webSearch", "id": "w1", "query": "q"})])
    view.flush()
    view.finish(None)
    assert [b["id"] for b in view.widget.blocks] == ["m1", "w1"]
    assert view.widget.blocks[0]["final"] is True


def test_view_follows_upserts_and_removals_after_every_flush(view: TurnView) -> None:
    wire = Wire(view)
    script = [
        ([delta("a")], ["m1"]),
        (
            [note("item/started", item={"type": "reasoning", "id": "r1", "summary": []})],
            ["m1", "r1"],
        ),
        (
            [note("item/completed", item={"type": "webSearch", "id": "w1", "query": "q"})],
            ["m1", "r1", "w1"],
        ),
        (
            [note("item/completed", item={"type": "reasoning", "id": "r1", "summary": []})],
            ["m1", "w1"],
        ),
        ([note("turn/diff/updated", diff="+x")], ["m1", "w1", "turn-diff"]),
        (
            [note("item/agentMessage/delta", itemId="m2", delta="b")],
            ["m1", "w1", "m2", "turn-diff"],
        ),
    ]
    for events, expected in script:
        view.apply(events)
        view.flush()
        assert [b["id"] for b in wire.view_blocks()] == expected


def test_decision_message_calls_on_decision_once(clock: Clock) -> None:
    calls: list[tuple[Any, str]] = []
    view = TurnView(
        thread_name="main",
        prompt="p",
        clock=clock,
        on_decision=lambda r, d: calls.append((r.id, d)),
    )
    view.apply([approval_request(5)])
    click(view, {"type": "decision", "request": 5, "decision": "accept"})
    click(view, {"type": "decision", "request": 5, "decision": "decline"})
    view.decide(5, "accept")
    assert calls == [(5, "accept")]


def test_decision_click_does_not_write_widget_state(clock: Clock) -> None:
    view = TurnView(thread_name="main", prompt="p", clock=clock, on_decision=lambda r, d: None)
    view.apply([approval_request(5)])
    view.flush()
    wire = Wire(view)
    click(view, {"type": "decision", "request": 5, "decision": "decline"})
    assert wire.messages == []
    view.flush()  # the driver publishes it
    (block,) = wire.view_blocks(view.widget.blocks)
    assert (block["state"], block["decision"]) == ("decided", "decline")


def test_decision_without_a_callback_answers_the_request(view: TurnView) -> None:
    sent: list[dict[str, Any]] = []
    view.apply([approval_request(3, sent)])
    view.decide(3, "acceptForSession")
    assert sent == [{"id": 3, "result": {"decision": "acceptForSession"}}]


def test_unknown_decision_is_rejected(view: TurnView) -> None:
    with pytest.raises(ValueError, match="unknown decision"):
        view.decide(0, "yolo")


def test_stop_message_calls_on_stop(clock: Clock) -> None:
    stops: list[bool] = []
    view = TurnView(thread_name="main", prompt="p", clock=clock, on_stop=lambda: stops.append(True))
    click(view, {"type": "stop"})
    assert stops == [True]
    view.flush()
    assert view.widget.header["stopping"] is True


def test_stop_after_the_turn_ended_is_ignored(clock: Clock) -> None:
    stops: list[bool] = []
    view = TurnView(thread_name="main", prompt="p", clock=clock, on_stop=lambda: stops.append(True))
    view.finish(None)
    click(view, {"type": "stop"})
    assert stops == []


def test_callback_errors_do_not_escape_the_comm_handler(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    view = TurnView(thread_name="main", prompt="p", clock=clock, on_stop=boom)
    click(view, {"type": "stop"})
    assert "failed" in caplog.text


def test_pending_approval_shows_waiting_for_approval(view: TurnView) -> None:
    view.apply([approval_request(1)])
    view.flush()
    assert view.widget.header["status"] == "waiting for approval"
    assert view.widget.header["pending"] == 1
    view.decide(1, "decline")
    view.flush()
    assert view.widget.header["status"] == "running"


def test_queued_turn_has_no_start_time_until_it_runs(view: TurnView, clock: Clock) -> None:
    view.set_status("queued", "queued behind cell [3]")
    view.flush()
    assert view.widget.header["started_at"] is None
    assert view.widget.header["detail"] == "queued behind cell [3]"
    clock.now = 1_005.0
    view.apply([note("turn/started", turn={"id": TURN})])
    view.flush()
    assert view.widget.header["status"] == "running"
    assert view.widget.header["started_at"] == 1_005_000


def test_unknown_status_is_rejected(view: TurnView) -> None:
    with pytest.raises(ValueError, match="unknown status"):
        view.set_status("sleeping")


def test_turn_completed_event_ends_the_header(view: TurnView, clock: Clock) -> None:
    clock.now = 1_002.5
    view.apply([note("turn/completed", turn={"id": TURN, "status": "completed"})])
    view.flush()
    header = view.widget.header
    assert (header["status"], header["ended_at"], header["can_stop"]) == (
        "completed",
        1_002_500,
        False,
    )


def test_finish_publishes_final_blocks_and_returns_the_static_bundle(view: TurnView) -> None:
    view.apply([delta("**done**")])
    view.flush()
    result: TurnResult[Any] = TurnResult(
        id=TURN, thread_id=THREAD, status="completed", text="**done**", usage=Usage(total_tokens=42)
    )
    bundle = view.finish(result)
    assert view.widget.blocks[0]["html"] == "<p><strong>done</strong></p>\n"
    assert view.widget.header["status"] == "completed"
    assert view.widget.header["tokens"]["total"] == 42
    assert "done" in bundle["text/html"]
    assert "42 tokens" in bundle["text/markdown"]


def test_finish_with_an_error_shows_it(view: TurnView) -> None:
    bundle = view.finish(None, error="codex app-server exited (code 1)")
    assert view.widget.header["status"] == "error"
    assert view.widget.blocks[0]["kind"] == "error"
    assert "exited (code 1)" in bundle["text/plain"]


def test_notice_and_demo_badge_are_in_the_header(clock: Clock) -> None:
    view = TurnView(thread_name="main", prompt="p", demo=True, model="mock", clock=clock)
    view.set_notice("sandbox unavailable; running unsandboxed in a scratch dir")
    view.flush()
    header = view.widget.header
    assert (header["demo"], header["model"]) == (True, "mock")
    assert header["notice"].startswith("sandbox unavailable")


def test_text_is_the_agent_message_so_far(view: TurnView) -> None:
    view.apply([delta("partial ans")])
    assert view.text == "partial ans"


def test_command_output_burst_beyond_the_cap_is_sent_as_one_reset(view: TurnView) -> None:
    output = note("item/commandExecution/outputDelta", itemId="c1", delta="x\n")
    view.apply([output])
    view.flush()
    wire = Wire(view)
    view.apply(
        [note("item/commandExecution/outputDelta", itemId="c1", delta="y" * 100 + "\n")] * 1000
    )
    view.flush()
    (reset,) = wire.custom("reset")
    assert wire.custom("append") == []
    assert len(reset["text"]) <= 64 * 1024
    assert reset["base"] + len(reset["text"]) == 2 + 101 * 1000


def test_streaming_100kb_answer_costs_at_most_three_times_its_size(clock: Clock) -> None:
    view = TurnView(thread_name="main", prompt="p", clock=clock)
    rng = random.Random(7)
    words = ["the", "quick", "**brown**", "fox", "`jumps`", "over", "a", "lazy", "dog"]
    deltas = [rng.choice(words) + ("\n" if rng.random() < 0.05 else " ") for _ in range(20_000)]
    text = "".join(deltas)
    assert len(text) > 100_000
    events = [note("item/started", item={"type": "agentMessage", "id": "m1", "text": ""})]
    events += [delta(d) for d in deltas]
    events.append(note("item/completed", item={"type": "agentMessage", "id": "m1", "text": text}))
    # ~2,000 deltas/s arrive in reads of ~25; the driver flushes every 50 ms of simulated time
    flushes = 0
    next_flush = clock.now + 0.05
    for start in range(0, len(events), 25):
        view.apply(events[start : start + 25])
        clock.now += 25 / 2000
        if clock.now >= next_flush:
            view.flush()
            flushes += 1
            next_flush = clock.now + 0.05
    view.finish(TurnResult(id=TURN, thread_id=THREAD, status="completed", text=text))
    flushes += 1
    assert view.flushes == flushes
    assert view.bytes_sent <= 3 * len(text)
    assert view.messages_sent <= 2 * flushes + 2
    assert view.widget.blocks[0]["kind"] == "message"
    assert "html" in view.widget.blocks[0]


def test_long_turn_with_many_commands_costs_linear_bytes(view: TurnView) -> None:
    output_chars = 0
    for i in range(40):
        item = {"type": "commandExecution", "id": f"c{i}", "command": "make", "cwd": "/w"}
        view.apply([note("item/started", item={**item, "status": "inProgress"})])
        view.flush()
        output = "".join(f"line {j} of command {i}\n" for j in range(150))
        output_chars += len(output)
        for start in range(0, len(output), 500):
            chunk = output[start : start + 500]
            view.apply([note("item/commandExecution/outputDelta", itemId=f"c{i}", delta=chunk)])
            view.flush()
        done = {**item, "status": "completed", "exitCode": 0, "aggregatedOutput": output}
        view.apply([note("item/completed", item=done)])
        view.flush()
    view.finish(None)
    assert len(view.widget.blocks) == 40
    assert view.bytes_sent <= 6 * output_chars


def test_bytes_sent_matches_what_went_on_the_wire(view: TurnView) -> None:
    wire = Wire(view)
    view.apply([delta("Hello")])
    view.flush()
    view.apply([delta(" world")])
    sent = view.flush()
    last = wire.messages[-1]
    assert sent == len(orjson.dumps(last["content"]))


def test_finish_keeps_an_ending_status_the_session_set(view: TurnView) -> None:
    view.set_status("interrupted", "stopped before it started")
    bundle = view.finish(None, "Stopped before it started.")
    assert view.widget.header["status"] == "interrupted"
    assert [b["kind"] for b in view.widget.blocks] == ["notice"]
    assert "Error" not in bundle["text/markdown"]


def test_multiline_error_keeps_its_first_line_as_the_title(view: TurnView) -> None:
    bundle = view.finish(
        None, "The codex app-server stopped: exit 1.\nstderr line 1\nstderr line 2"
    )
    assert (
        "<strong>Error:</strong> The codex app-server stopped: exit 1.<pre" in bundle["text/html"]
    )
    assert "```\nstderr line 1\nstderr line 2\n```" in bundle["text/markdown"].replace("> ", "")
