"""A newer codex than the models: unknown methods, new fields, new enum values.

The router is fed raw lines, as the reader thread would. The shapes are those codex 0.169.0
sends (``thread/section/changed``, ``contentTokenCount``, hook ``eventName: "preModelRequest"``)
plus invented ones for what no release has sent yet (an unknown server request).
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from codex_notebook import Notification, ServerRequest, UnknownParams, protocol
from codex_notebook.protocol import route_ids
from codex_notebook.results import TurnResult, collect_result
from codex_notebook.router import Router

TH = "019b0000-0000-7000-8000-00000000aaaa"
TURN = "019b0000-0000-7000-8000-00000000bbbb"


def line(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message) + b"\n"


@pytest.fixture
def sent() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def router(sent: list[dict[str, Any]]) -> Router:
    return Router(sent.append, default_handler=lambda request: None)


def answered() -> None:
    """Wait for the router's request-handler threads (they answer, then end)."""
    for thread in threading.enumerate():
        if thread.name.startswith("codex-request-"):
            thread.join(5)


def turn_completed(status: str = "completed", **extra: Any) -> bytes:
    turn = {"id": TURN, "status": status, "items": [], "error": None, **extra}
    return line({"method": "turn/completed", "params": {"threadId": TH, "turn": turn}})


# -- unknown notifications ------------------------------------------------------------------------


def test_the_new_0_169_notification_is_unknown_to_the_models() -> None:
    assert "thread/section/changed" not in protocol.NOTIFICATION_PARAMS
    assert protocol.params_model("thread/section/changed") is None


def test_unknown_thread_notification_goes_to_the_channel_with_its_raw_thread_id(
    router: Router,
) -> None:
    params = {"threadId": TH, "sectionId": "019b0000-0000-7000-8000-00000000cccc"}
    router.feed(line({"method": "thread/section/changed", "params": params}))
    note = router.channel.get_nowait()
    assert note is not None
    assert (note.method, note.turn_id, note.thread_id) == ("thread/section/changed", None, TH)
    assert not note.known
    assert note.params_dict == params
    assert isinstance(note.params, UnknownParams)
    assert note.params.raw == params
    assert note.params.sectionId == params["sectionId"]  # type: ignore[attr-defined]
    assert note.params is note.params  # validated once, cached


@pytest.mark.parametrize(
    "params",
    [
        {"threadId": TH, "turnId": TURN, "progress": {"done": 3}},
        {"threadId": TH, "turn": {"id": TURN, "phase": "thinking"}},
        {"thread": {"id": TH}, "turnId": TURN},
    ],
    ids=["turnId", "turn.id", "thread.id"],
)
def test_unknown_turn_notification_reaches_its_turn_by_raw_ids(
    router: Router, params: dict[str, Any]
) -> None:
    log = router.claim(TURN, TH)
    router.feed(line({"method": "turn/newThing/updated", "params": params}))
    router.feed(turn_completed())
    events = list(log.cursor())
    assert [e.method for e in events] == ["turn/newThing/updated", "turn/completed"]
    event = events[0]
    assert (event.turn_id, event.thread_id) == (TURN, TH)
    assert isinstance(event.params, UnknownParams)
    assert event.params.raw == params
    assert router.channel.get_nowait() is None


def test_unknown_turn_notifications_before_the_claim_are_replayed(router: Router) -> None:
    params = {"threadId": TH, "turnId": TURN, "x": 1}
    router.feed(line({"method": "item/hologram/delta", "params": params}))
    router.feed(turn_completed())
    log = router.claim(TURN, TH)
    assert [e.method for e in log.cursor()] == ["item/hologram/delta", "turn/completed"]


@pytest.mark.parametrize(
    "params",
    [None, [], "text", 7, {}, {"turnId": 5, "threadId": None}, {"turn": "not-an-object"}],
    ids=["absent", "list", "string", "number", "empty", "non-string ids", "turn not object"],
)
def test_unknown_notification_with_odd_params_never_crashes(router: Router, params: Any) -> None:
    message: dict[str, Any] = {"method": "brand/new"}
    if params is not None:
        message["params"] = params
    router.feed(line(message))
    note = router.channel.get_nowait()
    assert note is not None and router.malformed == 0
    assert (note.turn_id, note.thread_id) == (None, None)
    assert note.params_dict == (params if isinstance(params, dict) else {})
    assert isinstance(note.params, UnknownParams)
    assert note.params.raw == note.params_dict


def test_route_ids_falls_back_to_raw_keys_only_for_unknown_methods() -> None:
    assert route_ids("x/y", {"turnId": "t", "threadId": "th"}) == ("t", "th")
    assert route_ids("x/y", {"turn": {"id": "t"}, "thread": {"id": "th"}}) == ("t", "th")
    assert route_ids("x/y", {"turnId": 1, "thread": {"id": 2}}) == (None, None)
    # a known thread-only method is read where the schema says, whatever else it carries
    assert route_ids("thread/started", {"thread": {"id": "th"}, "turnId": "t"}) == (None, "th")


# -- unknown server requests ----------------------------------------------------------------------


def test_unknown_server_request_of_a_turn_is_listed_and_refused(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    log = router.claim(TURN, TH)
    params = {"threadId": TH, "turnId": TURN, "itemId": "i1", "hologram": {"size": 3}}
    router.feed(line({"id": 0, "method": "item/hologram/requestApproval", "params": params}))
    request = log.items[0]
    assert isinstance(request, ServerRequest)
    assert (request.turn_id, request.thread_id, request.id) == (TURN, TH, 0)
    assert not request.known
    assert isinstance(request.params, UnknownParams)
    assert request.params.raw == params
    assert request.wait_settled(5)
    assert sent == [
        {
            "id": 0,  # echoed exactly: an int stays an int
            "error": {
                "code": -32601,
                "message": "codex_notebook does not handle item/hologram/requestApproval",
            },
        }
    ]


def test_unknown_global_server_request_is_refused_from_the_channel(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    router.feed(line({"id": "req-9", "method": "account/newConsent/request", "params": {"a": 1}}))
    request = router.channel.get_nowait()
    assert isinstance(request, ServerRequest)
    assert request.turn_id is None and request.params_dict == {"a": 1}
    answered()
    assert sent[0]["id"] == "req-9" and sent[0]["error"]["code"] == -32601


def test_a_handler_may_answer_an_unknown_server_request(sent: list[dict[str, Any]]) -> None:
    def handler(request: ServerRequest) -> dict[str, Any]:
        return {"echo": request.params_dict["value"]}

    router = Router(sent.append, default_handler=handler)
    router.feed(line({"id": 3, "method": "future/ask", "params": {"value": 42}}))
    answered()
    assert sent == [{"id": 3, "result": {"echo": 42}}]


# -- known methods, newer shapes ------------------------------------------------------------------


def test_known_notification_keeps_new_fields_at_every_level() -> None:
    # item/completed as 0.169.0 sends it: `contentTokenCount` is new at the top level; the
    # item's `startedAtMs`/`completedAtMs` are new in ThreadItem.
    params = {
        "threadId": TH,
        "turnId": TURN,
        "item": {
            "type": "agentMessage",
            "id": "msg_1",
            "text": "hello",
            "phase": None,
            "memoryCitation": None,
            "startedAtMs": 1764000000000,
            "completedAtMs": 1764000000123,
        },
        "completedAtMs": 1764000000123,
        "contentTokenCount": 5,
    }
    event = Notification("item/completed", {"method": "item/completed", "params": params})
    typed: Any = event.params
    assert event.known and not isinstance(typed, UnknownParams)
    assert typed.model_extra["contentTokenCount"] == 5
    assert typed.turn_id == TURN
    assert typed.model_dump(mode="json", exclude_unset=True) == params


def test_known_notification_with_a_new_enum_value_falls_back_to_raw_params() -> None:
    # hook/started as 0.169.0 can send it: "preModelRequest" is a new HookEventName.
    run = {
        "id": "hook-1",
        "eventName": "preModelRequest",
        "handlerType": "command",
        "executionMode": "sync",
        "scope": "thread",
        "source": "user",
        "sourcePath": "hooks.toml",
        "displayOrder": 0,
        "status": "running",
        "statusMessage": None,
        "startedAt": 0,
        "completedAt": None,
        "durationMs": None,
        "entries": [],
    }
    params = {"threadId": TH, "turnId": TURN, "run": run}
    event = Notification("hook/started", {"method": "hook/started", "params": params})
    assert event.known
    assert isinstance(event.params, UnknownParams)
    assert event.params.raw == params
    # the same shape with a value the models know validates to the typed model
    known = dict(params, run=dict(run, eventName="preToolUse"))
    again = Notification("hook/started", {"method": "hook/started", "params": known})
    assert not isinstance(again.params, UnknownParams)


def test_a_new_item_type_falls_back_and_still_routes(router: Router) -> None:
    log = router.claim(TURN, TH)
    item = {"type": "hologram", "id": "h1", "frames": 3}
    params = {"threadId": TH, "turnId": TURN, "item": item}
    router.feed(line({"method": "item/completed", "params": params}))
    router.feed(turn_completed())
    events = list(log.cursor())
    assert isinstance(events[0].params, UnknownParams)
    assert events[0].params.raw["item"] == item
    result: TurnResult[Any] = collect_result(TURN, TH, events)
    assert result.items == [item]
    assert result.status == "completed"


def test_a_new_turn_status_still_ends_the_turn(router: Router) -> None:
    log = router.claim(TURN, TH)
    router.feed(turn_completed(status="paused", pausedReason="budget"))
    assert log.completed and router.live_turns() == 0
    (event,) = list(log.cursor())
    assert isinstance(event.params, UnknownParams)
    assert event.params.raw["turn"]["status"] == "paused"
    # a status the client cannot classify is never reported as success
    assert collect_result(TURN, TH, [event]).status == "failed"


def test_known_turn_completed_keeps_new_fields(router: Router) -> None:
    log = router.claim(TURN, TH)
    router.feed(turn_completed(nativeUsageUsdMicros=12))
    (event,) = list(log.cursor())
    typed: Any = event.params
    assert not isinstance(typed, UnknownParams)
    assert typed.turn.model_extra == {"nativeUsageUsdMicros": 12}


def test_known_server_request_with_new_fields_is_typed_and_declined_by_default(
    router: Router, sent: list[dict[str, Any]]
) -> None:
    log = router.claim(TURN, TH)
    params = {
        "threadId": TH,
        "turnId": TURN,
        "itemId": "call_1",
        "command": "rm -rf build",
        "cwd": "/tmp",
        "reason": None,
        "startedAtMs": 1764000000000,
        "riskScore": 0.9,  # new
    }
    method = "item/commandExecution/requestApproval"
    router.feed(line({"id": 0, "method": method, "params": params}))
    request = log.items[0]
    assert isinstance(request, ServerRequest) and request.known
    typed = request.params
    assert isinstance(typed, BaseModel) and not isinstance(typed, UnknownParams)
    assert typed.model_extra == {"riskScore": 0.9}
    assert request.wait_settled(5)
    assert sent == [{"id": 0, "result": {"decision": "decline"}}]


def test_unknown_params_expose_every_key_even_awkward_ones() -> None:
    params = {"_meta": {"a": 1}, "raw": "shadowed", "model_config": 2, "": 3, "a-b": 4}
    event = Notification("x/y", {"method": "x/y", "params": params})
    assert isinstance(event.params, UnknownParams)
    assert event.params.raw == params
    assert event.params.model_dump() == params
