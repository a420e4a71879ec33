"""The demo model without codex: behaviour selection, schema samples, config, and the HTTP server.

Everything here is pure or talks to the server over loopback; the end-to-end behaviour with the
real codex binary is in tests/e2e/test_demo_backend.py.
"""

from __future__ import annotations

import datetime
import enum
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pydantic
import pytest

from codex_notebook.demo import DemoBackend, DemoModelServer, sample_instance
from codex_notebook.demo.home import check_policy, render_config, write_codex_home
from codex_notebook.demo.schema_sample import SchemaSampleError
from codex_notebook.demo.script import (
    APPROVAL_COMMAND_ARGV,
    DEMO_FILE_CONTENT,
    DEMO_FILE_NAME,
    HttpFailure,
    TextAnswer,
    ToolCall,
    chunk_words,
    deltas_text,
    last_user_text,
    markdown_answer,
    output_schema,
    parse_directives,
    reply_for_request,
    script_for,
    summarise_tool_output,
)
from codex_notebook.demo.server import Pause, SseEvent, response_events

# --- request bodies shaped like codex 0.163.0's -------------------------------------------------


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _body(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    developer = {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "You are a coding agent. run FAIL ECHO"}],
    }
    context = _user("<environment_context>\n  <cwd>/w</cwd>\n</environment_context>")
    return {"model": "mock-model", "stream": True, "input": [developer, context, *items], **extra}


def _tool_round(prompt: str, cmd: str, output: str) -> dict[str, Any]:
    call = {
        "type": "function_call",
        "name": "exec_command",
        "call_id": "call_1",
        "arguments": json.dumps({"cmd": cmd, "yield_time_ms": 1000}),
    }
    result = {"type": "function_call_output", "call_id": "call_1", "output": output}
    return _body(_user(prompt), call, result)


CODEX_OUTPUT = (
    "Chunk ID: d5e493\nWall time: 0.0000 seconds\nProcess exited with code 0\n"
    "Original token count: 20\nOutput:\nhello from the sandbox\n"
)

# --- directives ---------------------------------------------------------------------------------


def test_deltas_directive_gives_exact_chunks() -> None:
    reply = script_for("please DELTAS:4 now")
    assert isinstance(reply, TextAnswer)
    assert reply.deltas == ("chunk0", " chunk1", " chunk2", " chunk3")
    assert reply.text == "chunk0 chunk1 chunk2 chunk3"
    assert reply.delay_ms == 0


def test_deltas_text_joins_with_single_spaces() -> None:
    assert "".join(deltas_text(400)) == " ".join(f"chunk{i}" for i in range(400))


def test_delay_directive_sets_delay() -> None:
    reply = script_for("long DELTAS:400 DELAY_MS:20")
    assert isinstance(reply, TextAnswer)
    assert len(reply.deltas) == 400
    assert reply.delay_ms == 20


def test_deltas_are_clamped() -> None:
    assert parse_directives("DELTAS:0").deltas == 1
    assert parse_directives("DELTAS:99999999").deltas == 100_000


def test_slow_directive_defaults_to_forty_deltas_at_100ms() -> None:
    reply = script_for("SLOW")
    assert isinstance(reply, TextAnswer)
    assert (len(reply.deltas), reply.delay_ms) == (40, 100)


def test_slow_directive_yields_to_explicit_numbers() -> None:
    reply = script_for("SLOW DELTAS:3 DELAY_MS:5")
    assert isinstance(reply, TextAnswer)
    assert (reply.deltas, reply.delay_ms) == (deltas_text(3), 5)


def test_tool_directive_calls_exec_command_with_rest_of_line() -> None:
    reply = script_for("TOOL:echo hello from the sandbox")
    assert isinstance(reply, ToolCall)
    assert reply.name == "exec_command"
    assert reply.parsed_arguments == {"cmd": "echo hello from the sandbox", "yield_time_ms": 1000}


def test_tool_directive_strips_other_tokens_and_escalates() -> None:
    reply = script_for("TOOL:echo needs approval ESCALATE DELAY_MS:5\nsecond line")
    assert isinstance(reply, ToolCall)
    args = reply.parsed_arguments
    assert args["cmd"] == "echo needs approval"
    assert args["sandbox_permissions"] == "require_escalated"
    assert args["justification"]


def test_escalate_alone_uses_echo_escalated() -> None:
    reply = script_for("ESCALATE")
    assert isinstance(reply, ToolCall)
    assert reply.parsed_arguments["cmd"] == "echo escalated"


def test_empty_tool_command_defaults_to_pwd() -> None:
    reply = script_for("TOOL:")
    assert isinstance(reply, ToolCall)
    assert reply.parsed_arguments["cmd"] == "pwd"


def test_fail_directive_wins_over_everything() -> None:
    reply = script_for("TOOL:ls FAIL DELTAS:3")
    assert isinstance(reply, HttpFailure)
    assert reply.status == 400


@pytest.mark.parametrize("prompt", ["FAIL", "please fail now"])
def test_scripted_failures_say_they_are_a_demonstration(prompt: str) -> None:
    reply = script_for(prompt)
    assert isinstance(reply, HttpFailure)
    assert reply.message.startswith("Demonstration: the demo model fails this turn on purpose")
    assert "high demand" not in reply.message


def test_echo_directive_answers_the_prompt() -> None:
    prompt = "ECHO  say exactly\nthis"
    reply = script_for(prompt)
    assert isinstance(reply, TextAnswer)
    assert reply.text == prompt
    assert len(reply.deltas) == 4


def test_directive_tokens_are_case_sensitive_words() -> None:
    d = parse_directives("echo ECHOES FAILURE xFAIL TOOLS")
    assert not d.any


# --- natural-language demos ---------------------------------------------------------------------


def test_default_answer_is_markdown_with_heading_table_and_code() -> None:
    reply = script_for("What can you do?")
    assert isinstance(reply, TextAnswer)
    assert reply.text == markdown_answer("What can you do?")
    assert reply.text.startswith("## Demo answer\n\n> What can you do?\n")
    assert "|---|---|" in reply.text
    assert "```python\ndef fibonacci" in reply.text
    assert len(reply.deltas) > 20


@pytest.mark.parametrize(
    ("prompt", "cmd"),
    [
        ("Please list files here", "ls -l"),
        ("run something", "python3 --version"),
        ("which command works?", "python3 --version"),
    ],
)
def test_run_keywords_run_a_harmless_command_in_the_workspace(prompt: str, cmd: str) -> None:
    reply = script_for(prompt, workspace="/scratch")
    assert isinstance(reply, ToolCall)
    assert reply.parsed_arguments == {
        "cmd": cmd,
        "yield_time_ms": 1000,
        "workdir": "/scratch",
        "login": False,
    }


@pytest.mark.parametrize("prompt", ["install numpy", "delete the logs", "ask for approval"])
def test_approval_keywords_escalate_the_prompt_ruled_command(prompt: str) -> None:
    reply = script_for(prompt)
    assert isinstance(reply, ToolCall)
    args = reply.parsed_arguments
    assert args["sandbox_permissions"] == "require_escalated"
    assert args["cmd"] == "echo 'Approved. This demo command changes nothing.'"
    assert APPROVAL_COMMAND_ARGV == ("echo", "Approved. This demo command changes nothing.")


@pytest.mark.parametrize("prompt", ["edit my code", "create a file please", "apply a patch"])
def test_edit_keywords_apply_a_patch_adding_the_demo_file(prompt: str) -> None:
    reply = script_for(prompt, workspace="/scratch")
    assert isinstance(reply, ToolCall)
    cmd = reply.parsed_arguments["cmd"]
    assert cmd.startswith("apply_patch <<'PATCH'\n*** Begin Patch\n")
    assert f"*** Add File: /scratch/{DEMO_FILE_NAME}\n" in cmd
    added = "".join(line[1:] + "\n" for line in cmd.splitlines() if line.startswith("+"))
    assert added == DEMO_FILE_CONTENT


def test_slow_keyword_streams_slowly() -> None:
    reply = script_for("tell me something slowly")
    assert isinstance(reply, TextAnswer)
    assert reply.delay_ms == 60
    assert len(reply.deltas) > 50


def test_fail_keyword_fails() -> None:
    assert isinstance(script_for("make it fail"), HttpFailure)


def test_listing_summary_explains_the_sandbox_mount_points() -> None:
    output = "Process exited with code 0\nOutput:\ntotal 4\n-rw-r--r-- 1 u u 172 README.md\n"
    text = summarise_tool_output("ls -l", output)
    assert "README.md" in text
    assert "`.git`, `.codex`, `.agents` and `.aws`" in text
    assert "not on disk" in text


def test_directive_beats_keyword() -> None:
    reply = script_for("run DELTAS:2")
    assert isinstance(reply, TextAnswer)
    assert reply.text == "chunk0 chunk1"


# --- reading the request body -------------------------------------------------------------------


def test_last_user_text_skips_codex_context_and_other_roles() -> None:
    body = _body(_user("first"), _user("second prompt"))
    assert last_user_text(body) == "second prompt"
    body["input"].append(_user("<turn_aborted>\n</turn_aborted>"))
    assert last_user_text(body) == "second prompt"


def test_last_user_text_keeps_prompts_that_look_like_html() -> None:
    assert last_user_text(_body(_user("<b>bold</b>"))) == "<b>bold</b>"


def test_developer_text_never_drives_behaviour() -> None:
    reply = reply_for_request(_body(_user("DELTAS:2")))
    assert isinstance(reply, TextAnswer)
    assert reply.text == "chunk0 chunk1"


def test_follow_up_after_a_tool_summarises_its_output() -> None:
    reply = reply_for_request(_tool_round("TOOL:echo hi", "echo hi", CODEX_OUTPUT))
    assert isinstance(reply, TextAnswer)
    assert reply.text == (
        "The command `echo hi` exited with code 0. Its output:\n\n"
        "```text\nhello from the sandbox\n```\n"
    )


def test_follow_up_for_a_command_that_failed_to_start_quotes_codex() -> None:
    text = summarise_tool_output("rm -rf x", "exec_command failed: no such file")
    assert text.startswith("The command `rm -rf x` did not run. Codex reported:")


def test_follow_up_for_a_declined_command_says_the_person_declined_it() -> None:
    output = 'exec_command failed: CreateProcess { message: "Rejected(\\"rejected by user\\")" }'
    text = summarise_tool_output("rm -rf x", output)
    assert text == "You declined `rm -rf x`, so I did not run it."


def test_follow_up_for_a_patch_quotes_codex_success_line() -> None:
    output = "Wall time: 0.1 seconds\nOutput:\nSuccess. Updated the following files:\nA /w/f.py\n"
    text = summarise_tool_output("apply_patch <<'PATCH'\n...", output)
    assert text == (
        "The patch was applied.\n\n```text\nSuccess. Updated the following files:\nA /w/f.py\n```\n"
    )


def test_summary_fence_survives_backticks_in_output() -> None:
    text = summarise_tool_output("cat x", "Process exited with code 0\nOutput:\n```\n")
    assert "````text\n```\n````" in text


def test_output_schema_is_read_from_text_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = _body(_user("give json"), text={"format": {"type": "json_schema", "schema": schema}})
    assert output_schema(body) == schema
    reply = reply_for_request(body)
    assert isinstance(reply, TextAnswer)
    assert json.loads(reply.text) == {"a": 0}
    assert output_schema(_body(_user("x"), text={"format": {"type": "text"}})) is None


def test_structured_turn_ignores_tool_keywords_but_honours_fail() -> None:
    fmt = {"text": {"format": {"type": "json_schema", "schema": {"type": "string"}}}}
    assert isinstance(reply_for_request(_body(_user("run TOOL:ls"), **fmt)), TextAnswer)
    assert isinstance(reply_for_request(_body(_user("FAIL"), **fmt)), HttpFailure)


def test_chunk_words_round_trips() -> None:
    for text in ["", "  lead", "a  b\n\nc ", "x"]:
        assert "".join(chunk_words(text)) == text


# --- schema samples -----------------------------------------------------------------------------

SCHEMAS: list[dict[str, Any]] = [
    {"type": "string", "minLength": 20, "maxLength": 25},
    {"type": "integer", "exclusiveMinimum": 5, "maximum": 9, "multipleOf": 4},
    {"type": "number", "minimum": 0.5, "exclusiveMaximum": 0.75},
    {"type": ["null", "boolean"]},
    {"enum": ["red", "green"]},
    {"const": {"fixed": [1, 2]}},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": False},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "items": False},
    {
        "anyOf": [{"type": "null"}, {"$ref": "#/$defs/point"}],
        "$defs": {
            "point": {
                "type": "object",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                "required": ["x", "y"],
                "additionalProperties": False,
            }
        },
    },
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 2}}, "required": ["b"]},
        ]
    },
    {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
        },
    },
    {"type": "object", "required": ["extra"], "additionalProperties": {"type": "integer"}},
    {
        "$ref": "#/definitions/node",
        "definitions": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/node"}},
                },
                "required": ["name", "children"],
            }
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_sample_instance_validates(schema: dict[str, Any]) -> None:
    instance = sample_instance(schema)
    jsonschema.validate(instance, schema, format_checker=jsonschema.FormatChecker())
    assert sample_instance(schema) == instance  # deterministic


def test_sample_instance_rejects_remote_refs_and_false() -> None:
    with pytest.raises(SchemaSampleError):
        sample_instance({"$ref": "https://example.com/schema.json"})
    with pytest.raises(SchemaSampleError):
        sample_instance(False)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Tag(pydantic.BaseModel):
    label: str
    weight: float = pydantic.Field(ge=1.5)


class Tree(pydantic.BaseModel):
    name: str
    children: list[Tree] = []


class Report(pydantic.BaseModel):
    title: str
    count: int = pydantic.Field(gt=3, le=10)
    colour: Colour
    tags: list[Tag]
    note: str | None
    when: datetime.datetime
    day: datetime.date
    ident: uuid.UUID
    tree: Tree


def test_sample_instance_parses_into_pydantic_models() -> None:
    schema = Report.model_json_schema()
    report = Report.model_validate(sample_instance(schema))
    assert report.count == 4
    assert report.colour is Colour.RED
    assert report.note == "example note"
    assert report.tags[0].weight == 1.5


# --- SSE events ---------------------------------------------------------------------------------


def test_text_stream_has_the_responses_api_event_order() -> None:
    steps = list(response_events(TextAnswer(("a", "b"), delay_ms=5), input_tokens=40))
    kinds = [s.type if isinstance(s, SseEvent) else "pause" for s in steps]
    assert kinds == [
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "pause",
        "response.output_text.delta",
        "pause",
        "response.output_text.delta",
        "response.output_item.done",
        "response.completed",
    ]
    pauses = [s for s in steps if isinstance(s, Pause)]
    assert pauses[0].seconds == pytest.approx(0.005)
    done = steps[-2]
    assert isinstance(done, SseEvent)
    assert done.data["item"]["content"][0]["text"] == "ab"
    completed = steps[-1]
    assert isinstance(completed, SseEvent)
    usage = completed.data["response"]["usage"]
    assert usage["input_tokens"] == 40
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_tool_stream_is_a_single_function_call_item() -> None:
    call = ToolCall("exec_command", '{"cmd": "ls"}')
    steps = [s for s in response_events(call) if isinstance(s, SseEvent)]
    assert [s.type for s in steps] == [
        "response.created",
        "response.output_item.done",
        "response.completed",
    ]
    item = steps[1].data["item"]
    assert item["type"] == "function_call"
    assert item["arguments"] == '{"cmd": "ls"}'
    assert item["call_id"].startswith("call_")


def test_sse_encoding_repeats_the_type_in_data() -> None:
    raw = SseEvent("response.created", {"response": {"id": "r"}}).encode()
    assert raw.startswith(b"event: response.created\ndata: {")
    assert raw.endswith(b"\n\n")
    assert json.loads(raw.split(b"data: ", 1)[1])["type"] == "response.created"


# --- config.toml --------------------------------------------------------------------------------


def test_config_is_valid_toml_with_the_provider() -> None:
    tomllib = pytest.importorskip("tomllib")
    text = render_config(
        base_url="http://127.0.0.1:1234/v1",
        approval_policy="on-request",
        sandbox_mode="read-only",
        writable_roots=['/tmp/w "q"'],
    )
    config = tomllib.loads(text)
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:1234/v1"
    assert provider["wire_api"] == "responses"
    assert provider["request_max_retries"] == provider["stream_max_retries"] == 0
    assert config["approval_policy"] == "on-request"
    assert config["sandbox_mode"] == "read-only"
    assert config["sandbox_workspace_write"]["writable_roots"] == ['/tmp/w "q"']
    assert config["features"] == {"plugins": False, "remote_plugin": False, "apps": False}


def test_untrusted_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="untrusted"):
        check_policy("untrusted", "read-only")
    with pytest.raises(ValueError, match="sandbox_mode"):
        check_policy("never", "full")


def test_write_codex_home_never_overwrites_a_foreign_config(tmp_path: Any) -> None:
    (tmp_path / "config.toml").write_text('model = "gpt-5"\n')
    with pytest.raises(FileExistsError):
        write_codex_home(tmp_path, base_url="http://127.0.0.1:1/v1")
    assert (tmp_path / "config.toml").read_text() == 'model = "gpt-5"\n'


def test_write_codex_home_rewrites_its_own_config(tmp_path: Any) -> None:
    write_codex_home(tmp_path, base_url="http://127.0.0.1:1/v1")
    path = write_codex_home(
        tmp_path, base_url="http://127.0.0.1:2/v1", prompt_prefixes=[("echo", "x y")]
    )
    assert "127.0.0.1:2" in path.read_text()
    rules = (tmp_path / "rules" / "codex-notebook-demo.rules").read_text()
    assert 'prefix_rule(pattern=["echo", "x y"], decision="prompt"' in rules


# --- DemoBackend without codex ------------------------------------------------------------------


def test_backend_env_removes_credentials_and_sets_codex_home() -> None:
    base = {
        "PATH": "/bin",
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_BASE_URL": "https://x",
        "CODEX_API_KEY": "k",
        "CODEX_HOME": "/home/u/.codex",
        "GITHUB_TOKEN": "t",
        "ANTHROPIC_API_KEY": "a",
        "NO_PROXY": "corp.example",
    }
    with DemoBackend(probe_sandbox=False) as backend:
        env = backend.env(base)
        assert env["CODEX_HOME"] == str(backend.codex_home)
        assert env["PATH"] == "/bin"
        for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_API_KEY", "GITHUB_TOKEN"):
            assert key not in env
        assert "ANTHROPIC_API_KEY" not in env
        assert env["NO_PROXY"].split(",")[:2] == ["corp.example", "127.0.0.1"]
        assert "localhost" in env["no_proxy"]
        assert (backend.workspace / "README.md").exists()
        assert backend.sandbox_probe is None
        assert not backend.sandbox_fallback
        assert backend.notice is None


def test_backend_deletes_its_temporary_directories() -> None:
    backend = DemoBackend(probe_sandbox=False).start()
    home, workspace = backend.codex_home, backend.workspace
    assert home.is_dir()
    backend.close()
    backend.close()
    assert not home.exists()
    assert not workspace.exists()
    with pytest.raises(RuntimeError):
        _ = backend.codex_home


def test_backend_keeps_directories_it_was_given(tmp_path: Any) -> None:
    with DemoBackend(
        probe_sandbox=False, codex_home=tmp_path / "h", workspace=tmp_path / "w"
    ) as backend:
        assert backend.codex_home == tmp_path / "h"
    assert (tmp_path / "h" / "config.toml").exists()
    assert (tmp_path / "w").is_dir()


def test_backend_rejects_untrusted_at_construction() -> None:
    with pytest.raises(ValueError, match="untrusted"):
        DemoBackend(approval_policy="untrusted")


def test_explicit_full_access_is_not_probed_and_not_a_fallback() -> None:
    with DemoBackend(sandbox_mode="danger-full-access") as backend:
        assert backend.sandbox_probe is None
        assert not backend.sandbox_fallback


# --- the HTTP server over loopback --------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[DemoModelServer]:
    with DemoModelServer(workspace="/scratch") as srv:
        yield srv


def _post(server: DemoModelServer, body: dict[str, Any]) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "POST", "/v1/responses", json.dumps(body), {"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def _sse(payload: bytes) -> list[dict[str, Any]]:
    events = []
    for block in payload.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def _deltas(events: list[dict[str, Any]]) -> list[str]:
    return [e["delta"] for e in events if e["type"] == "response.output_text.delta"]


def test_server_binds_loopback_on_a_random_port(server: DemoModelServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.port > 0
    with DemoModelServer() as other:
        assert other.port != server.port


def test_server_streams_the_scripted_answer(server: DemoModelServer) -> None:
    status, ctype, payload = _post(server, _body(_user("DELTAS:3")))
    assert (status, ctype) == (200, "text/event-stream")
    events = _sse(payload)
    assert _deltas(events) == ["chunk0", " chunk1", " chunk2"]
    assert events[-1]["type"] == "response.completed"
    assert server.recent_requests()[-1]["body"]["input"][-1] == _user("DELTAS:3")


def test_server_answers_fail_with_a_plain_text_400(server: DemoModelServer) -> None:
    status, ctype, payload = _post(server, _body(_user("FAIL")))
    assert (status, ctype) == (400, "text/plain; charset=utf-8")
    assert payload.decode().startswith("Demonstration: ")


def test_server_models_and_unknown_paths(server: DemoModelServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (
        200,
        {"models": [], "data": [], "object": "list"},
    )
    conn.close()
    for method, path in [("GET", "/v1/nothing"), ("POST", "/v1/chat/completions")]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request(method, path, body=b"{}" if method == "POST" else None)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404
        conn.close()


def test_server_rejects_non_json(server: DemoModelServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", "/v1/responses", body=b"not json")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 400
    conn.close()


def test_concurrent_requests_each_get_their_own_answer(server: DemoModelServer) -> None:
    results: dict[int, list[str]] = {}

    spans: dict[int, tuple[float, float]] = {}

    def worker(n: int) -> None:
        began = time.monotonic()
        _, _, payload = _post(server, _body(_user(f"DELTAS:{n} DELAY_MS:100")))
        spans[n] = (began, time.monotonic())
        results[n] = _deltas(_sse(payload))

    threads = [threading.Thread(target=worker, args=(n,)) for n in (3, 5, 7, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == {n: list(deltas_text(n)) for n in (3, 5, 7, 9)}
    # served at once, not one after another: every request began before the first one ended
    assert max(began for began, _ in spans.values()) < min(end for _, end in spans.values())


def _open_stream(server: DemoModelServer, prompt: str) -> socket.socket:
    body = json.dumps(_body(_user(prompt))).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(
        b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert b"200" in sock.recv(4096).split(b"\r\n", 1)[0]
    return sock


def test_stop_returns_promptly_with_streams_in_flight() -> None:
    srv = DemoModelServer().start()
    socks = [_open_stream(srv, "DELTAS:1000 DELAY_MS:1000") for _ in range(3)]
    try:
        started = time.monotonic()
        srv.stop(timeout=5)
        assert time.monotonic() - started < 1.0
        srv.stop()  # idempotent
        for sock in socks:
            sock.settimeout(5)
            while sock.recv(65536):  # the server closed the stream
                pass
    finally:
        for sock in socks:
            sock.close()
    with pytest.raises(RuntimeError):
        srv.start()


def test_client_disconnect_mid_stream_is_quiet(
    server: DemoModelServer, capfd: pytest.CaptureFixture[str]
) -> None:
    sock = _open_stream(server, "DELTAS:50 DELAY_MS:5")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # RST: the server's next write fails
    _, _, payload = _post(server, _body(_user("DELTAS:2")))  # still serving
    assert _deltas(_sse(payload)) == ["chunk0", " chunk1"]
    server.stop()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err
