"""The generated routing registry: coverage of the pinned schema, id locations, route_ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import codex_notebook.protocol as protocol
from codex_notebook.protocol import (
    CODEX_VERSION,
    NOTIFICATION_PARAMS,
    SERVER_REQUEST_PARAMS,
    SERVER_REQUEST_RESPONSES,
    THREAD_ID_LOCATION,
    TURN_ID_LOCATION,
    route_ids,
)

LOCATIONS = {"nested", "direct", "nullable", "none"}


@pytest.fixture(scope="module")
def schema_dir(pinned_codex_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    version = subprocess.run(
        [pinned_codex_bin, "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()[-1]
    if version != CODEX_VERSION:
        pytest.skip(f"installed codex is {version}, registry is for {CODEX_VERSION}")
    out = tmp_path_factory.mktemp("schema")
    subprocess.run(
        [pinned_codex_bin, "app-server", "generate-json-schema", "--out", str(out)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return out


def _union_methods(path: Path) -> dict[str, str]:
    """method -> params definition name, read straight from an envelope union file."""
    out: dict[str, str] = {}
    for entry in json.loads(path.read_text(encoding="utf-8"))["oneOf"]:
        props = entry["properties"]
        out[props["method"]["enum"][0]] = props["params"]["$ref"].rsplit("/", 1)[-1]
    return out


def _notifications(records: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [
        rec["msg"]
        for _, rec in records
        if rec["dir"] == "from_server" and "method" in rec["msg"] and "id" not in rec["msg"]
    ]


# -- coverage of the pinned schema ------------------------------------------------------------


def test_registry_has_every_notification_method_of_the_schema(schema_dir: Path) -> None:
    assert _union_methods(schema_dir / "ServerNotification.json") == NOTIFICATION_PARAMS


def test_registry_has_every_server_request_method_of_the_schema(schema_dir: Path) -> None:
    assert _union_methods(schema_dir / "ServerRequest.json") == SERVER_REQUEST_PARAMS


def test_server_request_responses_are_the_schemas_response_files(schema_dir: Path) -> None:
    assert all(
        (schema_dir / f"{name}.json").is_file() for name in SERVER_REQUEST_RESPONSES.values()
    )
    assert set(SERVER_REQUEST_RESPONSES) == set(SERVER_REQUEST_PARAMS)


def test_codex_0_163_0_has_85_notification_methods() -> None:
    assert CODEX_VERSION == "0.163.0"
    assert len(NOTIFICATION_PARAMS) == 85


def test_every_routed_method_has_a_turn_and_a_thread_location() -> None:
    routed = set(NOTIFICATION_PARAMS) | set(SERVER_REQUEST_PARAMS)
    assert set(TURN_ID_LOCATION) == routed
    assert set(THREAD_ID_LOCATION) == routed
    assert set(TURN_ID_LOCATION.values()) | set(THREAD_ID_LOCATION.values()) <= LOCATIONS


# -- routing table spot checks ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["turn/started", "turn/completed"])
def test_turn_lifecycle_notifications_nest_the_turn_id(method: str) -> None:
    assert TURN_ID_LOCATION[method] == "nested"
    assert THREAD_ID_LOCATION[method] == "direct"


def test_agent_message_delta_carries_turn_id_directly() -> None:
    assert TURN_ID_LOCATION["item/agentMessage/delta"] == "direct"


def test_hook_started_turn_id_is_nullable() -> None:
    assert TURN_ID_LOCATION["hook/started"] == "nullable"


def test_thread_status_changed_has_thread_id_only() -> None:
    assert TURN_ID_LOCATION["thread/status/changed"] == "none"
    assert THREAD_ID_LOCATION["thread/status/changed"] == "direct"


def test_thread_started_nests_the_thread_id() -> None:
    assert THREAD_ID_LOCATION["thread/started"] == "nested"


def test_rate_limits_updated_is_global() -> None:
    assert TURN_ID_LOCATION["account/rateLimits/updated"] == "none"
    assert THREAD_ID_LOCATION["account/rateLimits/updated"] == "none"


def test_command_approval_request_carries_turn_and_thread_ids() -> None:
    method = "item/commandExecution/requestApproval"
    assert (TURN_ID_LOCATION[method], THREAD_ID_LOCATION[method]) == ("direct", "direct")


def test_mcp_elicitation_request_turn_id_is_nullable() -> None:
    assert TURN_ID_LOCATION["mcpServer/elicitation/request"] == "nullable"


# -- route_ids on real messages ---------------------------------------------------------------


def test_route_ids_reads_the_nested_turn_of_turn_completed(
    transcript_records: list[tuple[str, dict[str, Any]]],
) -> None:
    msg = next(m for m in _notifications(transcript_records) if m["method"] == "turn/completed")
    assert route_ids(msg["method"], msg["params"]) == (
        msg["params"]["turn"]["id"],
        msg["params"]["threadId"],
    )


def test_route_ids_reads_the_nested_thread_of_thread_started(
    transcript_records: list[tuple[str, dict[str, Any]]],
) -> None:
    msg = next(m for m in _notifications(transcript_records) if m["method"] == "thread/started")
    assert route_ids(msg["method"], msg["params"]) == (None, msg["params"]["thread"]["id"])


def test_route_ids_matches_the_raw_ids_of_every_recorded_message(
    transcript_records: list[tuple[str, dict[str, Any]]],
) -> None:
    mismatches = []
    for name, rec in transcript_records:
        msg = rec["msg"]
        if rec["dir"] != "from_server" or "method" not in msg:
            continue
        params = msg["params"]
        turn = params.get("turnId") or (params.get("turn") or {}).get("id")
        thread = params.get("threadId") or (params.get("thread") or {}).get("id")
        if route_ids(msg["method"], params) != (turn, thread):
            mismatches.append((name, msg["method"]))
    assert mismatches == []


def test_route_ids_of_a_global_notification_is_none_none(
    transcript_records: list[tuple[str, dict[str, Any]]],
) -> None:
    msg = next(
        m for m in _notifications(transcript_records) if m["method"] == "account/rateLimits/updated"
    )
    assert route_ids(msg["method"], msg["params"]) == (None, None)


def test_route_ids_of_a_known_global_method_ignores_stray_ids() -> None:
    assert route_ids("account/rateLimits/updated", {"turnId": "t", "threadId": "th"}) == (
        None,
        None,
    )


def test_route_ids_of_a_nullable_turn_id_that_is_null_is_none() -> None:
    assert route_ids("hook/started", {"threadId": "th", "turnId": None, "run": {}}) == (None, "th")


# -- route_ids on unknown methods and odd shapes ----------------------------------------------


def test_route_ids_of_an_unknown_method_falls_back_to_direct_ids() -> None:
    assert route_ids("future/thing", {"turnId": "t1", "threadId": "th1"}) == ("t1", "th1")


def test_route_ids_of_an_unknown_method_falls_back_to_nested_ids() -> None:
    params = {"turn": {"id": "t1"}, "thread": {"id": "th1"}}
    assert route_ids("future/thing", params) == ("t1", "th1")


def test_route_ids_of_an_unknown_method_without_ids_is_none_none() -> None:
    assert route_ids("future/thing", {"x": 1}) == (None, None)


@pytest.mark.parametrize("params", [None, [], "turnId", 42, 3.5, True, ("turnId", "x"), b"{}"])
def test_route_ids_never_raises_on_non_mapping_params(params: Any) -> None:
    assert route_ids("item/agentMessage/delta", params) == (None, None)
    assert route_ids("future/thing", params) == (None, None)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("item/agentMessage/delta", {"turnId": 7, "threadId": ["x"]}),
        ("turn/completed", {"turn": "not-a-dict", "threadId": None}),
        ("turn/completed", {"turn": {"id": 5}, "threadId": {}}),
        ("thread/started", {"thread": None}),
        ("future/thing", {"turnId": 1, "turn": {"id": None}, "thread": []}),
        ("future/thing", {"turn": [1], "threadId": 2.0}),
        ("item/agentMessage/delta", {}),
    ],
)
def test_route_ids_gives_none_for_malformed_ids(method: str, params: dict[str, Any]) -> None:
    assert route_ids(method, params) == (None, None)


def test_route_ids_tolerates_a_non_string_method() -> None:
    assert route_ids(None, {"turnId": "t", "threadId": "th"}) == ("t", "th")  # type: ignore[arg-type]


def test_route_ids_accepts_any_mapping() -> None:
    from types import MappingProxyType

    params = MappingProxyType({"turnId": "t", "threadId": "th", "delta": "x", "itemId": "i"})
    assert route_ids("item/agentMessage/delta", params) == ("t", "th")


# -- import cost ------------------------------------------------------------------------------


def test_importing_protocol_does_not_import_the_generated_models() -> None:
    src = str(Path(protocol.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = (
        "import sys, codex_notebook.protocol as p; "
        "assert p.route_ids('turn/started', {'turn': {'id': 'x'}}) == ('x', None); "
        "print('codex_notebook.protocol._generated' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
