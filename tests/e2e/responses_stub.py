"""A scripted OpenAI Responses API stub that calls client tools, for real-binary tests.

The built-in demo model does not call client tools (yet); this stub does, driven by the
prompt: ``CALL:<namespace>.<tool>`` (or ``CALL:<tool>`` for a bare tool), repeatable, with
``ARGS:{...}`` (space-free JSON) as every call's arguments. The first model request of a turn
gets all the calls as ``function_call`` items of one response (codex 0.171 then calls the
client concurrently, 0.163 one after another); the next request carries the
``function_call_output`` items and gets the text ``tool said: <output> | <output> ...``.

What it proves about codex (0.163.0 and 0.171.0): a namespaced tool is listed in the model
request's ``tools`` as ``{"type": "namespace", "name": ns, "tools": [{"type": "function",
"name": tool, ...}]}``, and the model must call it as ``{"type": "function_call",
"namespace": ns, "name": tool}``; a dotted ``ns.tool`` name is an "unsupported call".

Timing: ``calls_sent_at`` / ``outputs_received_at`` (``time.perf_counter``) bracket the
client-side round trip through codex, without the model (``bench/tool_roundtrip.py``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from codex_notebook.demo.home import write_codex_home

__all__ = ["ResponsesStub", "stub_env"]

_CALL = re.compile(r"CALL:([A-Za-z0-9_.-]+)")
_ARGS = re.compile(r"ARGS:(\{\S*\})")


def _user_text(body: dict[str, Any]) -> str:
    """The last user message of the request (the turn's prompt)."""
    text = ""
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("role") == "user":
            for part in item.get("content") or []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    text = part["text"]
    return text


def _trailing_outputs(body: dict[str, Any]) -> list[str]:
    """The function_call_output items after the last user message (this turn's answers)."""
    outputs: list[str] = []
    for item in body.get("input") or []:
        if not isinstance(item, dict):
            continue
        if item.get("role") == "user":
            outputs = []
        elif item.get("type") == "function_call_output":
            output = item.get("output")
            outputs.append(output if isinstance(output, str) else json.dumps(output))
    return outputs


class ResponsesStub:
    """``with ResponsesStub() as stub:`` serves ``stub.base_url`` on 127.0.0.1."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bodies: list[dict[str, Any]] = []
        self.calls_sent_at: list[float] = []
        self.outputs_received_at: list[float] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._json({"models": [], "data": [], "object": "list"})

            def do_POST(self) -> None:
                arrived = time.perf_counter()
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw)
                outputs = _trailing_outputs(body)
                with stub.lock:
                    stub.bodies.append(body)
                    if outputs:
                        stub.outputs_received_at.append(arrived)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for event, data in stub.events(body, outputs):
                    payload = json.dumps({"type": event, **data})
                    self.wfile.write(f"event: {event}\ndata: {payload}\n\n".encode())
                self.wfile.flush()
                if not outputs and _CALL.search(_user_text(body)):
                    with stub.lock:
                        stub.calls_sent_at.append(time.perf_counter())
                self.close_connection = True

            def _json(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def events(self, body: dict[str, Any], outputs: list[str]) -> Iterator[tuple[str, Any]]:
        response_id = f"resp_{uuid.uuid4().hex[:12]}"
        yield "response.created", {"response": {"id": response_id}}
        prompt = _user_text(body)
        calls = [] if outputs else _CALL.findall(prompt)
        if calls:
            match = _ARGS.search(prompt)
            arguments = match.group(1) if match else "{}"
            for index, name in enumerate(calls):
                namespace, _, tool = name.rpartition(".")
                item: dict[str, Any] = {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:12]}",
                    "call_id": f"call_{uuid.uuid4().hex[:12]}",
                    "name": tool,
                    "arguments": arguments,
                }
                if namespace:
                    item["namespace"] = namespace
                yield "response.output_item.done", {"output_index": index, "item": item}
        else:
            text = "tool said: " + " | ".join(outputs) if outputs else "no tool called"
            item_id = f"msg_{uuid.uuid4().hex[:12]}"
            message = {"type": "message", "role": "assistant", "id": item_id}
            yield (
                "response.output_item.added",
                {
                    "output_index": 0,
                    "item": {**message, "status": "in_progress", "content": []},
                },
            )
            yield (
                "response.output_text.delta",
                {
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": text,
                },
            )
            done = {
                **message,
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
            yield "response.output_item.done", {"output_index": 0, "item": done}
        usage = {
            "input_tokens": 1,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 2,
        }
        yield "response.completed", {"response": {"id": response_id, "usage": usage}}

    def tools_offered(self) -> list[dict[str, Any]]:
        """The ``tools`` list of the first model request."""
        with self.lock:
            return list(self.bodies[0].get("tools") or []) if self.bodies else []

    def __enter__(self) -> ResponsesStub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def stub_env(stub: ResponsesStub, home: Path) -> dict[str, str]:
    """The environment for ``codex app-server`` talking to ``stub`` with a fresh CODEX_HOME."""
    write_codex_home(home, base_url=stub.base_url, sandbox_mode="read-only")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "CODEX_")) and not key.endswith(("_API_KEY", "_TOKEN"))
    }
    env["CODEX_HOME"] = str(home)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env
