"""Drive the scripted fake ``codex app-server`` over real pipes, one switch per test.

These tests do not use the client library: they speak the wire protocol directly, so the fake can
be trusted as ground for the client's own tests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FAKE_APP_SERVER, fake_codex_bin

JSON = dict[str, Any]
READ_TIMEOUT = 10.0
TURN_METHODS = [
    "thread/status/changed",
    "turn/started",
    "item/started",
    "item/completed",
    "item/started",
    "item/agentMessage/delta",
    "item/agentMessage/delta",
    "item/agentMessage/delta",
    "item/completed",
    "thread/tokenUsage/updated",
    "account/rateLimits/updated",
    "thread/status/changed",
    "turn/completed",
]


class FakeProcess:
    """The fake on pipes; a reader thread parses stdout lines, reads have deadlines."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr_lines: list[bytes] = []
        self._stderr_changed = threading.Condition()
        self.raw: list[bytes] = []  # every stdout line, garbage included
        self.messages: list[JSON] = []  # every stdout line that parsed as a JSON object
        self._eof = False
        self._stderr_eof = False
        self._next_id = 1
        self._readers = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            self._lines.put(raw)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            with self._stderr_changed:
                self.stderr_lines.append(raw)
                self._stderr_changed.notify_all()
        with self._stderr_changed:
            self._stderr_eof = True
            self._stderr_changed.notify_all()

    def wait_stderr(self, needle: str, timeout: float = READ_TIMEOUT) -> str:
        """All stderr so far, once it contains ``needle`` (fails at the deadline or EOF)."""
        with self._stderr_changed:
            found = self._stderr_changed.wait_for(
                lambda: needle in self.stderr or self._stderr_eof, timeout
            )
        text = self.stderr
        assert found, f"{needle!r} not on stderr:\n{text[-2000:]}"
        assert needle in text, f"{needle!r} not on stderr:\n{text[-2000:]}"
        return text

    @property
    def stderr(self) -> str:
        return b"".join(self.stderr_lines).decode(errors="replace")

    # -- writing ----------------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: JSON) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def send_request(self, method: str, params: JSON | None = None) -> int:
        request_id = self._next_id
        self._next_id += 1
        message: JSON = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    # -- reading ----------------------------------------------------------------------------------

    def _pull(self, deadline: float) -> bool:
        """Read one more stdout line; False at EOF. Fails the test at the deadline."""
        if self._eof:
            return False
        try:
            raw = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no matching output from the fake in time; stderr:\n{self.stderr[-2000:]}")
        if raw is None:
            self._eof = True
            return False
        self.raw.append(raw)
        try:
            message = json.loads(raw)
        except ValueError:
            return True
        if isinstance(message, dict):
            self.messages.append(message)
        return True

    def wait_for(
        self, predicate: Callable[[JSON], bool], start: int = 0, timeout: float = READ_TIMEOUT
    ) -> int:
        """Index in ``messages`` of the first message from ``start`` matching ``predicate``."""
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self.messages):
                if predicate(self.messages[index]):
                    return index
                index += 1
            if not self._pull(deadline):
                pytest.fail(f"fake exited before a match; stderr:\n{self.stderr[-2000:]}")

    def response(self, request_id: int) -> JSON:
        index = self.wait_for(lambda m: m.get("id") == request_id and "method" not in m)
        return self.messages[index]

    def request(self, method: str, params: JSON | None = None) -> JSON:
        return self.response(self.send_request(method, params))

    def result(self, method: str, params: JSON | None = None) -> JSON:
        reply = self.request(method, params)
        assert "result" in reply, reply
        result: JSON = reply["result"]
        return result

    def notification(self, method: str, start: int = 0, **match: Any) -> JSON:
        def wanted(m: JSON) -> bool:
            params = m.get("params") or {}
            return m.get("method") == method and all(params.get(k) == v for k, v in match.items())

        return self.messages[self.wait_for(wanted, start)]

    def read_to_eof(self, timeout: float = READ_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self._pull(deadline):
            pass

    # -- conveniences -----------------------------------------------------------------------------

    def initialize(self) -> JSON:
        result = self.result("initialize", {"clientInfo": {"name": "tests", "version": "0"}})
        self.send({"method": "initialized"})
        return result

    def start_thread(self, **params: Any) -> str:
        """Start a thread and read up to its ``thread/started`` notification."""
        thread_id: str = self.result("thread/start", params)["thread"]["id"]
        self.notification("thread/started", start=len(self.messages) - 1)
        return thread_id

    def start_turn(self, thread_id: str, text: str, **params: Any) -> int:
        input_ = [{"type": "text", "text": text}]
        return self.send_request("turn/start", {"threadId": thread_id, "input": input_, **params})

    def run_turn(self, thread_id: str, text: str, **params: Any) -> tuple[str, list[JSON]]:
        """Start a turn, wait for its turn/completed; return its id and its thread's messages."""
        turn_id = self.response(self.start_turn(thread_id, text, **params))["result"]["turn"]["id"]
        return turn_id, self.turn_events(thread_id, turn_id)

    def turn_events(self, thread_id: str, turn_id: str, start: int = 0) -> list[JSON]:
        end = self.wait_for(lambda m: is_completion(m, turn_id), start)
        return [m for m in self.messages[start : end + 1] if on_thread(m, thread_id)]

    def wait_exit(self, timeout: float = READ_TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()


def is_completion(message: JSON, turn_id: str) -> bool:
    params = message.get("params") or {}
    return message.get("method") == "turn/completed" and params["turn"]["id"] == turn_id


def on_thread(message: JSON, thread_id: str) -> bool:
    """A notification or server request about ``thread_id``, or a global notification."""
    params = message.get("params")
    if "method" not in message or not isinstance(params, dict):
        return False
    owner = params.get("threadId", params.get("thread", {}).get("id"))
    return owner in (None, thread_id)


def methods(messages: list[JSON]) -> list[str]:
    return [m["method"] for m in messages if "method" in m]


def agent_text(messages: list[JSON]) -> str:
    completed = [
        m["params"]["item"]
        for m in messages
        if m.get("method") == "item/completed" and m["params"]["item"]["type"] == "agentMessage"
    ]
    assert completed, methods(messages)
    text: str = completed[-1]["text"]
    return text


def deltas(messages: list[JSON]) -> list[str]:
    return [m["params"]["delta"] for m in messages if m.get("method") == "item/agentMessage/delta"]


def completed_turn(messages: list[JSON]) -> JSON:
    turn: JSON = messages[-1]["params"]["turn"]
    return turn


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., FakeProcess]]:
    """Start fakes through the ``fake_codex_bin`` wrapper; ``env`` becomes FAKE_CODEX_* vars."""
    started: list[FakeProcess] = []

    def _spawn(*args: str, env: dict[str, str] | None = None) -> FakeProcess:
        codex = fake_codex_bin(tmp_path, **(env or {}))
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_CODEX_")}
        child_env["CODEX_HOME"] = str(tmp_path)
        fake = FakeProcess([codex, "app-server", *args], tmp_path, child_env)
        started.append(fake)
        return fake

    yield _spawn
    for fake in started:
        fake.close()


@pytest.fixture
def fake(spawn: Callable[..., FakeProcess]) -> FakeProcess:
    process = spawn("--config", "model=x")
    process.initialize()
    return process


# --- process, wrapper and handshake ------------------------------------------------------------


def test_wrapper_is_an_executable_shell_script(tmp_path: Path) -> None:
    codex = Path(fake_codex_bin(tmp_path, FAKE_CODEX_STDERR_SPAM=2))
    assert codex.stat().st_mode & 0o777 == 0o755
    text = codex.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "export FAKE_CODEX_STDERR_SPAM=2\n" in text
    assert f'"{FAKE_APP_SERVER}" "$@"' in text


def test_other_subcommand_exits_2_with_a_message(tmp_path: Path) -> None:
    codex = fake_codex_bin(tmp_path)
    done = subprocess.run([codex, "exec"], capture_output=True, timeout=30, check=False)
    assert done.returncode == 2
    assert b"app-server" in done.stderr
    version = subprocess.run([codex, "--version"], capture_output=True, timeout=30, check=True)
    assert version.stdout == b"codex-cli 0.163.0\n"


def test_requests_before_initialize_are_rejected(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn()
    reply = fake.request("thread/start", {})
    assert reply["error"] == {"code": -32600, "message": "Not initialized"}


def test_initialize_answers_then_emits_global_notifications(
    spawn: Callable[..., FakeProcess], tmp_path: Path
) -> None:
    fake = spawn()
    result = fake.initialize()
    assert result == {
        "userAgent": "codex_fake/0.163.0 (fake; test) fake",
        "codexHome": str(tmp_path),
        "platformFamily": "unix",
        "platformOs": "linux",
    }
    warning = fake.notification("configWarning")
    assert "bubblewrap" in warning["params"]["summary"]
    assert isinstance(warning["emittedAtMs"], int)
    assert all("jsonrpc" not in m for m in fake.messages)
    assert fake.request("initialize", {})["error"]["message"] == "Already initialized"


def test_unknown_method_is_method_not_found(fake: FakeProcess) -> None:
    assert fake.request("model/nonsense", {})["error"] == {
        "code": -32601,
        "message": "method not found",
    }


def test_stdin_eof_exits_zero(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn()
    fake.initialize()
    fake.start_turn(fake.start_thread(), "HANG")  # a running turn does not keep it alive
    fake.notification("item/agentMessage/delta")
    assert fake.proc.stdin is not None
    fake.proc.stdin.close()
    assert fake.wait_exit() == 0


def test_odd_input_is_logged_not_fatal(fake: FakeProcess) -> None:
    fake.send_raw(b'not json\n\n[1, 2]\n"str"\n{}\n\xff\xfe\n{"id": 1.5, "method": "x"}\n')
    fake.send({"id": 9, "result": {}})  # a response to a request never sent
    assert "result" in fake.request("thread/start", {})
    fake.wait_stderr("ignoring response to unknown server request id 9")


def test_exit_on_start_reports_on_stderr(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn(env={"FAKE_CODEX_EXIT_ON_START": "1"})
    assert fake.wait_exit() == 1
    fake.read_to_eof()
    assert fake.raw == []
    fake.wait_stderr('approval_policy "untrusted" is no longer supported')


def test_exit_on_init_closes_without_answering(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn(env={"FAKE_CODEX_EXIT_ON_INIT": "1"})
    fake.send_request("initialize", {})
    fake.read_to_eof()
    assert fake.messages == []
    assert fake.wait_exit() == 1


def test_ignore_sigterm_needs_sigkill(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn(env={"FAKE_CODEX_IGNORE_SIGTERM": "1"})
    fake.initialize()  # the handler is installed before stdin is read
    fake.proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        fake.proc.wait(timeout=0.3)
    assert "result" in fake.request("thread/start", {})
    fake.proc.kill()
    assert fake.wait_exit() == -signal.SIGKILL


def test_stderr_spam_is_written_before_serving(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn(env={"FAKE_CODEX_STDERR_SPAM": "3000"})
    fake.initialize()
    fake.wait_stderr("spam line 2999 ")
    assert sum(b"spam line" in line for line in fake.stderr_lines) == 3000


def test_log_records_client_lines_with_integer_reply_ids(
    spawn: Callable[..., FakeProcess], tmp_path: Path
) -> None:
    log_path = tmp_path / "client.jsonl"
    fake = spawn(env={"FAKE_CODEX_LOG": str(log_path)})
    fake.initialize()
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, "APPROVAL")
    request = fake.messages[fake.wait_for(lambda m: m.get("method", "").endswith("Approval"))]
    fake.send({"id": request["id"], "result": {"decision": "accept"}})
    fake.notification("turn/completed")
    sent = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert sent[0]["method"] == "initialize"
    assert {"id": 0, "result": {"decision": "accept"}} in sent


# --- threads ----------------------------------------------------------------------------------


def test_thread_start_shape_and_started_notification(fake: FakeProcess, tmp_path: Path) -> None:
    request_id = fake.send_request("thread/start", {"sandbox": "workspace-write"})
    reply_index = fake.wait_for(lambda m: m.get("id") == request_id)
    result = fake.messages[reply_index]["result"]
    thread = result["thread"]
    assert result["model"] == "fake-model"
    assert result["modelProvider"] == "fake"
    assert result["cwd"] == str(tmp_path)
    assert result["sandbox"]["type"] == "workspaceWrite"
    assert result["approvalPolicy"] == "never"
    assert thread["status"] == {"type": "idle"}
    assert thread["turns"] == []
    assert thread["cliVersion"] == "0.163.0"
    started = fake.notification("thread/started", start=reply_index)
    assert started["params"]["thread"]["id"] == thread["id"]


def test_resume_unknown_thread_fails(fake: FakeProcess) -> None:
    reply = fake.request("thread/resume", {"threadId": "nope"})
    assert reply["error"] == {"code": -32600, "message": "thread not found: nope"}


def test_state_file_lets_a_new_process_resume_and_read(
    spawn: Callable[..., FakeProcess], tmp_path: Path
) -> None:
    env = {"FAKE_CODEX_STATE": str(tmp_path / "state.json")}
    first = spawn(env=env)
    first.initialize()
    thread_id = first.start_thread()
    first.run_turn(thread_id, "hello TEXT:hi")
    first.close()

    second = spawn(env=env)
    second.initialize()
    read = second.result("thread/read", {"threadId": thread_id, "includeTurns": True})
    assert read["thread"]["status"] == {"type": "notLoaded"}
    assert read["thread"]["preview"] == "hello TEXT:hi"
    [turn] = read["thread"]["turns"]
    assert [i["type"] for i in turn["items"]] == ["userMessage", "agentMessage"]
    resumed = second.result("thread/resume", {"threadId": thread_id})
    assert resumed["thread"]["id"] == thread_id
    _, events = second.run_turn(thread_id, "again")
    assert completed_turn(events)["status"] == "completed"


def test_fork_copies_history_under_a_new_id(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.run_turn(thread_id, "one")
    forked = fake.result("thread/fork", {"threadId": thread_id})["thread"]
    assert forked["id"] != thread_id
    assert forked["forkedFromId"] == thread_id
    read = fake.result("thread/read", {"threadId": forked["id"], "includeTurns": True})
    assert len(read["thread"]["turns"]) == 1
    assert fake.result("thread/read", {"threadId": thread_id})["thread"]["turns"] == []


# --- turns ------------------------------------------------------------------------------------


def test_plain_turn_streams_in_the_real_order(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    rid = fake.start_turn(thread_id, "hello")
    reply_index = fake.wait_for(lambda m: m.get("id") == rid)
    turn = fake.messages[reply_index]["result"]["turn"]
    assert turn["id"] == "turn-1"
    assert (turn["status"], turn["items"], turn["error"]) == ("inProgress", [], None)
    events = fake.turn_events(thread_id, "turn-1", start=reply_index)
    assert methods(events) == TURN_METHODS
    assert deltas(events) == ["d0 ", "d1 ", "d2 "]
    assert agent_text(events) == "d0 d1 d2 "
    assert events[0]["params"]["status"] == {"type": "active", "activeFlags": []}
    assert events[-2]["params"]["status"] == {"type": "idle"}
    assert events[2]["params"]["item"]["content"] == [
        {"type": "text", "text": "hello", "text_elements": []}
    ]
    final = completed_turn(events)
    assert (final["status"], final["error"], final["itemsView"]) == ("completed", None, "summary")
    assert isinstance(final["durationMs"], int)
    usage = events[-4]["params"]["tokenUsage"]
    assert usage["last"]["totalTokens"] == 15
    _, second = fake.run_turn(thread_id, "again")
    assert second[-4]["params"]["tokenUsage"]["total"]["totalTokens"] == 30


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        ("DELTAS:5", {}, ["d0 ", "d1 ", "d2 ", "d3 ", "d4 "]),
        ("DELTAS:0", {}, []),
        ("TEXT:hello", {}, ["hello"]),
        ('JSON:{"a":[1,2]}', {}, ['{"a":[1,2]}']),
        (
            "structured",
            {"outputSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
            ['{"n":0}'],
        ),
    ],
)
def test_message_directives(
    fake: FakeProcess, text: str, params: JSON, expected: list[str]
) -> None:
    thread_id = fake.start_thread()
    _, events = fake.run_turn(thread_id, text, **params)
    assert deltas(events) == expected
    assert agent_text(events) == "".join(expected)


def test_early_streams_before_the_response(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    start = len(fake.messages)
    rid = fake.start_turn(thread_id, "EARLY DELTAS:4")
    reply_index = fake.wait_for(lambda m: m.get("id") == rid, start)
    before = methods(fake.messages[start:reply_index])
    assert before[:2] == ["thread/status/changed", "turn/started"]
    assert before.count("item/agentMessage/delta") == 2
    assert before[-1] == "item/agentMessage/delta"
    events = fake.turn_events(thread_id, "turn-1", start)
    assert agent_text(events) == "d0 d1 d2 d3 "


def test_complete_first_answers_after_turn_completed(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    start = len(fake.messages)
    rid = fake.start_turn(thread_id, "COMPLETE_FIRST")
    reply_index = fake.wait_for(lambda m: m.get("id") == rid, start)
    assert fake.messages[reply_index - 1]["method"] == "turn/completed"
    assert fake.messages[reply_index]["result"]["turn"]["status"] == "inProgress"


def test_turns_on_two_threads_interleave(fake: FakeProcess) -> None:
    threads = [fake.start_thread(), fake.start_thread()]
    start = len(fake.messages)
    for thread_id in threads:
        fake.start_turn(thread_id, "DELTAS:6 DELAY_MS:15")
    fake.wait_for(lambda m: is_completion(m, "turn-1"), start)
    fake.wait_for(lambda m: is_completion(m, "turn-2"), start)
    owners = [
        m["params"]["threadId"]
        for m in fake.messages[start:]
        if m.get("method") == "item/agentMessage/delta"
    ]
    switches = sum(a != b for a, b in itertools.pairwise(owners))
    assert len(owners) == 12
    assert switches >= 2


def test_busy_thread_turn_start_folds_into_the_running_turn(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    first = fake.response(fake.start_turn(thread_id, "first HANG"))["result"]["turn"]["id"]
    fake.notification("item/agentMessage/delta")
    schema = {"type": "object", "properties": {}}
    other_schema = fake.response(fake.start_turn(thread_id, "x", outputSchema=schema))
    assert other_schema["error"] == {
        "code": -32600,
        "message": "active turn uses a different output schema",
    }
    second = fake.response(fake.start_turn(thread_id, "second DELTAS:2"))["result"]["turn"]["id"]
    assert second == first
    events = fake.turn_events(thread_id, first)
    assert methods(events).count("turn/started") == 1
    assert methods(events).count("turn/completed") == 1
    users = [
        m["params"]["item"]["content"][0]["text"]
        for m in events
        if m["method"] == "item/completed" and m["params"]["item"]["type"] == "userMessage"
    ]
    assert users == ["first HANG", "second DELTAS:2"]
    messages_done = [
        m
        for m in events
        if m["method"] == "item/completed" and m["params"]["item"]["type"] == "agentMessage"
    ]
    assert [m["params"]["item"]["text"] for m in messages_done] == [
        "d0 d1 "
    ]  # first never completes
    assert completed_turn(events)["status"] == "completed"


def test_interrupt_ends_a_hanging_turn(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, "HANG DELTAS:1")
    fake.notification("item/agentMessage/delta")
    reply = fake.request("turn/interrupt", {"threadId": thread_id, "turnId": "turn-1"})
    assert reply["result"] == {}
    reply_index = fake.messages.index(reply)
    done = fake.notification("turn/completed", start=reply_index)
    assert done["params"]["turn"]["status"] == "interrupted"
    assert done["params"]["turn"]["items"] == []
    again = fake.request("turn/interrupt", {"threadId": thread_id, "turnId": "turn-1"})
    assert again["error"] == {"code": -32600, "message": "no active turn to interrupt"}


def test_interrupt_wakes_a_delayed_turn_promptly(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, "DELTAS:100 DELAY_MS:5000")
    fake.notification("item/agentMessage/delta")
    started = time.monotonic()
    fake.request("turn/interrupt", {"threadId": thread_id, "turnId": "turn-1"})
    done = fake.notification("turn/completed")
    assert done["params"]["turn"]["status"] == "interrupted"
    assert time.monotonic() - started < 2


def test_steer_appends_to_the_active_turn(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, "HANG DELTAS:1")
    fake.notification("item/agentMessage/delta")
    steer_input = [{"type": "text", "text": "go left"}]
    wrong = fake.request(
        "turn/steer", {"threadId": thread_id, "expectedTurnId": "turn-9", "input": steer_input}
    )
    assert wrong["error"]["code"] == -32600
    assert "turn-9" in wrong["error"]["message"]
    ok = fake.request(
        "turn/steer", {"threadId": thread_id, "expectedTurnId": "turn-1", "input": steer_input}
    )
    assert ok["result"] == {"turnId": "turn-1"}
    fake.notification("item/agentMessage/delta", delta="steered:go left ")
    fake.request("turn/interrupt", {"threadId": thread_id, "turnId": "turn-1"})
    fake.notification("turn/completed")
    idle = fake.request(
        "turn/steer", {"threadId": thread_id, "expectedTurnId": "turn-1", "input": steer_input}
    )
    assert idle["error"] == {"code": -32600, "message": "no active turn to steer"}


def test_fail_emits_error_then_failed_turn(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    _, events = fake.run_turn(thread_id, "FAIL")
    assert methods(events)[-3:] == ["thread/status/changed", "error", "turn/completed"]
    error = events[-2]["params"]
    assert error["willRetry"] is False
    assert error["error"]["message"] == "model exploded"
    assert error["turnId"] == "turn-1"
    turn = completed_turn(events)
    assert turn["status"] == "failed"
    assert turn["error"]["message"] == "model exploded"
    assert deltas(events) == []


def test_die_exits_1_with_a_secret_on_stderr(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, "DIE_AFTER:2")
    fake.read_to_eof()
    assert fake.wait_exit() == 1
    assert deltas(fake.messages) == ["d0 ", "d1 "]
    assert "turn/completed" not in methods(fake.messages)
    fatal = "fatal: model stream broke (token sk-test-SECRET123)"
    assert fake.wait_stderr(fatal).rstrip().endswith(fatal)


def test_garbage_lines_are_written_between_deltas(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    start = len(fake.raw)
    _, events = fake.run_turn(thread_id, "GARBAGE")
    raw = fake.raw[start:]
    for line in (b"this is not json\n", b"[1,2,3]\n", b'"just a string"\n', b'{"foo":"bar"}\n'):
        assert line in raw
    assert b"\n" in raw
    assert any(line.startswith(b"\xff") for line in raw)
    assert any(
        line.startswith(b'{"method":"item/agentMessage/delta","params":{"threadId":\n')
        for line in raw
    )
    assert agent_text(events) == "d0 d1 d2 "


def test_garbage_big_writes_a_10_mb_line(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    _, events = fake.run_turn(thread_id, "GARBAGE:big DELTAS:1")
    assert max(len(line) for line in fake.raw) > 10 * 1024 * 1024
    assert agent_text(events) == "d0 "


def test_unknown_notifications(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.run_turn(thread_id, "UNKNOWN_NOTIFY")
    custom = fake.notification("x/customEvent")
    assert custom["params"] == {"threadId": thread_id, "turnId": "turn-1", "value": 1}
    assert fake.notification("x/globalEvent")["params"] == {"value": 2}


def test_flood_writes_n_deltas(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn(env={"FAKE_CODEX_FLOOD": "5000"})
    fake.initialize()
    thread_id = fake.start_thread()
    _, events = fake.run_turn(thread_id, "FLOOD")
    assert len(deltas(events)) == 5000
    assert agent_text(events) == "x" * 5000


# --- server requests --------------------------------------------------------------------------


def server_request(fake: FakeProcess, method: str, start: int = 0) -> JSON:
    return fake.messages[fake.wait_for(lambda m: m.get("method") == method and "id" in m, start)]


def test_approval_waits_while_another_thread_streams(fake: FakeProcess) -> None:
    waiting, other = fake.start_thread(), fake.start_thread()
    fake.start_turn(waiting, "APPROVAL")
    request = server_request(fake, "item/commandExecution/requestApproval")
    assert request["id"] == 0
    params = request["params"]
    assert (params["threadId"], params["turnId"]) == (waiting, "turn-1")
    assert params["command"] == "/bin/bash -lc 'echo needs approval'"
    assert params["availableDecisions"][0] == "accept"
    flags = [
        m["params"]["status"].get("activeFlags")
        for m in fake.messages
        if m.get("method") == "thread/status/changed" and m["params"]["threadId"] == waiting
    ]
    assert ["waitingOnApproval"] in flags
    _, other_events = fake.run_turn(other, "meanwhile")
    assert completed_turn(other_events)["status"] == "completed"
    fake.send({"id": 0, "result": {"decision": "accept"}})
    events = fake.turn_events(waiting, "turn-1")
    resolved = fake.notification("serverRequest/resolved")
    assert resolved["params"] == {"threadId": waiting, "requestId": 0}
    assert agent_text(events) == "approval:accept d0 d1 d2 "
    command = [
        m["params"]["item"]
        for m in events
        if m["method"] == "item/completed" and m["params"]["item"]["type"] == "commandExecution"
    ]
    assert command[0]["status"] == "completed"


@pytest.mark.parametrize(
    ("text", "reply", "status", "message"),
    [
        (
            "APPROVAL",
            {"result": {"decision": "decline"}},
            "completed",
            "approval:decline d0 d1 d2 ",
        ),
        (
            "APPROVAL",
            {"error": {"code": -32000, "message": "no"}},
            "completed",
            "approval:error:-32000 d0 d1 d2 ",
        ),
        ("APPROVAL", {"result": {"decision": "cancel"}}, "interrupted", None),
        (
            "APPROVAL:file",
            {"result": {"decision": "acceptForSession"}},
            "completed",
            "approval:acceptForSession d0 d1 d2 ",
        ),
    ],
)
def test_approval_replies(
    fake: FakeProcess, text: str, reply: JSON, status: str, message: str | None
) -> None:
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, text)
    method = (
        "item/fileChange/requestApproval"
        if text.endswith("file")
        else "item/commandExecution/requestApproval"
    )
    request = server_request(fake, method)
    fake.send({"id": request["id"], **reply})
    events = fake.turn_events(thread_id, "turn-1")
    assert completed_turn(events)["status"] == status
    if message is None:
        assert "item/agentMessage/delta" not in methods(events)
    else:
        assert agent_text(events) == message


def test_reply_with_a_string_id_is_not_matched(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, "APPROVAL")
    request = server_request(fake, "item/commandExecution/requestApproval")
    fake.send({"id": str(request["id"]), "result": {"decision": "accept"}})
    assert "result" in fake.request("thread/start", {})  # the reply above has been read
    assert "serverRequest/resolved" not in methods(fake.messages)
    fake.request("turn/interrupt", {"threadId": thread_id, "turnId": "turn-1"})
    events = fake.turn_events(thread_id, "turn-1")
    assert "serverRequest/resolved" in methods(events)
    assert completed_turn(events)["status"] == "interrupted"


def test_user_input_elicitation_and_unknown_request(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    fake.start_turn(thread_id, "USER_INPUT ELICIT UNKNOWN_REQUEST DELTAS:0")
    ask = server_request(fake, "item/tool/requestUserInput")
    assert ask["params"]["questions"][0]["id"] == "color"
    fake.send({"id": ask["id"], "result": {"answers": {"color": {"answers": ["red"]}}}})
    elicit = server_request(fake, "mcpServer/elicitation/request")
    assert elicit["params"]["serverName"] == "fake-mcp"
    fake.send({"id": elicit["id"], "result": {"action": "decline", "content": None}})
    unknown = server_request(fake, "x/unknownRequest")
    assert unknown["params"] == {"threadId": thread_id, "turnId": "turn-1"}
    assert [ask["id"], elicit["id"], unknown["id"]] == [0, 1, 2]
    fake.send({"id": unknown["id"], "error": {"code": -32601, "message": "unknown"}})
    events = fake.turn_events(thread_id, "turn-1")
    assert agent_text(events) == (
        'input:{"answers":{"color":{"answers":["red"]}}} elicit:decline unknown:error:-32601 '
    )


# --- extra items and schema conformance ---------------------------------------------------------


def test_tool_plan_reasoning_filechange_items(fake: FakeProcess) -> None:
    thread_id = fake.start_thread()
    _, events = fake.run_turn(thread_id, "PLAN REASONING TOOL FILECHANGE DELTAS:1")
    names = methods(events)
    for method in (
        "turn/plan/updated",
        "item/reasoning/summaryPartAdded",
        "item/reasoning/summaryTextDelta",
        "item/commandExecution/outputDelta",
        "item/fileChange/patchUpdated",
        "turn/diff/updated",
    ):
        assert method in names
    items = {
        m["params"]["item"]["type"]: m["params"]["item"]
        for m in events
        if m["method"] == "item/completed"
    }
    assert items["commandExecution"]["aggregatedOutput"] == "out0\nout1\nout2\n"
    assert items["commandExecution"]["exitCode"] == 0
    assert items["reasoning"]["summary"] == ["thinking hard"]
    assert items["fileChange"]["status"] == "completed"
    assert names.index("item/fileChange/patchUpdated") < names.index("item/agentMessage/delta")


@pytest.fixture(scope="session")
def schema_dir(pinned_codex_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("schema")
    subprocess.run(
        [pinned_codex_bin, "app-server", "generate-json-schema", "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out


def test_messages_validate_against_the_real_json_schema(
    fake: FakeProcess, schema_dir: Path
) -> None:
    jsonschema = pytest.importorskip("jsonschema")

    def validator(file_name: str, definition: str | None = None) -> Any:
        schema = json.loads((schema_dir / file_name).read_text())
        if definition is not None:
            schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
        return jsonschema.Draft7Validator(schema)

    bundle = "codex_app_server_protocol.v2.schemas.json"
    replies: dict[str, JSON] = {
        "item/commandExecution/requestApproval": {"decision": "accept"},
        "item/tool/requestUserInput": {"answers": {}},
        "mcpServer/elicitation/request": {"action": "accept", "content": {"token": "t"}},
    }
    thread_id = fake.start_thread(sandbox="read-only")
    turn_reply = fake.response(
        fake.start_turn(thread_id, "PLAN REASONING TOOL FILECHANGE APPROVAL USER_INPUT ELICIT")
    )
    for request_method, reply in replies.items():
        fake.send({"id": server_request(fake, request_method)["id"], "result": reply})
    fake.turn_events(thread_id, "turn-1")
    fake.run_turn(thread_id, "FAIL")
    responses = {
        "ThreadStartResponse": fake.result("thread/start", {}),
        "TurnStartResponse": turn_reply["result"],
        "ThreadForkResponse": fake.result("thread/fork", {"threadId": thread_id}),
        "ThreadResumeResponse": fake.result("thread/resume", {"threadId": thread_id}),
        "ThreadReadResponse": fake.result(
            "thread/read", {"threadId": thread_id, "includeTurns": True}
        ),
    }
    for name, result in responses.items():
        validator(bundle, name).validate(result)

    notifications = validator("ServerNotification.json")
    requests = validator("ServerRequest.json")
    checked = set()
    for message in fake.messages:
        method = message.get("method")
        if method is None or method.startswith("x/"):
            continue
        body = {"method": method, "params": message["params"]}
        if "id" in message:
            requests.validate({**body, "id": message["id"]})
        else:
            notifications.validate(body)
        checked.add(method)
    assert len(checked) >= 20


# --- client tools (DYNTOOL), real-shaped streams (STREAM) ------------------------------------

TOOLS = [
    {
        "type": "namespace",
        "name": "kernel",
        "description": "k",
        "tools": [{"type": "function", "name": "echo", "description": "e", "inputSchema": {}}],
    }
]


def test_dynamic_tools_need_the_experimental_api(fake: FakeProcess) -> None:
    reply = fake.request("thread/start", {"dynamicTools": TOOLS})
    assert reply["error"]["code"] == -32600
    assert "experimentalApi" in reply["error"]["message"]


def test_dyntool_calls_a_declared_tool_like_codex(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn()
    init = {"clientInfo": {"name": "t", "version": "0"}, "capabilities": {"experimentalApi": True}}
    fake.result("initialize", init)
    fake.send({"method": "initialized"})
    thread_id = fake.start_thread(dynamicTools=TOOLS)
    fake.start_turn(thread_id, 'DYNTOOL:kernel.echo DYNTOOL:nope ARGS:{"a":1}')
    request = server_request(fake, "item/tool/call")
    assert request["params"] == {
        "threadId": thread_id,
        "turnId": "turn-1",
        "callId": request["params"]["callId"],
        "namespace": "kernel",
        "tool": "echo",
        "arguments": {"a": 1},
    }
    answer = {"contentItems": [{"type": "inputText", "text": "hi"}], "success": True}
    fake.send({"id": request["id"], "result": answer})
    events = fake.turn_events(thread_id, "turn-1")
    items = [
        e["params"]["item"]
        for e in events
        if e.get("method") in ("item/started", "item/completed")
        and e["params"]["item"]["type"] == "dynamicToolCall"
    ]
    assert [(i["status"], i["success"]) for i in items] == [
        ("inProgress", None),
        ("completed", True),
    ]
    assert "serverRequest/resolved" not in methods(events)
    assert agent_text(events).startswith("tool:kernel.echo:ok:hi tool:nope:unsupported ")


def test_stream_writes_real_shaped_deltas(spawn: Callable[..., FakeProcess]) -> None:
    fake = spawn(env={"FAKE_CODEX_UUID_IDS": "1"})
    fake.initialize()
    thread_id = fake.start_thread()
    turn_id, events = fake.run_turn(thread_id, "STREAM:300")
    pieces = deltas(events)
    assert len(pieces) == 300 and all(3 <= len(p) <= 10 for p in pieces)
    assert len(turn_id) == 36 and turn_id.count("-") == 4  # UUID-like, as codex's
    delta_event = next(e for e in events if e.get("method") == "item/agentMessage/delta")
    assert delta_event["params"]["itemId"].startswith("msg_")
    assert agent_text(events) == "".join(pieces)
