"""The generated pydantic models against real app-server traffic."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from codex_notebook.protocol import (
    CLIENT_REQUEST_RESPONSES,
    NOTIFICATION_PARAMS,
    SERVER_REQUEST_PARAMS,
    SERVER_REQUEST_RESPONSES,
    ProtocolModel,
    generated_module,
    params_model,
    response_model,
)

Records = list[tuple[str, dict[str, Any]]]

DELTA = {
    "delta": "Hel",
    "itemId": "msg_1",
    "threadId": "019a-thread",
    "turnId": "019a-turn",
}


def _from_server(records: Records, *, requests: bool) -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, rec["msg"])
        for name, rec in records
        if rec["dir"] == "from_server"
        and "method" in rec["msg"]
        and ("id" in rec["msg"]) == requests
    ]


def _first(records: Records, method: str) -> dict[str, Any]:
    return next(msg for _, msg in _from_server(records, requests=False) if msg["method"] == method)


# -- real traffic validates -------------------------------------------------------------------


def test_every_recorded_notification_validates_with_its_params_model(records: Records) -> None:
    failures = []
    notifications = _from_server(records, requests=False)
    for name, msg in notifications:
        model = params_model(msg["method"], "notification")
        try:
            assert model is not None, "no params model"
            model.model_validate(msg["params"])
        except Exception as exc:
            failures.append((name, msg["method"], str(exc)[:300]))
    assert notifications
    assert failures == []


def test_every_recorded_server_request_validates_with_its_params_model(records: Records) -> None:
    failures = []
    requests = _from_server(records, requests=True)
    for name, msg in requests:
        model = params_model(msg["method"], "server_request")
        try:
            assert model is not None, "no params model"
            model.model_validate(msg["params"])
        except Exception as exc:
            failures.append((name, msg["method"], str(exc)[:300]))
    assert requests
    assert failures == []


def test_every_recorded_approval_reply_validates_with_its_response_model(records: Records) -> None:
    asked = {(name, msg["id"]): msg["method"] for name, msg in _from_server(records, requests=True)}
    replies = [
        (asked[(name, rec["msg"]["id"])], rec["msg"]["result"])
        for name, rec in records
        if rec["dir"] == "to_server" and "result" in rec["msg"]
    ]
    assert replies
    for method, result in replies:
        model = response_model(method, "server_request")
        assert model is not None
        model.model_validate(result)


def test_every_recorded_client_request_result_validates_with_its_response_model(
    records: Records,
) -> None:
    sent = {
        (name, rec["msg"]["id"]): rec["msg"]["method"]
        for name, rec in records
        if rec["dir"] == "to_server" and "method" in rec["msg"] and "id" in rec["msg"]
    }
    results = [
        (sent[(name, rec["msg"]["id"])], rec["msg"]["result"])
        for name, rec in records
        if rec["dir"] == "from_server" and "result" in rec["msg"]
    ]
    assert {"initialize", "thread/start", "turn/start"} <= {method for method, _ in results}
    for method, result in results:
        model = response_model(method)
        assert model is not None, method
        model.model_validate(result)


def test_recorded_notifications_round_trip_to_the_same_json(records: Records) -> None:
    changed = []
    for name, msg in _from_server(records, requests=False):
        model = params_model(msg["method"])
        assert model is not None
        dumped = model.model_validate(msg["params"]).model_dump(mode="json", exclude_unset=True)
        if dumped != msg["params"]:
            changed.append((name, msg["method"]))
    assert changed == []


# -- model behaviour --------------------------------------------------------------------------


def test_snake_case_attributes_read_camel_case_wire_fields(records: Records) -> None:
    msg = _first(records, "item/agentMessage/delta")
    model = params_model("item/agentMessage/delta")
    assert model is not None
    params: Any = model.model_validate(msg["params"])
    assert (params.turn_id, params.thread_id, params.item_id) == (
        msg["params"]["turnId"],
        msg["params"]["threadId"],
        msg["params"]["itemId"],
    )


def test_nested_models_expose_snake_case_attributes(records: Records) -> None:
    msg = _first(records, "turn/completed")
    model = params_model("turn/completed")
    assert model is not None
    params: Any = model.model_validate(msg["params"])
    assert params.turn.id == msg["params"]["turn"]["id"]
    assert params.thread_id == msg["params"]["threadId"]


def test_model_dump_json_mode_uses_camel_case_keys() -> None:
    model = params_model("item/agentMessage/delta")
    assert model is not None
    dumped = model.model_validate(DELTA).model_dump(mode="json")
    assert set(dumped) == {"delta", "itemId", "threadId", "turnId"}


def test_models_can_be_built_from_snake_case_names() -> None:
    model = generated_module().AgentMessageDeltaNotification
    built = model(delta="x", item_id="i", thread_id="th", turn_id="t")
    assert built.model_dump()["turnId"] == "t"


def test_unknown_extra_fields_are_kept() -> None:
    model = params_model("item/agentMessage/delta")
    assert model is not None
    params = model.model_validate({**DELTA, "futureField": {"a": 1}})
    assert params.model_extra == {"futureField": {"a": 1}}
    assert params.model_dump(mode="json")["futureField"] == {"a": 1}


def test_generated_models_share_the_protocol_base_class() -> None:
    model = params_model("turn/completed")
    assert model is not None
    assert issubclass(model, ProtocolModel)


# -- lookups ----------------------------------------------------------------------------------


def test_every_registered_class_name_resolves_to_a_model() -> None:
    missing = [
        (method, kind)
        for kind, table in (
            ("notification", NOTIFICATION_PARAMS),
            ("server_request", SERVER_REQUEST_PARAMS),
        )
        for method in table
        if params_model(method, kind) is None  # type: ignore[arg-type]
    ]
    missing += [m for m in SERVER_REQUEST_RESPONSES if response_model(m, "server_request") is None]
    missing += [m for m in CLIENT_REQUEST_RESPONSES if response_model(m) is None]
    assert missing == []


def test_params_model_of_an_unknown_method_is_none() -> None:
    assert params_model("future/thing") is None
    assert params_model("future/thing", "server_request") is None


def test_params_model_distinguishes_notifications_from_server_requests() -> None:
    method = "item/commandExecution/requestApproval"
    assert params_model(method, "notification") is None
    model = params_model(method, "server_request")
    assert model is not None
    assert model.__name__ == "CommandExecutionRequestApprovalParams"


def test_response_model_of_thread_start_is_thread_start_response() -> None:
    model = response_model("thread/start")
    assert model is not None
    assert model.__name__ == "ThreadStartResponse"


def test_response_model_of_an_unknown_method_is_none() -> None:
    assert response_model("future/thing") is None


def test_command_approval_response_accepts_the_documented_decisions() -> None:
    model = response_model("item/commandExecution/requestApproval", "server_request")
    assert model is not None
    for decision in ("accept", "acceptForSession", "decline", "cancel"):
        assert isinstance(model.model_validate({"decision": decision}), BaseModel)


@pytest.fixture(scope="module")
def records(transcript_records: Records) -> Records:
    return transcript_records
