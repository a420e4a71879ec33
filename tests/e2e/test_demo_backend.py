"""The real ``codex app-server`` driven against the demo model, without our client library.

A deliberately tiny JSON-RPC driver lives here so these tests check the demo model alone: if
one fails, the demo (or codex) is at fault, not the client under development elsewhere.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from codex_notebook.demo import DemoBackend, deltas_text
from codex_notebook.demo.script import (
    DEMO_FILE_CONTENT,
    DEMO_FILE_NAME,
    FAIL_DIRECTIVE_MESSAGE,
    LIST_NOTE,
    markdown_answer,
)

pytestmark = pytest.mark.e2e

Message = dict[str, Any]
Answer = Callable[[Message], Message]

_EOF = object()


class AppServer:
    """``codex app-server`` on stdio: send lines, read lines with deadlines, answer requests."""

    def __init__(self, codex_bin: str, backend: DemoBackend, *, env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(
            [codex_bin, "app-server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env if env is not None else backend.env(),
            cwd=backend.workspace,
            text=True,
            encoding="utf-8",
        )
        self._lines: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._next_id = 100
        self.backlog: list[Message] = []

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self._lines.put(json.loads(line))
        self._lines.put(_EOF)

    def send(self, message: Message) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def next(self, deadline: float) -> Message:
        """The next message, from the backlog first; fails the test at the deadline or EOF."""
        if self.backlog:
            return self.backlog.pop(0)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail("timed out waiting for the app-server")
        try:
            item = self._lines.get(timeout=remaining)
        except queue.Empty:
            pytest.fail("timed out waiting for the app-server")
        if item is _EOF:
            pytest.fail(f"app-server exited (status {self.proc.poll()})")
        message: Message = item
        return message

    def request(self, method: str, params: Message, *, timeout: float = 30) -> Message:
        """Send a request; return its result, keeping other messages in the backlog."""
        self._next_id += 1
        rid = self._next_id
        self.send({"id": rid, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        kept: list[Message] = []
        while True:
            message = self.next(deadline)
            if message.get("id") == rid and "method" not in message:
                self.backlog[:0] = kept
                if "error" in message:
                    pytest.fail(f"{method} failed: {message['error']}")
                result: Message = message["result"]
                return result
            kept.append(message)

    def initialize(self, *, experimental: bool = False) -> None:
        params: Message = {"clientInfo": {"name": "t", "version": "0"}}
        if experimental:  # needed to declare dynamicTools on thread/start
            params["capabilities"] = {"experimentalApi": True}
        self.request("initialize", params)
        self.send({"method": "initialized"})

    def thread(self, **params: Any) -> str:
        thread_id: str = self.request("thread/start", params)["thread"]["id"]
        return thread_id

    def start_turn(self, thread_id: str, prompt: str, **params: Any) -> str:
        input_ = [{"type": "text", "text": prompt}]
        result = self.request("turn/start", {"threadId": thread_id, "input": input_, **params})
        turn_id: str = result["turn"]["id"]
        return turn_id

    def collect(
        self,
        turn_ids: set[str],
        *,
        answer: Answer | None = None,
        timeout: float = 60,
    ) -> dict[str, list[Message]]:
        """Every message of the given turns until each has ``turn/completed``.

        Server requests (they carry both ``id`` and ``method``) are answered with *answer*
        (default: accept) and recorded in their turn's list too.
        """
        deadline = time.monotonic() + timeout
        events: dict[str, list[Message]] = {t: [] for t in turn_ids}
        pending = set(turn_ids)
        while pending:
            message = self.next(deadline)
            params = message.get("params") or {}
            turn_id = params.get("turnId") or (params.get("turn") or {}).get("id")
            if "id" in message and "method" in message:
                reply = answer(message) if answer else {"decision": "accept"}
                self.send({"id": message["id"], "result": reply})
            if turn_id in events:
                events[turn_id].append(message)
                if message.get("method") == "turn/completed":
                    pending.discard(turn_id)
        return events

    def run(self, thread_id: str, prompt: str, **kwargs: Any) -> list[Message]:
        answer = kwargs.pop("answer", None)
        turn_id = self.start_turn(thread_id, prompt, **kwargs)
        return self.collect({turn_id}, answer=answer)[turn_id]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._reader.join(timeout=5)


@pytest.fixture
def app(codex_bin: str, demo_backend: DemoBackend) -> Iterator[AppServer]:
    server = AppServer(codex_bin, demo_backend)
    try:
        server.initialize()
        yield server
    finally:
        server.close()


def _of(events: list[Message], method: str) -> list[Message]:
    return [e["params"] for e in events if e.get("method") == method]


def _completed_items(events: list[Message], kind: str) -> list[Message]:
    return [p["item"] for p in _of(events, "item/completed") if p["item"]["type"] == kind]


def _final_text(events: list[Message]) -> str:
    messages = _completed_items(events, "agentMessage")
    assert messages, "no agentMessage completed"
    text: str = messages[-1]["text"]
    return text


def _status(events: list[Message]) -> str:
    status: str = _of(events, "turn/completed")[-1]["turn"]["status"]
    return status


# --- tests --------------------------------------------------------------------------------------


def test_text_answer_streams_the_expected_deltas(app: AppServer) -> None:
    events = app.run(app.thread(), "DELTAS:25 DELAY_MS:2")
    deltas = [p["delta"] for p in _of(events, "item/agentMessage/delta")]
    assert deltas == list(deltas_text(25))
    assert _final_text(events) == " ".join(f"chunk{i}" for i in range(25))
    assert _status(events) == "completed"


def test_default_answer_is_markdown_with_table_and_code(app: AppServer) -> None:
    prompt = "Explain Python decorators"
    events = app.run(app.thread(), prompt)
    text = _final_text(events)
    assert text == markdown_answer(prompt)
    assert text.startswith("## Demo answer")
    assert "| Try a prompt with | What happens |" in text
    assert "```python" in text
    usage = _of(events, "thread/tokenUsage/updated")
    assert usage
    assert usage[-1]["tokenUsage"]["total"]["outputTokens"] > 0


def test_tool_call_produces_a_command_execution_with_output(app: AppServer) -> None:
    events = app.run(app.thread(), "TOOL:echo hello from the demo")
    commands = _completed_items(events, "commandExecution")
    assert len(commands) == 1
    assert commands[0]["status"] == "completed"
    assert commands[0]["exitCode"] == 0
    assert "hello from the demo" in commands[0]["aggregatedOutput"]
    assert _final_text(events).startswith(
        "The command `echo hello from the demo` exited with code 0. Its output:\n\n```text\n"
    )
    assert "hello from the demo\n```" in _final_text(events)


def test_list_files_keyword_lists_only_what_the_demo_made(app: AppServer) -> None:
    events = app.run(app.thread(), "list files")
    (command,) = _completed_items(events, "commandExecution")
    assert command["command"].endswith("'ls -l'")
    listing = command["aggregatedOutput"]
    assert "README.md" in listing
    # codex's sandbox mounts empty .git/.codex/.agents/.aws into the workspace; not listed
    for mount in (".git", ".codex", ".agents", ".aws"):
        assert mount not in listing
    assert "README.md" in _final_text(events)
    assert _final_text(events).endswith(LIST_NOTE)


def test_escalate_asks_for_approval_under_on_request(app: AppServer) -> None:
    thread_id = app.thread(approvalPolicy="on-request")
    events = app.run(thread_id, "TOOL:echo approved-run ESCALATE")
    requests = [e for e in events if e.get("method") == "item/commandExecution/requestApproval"]
    assert len(requests) == 1
    assert isinstance(requests[0]["id"], int)
    assert "echo approved-run" in requests[0]["params"]["command"]
    (command,) = _completed_items(events, "commandExecution")
    assert "approved-run" in command["aggregatedOutput"]
    assert _status(events) == "completed"


def test_install_keyword_asks_and_decline_is_reported(app: AppServer) -> None:
    thread_id = app.thread(approvalPolicy="on-request")
    events = app.run(thread_id, "please install numpy", answer=lambda _: {"decision": "decline"})
    assert [e for e in events if e.get("method") == "item/commandExecution/requestApproval"]
    (command,) = _completed_items(events, "commandExecution")
    assert command["status"] == "declined"
    assert "did not run" in _final_text(events)


def test_fail_ends_the_turn_failed_with_the_demonstration_text(app: AppServer) -> None:
    events = app.run(app.thread(), "FAIL")
    errors = _of(events, "error")
    assert errors
    assert errors[-1]["willRetry"] is False
    assert _status(events) == "failed"
    error = _of(events, "turn/completed")[-1]["turn"]["error"]
    assert error["codexErrorInfo"]
    assert error["message"] == FAIL_DIRECTIVE_MESSAGE


def test_edit_creates_a_file_change_and_the_file(app: AppServer, demo_backend: DemoBackend) -> None:
    thread_id = app.thread(cwd=str(demo_backend.workspace))
    events = app.run(thread_id, "edit: create a file please")
    (change,) = _completed_items(events, "fileChange")
    assert change["status"] == "completed"
    (entry,) = change["changes"]
    assert entry["path"] == str(demo_backend.workspace / DEMO_FILE_NAME)
    assert entry["kind"]["type"] == "add"
    assert entry["diff"] == DEMO_FILE_CONTENT
    assert (demo_backend.workspace / DEMO_FILE_NAME).read_text() == DEMO_FILE_CONTENT
    assert _of(events, "turn/diff/updated")
    assert _final_text(events).startswith("The patch was applied.")


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "labels": {"type": "array", "items": {"enum": ["bug", "feature"]}, "minItems": 1},
        "owner": {"anyOf": [{"$ref": "#/$defs/person"}, {"type": "null"}]},
    },
    "required": ["title", "score", "labels", "owner"],
    "additionalProperties": False,
    "$defs": {
        "person": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "active": {"type": "boolean"}},
            "required": ["name", "active"],
            "additionalProperties": False,
        }
    },
}


def test_structured_output_satisfies_the_schema(app: AppServer) -> None:
    events = app.run(app.thread(), "Summarise the issue as JSON", outputSchema=SCHEMA)
    document = json.loads(_final_text(events))
    jsonschema.validate(document, SCHEMA)
    assert document == {
        "title": "example title",
        "score": 1,
        "labels": ["bug"],
        "owner": {"name": "example name", "active": True},
    }


def test_two_concurrent_threads_get_their_own_answers(app: AppServer) -> None:
    prompts = {app.thread(): f"ECHO answer for thread {name}" for name in ("one", "two")}
    turns = {
        app.start_turn(tid, prompt + " DELAY_MS:15"): prompt for tid, prompt in prompts.items()
    }
    events = app.collect(set(turns))
    for turn_id, prompt in turns.items():
        assert _final_text(events[turn_id]) == prompt + " DELAY_MS:15"
        assert _status(events[turn_id]) == "completed"


def _unshare_wrapper(tmp_path: Path, codex_bin: str) -> Path | None:
    """A codex wrapper running in a user namespace that may not create more (like Binder)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    inner = tmp_path / "no-userns-codex"
    inner.write_text(
        "#!/bin/sh\n"
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 97\n"
        f'exec "{codex_bin}" "$@"\n'
    )
    outer = tmp_path / "codex"
    outer.write_text(f'#!/bin/sh\nexec "{unshare}" -Ur "{inner}" "$@"\n')
    for path in (inner, outer):
        path.chmod(0o755)
    check = subprocess.run([str(outer), "--version"], capture_output=True, timeout=30, check=False)
    return outer if check.returncode == 0 else None


def test_sandbox_fallback_when_namespaces_are_unavailable(codex_bin: str, tmp_path: Path) -> None:
    wrapper = _unshare_wrapper(tmp_path, codex_bin)
    if wrapper is None:
        pytest.skip("cannot simulate a container without user namespaces here")
    with DemoBackend(codex_bin=wrapper, approval_policy="on-request") as backend:
        assert backend.sandbox_fallback
        assert backend.sandbox_mode == "danger-full-access"
        assert backend.requested_sandbox_mode == "workspace-write"
        assert backend.notice is not None
        assert "sandbox" in backend.notice
        assert 'sandbox_mode = "danger-full-access"' in backend.config_path.read_text()
        server = AppServer(str(wrapper), backend)
        try:
            server.initialize()
            thread_id = server.thread()
            events = server.run(thread_id, "TOOL:echo unsandboxed-ok")
            (command,) = _completed_items(events, "commandExecution")
            assert command["exitCode"] == 0
            assert "unsandboxed-ok" in command["aggregatedOutput"]
            # The approval demo still asks: its command has an execpolicy "prompt" rule.
            events = server.run(thread_id, "install something")
            assert [e for e in events if e.get("method") == "item/commandExecution/requestApproval"]
        finally:
            server.close()


def test_sandbox_probe_outcome_is_recorded(demo_backend: DemoBackend) -> None:
    probe = demo_backend.sandbox_probe
    assert probe is not None
    assert probe.works is not None, probe.detail
    assert demo_backend.sandbox_fallback is (probe.works is False)
    assert (demo_backend.notice is not None) is demo_backend.sandbox_fallback


def test_no_credentials_reach_codex(codex_bin: str, demo_backend: DemoBackend) -> None:
    env = demo_backend.env({**os.environ, "OPENAI_API_KEY": "sk-should-not-leak"})
    assert "OPENAI_API_KEY" not in env
    server = AppServer(codex_bin, demo_backend, env=env)
    try:
        server.initialize()
        events = server.run(server.thread(), "DELTAS:1")
        assert _final_text(events) == "chunk0"
    finally:
        server.close()
    for request in demo_backend.server.recent_requests():
        assert "sk-should-not-leak" not in json.dumps(request)


# --- the notebook's kernel tools (client-defined tools in namespace "notebook") -----------------

NOTEBOOK_TOOLS: list[Message] = [
    {
        "type": "namespace",
        "name": "notebook",
        "description": "The user's live Jupyter kernel.",
        "tools": [
            {
                "type": "function",
                "name": name,
                "description": f"notebook tool {name}",
                "inputSchema": {"type": "object", "properties": props},
            }
            for name, props in (
                ("variables", {"pattern": {"type": "string"}, "limit": {"type": "integer"}}),
                ("inspect", {"name": {"type": "string"}}),
                ("cells", {"last": {"type": "integer"}}),
                ("last_error", {}),
                ("run_python", {"code": {"type": "string"}}),
                ("propose_cell", {"code": {"type": "string"}, "explanation": {"type": "string"}}),
            )
        ],
    }
]
KERNEL = {
    "variables": "df: DataFrame (3, 3) columns=[date, price, qty]\nx: int = 42",
    "inspect": (
        "df: pandas.DataFrame\nshape: (3, 3)\ncolumns: ['date', 'price', 'qty']\n"
        "head:\n```\n         date  price  qty\n0  2024-01-01    1.5    3\n```"
    ),
    "last_error": (
        "KeyError: 'prcie'\n```python\ntotal = df['prcie'].sum()\n```\n"
        "Cell In[4], line 1\n----> 1 total = df['prcie'].sum()\n\nKeyError: 'prcie'"
    ),
    "cells": "(no cells)",
    "propose_cell": "The proposal is shown to the user.",
    "run_python": "ERROR: the user declined to run this code.",
}


def _kernel(request: Message) -> Message:
    """Answer ``item/tool/call`` like the notebook would (and accept anything else)."""
    if request["method"] != "item/tool/call":
        return {"decision": "accept"}
    text = KERNEL[request["params"]["tool"]]
    return {"contentItems": [{"type": "inputText", "text": text}], "success": True}


@pytest.fixture
def tools_app(codex_bin: str, demo_backend: DemoBackend) -> Iterator[AppServer]:
    server = AppServer(codex_bin, demo_backend)
    try:
        server.initialize(experimental=True)
        yield server
    finally:
        server.close()


def _tool_calls(events: list[Message]) -> list[Message]:
    return [e["params"] for e in events if e.get("method") == "item/tool/call"]


def test_nbtool_reaches_the_client_as_a_namespaced_tool_call(tools_app: AppServer) -> None:
    thread_id = tools_app.thread(dynamicTools=NOTEBOOK_TOOLS)
    prompt = 'NBTOOL:inspect ARGS:{"name": "df"}'
    events = tools_app.run(thread_id, prompt, answer=_kernel)
    (call,) = _tool_calls(events)
    assert (call["namespace"], call["tool"], call["arguments"]) == (
        "notebook",
        "inspect",
        {"name": "df"},
    )
    (item,) = _completed_items(events, "dynamicToolCall")
    assert item["status"] == "completed"
    assert item["contentItems"] == [{"type": "inputText", "text": KERNEL["inspect"]}]
    assert _final_text(events).startswith('`notebook.inspect` {"name": "df"} answered:')
    assert "shape: (3, 3)" in _final_text(events)


def test_data_story_inspects_the_frame_and_quotes_its_shape(tools_app: AppServer) -> None:
    thread_id = tools_app.thread(dynamicTools=NOTEBOOK_TOOLS)
    events = tools_app.run(thread_id, "What data do I have?", answer=_kernel)
    assert [(c["tool"], c["arguments"]) for c in _tool_calls(events)] == [
        ("variables", {}),
        ("inspect", {"name": "df"}),
    ]
    text = _final_text(events)
    assert "- **shape:** 3 rows × 3 columns" in text
    assert "- **columns:** `date`, `price`, `qty`" in text
    assert _status(events) == "completed"


def test_fix_story_proposes_the_fixed_cell(tools_app: AppServer) -> None:
    thread_id = tools_app.thread(dynamicTools=NOTEBOOK_TOOLS)
    events = tools_app.run(thread_id, "Why did my cell fail?", answer=_kernel)
    calls = _tool_calls(events)
    assert [c["tool"] for c in calls] == ["last_error", "inspect", "propose_cell"]
    assert calls[-1]["arguments"]["code"] == "total = df['price'].sum()\n"
    assert "I proposed the fixed cell" in _final_text(events)


def test_run_story_reports_a_declined_run(tools_app: AppServer) -> None:
    thread_id = tools_app.thread(dynamicTools=NOTEBOOK_TOOLS)
    events = tools_app.run(thread_id, "run `df.describe()`", answer=_kernel)
    assert [(c["tool"], c["arguments"]) for c in _tool_calls(events)] == [
        ("run_python", {"code": "df.describe()"})
    ]
    assert _final_text(events).startswith("## Nothing ran")


def test_a_thread_without_tools_gets_no_story(tools_app: AppServer) -> None:
    events = tools_app.run(tools_app.thread(), "What data do I have?", answer=_kernel)
    assert not _tool_calls(events)
    assert _final_text(events) == markdown_answer("What data do I have?")


def test_nbtool_on_a_thread_without_tools_is_refused_by_codex(tools_app: AppServer) -> None:
    events = tools_app.run(tools_app.thread(), "NBTOOL:variables", answer=_kernel)
    assert not _tool_calls(events)
    assert "unsupported call: notebookvariables" in _final_text(events)
