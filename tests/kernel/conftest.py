"""A real ipykernel started through jupyter_client, with every iopub message recorded.

Widget traffic is what the frontend would receive: ``comm_open`` / ``comm_msg``
messages on iopub, keyed by the widget's model id (its comm id).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import KernelManager

Message = dict[str, Any]


class KernelHarness:
    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(cwd), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pump = threading.Thread(target=self._read_iopub, daemon=True)
        self._pump.start()

    def _read_iopub(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:
                return
            with self._cond:
                self.messages.append(msg)
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what or predicate}")
                self._cond.wait(remaining)

    def execute(self, code: str, timeout: float = 60) -> tuple[str, Message]:
        """Run a cell; wait for its reply. Returns (msg_id, execute_reply content)."""
        msg_id = self.kc.execute(code)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        self.wait_for(lambda: self._idle(msg_id), timeout, f"idle after {code!r}")
        return msg_id, reply["content"]

    def _idle(self, msg_id: str) -> bool:
        return any(
            m["msg_type"] == "status"
            and m["parent_header"].get("msg_id") == msg_id
            and m["content"]["execution_state"] == "idle"
            for m in self.messages
        )

    def outputs(self, msg_id: str) -> list[Message]:
        return [
            m
            for m in self.messages
            if m["parent_header"].get("msg_id") == msg_id
            and m["msg_type"] in ("stream", "display_data", "execute_result", "error")
        ]

    def text(self, msg_id: str) -> str:
        parts = []
        for m in self.outputs(msg_id):
            c = m["content"]
            if m["msg_type"] == "stream":
                parts.append(c["text"])
            elif m["msg_type"] == "error":
                parts.append("\n".join(c["traceback"]))
            else:
                parts.append(c["data"].get("text/plain", ""))
        return "".join(parts)

    def widget_id(self, msg_id: str, timeout: float = 30) -> str:
        def find() -> str | None:
            for m in self.outputs(msg_id):
                view = m["content"].get("data", {}).get("application/vnd.jupyter.widget-view+json")
                if view:
                    return str(view["model_id"])
            return None

        return str(self.wait_for(find, timeout, "a widget display"))

    def comm_msgs(self, comm_id: str) -> list[Message]:
        return [
            m
            for m in self.messages
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id
        ]

    def header(self, comm_id: str) -> dict[str, Any]:
        """The widget's latest header trait as the frontend would have it."""
        state: dict[str, Any] = {}
        for m in self.messages:
            c = m["content"]
            if c.get("comm_id") != comm_id:
                continue
            if m["msg_type"] == "comm_open":
                state.update(c["data"].get("state", {}).get("header") or {})
            elif m["msg_type"] == "comm_msg" and c["data"].get("method") == "update":
                state.update(c["data"]["state"].get("header") or {})
        return state

    def final_output(self, msg_id: str, timeout: float = 60) -> Message:
        """The update_display_data that replaced a turn's widget by its static rendering."""
        view = self.widget_id(msg_id)

        def find() -> Message | None:
            display_ids = {
                m["content"].get("transient", {}).get("display_id")
                for m in self.outputs(msg_id)
                if view in str(m["content"].get("data", {}))
            }
            for m in self.messages:
                if (
                    m["msg_type"] == "update_display_data"
                    and m["content"].get("transient", {}).get("display_id") in display_ids
                ):
                    return m
            return None

        return self.wait_for(find, timeout, "the final static rendering")  # type: ignore[no-any-return]

    def send_custom(self, comm_id: str, content: dict[str, Any]) -> None:
        """What a click in the frontend sends: an anywidget custom message."""
        msg = self.kc.session.msg(
            "comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}}
        )
        self.kc.shell_channel.send(msg)

    def close(self) -> None:
        self._stop.set()
        try:
            self.kc.stop_channels()
        finally:
            if self.km.has_kernel:  # a test may have shut it down already
                self.km.shutdown_kernel(now=False)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[KernelHarness]:
    env = dict(os.environ)
    env["CODEX_NOTEBOOK_BACKEND"] = "demo"
    env.pop("OPENAI_API_KEY", None)
    harness = KernelHarness(tmp_path, env)
    try:
        harness.execute("%load_ext codex_notebook")
        yield harness
    finally:
        harness.close()


def blocks(harness: KernelHarness, comm_id: str) -> list[dict[str, Any]]:
    """The widget's blocks as the frontend would have them: the trait plus upserts/removals."""
    latest: dict[str, dict[str, Any]] = {}
    for m in harness.messages:
        c = m["content"]
        if c.get("comm_id") != comm_id or m["msg_type"] not in ("comm_open", "comm_msg"):
            continue
        data = c.get("data", {})
        state = data.get("state") or {}
        if "blocks" in state:
            latest = {b["id"]: b for b in state["blocks"]}
        custom = data.get("content") if data.get("method") == "custom" else None
        if isinstance(custom, dict) and custom.get("type") == "upsert":
            latest[custom["block"]["id"]] = custom["block"]
        elif isinstance(custom, dict) and custom.get("type") == "remove":
            latest.pop(custom["block"], None)
    return list(latest.values())


def appended_text(harness: KernelHarness, comm_id: str) -> str:
    return "".join(
        m["content"]["data"]["content"]["text"]
        for m in harness.comm_msgs(comm_id)
        if m["content"]["data"].get("method") == "custom"
        and m["content"]["data"]["content"].get("type") == "append"
    )
