#!/usr/bin/env python3
"""Record what a real ``codex app-server`` logs, as fixtures for the ``%codex log`` classifier.

Drives the real binary against the built-in demo model through the turns a notebook user
meets — a plain answer, a command, an approval accepted and declined, a failure, a file edit, an
interrupt, structured output, a kernel-tool call, a call to a tool the thread lacks, resuming a
thread another process still holds, resuming after a restart, the sandbox fallback (when
``unshare`` can simulate a host without user namespaces) and an unreachable model — and writes
every stderr line and every notification the notebook keeps for ``%codex log`` (``warning``,
``configWarning``, ``error``, ``deprecationNotice``) to ``<out>/codex-<version>.jsonl``::

    python scripts/capture_log_fixtures.py --out tests/fixtures/logs      # the pinned codex
    python scripts/capture_log_fixtures.py --out tests/fixtures/logs --codex .codex-npm/.../codex

One JSON object per line: ``{"scenario", "source": "stderr", "line"}`` or ``{"scenario",
"source": "notification", "method", "params"}``. Lines are raw (ANSI colours kept); temporary
paths and ids vary between runs, which the classifier must not care about.
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from codex_notebook.demo import DemoBackend, resolve_codex_bin

Message = dict[str, Any]
LOGGED_METHODS = ("warning", "configWarning", "error", "deprecationNotice")
TOOLS = [
    {
        "type": "namespace",
        "name": "notebook",
        "description": "The user's live Jupyter kernel.",
        "tools": [
            {
                "type": "function",
                "name": "variables",
                "description": "List the user's variables.",
                "inputSchema": {"type": "object", "properties": {}},
            }
        ],
    }
]
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


class Recorder:
    """Collects records, labelled with the scenario running when they arrived."""

    def __init__(self) -> None:
        self.scenario = "startup"
        self.records: list[Message] = []
        self.lock = threading.Lock()

    def add(self, record: Message) -> None:
        with self.lock:
            self.records.append({"scenario": self.scenario, **record})


class AppServer:
    """A minimal JSON-RPC client on stdio that records stderr and logged notifications."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, rec: Recorder) -> None:
        self.rec = rec
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.next_id = 0
        self.readers = [
            threading.Thread(target=self._stdout, daemon=True),
            threading.Thread(target=self._stderr, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not line.strip():
                continue
            message = json.loads(line)
            if message.get("method") in LOGGED_METHODS and "id" not in message:
                self.rec.add(
                    {
                        "source": "notification",
                        "method": message["method"],
                        "params": message.get("params"),
                    }
                )
            self.inbox.put(message)

    def _stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.strip():
                self.rec.add({"source": "stderr", "line": line.rstrip("\n")})

    def send(self, message: Message) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: Message, timeout: float = 60) -> Message:
        self.next_id += 1
        rid = self.next_id
        self.send({"id": rid, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            if message.get("id") == rid and "method" not in message:
                return message

    def initialize(self) -> None:
        self.request(
            "initialize",
            {
                "clientInfo": {"name": "capture", "version": "0"},
                "capabilities": {"experimentalApi": True},
            },
        )
        self.send({"method": "initialized"})

    def thread(self, **params: Any) -> str:
        thread_id: str = self.request("thread/start", params)["result"]["thread"]["id"]
        return thread_id

    def turn(
        self,
        thread_id: str,
        prompt: str,
        *,
        answer: Callable[[Message], Message] | None = None,
        interrupt_after: float | None = None,
        interrupt_on_error: bool = False,
        timeout: float = 60,
        **params: Any,
    ) -> str:
        reply = self.request(
            "turn/start",
            {"threadId": thread_id, "input": [{"type": "text", "text": prompt}], **params},
        )
        if "error" in reply:
            return f"turn/start refused: {reply['error'].get('message')}"
        turn_id = reply["result"]["turn"]["id"]
        started = time.monotonic()
        interrupted = False
        while time.monotonic() - started < timeout:
            try:
                message = self.inbox.get(timeout=0.2)
            except queue.Empty:
                message = {}
            due = interrupt_after is not None and time.monotonic() - started > interrupt_after
            errored = interrupt_on_error and message.get("method") == "error"
            if (due or errored) and not interrupted:
                interrupted = True
                self.send(
                    {
                        "id": "stop",
                        "method": "turn/interrupt",
                        "params": {"threadId": thread_id, "turnId": turn_id},
                    }
                )
            if "id" in message and "method" in message:
                result = answer(message) if answer else {"decision": "accept"}
                self.send({"id": message["id"], "result": result})
            if message.get("method") == "turn/completed":
                status: str = message["params"]["turn"]["status"]
                return status
        return "timed out"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for reader in self.readers:
            reader.join(5)


def _kernel(message: Message) -> Message:
    if message["method"] == "item/tool/call":
        text = "df: DataFrame (3, 2) columns=[a, b]"
        return {"contentItems": [{"type": "inputText", "text": text}], "success": True}
    return {"decision": "accept"}


@contextmanager
def _scenario(rec: Recorder, name: str) -> Iterator[None]:
    rec.scenario = name
    try:
        yield
    finally:
        time.sleep(0.3)  # let stderr lines of this scenario land under its name


def _no_userns_wrapper(tmp: Path, codex_bin: str) -> str | None:
    """A codex wrapper in a user namespace that may not create more (a Binder-like host)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    inner = tmp / "no-userns-codex"
    inner.write_text(
        "#!/bin/sh\necho 0 > /proc/sys/user/max_user_namespaces || exit 97\n"
        f'exec "{codex_bin}" "$@"\n'
    )
    outer = tmp / "codex"
    outer.write_text(f'#!/bin/sh\nexec "{unshare}" -Ur "{inner}" "$@"\n')
    for path in (inner, outer):
        path.chmod(0o755)
    check = subprocess.run([str(outer), "--version"], capture_output=True, timeout=30, check=False)
    return str(outer) if check.returncode == 0 else None


def capture(codex_bin: str) -> tuple[str, list[Message]]:
    """Run every scenario; returns the binary's version and the records."""
    version_out = subprocess.run(
        [codex_bin, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    match = re.search(r"(\d+\.\d+\.\d+\S*)", version_out)
    version = match.group(1) if match else "unknown"
    rec = Recorder()
    root = Path(tempfile.mkdtemp(prefix="codex-log-capture-"))
    try:
        home, workspace = root / "home", root / "workspace"
        with DemoBackend(
            codex_bin=codex_bin,
            approval_policy="on-request",
            codex_home=home,
            workspace=workspace,
        ) as backend:
            first = AppServer([codex_bin, "app-server"], backend.env(), backend.workspace, rec)
            first.initialize()
            thread_id = first.thread(dynamicTools=TOOLS)
            plain = [
                ("answer", "hello there", {}),
                ("command", "list files", {}),
                ("approval-accepted", "install numpy", {}),
                (
                    "approval-declined",
                    "install numpy",
                    {"answer": lambda m: {"decision": "decline"}},
                ),
                ("failure", "FAIL", {}),
                ("file-edit", "create a file", {}),
                ("interrupt", "SLOW", {"interrupt_after": 0.5}),
                ("structured-output", "summarise", {"outputSchema": SCHEMA}),
                ("kernel-tool", "NBTOOL:variables", {"answer": _kernel}),
                ("unsupported-tool", "NBTOOL:no_such_tool", {}),
            ]
            for name, prompt, options in plain:
                with _scenario(rec, name):
                    print(name, first.turn(thread_id, prompt, **options), file=sys.stderr)
            with _scenario(rec, "resume-while-held"):
                second = AppServer([codex_bin, "app-server"], backend.env(), backend.workspace, rec)
                second.initialize()
                refused = second.request("thread/resume", {"threadId": thread_id})
                print("resume-while-held", refused.get("error"), file=sys.stderr)
                second.close()
            first.close()
        with DemoBackend(
            codex_bin=codex_bin, approval_policy="on-request", codex_home=home, workspace=workspace
        ) as backend:
            with _scenario(rec, "resume-after-restart"):
                third = AppServer([codex_bin, "app-server"], backend.env(), backend.workspace, rec)
                third.initialize()
                third.request("thread/resume", {"threadId": thread_id})
                print("resume", third.turn(thread_id, "hello again"), file=sys.stderr)
                third.close()
            with _scenario(rec, "model-unreachable"):
                fourth = AppServer([codex_bin, "app-server"], backend.env(), backend.workspace, rec)
                fourth.initialize()
                lonely = fourth.thread()
                backend.server.stop()
                status = fourth.turn(lonely, "hello", interrupt_on_error=True, timeout=30)
                print("model-unreachable", status, file=sys.stderr)
                fourth.close()
        wrapper = _no_userns_wrapper(root, codex_bin)
        if wrapper is not None:
            with (
                _scenario(rec, "sandbox-fallback"),
                DemoBackend(codex_bin=wrapper, approval_policy="on-request") as backend,
            ):
                if backend.notice:
                    rec.add({"source": "notebook", "line": backend.notice})
                fifth = AppServer([wrapper, "app-server"], backend.env(), backend.workspace, rec)
                fifth.initialize()
                print("fallback", fifth.turn(fifth.thread(), "list files"), file=sys.stderr)
                fifth.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return version, rec.records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codex", default=None, help="codex binary (default: the pinned one)")
    parser.add_argument("--out", type=Path, required=True, help="folder for codex-<version>.jsonl")
    args = parser.parse_args(argv)
    codex_bin = resolve_codex_bin(args.codex)
    if codex_bin is None:
        print("error: no codex binary found", file=sys.stderr)
        return 1
    version, records = capture(codex_bin)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"codex-{version}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    print(f"{path}: {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
