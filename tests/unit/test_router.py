"""The router fed line by line, without any process: exact interleavings."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from codex_notebook import router as router_module
from codex_notebook.errors import InvalidRequestError, TransportClosedError
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
    assert len(log.events) == 5
    assert log.dropped == 3


def test_a_fresh_unclaimed_turn_is_not_capped(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(router_module, "MAX_UNCLAIMED_EVENTS", 5)
    for i in range(8):
        router.feed(delta("t1", str(i)))
    assert len(router.claim("t1", "th").events) == 8


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
