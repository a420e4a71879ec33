#!/usr/bin/env python3
"""A scripted fake ``codex app-server`` (protocol of codex-cli 0.163.0) for tests.

Standard library only; run as ``fake_app_server.py app-server [--config k=v ...]`` (any other
first argument: exit 2; ``--version`` prints ``codex-cli 0.163.0``). It speaks newline-delimited
JSON-RPC without the ``"jsonrpc"`` field on stdin/stdout, with message shapes copied from real
transcripts; notifications carry ``emittedAtMs`` like the real ones. Every turn runs on its own
thread, so turns on different threads interleave; server requests use integer ids from 0.

Methods: ``initialize`` (then ``initialized``), ``thread/start``, ``thread/resume``,
``thread/fork``, ``thread/read``, ``thread/list`` (this process's threads, newest first; ``limit``),
``thread/name/set``, ``turn/start``, ``turn/interrupt``, ``turn/steer``; anything else
is -32601 "method not found". Turn ids are ``turn-1``, ``turn-2``... (per process); item ids are
``<kind>-<n>``.

Directive tokens anywhere in a turn's input text (space-separated, combinable):

=================  ==========================================================================
``DELTAS:N``       N agent-message deltas ``d0 ``, ``d1 ``... (default 3: text ``d0 d1 d2 ``)
``TEXT:word``      one delta, exactly ``word``
``JSON:{...}``     one delta, exactly the (space-free) text after ``JSON:``
(outputSchema)     with ``outputSchema`` and no TEXT/JSON/DELTAS: one delta, a compact sample
``DELAY_MS:N``     sleep N ms between deltas (interrupt/steer/fold wake it); flush every line
``EARLY``          turn/started + the first 2 deltas before the turn/start response
``COMPLETE_FIRST`` the whole turn, up to turn/completed, before the turn/start response
``APPROVAL``       item/commandExecution/requestApproval; ``APPROVAL:file``: fileChange
``USER_INPUT``     item/tool/requestUserInput;  ``ELICIT``: mcpServer/elicitation/request
``UNKNOWN_REQUEST`` server request ``x/unknownRequest``
``UNKNOWN_NOTIFY`` notifications ``x/customEvent`` (turn) and ``x/globalEvent`` (global)
``GARBAGE[:big]``  junk lines between the 1st and 2nd delta (``:big`` adds a 10 MiB line)
``DIE``            after 1 delta (``DIE_AFTER:N``: N deltas) print a fatal line, exit 1
``HANG``           after the deltas, wait until interrupted (steers and folds still work)
``FAIL``           ``error`` + turn/completed ``failed`` (with explicit DELTAS: after them)
``TOOL`` ``PLAN`` ``REASONING`` ``FILECHANGE``  extra items before the agent message
``FLOOD[:N]``      N one-character deltas ``x`` (default $FAKE_CODEX_FLOOD, else 10000), fast
``STREAM:N``       N real-shaped deltas (3-10 characters, fixed word sequence), fast; the item
                   id is ``msg_<12 hex>`` like the real one
``DYNTOOL:name``   the model calls client tool ``name`` (``ns.name`` for a namespaced one;
                   repeat for several calls): item/started dynamicToolCall, server request
                   ``item/tool/call``, item/completed, as codex 0.171 does (no
                   serverRequest/resolved). ``ARGS:{...}`` (space-free JSON) are the
                   arguments of every call (default ``{}``); ``DYNTOOL_PARALLEL`` sends all
                   calls before waiting for any answer (0.171), else one after another (0.163)
=================  ==========================================================================

Server-request replies are summarised as leading deltas of the agent message:
``approval:<decision> `` / ``input:<compact result JSON> `` / ``elicit:<action> `` /
``unknown:result `` or ``<kind>:error:<code> `` for a JSON-RPC error reply; a tool call's answer
as ``tool:<name>:<ok|failed>:<text of its content items> `` (``tool:<name>:unsupported `` when the
thread did not declare it; ``tool:<name>:invalid `` for a malformed answer). Approval ``cancel``
ends the turn ``interrupted`` before the agent message. ``turn/steer`` adds ``steered:<text> ``.

``thread/start`` takes ``dynamicTools`` only after ``initialize`` with
``capabilities.experimentalApi`` (else -32600, as codex says); the set is kept with the thread,
copied by fork and kept by resume (which ignores new ``dynamicTools``). With ``CODEX_HOME`` set,
a started thread's record (``thread.path``) gets its first line, ``session_meta`` with
``dynamic_tools`` (absent without tools), as codex writes it. ``thread/resume`` honours
``excludeTurns``.

Environment: ``FAKE_CODEX_EXIT_ON_START``, ``FAKE_CODEX_EXIT_ON_INIT``,
``FAKE_CODEX_IGNORE_SIGTERM``, ``FAKE_CODEX_STDERR_SPAM=N``, ``FAKE_CODEX_FLOOD=N``,
``FAKE_CODEX_STALL_STDIN`` (stop reading stdin after ``initialized``: a server whose input pipe
fills up), ``FAKE_CODEX_UUID_IDS`` (turn ids like codex's UUIDv7 instead of ``turn-N``),
``FAKE_CODEX_LOG=path`` (appends every line received), ``FAKE_CODEX_STATE=path`` (known threads,
shared across processes), ``CODEX_HOME`` (reported as ``codexHome``; default: the cwd).

The fake never crashes on odd input: it logs to stderr and carries on. It exits 0 on stdin EOF.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn

JSON = dict[str, Any]

CLI_VERSION = "0.163.0"
USER_AGENT = f"codex_fake/{CLI_VERSION} (fake; test) fake"
MODEL = "fake-model"
MODEL_PROVIDER = "fake"
FATAL_LINE = "fatal: model stream broke (token sk-test-SECRET123)"
START_ERROR = 'Error: approval_policy "untrusted" is no longer supported'
CONFIG_WARNING = (
    "Codex could not find bubblewrap on PATH. Install bubblewrap with your OS package manager. "
    "See the sandbox prerequisites: "
    "https://developers.openai.com/codex/concepts/sandboxing#prerequisites. "
    "Codex will use the bundled bubblewrap in the meantime."
)
APPROVAL_COMMAND = "echo needs approval"
TOOL_COMMAND = "echo fake tool"
TOOL_OUTPUT = ["out0\n", "out1\n", "out2\n"]
FILE_CONTENT = "hello from fake\n"
FLOOD_DEFAULT = 10_000
# Real deltas are word pieces of 3-10 characters (see the transcripts); these cycle.
STREAM_WORDS = (
    "The ",
    "quick ",
    "brown ",
    "fox ",
    "jumps ",
    "over ",
    "the ",
    "lazy ",
    "dog. ",
    "Then ",
    "it ",
    "naps ",
    "under ",
    "one ",
    "tree.\n",
    "Numbers: ",
    "12,345 ",
    "and ",
    "6.78 ",
    "```py\n",
    "x = 1\n",
    "```\n",
)
BIG_LINE_BYTES = 10 * 1024 * 1024
FLUSH_BYTES = 64 * 1024
LAST_USAGE = {
    "totalTokens": 15,
    "inputTokens": 10,
    "cachedInputTokens": 0,
    "cacheWriteInputTokens": 0,
    "outputTokens": 5,
    "reasoningOutputTokens": 0,
}
RATE_LIMITS = {
    "limitId": "codex",
    "limitName": None,
    "normalModelSlug": None,
    "primary": None,
    "secondary": None,
    "credits": None,
    "individualLimit": None,
    "spendControlReached": None,
    "planType": None,
    "rateLimitReachedType": None,
}
# Written by GARBAGE between the first and second agent-message delta, in this order.
GARBAGE_LINES = (
    b"this is not json\n",
    b'{"method":"item/agentMessage/delta","params":{"threadId":\n',
    b"[1,2,3]\n",
    b'"just a string"\n',
    b'{"foo":"bar"}\n',
    b"\xff\xfe\xfd not utf-8 \xc3\x28\n",
    b"\n",
)


def now_ms() -> int:
    return int(time.time() * 1000)


def now_s() -> int:
    return int(time.time())


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def encode(message: JSON) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def notification(method: str, params: JSON) -> JSON:
    return {"method": method, "params": params, "emittedAtMs": now_ms()}


def log(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"fake-codex: {message}\n")
        sys.stderr.flush()


def env_int(name: str, default: int = 0) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        log(f"ignoring non-integer {name}={os.environ.get(name)!r}")
        return default


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Interrupted(Exception):
    """The turn must end with status ``interrupted``."""


class Folded(Exception):
    """A ``turn/start`` on this busy thread folded new input into the running turn."""


# --------------------------------------------------------------------------------------------
# Directives


@dataclass
class Directives:
    """Directive tokens parsed once from a turn's input text (space-separated, combinable)."""

    deltas: int = 3
    deltas_explicit: bool = False
    text: str | None = None
    json_text: str | None = None
    delay_ms: int = 0
    early: bool = False
    complete_first: bool = False
    approval: str | None = None  # "command" | "file"
    user_input: bool = False
    elicit: bool = False
    unknown_request: bool = False
    unknown_notify: bool = False
    garbage: str | None = None  # "small" | "big"
    die_after: int | None = None
    hang: bool = False
    fail: bool = False
    tool: bool = False
    plan: bool = False
    reasoning: bool = False
    filechange: bool = False
    flood: int | None = None
    stream: int | None = None
    dyntools: list[str] = field(default_factory=list)
    dynargs: JSON = field(default_factory=dict)
    dyn_parallel: bool = False

    @classmethod
    def parse(cls, text: str) -> Directives:
        d = cls()
        for token in text.split():
            name, colon, value = token.partition(":")
            try:
                d._apply(name, value if colon else None)
            except ValueError:
                log(f"ignoring malformed directive {token!r}")
        return d

    def _apply(self, name: str, value: str | None) -> None:
        flags = {
            "EARLY": "early",
            "COMPLETE_FIRST": "complete_first",
            "USER_INPUT": "user_input",
            "ELICIT": "elicit",
            "UNKNOWN_REQUEST": "unknown_request",
            "UNKNOWN_NOTIFY": "unknown_notify",
            "HANG": "hang",
            "FAIL": "fail",
            "TOOL": "tool",
            "PLAN": "plan",
            "REASONING": "reasoning",
            "FILECHANGE": "filechange",
            "DYNTOOL_PARALLEL": "dyn_parallel",
        }
        if name in flags:
            setattr(self, flags[name], True)
        elif name == "DELTAS" and value is not None:
            self.deltas, self.deltas_explicit = max(0, int(value)), True
        elif name == "TEXT" and value is not None:
            self.text = value
        elif name == "JSON" and value is not None:
            self.json_text = value
        elif name == "DELAY_MS" and value is not None:
            self.delay_ms = max(0, int(value))
        elif name == "APPROVAL":
            self.approval = "file" if value == "file" else "command"
        elif name == "GARBAGE":
            self.garbage = "big" if value == "big" else "small"
        elif name == "DIE":
            self.die_after = 1
        elif name == "DIE_AFTER" and value is not None:
            self.die_after = max(0, int(value))
        elif name == "FLOOD":
            self.flood = int(value) if value else env_int("FAKE_CODEX_FLOOD", FLOOD_DEFAULT)
        elif name == "STREAM" and value is not None:
            self.stream = max(0, int(value))
        elif name == "DYNTOOL" and value:
            self.dyntools.append(value)
        elif name == "ARGS" and value is not None:
            args = json.loads(value)
            if not isinstance(args, dict):
                raise ValueError("ARGS must be a JSON object")
            self.dynargs = args


def sample_from_schema(schema: Any, depth: int = 0) -> Any:
    """A small instance of a JSON Schema (for ``outputSchema`` turns without TEXT/JSON)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return sample_from_schema(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        props = schema.get("properties") or {}
        return {name: sample_from_schema(sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = schema.get("minItems", 0) if isinstance(schema.get("minItems"), int) else 0
        return [sample_from_schema(schema.get("items"), depth + 1) for _ in range(count)]
    return {"string": "fake", "integer": 0, "number": 0, "boolean": True}.get(str(kind))


def text_of(items: list[Any]) -> str:
    return " ".join(
        str(item.get("text", ""))
        for item in items
        if isinstance(item, dict) and item.get("type") == "text"
    )


def echo_input(items: list[Any]) -> list[Any]:
    """User input as the real server echoes it in ``userMessage`` items."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict) and item.get("type") == "text":
            out.append({"type": "text", "text": item.get("text", ""), "text_elements": []})
        else:
            out.append(item)
    return out


# --------------------------------------------------------------------------------------------
# Output


class Wire:
    """stdout: one lock around every write, so lines from concurrent turns never mix."""

    def __init__(self, stream: BinaryIO) -> None:
        self.lock = threading.Lock()
        self._stream = stream

    def write(self, data: bytes) -> None:
        with self.lock:
            self._write_locked(data)

    def send(self, message: JSON) -> None:
        self.write(encode(message))

    def _write_locked(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            log("stdout is closed; exiting")
            os._exit(0)

    def exit(self, code: int, stderr_lines: Sequence[str] = ()) -> NoReturn:
        """Exit at once (no interpreter shutdown), holding the lock so no line is cut.

        A writer stuck on a full pipe holds the lock; give up waiting for it after 2 s.
        """
        locked = self.lock.acquire(timeout=2)
        if locked:
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()
        with contextlib.suppress(OSError, ValueError):
            for line in stderr_lines:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()
        os._exit(code)


# --------------------------------------------------------------------------------------------
# Threads and turns


@dataclass
class ThreadState:
    id: str
    cwd: str
    created_at: int
    preview: str = ""
    ephemeral: bool = False
    forked_from: str | None = None
    model: str = MODEL
    approval_policy: Any = "never"
    approvals_reviewer: str = "user"
    sandbox: JSON = field(default_factory=lambda: {"type": "readOnly", "networkAccess": False})
    turns: list[JSON] = field(default_factory=list)
    active: Turn | None = None
    loaded: bool = True
    total_usage: JSON = field(default_factory=lambda: dict.fromkeys(LAST_USAGE, 0))
    dynamic_tools: list[Any] | None = None
    name: str | None = None

    def tool(self, name: str) -> tuple[str | None, str] | None:
        """(namespace, tool) of a declared tool called ``ns.tool`` or ``tool``; None if unknown."""
        namespace, _, tool = name.rpartition(".")
        for spec in self.dynamic_tools or []:
            if not isinstance(spec, dict):
                continue
            if namespace and spec.get("type") == "namespace" and spec.get("name") == namespace:
                tools = spec.get("tools") or []
                if any(isinstance(t, dict) and t.get("name") == tool for t in tools):
                    return namespace, tool
            if not namespace and spec.get("type") == "function" and spec.get("name") == tool:
                return None, tool
        return None

    @property
    def updated_at(self) -> int:
        ends = [t.get("completedAt") or 0 for t in self.turns]
        return max([self.created_at, *ends])

    def persisted(self) -> JSON:
        return {
            "cwd": self.cwd,
            "createdAt": self.created_at,
            "preview": self.preview,
            "forkedFromId": self.forked_from,
            "turns": self.turns,
            "dynamicTools": self.dynamic_tools,
        }


class Turn:
    """One turn, played on its own thread. Lines are batched and flushed at waits and ends."""

    def __init__(
        self,
        server: Server,
        thread: ThreadState,
        turn_id: str,
        items: list[Any],
        output_schema: Any,
        request_id: Any,
    ) -> None:
        self.server = server
        self.thread = thread
        self.id = turn_id
        self.output_schema = output_schema
        self.started_at = now_s()
        self._t0 = time.monotonic()
        first = Directives.parse(text_of(items))
        self._segment_input: tuple[list[Any], Directives] = (items, first)
        # Who writes the turn/start response: the dispatcher at once ("now"), this thread after
        # the 2nd delta or before any wait ("early"), or this thread after turn/completed ("last").
        self.respond_mode = "last" if first.complete_first else "early" if first.early else "now"
        self.pending_response: Any = None if self.respond_mode == "now" else request_id
        self._buf: list[bytes] = []
        self._buf_size = 0
        self._deltas_sent = 0
        self._delay = first.delay_ms > 0
        # Shared with the dispatcher thread, guarded by ``cond``.
        self.cond = threading.Condition()
        self.interrupted = False
        self.folds: list[tuple[list[Any], Directives]] = []
        self.steers: list[str] = []
        self.replies: dict[int, JSON] = {}
        # The open agent message of the current segment.
        self._msg_id: str | None = None
        self._msg_text: list[str] = []
        self._pending_deltas: list[str] = []
        self._items: list[JSON] = []  # for thread/read
        self._summary: list[JSON] = []  # turn/completed items (itemsView "summary")
        self.thread_runner = threading.Thread(target=self.run, name=f"turn-{turn_id}", daemon=True)

    # -- control from the dispatcher thread -------------------------------------------------

    def interrupt(self) -> None:
        with self.cond:
            self.interrupted = True
            self.cond.notify_all()

    def fold(self, items: list[Any]) -> None:
        with self.cond:
            self.folds.append((items, Directives.parse(text_of(items))))
            self.cond.notify_all()

    def steer(self, text: str) -> None:
        with self.cond:
            self.steers.append(f"steered:{text} ")
            self.cond.notify_all()

    def deliver(self, reply: JSON) -> None:
        with self.cond:
            self.replies[reply["id"]] = reply
            self.cond.notify_all()

    # -- shapes -------------------------------------------------------------------------------

    def turn_obj(self, status: str, *, started: bool = True, error: Any = None) -> JSON:
        done = status != "inProgress"
        items = self._summary if status == "completed" else []
        return {
            "id": self.id,
            "rootTurnId": self.id,
            "items": items if done else [],
            "itemsView": "summary" if done and status == "completed" else "notLoaded",
            "status": status,
            "error": error,
            "startedAt": self.started_at if started else None,
            "completedAt": now_s() if done else None,
            "durationMs": int((time.monotonic() - self._t0) * 1000) if done else None,
        }

    def _ids(self) -> JSON:
        return {"threadId": self.thread.id, "turnId": self.id}

    # -- output -------------------------------------------------------------------------------

    def _emit_line(self, data: bytes) -> None:
        self._buf.append(data)
        self._buf_size += len(data)
        if self._buf_size >= FLUSH_BYTES:
            self._flush()

    def emit(self, method: str, params: JSON) -> None:
        self._emit_line(encode(notification(method, params)))

    def _status(self, status: JSON) -> None:
        self.emit("thread/status/changed", {"threadId": self.thread.id, "status": status})

    def _active(self, *flags: str) -> None:
        self._status({"type": "active", "activeFlags": list(flags)})

    def _item(self, method: str, item: JSON) -> None:
        stamp = "startedAtMs" if method == "item/started" else "completedAtMs"
        self.emit(method, {"item": item, **self._ids(), stamp: now_ms()})
        if method == "item/completed":
            self._items.append(item)

    def _respond(self, mode: str = "early") -> None:
        if self.pending_response is not None and self.respond_mode == mode:
            result = {"turn": self.turn_obj("inProgress", started=False)}
            self._emit_line(encode({"id": self.pending_response, "result": result}))
            self.pending_response = None

    def _flush(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            self._buf_size = 0
            self.server.wire.write(data)

    # -- control points -----------------------------------------------------------------------

    def _check(self, *, fold: bool = True) -> None:
        """Raise on interrupt (or fold); emit steered deltas once the agent message is open."""
        with self.cond:
            if self.interrupted:
                raise Interrupted
            if fold and self.folds:
                raise Folded
            steers, self.steers = self.steers, []
        self._pending_deltas.extend(steers)
        if self._msg_id is not None:
            self._drain_pending()

    def _drain_pending(self) -> None:
        pending, self._pending_deltas = self._pending_deltas, []
        for text in pending:
            self._delta(text)

    def _wait(self, timeout: float | None) -> None:
        """Sleep up to ``timeout`` (None: forever), waking at once on interrupt/fold/steer."""
        self._flush()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while not (self.interrupted or self.folds or self.steers):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self.cond.wait(left)
        self._check()

    # -- the script ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log(f"turn {self.id} crashed:\n{traceback.format_exc()}")
            with contextlib.suppress(Exception):
                self._finish("failed", {"message": "fake crashed", "codexErrorInfo": None})

    def _run(self) -> None:
        self._active()
        self.emit("turn/started", {"threadId": self.thread.id, "turn": self.turn_obj("inProgress")})
        items, directives = self._segment_input
        while True:
            try:
                status = self._segment(items, directives)
            except Interrupted:
                status = "interrupted"
            except Folded:
                with self.cond:
                    items, directives = self.folds.pop(0)
                continue
            if self.server.release(self, force=status != "completed"):
                break
            with self.cond:  # a fold slipped in before release: play it in this turn
                items, directives = self.folds.pop(0)
        error = None
        if status == "failed":
            error = {"message": "model exploded", "codexErrorInfo": None, "additionalDetails": None}
        self._finish(status, error)

    def _segment(self, items: list[Any], d: Directives) -> str:
        self._msg_id = None
        self._msg_text = []
        self._delay = d.delay_ms > 0
        user = {
            "type": "userMessage",
            "id": self.server.new_id("user"),
            "clientId": None,
            "content": echo_input(items),
        }
        self._item("item/started", user)
        self._item("item/completed", user)
        self._check()
        if d.unknown_notify:
            self.emit("x/customEvent", {**self._ids(), "value": 1})
            self.emit("x/globalEvent", {"value": 2})
        if d.plan:
            self._plan()
        if d.reasoning:
            self._reasoning()
        if d.tool:
            self._tool()
        if d.filechange:
            self._filechange()
        self._check()
        if d.approval == "file":
            self._file_approval()
        elif d.approval == "command":
            self._command_approval()
        if d.user_input:
            self._user_input()
        if d.elicit:
            self._elicit()
        if d.unknown_request:
            self._unknown_request()
        if d.dyntools:
            self._dynamic_tools(d)
        if d.fail and not d.deltas_explicit:
            return "failed"
        self._open_message(real_id=d.stream is not None)
        if d.flood is not None:
            self._flood(d.flood)
        elif d.stream is not None:
            self._stream_real(d.stream)
        else:
            self._stream(self._pieces(d), d)
        if d.fail:
            return "failed"
        if d.hang:
            self._respond()
            while True:
                self._wait(None)  # returns only after emitting steered deltas
        self._check()
        item = self._message_item()
        self._item("item/completed", item)
        self._summary.append(item)
        return "completed"

    def _message_item(self) -> JSON:
        return {
            "type": "agentMessage",
            "id": self._msg_id,
            "text": "".join(self._msg_text),
            "phase": None,
            "memoryCitation": None,
            "delivery": None,
            "questions": None,
        }

    def _open_message(self, real_id: bool = False) -> None:
        self._msg_id = f"msg_{uuid.uuid4().hex[:12]}" if real_id else self.server.new_id("msg")
        self._msg_text = []
        self._item("item/started", self._message_item())
        self._drain_pending()

    def _delta(self, text: str) -> None:
        self._msg_text.append(text)
        params = {**self._ids(), "itemId": self._msg_id, "delta": text}
        self.emit("item/agentMessage/delta", params)
        self._deltas_sent += 1
        if self._deltas_sent == 2:
            self._respond()  # EARLY: the response follows the 2nd delta
        if self._delay:
            self._flush()

    def _pieces(self, d: Directives) -> list[str]:
        if d.json_text is not None:
            return [d.json_text]
        if d.text is not None:
            return [d.text]
        if self.output_schema is not None and not d.deltas_explicit:
            return [compact(sample_from_schema(self.output_schema))]
        return [f"d{i} " for i in range(d.deltas)]

    def _stream(self, pieces: list[str], d: Directives) -> None:
        garbage_done = d.garbage is None
        for i, piece in enumerate(pieces):
            if d.die_after == i:
                self._die()
            if i == 1 and not garbage_done:
                self._garbage(d.garbage == "big")
                garbage_done = True
            if i > 0 and d.delay_ms:
                self._wait(d.delay_ms / 1000)
            self._check()
            self._delta(piece)
        if d.die_after is not None:
            self._die()
        if not garbage_done:
            self._garbage(d.garbage == "big")

    def _garbage(self, big: bool) -> None:
        self._flush()
        data = b"".join(GARBAGE_LINES)
        if big:
            pad = "x" * BIG_LINE_BYTES
            data += encode(notification("x/bigEvent", {**self._ids(), "data": pad}))
        self.server.wire.write(data)

    def _flood(self, count: int) -> None:
        """Write ``count`` one-character deltas ("x") as fast as possible."""
        self._respond()
        self._flush()
        params = {**self._ids(), "itemId": self._msg_id, "delta": "x"}
        line = encode(
            {"method": "item/agentMessage/delta", "params": params, "emittedAtMs": now_ms()}
        )
        per_chunk = max(1, (1 << 20) // len(line))
        chunk = line * per_chunk
        left = count
        while left > 0:
            self._check(fold=False)
            n = min(left, per_chunk)
            self.server.wire.write(chunk if n == per_chunk else line * n)
            left -= n
        self._msg_text.append("x" * count)
        self._deltas_sent += count

    def _stream_real(self, count: int) -> None:
        """Write ``count`` deltas shaped like codex's: 3-10 characters, item id ``msg_...``."""
        self._respond()
        self._flush()
        ids = self._ids()
        head = json.dumps(
            {"method": "item/agentMessage/delta", "params": {**ids, "itemId": self._msg_id}},
            separators=(",", ":"),
        )[:-2]  # without the closing "}}": the delta and the time stamp go there
        stamp = now_ms()
        pieces = [STREAM_WORDS[i % len(STREAM_WORDS)] for i in range(count)]
        chunk: list[bytes] = []
        size = 0
        for piece in pieces:
            line = f'{head},"delta":{json.dumps(piece)}}},"emittedAtMs":{stamp}}}\n'.encode()
            chunk.append(line)
            size += len(line)
            if size >= 1 << 20:
                self._check(fold=False)
                self.server.wire.write(b"".join(chunk))
                chunk, size = [], 0
        if chunk:
            self.server.wire.write(b"".join(chunk))
        self._msg_text.extend(pieces)
        self._deltas_sent += count

    def _die(self) -> NoReturn:
        self._flush()
        self.server.wire.exit(
            1,
            [
                "2026-01-01T00:00:00.000000Z  INFO codex_core::codex: sampling request started",
                "2026-01-01T00:00:00.000000Z  WARN codex_core::client: stream disconnected",
                "2026-01-01T00:00:00.000000Z ERROR codex_core::client: retries exhausted",
                FATAL_LINE,
            ],
        )

    def _finish(self, status: str, error: JSON | None = None) -> None:
        if error is not None:
            error = {**error, "misalignment": None}
        if status == "failed":
            self._status({"type": "systemError"})
            self.emit("error", {"error": error, "willRetry": False, **self._ids()})
        else:
            if status == "completed":
                usage = self.server.add_usage(self.thread)
                usage_params = {
                    **self._ids(),
                    "tokenUsage": {
                        "total": usage,
                        "last": dict(LAST_USAGE),
                        "modelContextWindow": 258400,
                    },
                }
                self.emit("thread/tokenUsage/updated", usage_params)
                self.emit("account/rateLimits/updated", {"rateLimits": dict(RATE_LIMITS)})
            self._status({"type": "idle"})
        self._respond("early")  # EARLY with fewer than 2 deltas
        final = self.turn_obj(status, error=error)
        self.emit("turn/completed", {"threadId": self.thread.id, "turn": final})
        self._respond("last")  # COMPLETE_FIRST
        self.server.record(self, {**final, "items": self._items, "itemsView": "full"})
        self._flush()

    # -- items before the agent message -------------------------------------------------------

    def _plan(self) -> None:
        plan = [
            {"step": "Inspect the project", "status": "completed"},
            {"step": "Make the change", "status": "inProgress"},
            {"step": "Run the tests", "status": "pending"},
        ]
        self.emit("turn/plan/updated", {**self._ids(), "explanation": "fake plan", "plan": plan})

    def _reasoning(self) -> None:
        item_id = self.server.new_id("rs")
        item: JSON = {"type": "reasoning", "id": item_id, "summary": [], "content": []}
        self._item("item/started", item)
        ids = {**self._ids(), "itemId": item_id}
        self.emit("item/reasoning/summaryPartAdded", {**ids, "summaryIndex": 0})
        for piece in ("thinking ", "hard"):
            self.emit("item/reasoning/summaryTextDelta", {**ids, "summaryIndex": 0, "delta": piece})
        self._item("item/completed", {**item, "summary": ["thinking hard"]})

    def _command_item(self, item_id: str, command: str, status: str, output: str | None) -> JSON:
        done = status == "completed"
        return {
            "type": "commandExecution",
            "id": item_id,
            "pluginId": None,
            "scriptPath": None,
            "command": f"/bin/bash -lc '{command}'",
            "cwd": self.thread.cwd,
            "processId": "4242" if done or output is not None else None,
            "source": "unifiedExecStartup" if done else "agent",
            "status": status,
            "commandActions": [{"type": "unknown", "command": command}],
            "aggregatedOutput": output,
            "exitCode": 0 if done else None,
            "durationMs": 0 if done else None,
        }

    def _tool(self) -> None:
        item_id = self.server.new_id("call")
        self._item("item/started", self._command_item(item_id, TOOL_COMMAND, "inProgress", None))
        for piece in TOOL_OUTPUT:
            params = {**self._ids(), "itemId": item_id, "delta": piece}
            self.emit("item/commandExecution/outputDelta", params)
        output = "".join(TOOL_OUTPUT)
        self._item("item/completed", self._command_item(item_id, TOOL_COMMAND, "completed", output))

    def _file_item(self, item_id: str, status: str) -> JSON:
        return {"type": "fileChange", "id": item_id, "changes": self._changes(), "status": status}

    def _changes(self) -> list[JSON]:
        path = os.path.join(self.thread.cwd, "hello.txt")
        return [{"path": path, "kind": {"type": "add"}, "diff": FILE_CONTENT}]

    def _filechange(self) -> None:
        item_id = self.server.new_id("patch")
        self._item("item/started", self._file_item(item_id, "inProgress"))
        params = {**self._ids(), "itemId": item_id, "changes": self._changes()}
        self.emit("item/fileChange/patchUpdated", params)
        self._item("item/completed", self._file_item(item_id, "completed"))
        diff = (
            "diff --git a/hello.txt b/hello.txt\nnew file mode 100644\n--- /dev/null\n"
            f"+++ b/hello.txt\n@@ -0,0 +1 @@\n+{FILE_CONTENT}"
        )
        self.emit("turn/diff/updated", {**self._ids(), "diff": diff})

    # -- server requests ----------------------------------------------------------------------

    def _send_request(self, method: str, params: JSON) -> int:
        request_id = self.server.register_request(self)
        self._emit_line(encode({"method": method, "id": request_id, "params": params}))
        return request_id

    def _await_reply(self, request_id: int) -> JSON | None:
        """The client's reply to one of our requests; None if the turn was interrupted first."""
        self._respond()
        self._flush()
        with self.cond:
            while request_id not in self.replies and not self.interrupted:
                self.cond.wait()
            reply = self.replies.pop(request_id, None)
        self.server.forget_request(request_id)
        return reply

    def _request(self, method: str, params: JSON) -> JSON:
        """Send a server request and wait for the client's reply (interrupt wakes it)."""
        request_id = self._send_request(method, params)
        reply = self._await_reply(request_id)
        self.emit("serverRequest/resolved", {"threadId": self.thread.id, "requestId": request_id})
        if reply is None:
            raise Interrupted
        return reply

    @staticmethod
    def _outcome(reply: JSON) -> tuple[str | None, Any]:
        """(None, result) for a result, or ("error:<code>", None) for a JSON-RPC error."""
        if "error" in reply:
            error = reply["error"]
            code = error.get("code") if isinstance(error, dict) else None
            return f"error:{code}", None
        return None, reply.get("result")

    @staticmethod
    def _decision(result: Any) -> str:
        decision = result.get("decision") if isinstance(result, dict) else None
        if isinstance(decision, str):
            return decision
        if isinstance(decision, dict) and decision:
            return str(next(iter(decision)))
        return "invalid"

    def _command_approval(self) -> None:
        item_id = self.server.new_id("call")
        self._active("waitingOnApproval")
        self._item(
            "item/started", self._command_item(item_id, APPROVAL_COMMAND, "inProgress", None)
        )
        words = APPROVAL_COMMAND.split()
        params = {
            "kind": "command",
            **self._ids(),
            "itemId": item_id,
            "startedAtMs": now_ms(),
            "environmentId": "local",
            "reason": "Allow the fake to run this command?",
            "command": f"/bin/bash -lc '{APPROVAL_COMMAND}'",
            "cwd": self.thread.cwd,
            "commandActions": [{"type": "unknown", "command": APPROVAL_COMMAND}],
            "proposedExecpolicyAmendment": words,
            "availableDecisions": [
                "accept",
                {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": words}},
                "cancel",
            ],
        }
        error, result = self._outcome(
            self._request("item/commandExecution/requestApproval", params)
        )
        decision = error or self._decision(result)
        self._active()
        approved = decision in ("accept", "acceptForSession", "acceptWithExecpolicyAmendment")
        if approved:
            item = self._command_item(item_id, APPROVAL_COMMAND, "completed", "needs approval\n")
        else:
            item = self._command_item(item_id, APPROVAL_COMMAND, "declined", None)
        self._item("item/completed", item)
        self._after_decision(f"approval:{decision} ", decision)

    def _file_approval(self) -> None:
        item_id = self.server.new_id("patch")
        self._active("waitingOnApproval")
        self._item("item/started", self._file_item(item_id, "inProgress"))
        params = {
            **self._ids(),
            "itemId": item_id,
            "startedAtMs": now_ms(),
            "reason": "Allow the fake to write hello.txt?",
            "grantRoot": None,
        }
        error, result = self._outcome(self._request("item/fileChange/requestApproval", params))
        decision = error or self._decision(result)
        self._active()
        approved = decision in ("accept", "acceptForSession")
        self._item(
            "item/completed", self._file_item(item_id, "completed" if approved else "declined")
        )
        self._after_decision(f"approval:{decision} ", decision)

    def _after_decision(self, summary: str, decision: str) -> None:
        if decision == "cancel":
            raise Interrupted
        self._pending_deltas.append(summary)

    def _user_input(self) -> None:
        self._active("waitingOnUserInput")
        params = {
            **self._ids(),
            "itemId": self.server.new_id("call"),
            "isBlocking": True,
            "autoResolutionMs": None,
            "questions": [
                {
                    "id": "color",
                    "header": "Color",
                    "question": "Pick a color",
                    "isOther": False,
                    "isSecret": False,
                    "options": [
                        {"label": "red", "description": "warm"},
                        {"label": "blue", "description": "cool"},
                    ],
                }
            ],
        }
        error, result = self._outcome(self._request("item/tool/requestUserInput", params))
        self._active()
        self._pending_deltas.append(f"input:{error or compact(result)} ")

    def _elicit(self) -> None:
        params = {
            "serverName": "fake-mcp",
            **self._ids(),
            "mode": "form",
            "message": "The fake MCP server needs a token",
            "requestedSchema": {
                "type": "object",
                "properties": {"token": {"type": "string", "title": "Token"}},
                "required": ["token"],
            },
            "_meta": None,
        }
        error, result = self._outcome(self._request("mcpServer/elicitation/request", params))
        action = result.get("action") if isinstance(result, dict) else None
        self._pending_deltas.append(f"elicit:{error or action or 'invalid'} ")

    def _unknown_request(self) -> None:
        error, _ = self._outcome(self._request("x/unknownRequest", self._ids()))
        self._pending_deltas.append(f"unknown:{error or 'result'} ")

    def _tool_item(self, call_id: str, namespace: str | None, tool: str, args: JSON) -> JSON:
        return {
            "type": "dynamicToolCall",
            "id": call_id,
            "namespace": namespace,
            "tool": tool,
            "arguments": args,
            "status": "inProgress",
            "contentItems": None,
            "success": None,
            "durationMs": None,
        }

    def _dynamic_tools(self, d: Directives) -> None:
        """The model calls client tools: one after another (0.163) or all at once (0.171)."""
        calls: list[tuple[str, JSON, int, float]] = []  # (name, item, request id, start)
        for name in d.dyntools:
            found = self.thread.tool(name)
            if found is None:  # codex answers the model itself: "unsupported call"
                self._pending_deltas.append(f"tool:{name}:unsupported ")
                continue
            namespace, tool = found
            call_id = f"call_{uuid.uuid4().hex[:10]}"
            item = self._tool_item(call_id, namespace, tool, dict(d.dynargs))
            self._item("item/started", item)
            params = {
                **self._ids(),
                "callId": call_id,
                "namespace": namespace,
                "tool": tool,
                "arguments": dict(d.dynargs),
            }
            request_id = self._send_request("item/tool/call", params)
            calls.append((name, item, request_id, time.monotonic()))
            if not d.dyn_parallel:
                self._finish_tool_call(*calls.pop())
        for call in calls:
            self._finish_tool_call(*call)

    def _finish_tool_call(self, name: str, item: JSON, request_id: int, started: float) -> None:
        reply = self._await_reply(request_id)
        took = int((time.monotonic() - started) * 1000)
        if reply is None:  # interrupted while the client was busy: the call fails
            self._item("item/completed", {**item, "status": "failed", "durationMs": took})
            raise Interrupted
        error, result = self._outcome(reply)
        items = result.get("contentItems") if isinstance(result, dict) else None
        success = result.get("success") if isinstance(result, dict) else None
        if error is not None:
            summary = f"tool:{name}:{error} "
            text = "dynamic tool request failed"
            items, success = [{"type": "inputText", "text": text}], False
        elif not isinstance(items, list) or not isinstance(success, bool):
            summary = f"tool:{name}:invalid "
            items, success = None, False
        else:
            texts = [str(i.get("text", "")) for i in items if isinstance(i, dict)]
            images = sum(1 for i in items if isinstance(i, dict) and i.get("type") == "inputImage")
            shown = "|".join(texts) + ("" if not images else f"+{images}image")
            summary = f"tool:{name}:{'ok' if success else 'failed'}:{shown} "
        done = {
            **item,
            "status": "completed" if success else "failed",
            "contentItems": items,
            "success": success,
            "durationMs": took,
        }
        self._item("item/completed", done)
        self._pending_deltas.append(summary)


# --------------------------------------------------------------------------------------------
# The dispatcher


class Server:
    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.lock = threading.Lock()  # threads, counters, pending requests
        self.threads: dict[str, ThreadState] = {}
        self.pending: dict[int, Turn] = {}
        self.initialized = False
        self.originator = "codex_fake"
        self.codex_home = os.environ.get("CODEX_HOME") or os.getcwd()
        self.state_path = os.environ.get("FAKE_CODEX_STATE") or None
        self.exit_on_init = bool(os.environ.get("FAKE_CODEX_EXIT_ON_INIT"))
        self.stall_stdin = bool(os.environ.get("FAKE_CODEX_STALL_STDIN"))
        self.uuid_ids = bool(os.environ.get("FAKE_CODEX_UUID_IDS"))
        self.experimental = False
        self._next_request = 0
        self._next_turn = 1
        self._next_item = 1
        self.handlers = {
            "thread/start": self.thread_start,
            "thread/resume": self.thread_resume,
            "thread/fork": self.thread_fork,
            "thread/read": self.thread_read,
            "thread/list": self.thread_list,
            "thread/name/set": self.thread_name_set,
            "turn/start": self.turn_start,
            "turn/interrupt": self.turn_interrupt,
            "turn/steer": self.turn_steer,
        }

    # -- counters and shared state (any thread) -------------------------------------------------

    def new_id(self, prefix: str) -> str:
        with self.lock:
            n = self._next_item
            self._next_item += 1
        return f"{prefix}-{n}"

    def register_request(self, turn: Turn) -> int:
        with self.lock:
            request_id = self._next_request
            self._next_request += 1
            self.pending[request_id] = turn
        return request_id

    def forget_request(self, request_id: int) -> None:
        with self.lock:
            self.pending.pop(request_id, None)

    def add_usage(self, thread: ThreadState) -> JSON:
        with self.lock:
            for key, value in LAST_USAGE.items():
                thread.total_usage[key] += value
            return dict(thread.total_usage)

    def release(self, turn: Turn, *, force: bool) -> bool:
        """Detach a finishing turn from its thread, unless a fold is still queued on it."""
        with self.lock, turn.cond:
            if turn.folds and not force:
                return False
            if turn.thread.active is turn:
                turn.thread.active = None
            return True

    def record(self, turn: Turn, record: JSON) -> None:
        with self.lock:
            if turn.thread.active is turn:
                turn.thread.active = None
            turn.thread.turns.append(record)
        self.persist(turn.thread)

    # -- state file (FAKE_CODEX_STATE) ------------------------------------------------------------

    def _state_update(self, update: Any) -> JSON:
        if not self.state_path:
            return {}
        try:
            with open(self.state_path, "a+", encoding="utf-8") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                f.seek(0)
                raw = f.read()
                state = json.loads(raw) if raw.strip() else {}
                if not isinstance(state, dict) or not isinstance(state.get("threads"), dict):
                    state = {"threads": {}}
                if update is not None and update(state):
                    f.seek(0)
                    f.truncate()
                    f.write(json.dumps(state))
                    f.flush()
                return state
        except (OSError, ValueError) as exc:
            log(f"state file {self.state_path}: {exc}")
            return {}

    def record_path(self, thread: ThreadState) -> str | None:
        if thread.ephemeral:
            return None
        return f"{self.codex_home}/sessions/fake/rollout-{thread.id}.jsonl"

    def write_record(self, thread: ThreadState) -> None:
        """The first line of the thread's record, as codex writes it (only under CODEX_HOME)."""
        path = self.record_path(thread)
        if path is None or not os.environ.get("CODEX_HOME"):
            return
        payload: JSON = {"id": thread.id, "cwd": thread.cwd, "cli_version": CLI_VERSION}
        if thread.dynamic_tools is not None:
            payload["dynamic_tools"] = thread.dynamic_tools
        meta = {"timestamp": "2026-01-01T00:00:00.000Z", "type": "session_meta", "payload": payload}
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as record:
                record.write(json.dumps(meta) + "\n")
        except OSError as exc:
            log(f"could not write {path}: {exc}")

    def persist(self, thread: ThreadState) -> None:
        if thread.ephemeral or not self.state_path:
            return

        def update(state: JSON) -> bool:
            state["threads"][thread.id] = thread.persisted()
            return True

        self._state_update(update)

    def lookup(self, thread_id: Any, *, load: bool) -> ThreadState:
        if not isinstance(thread_id, str) or not thread_id:
            raise RpcError(-32602, "Invalid params: missing field `threadId`")
        with self.lock:
            thread = self.threads.get(thread_id)
        if thread is not None:
            return thread
        saved = self._state_update(None).get("threads", {}).get(thread_id)
        if not isinstance(saved, dict):
            raise RpcError(-32600, f"thread not found: {thread_id}")
        thread = ThreadState(
            id=thread_id,
            cwd=str(saved.get("cwd") or os.getcwd()),
            created_at=int(saved.get("createdAt") or now_s()),
            preview=str(saved.get("preview") or ""),
            forked_from=saved.get("forkedFromId"),
            turns=list(saved.get("turns") or []),
            dynamic_tools=saved.get("dynamicTools"),
            loaded=load,
        )
        if load:
            with self.lock:
                thread = self.threads.setdefault(thread_id, thread)
        return thread

    # -- shapes ---------------------------------------------------------------------------------

    def thread_obj(self, t: ThreadState, *, include_turns: bool) -> JSON:
        if not t.loaded:
            status: JSON = {"type": "notLoaded"}
        elif t.active is not None:
            status = {"type": "active", "activeFlags": []}
        else:
            status = {"type": "idle"}
        turns = list(t.turns)
        if t.active is not None:
            turns.append(t.active.turn_obj("inProgress"))
        path = self.record_path(t)
        return {
            "id": t.id,
            "environments": [
                {"environmentId": "local", "cwd": t.cwd, "runtimeWorkspaceRoots": [t.cwd]}
            ],
            "extra": None,
            "sessionId": t.id,
            "forkedFromId": t.forked_from,
            "parentThreadId": None,
            "preview": t.preview,
            "ephemeral": t.ephemeral,
            "section": None,
            "sectionEnteredAt": None,
            "projectId": None,
            "historyMode": "paginated",
            "modelProvider": MODEL_PROVIDER,
            "model": t.model,
            "reasoningEffort": None,
            "createdAt": t.created_at,
            "updatedAt": t.updated_at,
            "recencyAt": t.updated_at,
            "status": status,
            "path": path,
            "cwd": t.cwd,
            "cliVersion": CLI_VERSION,
            "originator": self.originator,
            "source": "vscode",
            "canAcceptDirectInput": True,
            "threadSource": None,
            "agentNickname": None,
            "agentRole": None,
            "gitInfo": None,
            "name": t.name,
            "daybreakEnabled": None,
            "turns": turns if include_turns else [],
        }

    def thread_response(self, t: ThreadState, *, include_turns: bool) -> JSON:
        return {
            "thread": self.thread_obj(t, include_turns=include_turns),
            "model": t.model,
            "modelProvider": MODEL_PROVIDER,
            "serviceTier": None,
            "disabledPluginIds": [],
            "cwd": t.cwd,
            "runtimeWorkspaceRoots": [t.cwd],
            "instructionSources": [],
            "approvalPolicy": t.approval_policy,
            "approvalsReviewer": t.approvals_reviewer,
            "sandbox": t.sandbox,
            "activePermissionProfile": None,
            "reasoningEffort": None,
            "multiAgentMode": "explicitRequestOnly",
        }

    @staticmethod
    def apply_overrides(t: ThreadState, params: JSON) -> None:
        if isinstance(params.get("cwd"), str):
            t.cwd = params["cwd"]
        if isinstance(params.get("model"), str):
            t.model = params["model"]
        if params.get("approvalPolicy") is not None:
            t.approval_policy = params["approvalPolicy"]
        if isinstance(params.get("approvalsReviewer"), str):
            t.approvals_reviewer = params["approvalsReviewer"]
        mode = params.get("sandbox")
        if mode is None:
            return
        if mode == "read-only":
            t.sandbox = {"type": "readOnly", "networkAccess": False}
        elif mode == "workspace-write":
            t.sandbox = {
                "type": "workspaceWrite",
                "writableRoots": [t.cwd],
                "networkAccess": False,
                "excludeTmpdirEnvVar": False,
                "excludeSlashTmp": False,
            }
        elif mode == "danger-full-access":
            t.sandbox = {"type": "dangerFullAccess"}
        else:
            raise RpcError(-32602, f"Invalid params: unknown variant `{mode}` for `sandbox`")

    # -- reading --------------------------------------------------------------------------------

    def serve(self, stdin: BinaryIO) -> NoReturn:
        log_file = None
        if os.environ.get("FAKE_CODEX_LOG"):
            log_file = open(os.environ["FAKE_CODEX_LOG"], "ab")  # noqa: SIM115
        for raw in iter(stdin.readline, b""):
            if log_file is not None:
                log_file.write(raw if raw.endswith(b"\n") else raw + b"\n")
                log_file.flush()
            try:
                self.handle_line(raw)
            except Exception:
                log(f"error handling {raw[:200]!r}:\n{traceback.format_exc()}")
        log("stdin closed; exiting")
        self.wire.exit(0)

    def handle_line(self, raw: bytes) -> None:
        if not raw.strip():
            log("ignoring empty input line")
            return
        try:
            message = json.loads(raw)
        except ValueError as exc:
            log(f"ignoring invalid JSON input ({exc}): {raw[:200]!r}")
            return
        if not isinstance(message, dict):
            log(f"ignoring non-object input: {raw[:200]!r}")
            return
        method = message.get("method")
        if isinstance(method, str) and "id" in message:
            self.handle_request(message["id"], method, message.get("params"))
        elif isinstance(method, str):
            self.handle_notification(method)
        elif "id" in message and ("result" in message or "error" in message):
            self.handle_response(message)
        else:
            log(f"ignoring message with neither a method nor a result: {raw[:200]!r}")

    def handle_notification(self, method: str) -> None:
        if method != "initialized":
            log(f"ignoring client notification {method!r}")
        elif self.stall_stdin:
            log("FAKE_CODEX_STALL_STDIN: no longer reading stdin")
            while True:  # the client's writes fill the pipe and block
                time.sleep(3600)

    def handle_response(self, message: JSON) -> None:
        request_id = message["id"]
        turn = None
        if type(request_id) is int:  # the id must come back as the integer we sent
            with self.lock:
                turn = self.pending.get(request_id)
        if turn is None:
            log(f"ignoring response to unknown server request id {request_id!r}")
            return
        turn.deliver(message)

    def handle_request(self, request_id: Any, method: str, params: Any) -> None:
        if isinstance(request_id, bool) or not isinstance(request_id, (int, str)):
            log(f"ignoring request {method!r} with invalid id {request_id!r}")
            return
        if params is None:
            params = {}
        try:
            if method == "initialize":
                self.initialize(request_id, params)
                return
            if not self.initialized:
                raise RpcError(-32600, "Not initialized")
            handler = self.handlers.get(method)
            if handler is None:
                raise RpcError(-32601, "method not found")
            if not isinstance(params, dict):
                raise RpcError(-32602, "Invalid params: expected an object")
            handler(request_id, params)
        except RpcError as exc:
            error = {"code": exc.code, "message": exc.message}
            self.wire.send({"id": request_id, "error": error})

    # -- methods (all run on the reader thread and never block) ---------------------------------

    def initialize(self, request_id: Any, params: Any) -> None:
        if self.exit_on_init:
            self.wire.exit(1, ["fake-codex: exiting on initialize (FAKE_CODEX_EXIT_ON_INIT)"])
        if self.initialized:
            raise RpcError(-32600, "Already initialized")
        self.initialized = True
        capabilities = params.get("capabilities") if isinstance(params, dict) else None
        self.experimental = isinstance(capabilities, dict) and bool(
            capabilities.get("experimentalApi")
        )
        info = params.get("clientInfo") if isinstance(params, dict) else None
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            self.originator = info["name"]
        result = {
            "userAgent": USER_AGENT,
            "codexHome": self.codex_home,
            "platformFamily": "unix",
            "platformOs": "linux",
        }
        self.wire.send({"id": request_id, "result": result})
        self.wire.send(notification("configWarning", {"summary": CONFIG_WARNING, "details": None}))
        remote = {
            "status": "disabled",
            "serverName": "fake",
            "installationId": "00000000-0000-4000-8000-000000000000",
            "environmentId": None,
        }
        self.wire.send(notification("remoteControl/status/changed", remote))

    def _started(self, request_id: Any, thread: ThreadState) -> None:
        with self.lock:
            self.threads[thread.id] = thread
        self.persist(thread)
        self.write_record(thread)
        self.wire.send(
            {"id": request_id, "result": self.thread_response(thread, include_turns=False)}
        )
        self.wire.send(
            notification("thread/started", {"thread": self.thread_obj(thread, include_turns=False)})
        )

    def thread_start(self, request_id: Any, params: JSON) -> None:
        tools = params.get("dynamicTools")
        if tools is not None and not self.experimental:
            raise RpcError(-32600, "thread/start.dynamicTools requires experimentalApi capability")
        if tools is not None and not isinstance(tools, list):
            raise RpcError(-32602, "Invalid params: dynamicTools must be an array")
        thread = ThreadState(id=str(uuid.uuid4()), cwd=os.getcwd(), created_at=now_s())
        thread.dynamic_tools = tools
        thread.ephemeral = bool(params.get("ephemeral"))
        self.apply_overrides(thread, params)
        self._started(request_id, thread)

    def thread_fork(self, request_id: Any, params: JSON) -> None:
        source = self.lookup(params.get("threadId"), load=False)
        thread = ThreadState(
            id=str(uuid.uuid4()),
            cwd=source.cwd,
            created_at=now_s(),
            preview=source.preview,
            forked_from=source.id,
            model=source.model,
            approval_policy=source.approval_policy,
            approvals_reviewer=source.approvals_reviewer,
            sandbox=dict(source.sandbox),
            turns=list(source.turns),
            dynamic_tools=source.dynamic_tools,
        )
        thread.ephemeral = bool(params.get("ephemeral"))
        self.apply_overrides(thread, params)
        self._started(request_id, thread)

    def thread_resume(self, request_id: Any, params: JSON) -> None:
        thread = self.lookup(params.get("threadId"), load=True)
        self.apply_overrides(thread, params)
        include = not params.get("excludeTurns")
        self.wire.send(
            {"id": request_id, "result": self.thread_response(thread, include_turns=include)}
        )

    def thread_read(self, request_id: Any, params: JSON) -> None:
        thread = self.lookup(params.get("threadId"), load=False)
        result = {"thread": self.thread_obj(thread, include_turns=bool(params.get("includeTurns")))}
        self.wire.send({"id": request_id, "result": result})

    def thread_list(self, request_id: Any, params: JSON) -> None:
        limit = params.get("limit")
        with self.lock:
            threads = sorted(self.threads.values(), key=lambda t: t.created_at, reverse=True)
        if isinstance(limit, int) and limit >= 0:
            threads = threads[:limit]
        data = [self.thread_obj(t, include_turns=False) for t in threads]
        self.wire.send({"id": request_id, "result": {"data": data, "nextCursor": None}})

    def thread_name_set(self, request_id: Any, params: JSON) -> None:
        thread = self.lookup(params.get("threadId"), load=False)
        name = params.get("name")
        if not isinstance(name, str):
            raise RpcError(-32602, "Invalid params: missing field `name`")
        thread.name = name
        self.wire.send({"id": request_id, "result": {}})
        self.wire.send(
            notification("thread/name/updated", {"threadId": thread.id, "threadName": name})
        )

    def turn_start(self, request_id: Any, params: JSON) -> None:
        thread_id = params.get("threadId")
        with self.lock:
            thread = self.threads.get(thread_id) if isinstance(thread_id, str) else None
        if thread is None:
            raise RpcError(-32600, f"thread not found: {thread_id}")
        items = params.get("input")
        if not isinstance(items, list) or not items:
            raise RpcError(-32600, "input must not be empty")
        schema = params.get("outputSchema")
        with self.lock:
            running = thread.active
            if running is not None:  # busy thread: same turn id, input folded into it
                if schema is not None and schema != running.output_schema:
                    raise RpcError(-32600, "active turn uses a different output schema")
                result = {"turn": running.turn_obj("inProgress", started=False)}
                self.wire.send({"id": request_id, "result": result})
                running.fold(items)
                return
            turn_id = str(uuid.uuid4()) if self.uuid_ids else f"turn-{self._next_turn}"
            turn = Turn(self, thread, turn_id, items, schema, request_id)
            self._next_turn += 1
            thread.active = turn
            thread.preview = thread.preview or text_of(items)
        if turn.respond_mode == "now":
            result = {"turn": turn.turn_obj("inProgress", started=False)}
            self.wire.send({"id": request_id, "result": result})
        turn.thread_runner.start()

    def _active_turn(self, params: JSON, what: str) -> tuple[ThreadState, Turn]:
        thread = self.lookup(params.get("threadId"), load=False)
        with self.lock:
            turn = thread.active
        if turn is None:
            raise RpcError(-32600, f"no active turn to {what}")
        return thread, turn

    def turn_interrupt(self, request_id: Any, params: JSON) -> None:
        _, turn = self._active_turn(params, "interrupt")
        if params.get("turnId") != turn.id:
            raise RpcError(-32600, "no active turn to interrupt")
        self.wire.send({"id": request_id, "result": {}})
        turn.interrupt()

    def turn_steer(self, request_id: Any, params: JSON) -> None:
        expected = params.get("expectedTurnId")
        if not isinstance(expected, str) or not expected:
            raise RpcError(-32600, "expectedTurnId must not be empty")
        items = params.get("input")
        if not isinstance(items, list) or not items:
            raise RpcError(-32600, "input must not be empty")
        _, turn = self._active_turn(params, "steer")
        if expected != turn.id:
            raise RpcError(-32600, f"expected active turn id `{expected}` but found `{turn.id}`")
        self.wire.send({"id": request_id, "result": {"turnId": turn.id}})
        turn.steer(text_of(items))


# --------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if argv[:1] == ["--version"]:
        print(f"codex-cli {CLI_VERSION}")
        return 0
    if argv[:1] != ["app-server"]:
        got = argv[0] if argv else "(none)"
        sys.stderr.write(f"fake-codex: expected the `app-server` subcommand, got {got!r}\n")
        return 2
    # Other arguments (`--config k=v`, `-c k=v`, `--listen stdio://`) are accepted and ignored.
    if os.environ.get("FAKE_CODEX_IGNORE_SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    spam = env_int("FAKE_CODEX_STDERR_SPAM")
    for i in range(spam):
        sys.stderr.write(
            f"2026-01-01T00:00:00.000000Z  INFO codex_app_server::fake: spam line {i} "
            "lorem ipsum dolor sit amet consectetur adipiscing elit\n"
        )
    sys.stderr.flush()
    if os.environ.get("FAKE_CODEX_EXIT_ON_START"):
        sys.stderr.write(START_ERROR + "\n")
        sys.stderr.flush()
        return 1
    server = Server(Wire(sys.stdout.buffer))
    server.serve(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
