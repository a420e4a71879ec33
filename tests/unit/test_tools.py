"""Declaring client tools: validation, wire shapes, answers (no process involved)."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from codex_notebook import InvalidArgumentError, ServerRequest, Tool, ToolCall, ToolResult, Toolset
from codex_notebook._rollout import stored_tool_names
from codex_notebook.tools import MAX_IMAGE_BYTES, ToolRegistry, names_from_specs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SCHEMA = {"type": "object", "properties": {"pattern": {"type": "string"}}}


def handler(call: ToolCall) -> str:
    return "ok"


def tool(name: str = "variables", **kwargs: Any) -> Tool:
    return Tool(name, "List the user's variables.", SCHEMA, handler, **kwargs)


def test_a_namespace_is_declared_as_codex_expects() -> None:
    toolset = Toolset("notebook", "The user's kernel.", [tool()])
    assert toolset.to_wire() == [
        {
            "type": "namespace",
            "name": "notebook",
            "description": "The user's kernel.",
            "tools": [
                {
                    "type": "function",
                    "name": "variables",
                    "description": "List the user's variables.",
                    "inputSchema": SCHEMA,
                }
            ],
        }
    ]
    json.dumps(toolset.to_wire())  # plain JSON, no read-only proxies


def test_bare_tools_are_declared_as_functions() -> None:
    assert Toolset(None, "", [tool("kernel_variables")]).to_wire()[0]["type"] == "function"


@pytest.mark.parametrize("name", ["a.b", "a b", "", "naïve", "x" * 129])
def test_tool_names_follow_codex_rules(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"\^\[a-zA-Z0-9_-\]\+\$|at most 128"):
        tool(name)


@pytest.mark.parametrize("namespace", ["functions", "python", "web", "mcp", "mcp__x", "container"])
def test_reserved_namespaces_are_refused(namespace: str) -> None:
    with pytest.raises(InvalidArgumentError, match="is reserved"):
        Toolset(namespace, "d", [tool()])


def test_a_namespace_description_is_at_most_1024_characters() -> None:
    with pytest.raises(InvalidArgumentError, match="at most 1024"):
        Toolset("notebook", "d" * 1025, [tool()])


def test_a_toolset_needs_tools_with_distinct_names() -> None:
    with pytest.raises(InvalidArgumentError, match="no tools"):
        Toolset("notebook", "d", [])
    with pytest.raises(InvalidArgumentError, match=r"'notebook\.variables' is declared twice"):
        Toolset("notebook", "d", [tool(), tool()])


def test_a_bare_tool_named_like_a_builtin_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="shadowed by codex's built-in"):
        Toolset(None, "", [tool("exec_command")])
    Toolset("notebook", "d", [tool("exec_command")])  # fine inside a namespace


def test_a_namespace_may_appear_once_per_thread() -> None:
    with pytest.raises(InvalidArgumentError, match="declared twice"):
        ToolRegistry([Toolset("n", "d", [tool("a")]), Toolset("n", "d", [tool("b")])])


def test_the_registry_finds_tools_by_namespace_and_name() -> None:
    registry = ToolRegistry([Toolset("n", "d", [tool("a")]), Toolset(None, "", [tool("b")])])
    assert registry.names == {"n.a", "b"}
    assert registry.lookup("n", "a") is not None and registry.lookup(None, "b") is not None
    assert registry.lookup(None, "a") is None and registry.lookup("n", "b") is None


def test_tool_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="input_schema must be a JSON Schema dict"):
        Tool("t", "d", "not a schema", handler)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="timeout must be a positive"):
        tool(timeout=0)
    with pytest.raises(InvalidArgumentError, match="handler must be callable"):
        Tool("t", "d", SCHEMA, None)  # type: ignore[arg-type]


def test_a_declared_schema_cannot_change_afterwards() -> None:
    schema: dict[str, Any] = {"type": "object"}
    declared = Tool("t", "d", schema, handler)
    schema["type"] = "string"
    assert declared.input_schema["type"] == "object"


def test_error_results_start_with_error_for_the_model() -> None:
    result = ToolResult.error("no such variable")
    assert result.to_wire() == {
        "contentItems": [{"type": "inputText", "text": "ERROR: no such variable"}],
        "success": False,
    }
    assert ToolResult.error("ERROR: once").text_content == "ERROR: once"


def test_image_results_carry_a_png_data_url() -> None:
    wire = ToolResult.image(PNG, text="a figure").to_wire()
    assert wire["contentItems"][0] == {"type": "inputText", "text": "a figure"}
    url = wire["contentItems"][1]["imageUrl"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG


def test_images_must_be_small_pngs() -> None:
    with pytest.raises(InvalidArgumentError, match="PNG"):
        ToolResult.image(b"GIF89a...")
    with pytest.raises(InvalidArgumentError, match="at most"):
        ToolResult.image(PNG + b"\x00" * MAX_IMAGE_BYTES)


def test_a_tool_call_is_parsed_from_the_server_request() -> None:
    raw = {
        "id": 0,
        "method": "item/tool/call",
        "params": {
            "threadId": "th",
            "turnId": "tu",
            "callId": "call_1",
            "namespace": "notebook",
            "tool": "variables",
            "arguments": {"pattern": "*"},
        },
    }
    sent: list[dict[str, Any]] = []
    call = ToolCall.from_request(ServerRequest("item/tool/call", raw, "tu", "th", sent.append))
    assert (call.qualified_name, call.arguments, call.call_id) == (
        "notebook.variables",
        {"pattern": "*"},
        "call_1",
    )
    assert call.respond("x = 1")
    assert not call.respond("again")
    assert sent == [
        {
            "id": 0,
            "result": {"contentItems": [{"type": "inputText", "text": "x = 1"}], "success": True},
        }
    ]


def test_non_object_arguments_become_an_empty_dict() -> None:
    raw = {"id": 0, "method": "item/tool/call", "params": {"tool": "t", "arguments": "oops"}}
    call = ToolCall.from_request(ServerRequest("item/tool/call", raw, None, None, print))
    assert call.arguments == {}


def test_stored_tool_names_come_from_the_session_record(tmp_path: Path) -> None:
    bare = {"type": "function", "name": "bare", "description": "", "inputSchema": {}}
    specs = [*Toolset("notebook", "d", [tool("a"), tool("b")]).to_wire(), bare]
    record = tmp_path / "rollout.jsonl"
    meta = {"type": "session_meta", "payload": {"id": "th", "dynamic_tools": specs}}
    record.write_text(json.dumps(meta) + "\n" + json.dumps({"type": "event_msg"}) + "\n")
    assert stored_tool_names(str(record)) == {"notebook.a", "notebook.b", "bare"}


def test_a_record_without_tools_means_no_tools_and_no_record_means_unknown(
    tmp_path: Path,
) -> None:
    record = tmp_path / "rollout.jsonl"
    record.write_text(json.dumps({"type": "session_meta", "payload": {"id": "th"}}) + "\n")
    assert stored_tool_names(str(record)) == frozenset()
    assert stored_tool_names(str(tmp_path / "missing.jsonl")) is None
    assert stored_tool_names(None) is None
    record.write_text("not json\n")
    assert stored_tool_names(str(record)) is None
    assert names_from_specs("garbage") is None


def test_a_record_path_that_is_not_a_regular_file_is_unknown_at_once(tmp_path: Path) -> None:
    """``thread.path`` comes from the server (a remote one describes its own disk): a FIFO
    or a device there must not block ``thread_resume()`` forever."""
    fifo = tmp_path / "rollout.jsonl"
    os.mkfifo(fifo)
    result: list[frozenset[str] | None] = []
    reader = threading.Thread(target=lambda: result.append(stored_tool_names(str(fifo))))
    reader.daemon = True
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the stuck open() so the thread can end
        with open(fifo, "wb"):
            pass
        pytest.fail("reading the record blocked on a FIFO")
    assert result == [None]
    assert stored_tool_names("/dev/zero") is None
