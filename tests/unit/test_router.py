"""The router fed line by line, without any process: exact interleavings."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from codex_notebook import DEFER
from codex_notebook import router as router_module
from codex_notebook._dispatch import REQUEST_WORKERS
from codex_notebook.errors import (
    CodexError,
    InvalidArgumentError,
    InvalidRequestError,
    ProtocolError,
    TransportClosedError,
)
from codex_notebook.router import Router


def line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


def delta(turn: str, text: str) -> bytes:
    params = {"threadId": "th", "turnId": turn, "itemId": "m", "delta": text}
    return line({"method": "item/agentMessage/delta", "params": params})


def completed(turn: str, status: str = "completed") -> bytes:
    params = {"threadId": "th", "turn": {"id": turn, "status": status, "items": []}}
    return line({"method": "turn/completed", "params": params})


@pytest.fixture
def sent() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def router(sent: list[dict[str, Any]]) -> Router:
    return Router(sent.append, default_handler=lambda request: None)


def test_response_resolves_the_waiting_request(router: Router) -> None:
    future = router.start_request("thread/start", {})
    router.feed(line({"id": 1, "result": {"ok": True}}))
    assert future.result(0) == {"ok": True}


def test_error_response_maps_to_a_typed_exception(router: Router) -> None:
    future = router.start_request("turn/steer", {})
    router.feed(line({"id": 1, "error": {"code": -32600, "message": "stale"}}))
    with pytest.raises(InvalidRequestError, match="turn/steer: stale"):
        future.result(0)


def test_events_before_a_claim_are_replayed_to_the_claimer(router: Router) -> None:
    router.feed(delta("t1", "a"))
    router.feed(delta("t1", "b"))
    log = router.claim("t1", "th")
    router.feed(completed("t1"))
    assert [e.method for e in log.cursor()] == [
        "item/agentMessage/delta",
        "item/agentMessage/delta",
        "turn/completed",
    ]


def test_each_cursor_sees_every_event_exactly_once(router: Router) -> None:
    log = router.claim("t1", "th")
    first, second = log.cursor(), log.cursor()
    router.feed(delta("t1", "a"))
    assert [e.params_dict["delta"] for e in first.next_batch(0) or []] == ["a"]
    router.feed(delta("t1", "b"))
    router.feed(completed("t1"))
    assert len(list(first)) == 2
    assert len(list(second)) == 3


def test_claimed_turns_leave_the_router_when_completed(router: Router) -> None:
    router.claim("t1", "th")
    router.feed(completed("t1"))
    assert router.live_turns() == 0


def test_unclaimed_completed_turns_expire_after_the_grace_period(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    router.feed(completed("old"))
    clock = [router_module.time.monotonic() + router_module.UNCLAIMED_GRACE_S + 1]
    monkeypatch.setattr(router_module.time, "monotonic", lambda: clock[0])
    router.feed(delta("new", "x"))  # creating a new unclaimed log sweeps expired ones
    assert "old" not in router._turns


def test_unclaimed_turns_are_capped_in_number(router: Router) -> None:
    for i in range(router_module.MAX_UNCLAIMED_TURNS + 10):
        router.feed(delta(f"t{i}", "x"))
    assert router.live_turns() == router_module.MAX_UNCLAIMED_TURNS


def test_unclaimed_turn_events_are_capped(router: Router, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "MAX_UNCLAIMED_EVENTS", 5)
    monkeypatch.setattr(router_module, "UNCLAIMED_UNCAPPED_S", 0.0)
    for i in range(8):
        router.feed(delta("t1", str(i)))
    log = router.claim("t1", "th")
    assert len(log) == 5
    assert log.dropped == 3


def test_a_fresh_unclaimed_turn_is_not_capped(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(router_module, "MAX_UNCLAIMED_EVENTS", 5)
    for i in range(8):
        router.feed(delta("t1", str(i)))
    assert len(router.claim("t1", "th")) == 8


def test_the_end_of_a_capped_unclaimed_turn_is_always_kept(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(router_module, "MAX_UNCLAIMED_EVENTS", 2)
    monkeypatch.setattr(router_module, "UNCLAIMED_UNCAPPED_S", 0.0)
    for i in range(4):
        router.feed(delta("t1", str(i)))
    router.feed(completed("t1"))
    log = router.claim("t1", "th")
    assert [e.method for e in log.cursor()][-1] == "turn/completed"
    assert log.dropped == 2


def test_global_channel_drops_oldest_and_counts(sent: list[dict[str, Any]]) -> None:
    router = Router(sent.append, default_handler=lambda r: None, channel_size=3)
    for i in range(5):
        router.feed(line({"method": "warning", "params": {"message": str(i)}}))
    assert router.channel.dropped == 2
    kept = [router.channel.get_nowait() for _ in range(3)]
    assert [n.params_dict["message"] for n in kept if n] == ["2", "3", "4"]


@pytest.mark.parametrize(
    "garbage",
    [b"not json\n", b'{"method": "x", \n', b"[1, 2]\n", b'"str"\n', b"{}\n", b"\xff\xfe\n"],
)
def test_malformed_lines_are_counted_and_skipped(router: Router, garbage: bytes) -> None:
    router.feed(garbage)
    assert router.malformed == 1


def test_blank_lines_are_ignored(router: Router) -> None:
    router.feed(b"\n")
    assert router.malformed == 0


def test_transport_death_fails_requests_turns_and_channel(router: Router) -> None:
    future = router.start_request("thread/start", {})
    claimed = router.claim("t1", "th")
    router.feed(delta("t2", "unclaimed"))
    error = TransportClosedError("gone")
    router.closed(error)
    assert future.exception(0) is error
    with pytest.raises(TransportClosedError):
        list(claimed.cursor())
    assert router.channel.get(0) is None
    with pytest.raises(TransportClosedError):
        router.start_request("thread/start", {})


def test_a_claim_after_transport_death_fails_at_once(router: Router) -> None:
    router.closed(TransportClosedError("gone"))
    with pytest.raises(TransportClosedError):
        list(router.claim("t9", "th").cursor())


def test_async_cursor_is_woken_by_the_reader(router: Router) -> None:
    log = router.claim("t1", "th")

    async def consume() -> list[str]:
        cursor = log.cursor()
        methods: list[str] = []
        while (batch := await cursor.anext_batch()) is not None:
            methods += [e.method for e in batch]
        return methods

    async def main() -> list[str]:
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, router.feed, delta("t1", "a"))
        await loop.run_in_executor(None, router.feed, completed("t1"))
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(main()) == ["item/agentMessage/delta", "turn/completed"]


def test_cancelled_async_waiter_removes_its_waker(router: Router) -> None:
    log = router.claim("t1", "th")

    async def main() -> None:
        task = asyncio.ensure_future(log.cursor().anext_batch())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert log._wakers == []


def test_server_request_resolved_settles_the_request(router: Router) -> None:
    log = router.claim("t1", "th")
    params = {"threadId": "th", "turnId": "t1", "itemId": "i", "command": "ls"}
    router.feed(
        line({"id": 0, "method": "item/commandExecution/requestApproval", "params": params})
    )
    request = next(iter(log.cursor().next_batch(1) or []))
    assert request.method == "item/commandExecution/requestApproval"
    router.feed(line({"method": "serverRequest/resolved", "params": {"requestId": 0}}))
    assert request.settled  # type: ignore[attr-defined]


# -- issue 13: no hang, no leak, no stray exception -----------------------------------------


def approval(turn: str, request_id: int, thread: str = "th") -> bytes:
    params = {"threadId": thread, "turnId": turn, "itemId": "i", "command": "ls"}
    return line(
        {"id": request_id, "method": "item/commandExecution/requestApproval", "params": params}
    )


def test_a_turn_claimed_after_transport_death_is_finished_and_releases_waiters(
    router: Router,
) -> None:
    router.closed(TransportClosedError("gone"))
    log = router.claim("t9", "th")
    assert log.done.is_set()  # run()/wait() sleep on this event: it must be set
    assert log.finished


def test_params_that_are_not_json_raise_naming_the_field_and_leak_nothing(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    with pytest.raises(CodexError, match=r"params\.config\.when is of type datetime"):
        router.start_request("thread/start", {"config": {"when": datetime.now(timezone.utc)}})
    with pytest.raises(InvalidArgumentError, match=r"params\.input\[1\] is of type object"):
        router.start_request("turn/start", {"input": [1, object()]})
    assert router.pending_requests() == 0
    assert sent == []


def test_a_response_without_result_or_error_is_a_protocol_error(router: Router) -> None:
    future = router.start_request("thread/start", {})
    router.feed(line({"id": 1}))
    with pytest.raises(ProtocolError, match="neither a result nor an error"):
        future.result(0)


def test_take_reports_the_end_only_after_every_event(router: Router) -> None:
    """The reader may append the last events and the end between take()'s two reads."""
    log = router.claim("t1", "th")
    router.feed(delta("t1", "a"))
    cursor = log.cursor()
    assert [e.params_dict["delta"] for e in cursor.take() or []] == ["a"]

    class Interleaved(list):  # type: ignore[type-arg]
        """len() returns, then the reader delivers the rest before take() reads the flags."""

        armed = True

        def __len__(self) -> int:
            n = super().__len__()
            if self.armed:
                self.armed = False
                router.feed_batch([delta("t1", "b"), completed("t1")])
            return n

    log.items = Interleaved(log.items)
    got: list[str] = []
    while (batch := cursor.take()) is not None:
        got += [e.method for e in batch]
    assert got == ["item/agentMessage/delta", "turn/completed"]


def test_a_failing_waker_does_not_stop_the_others_from_being_woken(router: Router) -> None:
    log = router.claim("t1", "th")
    woken: list[str] = []

    def closed_loop() -> None:
        raise RuntimeError("Event loop is closed")

    log._wakers += [closed_loop, lambda: woken.append("second")]
    router.feed(delta("t1", "a"))
    assert woken == ["second"]


def test_transport_death_fails_every_waiter_even_if_one_consumer_fails(router: Router) -> None:
    first, second = router.claim("t1", "th"), router.claim("t2", "th")
    future = router.start_request("thread/start", {})

    def closed_loop() -> None:
        raise RuntimeError("Event loop is closed")

    first._wakers.append(closed_loop)
    router.closed(TransportClosedError("gone"))  # must not raise
    assert first.finished and second.finished
    assert isinstance(future.exception(0), TransportClosedError)
    assert router.channel.get(0) is None  # closed too


def test_a_waker_on_a_closed_event_loop_does_not_break_the_reader(router: Router) -> None:
    log = router.claim("t1", "th")
    loop = asyncio.new_event_loop()
    task = loop.create_task(log.cursor().anext_batch())
    loop.run_until_complete(asyncio.sleep(0))  # the task registers its waker and waits
    loop.close()  # the waiter's loop goes away while it waits (a kernel restart)
    other = log.cursor()
    router.feed(delta("t1", "a"))  # wakes the dead loop's waker: RuntimeError, swallowed
    router.feed(completed("t1"))
    assert [e.method for e in other] == ["item/agentMessage/delta", "turn/completed"]
    del task


def test_a_cancelled_request_future_does_not_break_the_reader(router: Router) -> None:
    future = router.start_request("thread/start", {})
    future.cancel()
    router.feed(line({"id": 1, "result": {}}))  # set_result on a cancelled future
    router.feed(delta("t1", "still routed"))
    assert router.claim("t1", "th").notifications()[0].params_dict["delta"] == "still routed"


def test_a_request_before_the_claim_goes_to_the_turn_handler_registered_before_turn_start(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    router.begin_turn("th", lambda request: {"decision": "accept"})
    router.feed(approval("t1", 0))  # long before the turn/start response (and the claim)
    assert router.dispatcher.requests.wait_idle(5)
    assert sent == [{"id": 0, "result": {"decision": "accept"}}]


def test_a_finished_turn_releases_its_thread_handler(router: Router) -> None:
    router.begin_turn("th", lambda request: {"decision": "accept"})
    router.claim("t1", "th", started=True)
    router.feed(completed("t1"))
    assert router._threads == {}  # nothing keeps the handler (and what it holds) alive


def test_server_request_handlers_run_on_a_bounded_pool(router: Router) -> None:
    release = threading.Event()
    running: list[str] = []

    def blocking(request: Any) -> dict[str, str]:
        running.append(threading.current_thread().name)
        release.wait(10)
        return {"decision": "decline"}

    router.dispatcher.default_handler = blocking
    for i in range(3 * REQUEST_WORKERS):
        router.feed(approval(f"t{i}", i))
    deadline = time.monotonic() + 5
    while len(running) < REQUEST_WORKERS and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert router.dispatcher.requests.threads == REQUEST_WORKERS
        assert len(running) == REQUEST_WORKERS  # the rest wait in the queue
    finally:
        release.set()
    assert router.dispatcher.requests.wait_idle(10)
    assert len(running) == 3 * REQUEST_WORKERS


def test_an_unclaimed_turn_whose_turn_start_is_in_flight_is_never_evicted(
    router: Router,
) -> None:
    router.begin_turn("mine", None)  # turn/start sent; its response is slow
    router.feed(
        line(
            {
                "method": "item/agentMessage/delta",
                "params": {
                    "threadId": "mine",
                    "turnId": "awaited",
                    "itemId": "m",
                    "delta": "keep me",
                },
            }
        )
    )
    for i in range(router_module.MAX_UNCLAIMED_TURNS + 10):  # e.g. many sub-agent turns
        router.feed(delta(f"other{i}", "x"))
    log = router.claim("awaited", "mine", started=True)
    assert [e.params_dict["delta"] for e in log.notifications()] == ["keep me"]
    assert router.live_turns() <= router_module.MAX_UNCLAIMED_TURNS + 1


def test_a_deferred_request_stays_pending_until_answered(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    router.begin_turn("th", lambda request: DEFER)
    log = router.claim("t1", "th", started=True)
    router.feed(approval("t1", 0))
    assert router.dispatcher.requests.wait_idle(5)
    assert sent == []
    (request,) = log.pending_requests
    assert request.respond({"decision": "accept"})
    assert sent == [{"id": 0, "result": {"decision": "accept"}}]
    assert not request.respond({"decision": "decline"})  # exactly once


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("withdrawn", "withdrawn"),
        ("turn ended", "turn ended"),
        ("transport closed", "transport closed"),
    ],
)
def test_a_deferred_request_is_settled_by_withdrawal_turn_end_or_transport_death(
    router: Router, sent: list[dict[str, Any]], how: str, reason: str
) -> None:
    router.begin_turn("th", lambda request: DEFER)
    log = router.claim("t1", "th", started=True)
    router.feed(approval("t1", 0))
    assert router.dispatcher.requests.wait_idle(5)
    (request,) = log.pending_requests
    if how == "withdrawn":
        router.feed(line({"method": "serverRequest/resolved", "params": {"requestId": 0}}))
    elif how == "turn ended":
        router.feed(completed("t1"))
    else:
        router.closed(TransportClosedError("gone"))
    assert request.settled and request.settled_reason == reason
    assert not request.respond({"decision": "accept"})  # a late answer is dropped
    assert sent == []
    assert router.open_server_requests() == 0


def test_claiming_a_log_whose_first_events_are_still_in_the_readers_batch_keeps_it(
    router: Router,
) -> None:
    with router._lock:  # the reader created the log; its events wait in the current batch
        pending = router._turn_log("t1", "th")
    assert router.claim("t1", "th") is pending


def test_lines_given_as_text_route_like_bytes(router: Router) -> None:
    """A transport that reads text (a WebSocket's text frames) may hand over str lines."""
    log = router.claim("t1", "th")
    router.feed_batch([delta("t1", "a").decode(), "not json", completed("t1").decode()])
    assert [e.method for e in log.cursor()] == ["item/agentMessage/delta", "turn/completed"]
    assert router.malformed == 1


def test_raw_is_the_whole_message_as_received(router: Router) -> None:
    log = router.claim("t1", "th")
    usual = {
        "method": "item/agentMessage/delta",
        "params": {"threadId": "th", "turnId": "t1", "itemId": "m", "delta": "a"},
        "emittedAtMs": 1796126439728,
    }
    extra = {**usual, "params": {**usual["params"], "delta": "b"}, "x-extra": [1]}
    router.feed_batch([orjson.dumps(usual), orjson.dumps(extra)])
    first, second = log.notifications()
    assert first.raw == usual and list(first.raw) == list(usual)
    assert second.raw == extra


def test_a_deferred_request_of_an_unclaimed_turn_is_settled_when_that_turn_ends(
    router: Router,
) -> None:
    """Sub-agent turns nobody claims evict each other (64 at most): one holding a request
    that is still pending must stay, or its end would never settle the request."""
    router.dispatcher.default_handler = lambda request: DEFER
    router.feed(approval("sub", 0, thread="sub-thread"))
    assert router.dispatcher.requests.wait_idle(5)
    for i in range(router_module.MAX_UNCLAIMED_TURNS + 10):  # many other unclaimed turns
        router.feed(delta(f"other{i}", "x"))
    router.feed(completed("sub"))
    assert router.open_server_requests() == 0, "the request is pending for good"


def test_a_malformed_line_is_logged_without_the_secrets_in_it(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever reaches codex's stdout that is not JSON-RPC (a wrapper script's warning, a
    debug print) is shown in the log with credentials blanked, as the stderr tail is."""
    router.feed(b"warning: using OPENAI_API_KEY=sk-proj-AbC123xyz789 from the environment")
    assert router.malformed == 1
    assert "sk-proj-AbC123xyz789" not in caplog.text
    assert "[REDACTED]" in caplog.text
