"""Forward compatibility against each real codex build (pinned and newest npm).

The committed models come from codex 0.163.0. A newer server sends methods they do not know
(0.169.0: ``thread/section/changed``) and new fields in methods they do. These tests drive the
real binaries and check, per build: the version is reported; every event still validates (known
methods keep new fields, unknown ones are ``UnknownParams`` with the raw params); whatever the
binary's own schema adds is routed by its raw ids and never crashes validation.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from codex_notebook import AsyncCodex, Codex, Notification, ServerRequest, UnknownParams, protocol
from codex_notebook.demo import DemoBackend, sample_instance
from codex_notebook.router import Router

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
NEW_NOTIFICATION = "thread/section/changed"  # added in 0.169.0


@cache
def generator() -> ModuleType:
    """scripts/generate_protocol.py as a module (it is a script, not a package)."""
    path = REPO_ROOT / "scripts" / "generate_protocol.py"
    spec = importlib.util.spec_from_file_location("_generate_protocol_for_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@cache
def binary_schema(codex_bin: str) -> tuple[Any, dict[str, Any]]:
    """(registry, definitions) of the binary's own JSON Schema, as the generator reads it."""
    gen = generator()
    with tempfile.TemporaryDirectory(prefix="codex-schema-") as tmp:
        definitions = gen.load_definitions(gen.dump_schema(codex_bin, Path(tmp) / "schema"))
    return gen.build_registry(definitions, gen.codex_version(codex_bin)), definitions


def check_event(event: Notification) -> None:
    """Validation never raises; known methods keep every field, unknown ones the raw params."""
    params = event.params
    if event.known:
        assert not isinstance(params, UnknownParams), (event.method, event.params_dict)
        assert params.model_dump(mode="json", exclude_unset=True) == event.params_dict, event
    else:
        assert isinstance(params, UnknownParams)
        assert params.raw == event.params_dict


@pytest.fixture
def backend(codex_bin: str) -> Iterator[DemoBackend]:
    with DemoBackend(codex_bin=codex_bin, approval_policy="on-request") as demo:
        yield demo


# -- the version --------------------------------------------------------------------------------


def test_sync_and_async_clients_report_the_binary_version(
    codex_bin: str, codex_version: str, backend: DemoBackend
) -> None:
    with Codex(codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace) as codex:
        assert codex.server_version == codex_version
        assert f"/{codex_version}" in codex.user_agent

    async def main() -> str | None:
        async with AsyncCodex(
            codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace
        ) as codex:
            return codex.server_version

    assert asyncio.run(asyncio.wait_for(main(), 60)) == codex_version


# -- what the binary really sends ---------------------------------------------------------------


def test_every_event_validates_and_keeps_every_field(codex_bin: str, backend: DemoBackend) -> None:
    requests: list[ServerRequest] = []

    def accept(request: ServerRequest) -> dict[str, str]:
        requests.append(request)
        return {"decision": "accept"}

    seen: set[str] = set()
    with Codex(
        codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace, approval_handler=accept
    ) as codex:
        prompts = ["DELTAS:5", "TOOL:echo hi", "TOOL:echo esc ESCALATE", "edit a file", "FAIL"]
        for prompt in prompts:
            turn = codex.thread_start().turn(prompt)
            for event in turn.stream(timeout=60):
                assert event.turn_id == turn.id, event
                check_event(event)
                seen.add(event.method)
        for note in codex.notifications(timeout=0.5):
            check_event(note)
            seen.add(note.method)
    assert {"turn/started", "item/completed", "turn/completed", "error"} <= seen
    assert [r.method for r in requests] == ["item/commandExecution/requestApproval"]
    for request in requests:
        check_event(request)


def test_unknown_notification_is_routed_by_its_raw_thread_id(
    codex_bin: str, codex_version: str, backend: DemoBackend
) -> None:
    registry, _ = binary_schema(codex_bin)
    if NEW_NOTIFICATION not in registry.notification_params:
        pytest.skip(f"codex {codex_version} does not send {NEW_NOTIFICATION}")
    assert NEW_NOTIFICATION not in protocol.NOTIFICATION_PARAMS  # unknown to the models
    with Codex(codex_bin=codex_bin, env=backend.env(), cwd=backend.workspace) as codex:
        thread = codex.thread_start()
        assert thread.run("DELTAS:2", timeout=30).status == "completed"
        section = codex.request("threadSection/create", {"name": "compat"}, timeout=30)
        section_id = section["section"]["id"]
        codex.request(
            "thread/section/move", {"threadId": thread.id, "sectionId": section_id}, timeout=30
        )
        found: list[Notification] = []
        for note in codex.notifications(timeout=10):
            if note.method == NEW_NOTIFICATION:
                found.append(note)
                break
        assert codex.thread_start().run("DELTAS:1", timeout=30).status == "completed"  # alive
    assert found, f"no {NEW_NOTIFICATION} from codex {codex_version}"
    note = found[0]
    assert not note.known
    assert note.thread_id == thread.id
    assert note.turn_id is None
    assert note.params_dict == {"threadId": thread.id, "sectionId": section_id}
    assert isinstance(note.params, UnknownParams)
    assert note.params.raw == note.params_dict
    assert note.params.sectionId == section_id  # type: ignore[attr-defined]


# -- what the binary's schema says it may send ----------------------------------------------------


def _sample(definitions: dict[str, Any], name: str) -> dict[str, Any]:
    value = sample_instance({"$ref": f"#/definitions/{name}", "definitions": definitions})
    assert isinstance(value, dict), (name, value)
    return value


def _expected_id(params: dict[str, Any], location: str, entity: str) -> str | None:
    value = params.get(entity) if location == "nested" else params.get(f"{entity}Id")
    if location == "nested":
        value = value.get("id") if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _with_ids(params: dict[str, Any], locations: tuple[str, str]) -> dict[str, Any]:
    """The sample with distinctive turn/thread ids wherever the schema puts them."""
    for entity, location, value in zip(
        ("turn", "thread"), locations, ("T-new", "TH-new"), strict=True
    ):
        if location in ("direct", "nullable"):
            params[f"{entity}Id"] = value
        elif location == "nested" and isinstance(params.get(entity), dict):
            params[entity]["id"] = value
    return params


def test_methods_the_models_do_not_know_route_by_raw_ids(
    codex_bin: str, codex_version: str
) -> None:
    """Every notification and server request in the binary's schema that the committed models
    lack: a sample of its params is routed by its raw ids and exposed raw."""
    registry, definitions = binary_schema(codex_bin)
    new = [
        (kind, method, params)
        for kind, table, ours in (
            ("notification", registry.notification_params, protocol.NOTIFICATION_PARAMS),
            ("server_request", registry.server_request_params, protocol.SERVER_REQUEST_PARAMS),
        )
        for method, params in sorted(table.items())
        if method not in ours
    ]
    if codex_version == protocol.CODEX_VERSION:
        assert new == []  # the models were generated from this very binary
        return
    sent: list[dict[str, Any]] = []
    router = Router(sent.append, default_handler=lambda request: None)
    log = router.claim("T-new", "TH-new")
    for number, (kind, method, params_name) in enumerate(new):
        locations = (registry.turn_id_location[method], registry.thread_id_location[method])
        params = _with_ids(_sample(definitions, params_name), locations)
        message: dict[str, Any] = {"method": method, "params": params}
        if kind == "server_request":
            message["id"] = number
        before = len(log)
        router.feed(orjson.dumps(message) + b"\n")
        turn_id = _expected_id(params, locations[0], "turn")
        if turn_id is not None:
            assert len(log) == before + 1, method
            event = log.notifications(before)[0]
        else:
            event = router.channel.get(timeout=1)  # type: ignore[assignment]
            assert event is not None, method
        assert event.method == method
        thread_id = _expected_id(params, locations[1], "thread")
        assert (event.turn_id, event.thread_id) == (turn_id, thread_id), method
        assert not event.known
        assert isinstance(event.params, UnknownParams)
        assert event.params.raw == params
        if kind == "server_request":
            assert isinstance(event, ServerRequest)
            assert event.wait_settled(5), method
            assert sent[-1]["id"] == number and sent[-1]["error"]["code"] == -32601


def test_known_methods_with_changed_params_still_validate(
    codex_bin: str, codex_version: str
) -> None:
    """For every known notification / server request whose params the binary's schema changed,
    a sample of the new shape validates: into the typed model keeping new fields, or (new enum
    values, new union members) into ``UnknownParams`` with the raw params -- never an error."""
    registry, definitions = binary_schema(codex_bin)
    typed_count, fallbacks = 0, []
    for kind, table, ours in (
        ("notification", registry.notification_params, protocol.NOTIFICATION_PARAMS),
        ("server_request", registry.server_request_params, protocol.SERVER_REQUEST_PARAMS),
    ):
        for method, params_name in sorted(table.items()):
            if method not in ours:
                continue
            params = _sample(definitions, params_name)
            event: Notification
            if kind == "server_request":
                event = ServerRequest(method, {"id": 0, "method": method, "params": params},
                                      None, None, lambda message: None)  # fmt: skip
            else:
                event = Notification(method, {"method": method, "params": params})
            assert event.known
            typed = event.params
            if isinstance(typed, UnknownParams):
                assert typed.raw == params
                fallbacks.append(method)
            else:
                assert typed.model_dump(mode="json", exclude_unset=True) == params, method
                typed_count += 1
    if codex_version == protocol.CODEX_VERSION:
        assert fallbacks == []  # the models' own schema: every sample is typed
    assert typed_count > 80, fallbacks
