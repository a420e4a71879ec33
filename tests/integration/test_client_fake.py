"""The sync client against the scripted fake app-server: exact interleavings and faults."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import psutil
import pytest

from codex_notebook import (
    DEFER,
    Approval,
    Codex,
    CodexTimeoutError,
    InvalidArgumentError,
    ProtocolError,
    ServerRequest,
    StartupError,
    TransportClosedError,
)
from codex_notebook.errors import InvalidRequestError, MethodNotFoundError
from tests.fakes import fake_codex_bin
from tests.waiting import eventually


def deltas(n: int) -> str:
    return "".join(f"d{i} " for i in range(n))


def test_one_turn_returns_final_text_and_usage(codex: Codex) -> None:
    result = codex.thread_start().run("DELTAS:5", timeout=10)
    assert result.status == "completed"
    assert result.text == deltas(5)
    assert result.usage is not None and result.usage.total_tokens > 0


def test_server_version_comes_from_initialize(codex: Codex) -> None:
    assert codex.server_version == "0.163.0"


def test_eight_interleaved_turns_each_get_only_their_own_events(codex: Codex) -> None:
    threads = [codex.thread_start() for _ in range(8)]
    turns = [t.turn(f"DELTAS:{40 + i} DELAY_MS:1") for i, t in enumerate(threads)]
    for i, turn in enumerate(turns):
        events = list(turn.stream(timeout=10))
        assert {e.turn_id for e in events} == {turn.id}
        assert "".join(turn.stream_text()) == deltas(40 + i)
        assert turn.run(10).text == deltas(40 + i)


def test_events_sent_before_the_turn_start_response_are_replayed(codex: Codex) -> None:
    turn = codex.thread_start().turn("EARLY DELTAS:4")
    methods = [e.method for e in turn.stream(timeout=10)]
    assert methods[0] == "turn/started"
    assert "".join(turn.stream_text()) == deltas(4)


def test_a_turn_completed_before_it_was_claimed_still_ends(codex: Codex) -> None:
    turn = codex.thread_start().turn("COMPLETE_FIRST DELTAS:3")
    assert turn.run(10).text == deltas(3)
    assert codex.router.live_turns() == 0


def test_two_consumers_of_one_turn_each_see_every_event_once(codex: Codex) -> None:
    turn = codex.thread_start().turn("DELTAS:200 DELAY_MS:1")
    seen: list[list[str]] = [[], []]

    def consume(slot: int) -> None:
        seen[slot] = [
            str(e.params_dict.get("delta"))
            for e in turn.stream(timeout=10)
            if e.method == "item/agentMessage/delta"
        ]

    workers = [threading.Thread(target=consume, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    assert seen[0] == seen[1] == [f"d{i} " for i in range(200)]


def test_run_after_stream_returns_the_same_result(codex: Codex) -> None:
    turn = codex.thread_start().turn("DELTAS:3")
    list(turn.stream(timeout=10))
    assert turn.run(1) is turn.run(1)


def test_a_waiting_approval_does_not_stall_other_turns(fake_bin: str) -> None:
    release = threading.Event()

    def slow_handler(request: ServerRequest) -> dict[str, str]:
        release.wait(10)
        return {"decision": "accept"}

    with Codex(codex_bin=fake_bin, approval_handler=slow_handler) as codex:
        waiting = codex.thread_start().turn("APPROVAL DELTAS:1")
        other = codex.thread_start().turn("DELTAS:30 DELAY_MS:1")
        assert other.run(10).text == deltas(30)
        assert not waiting.done()
        release.set()
        assert waiting.run(10).text.startswith("approval:accept ")


def test_approvals_are_declined_without_a_handler(codex: Codex) -> None:
    result = codex.thread_start().run("APPROVAL DELTAS:1", timeout=10)
    assert result.text.startswith("approval:decline ")


def test_a_turn_handler_takes_precedence_over_the_client_handler(fake_bin: str) -> None:
    with Codex(codex_bin=fake_bin, approval_handler=lambda r: {"decision": "decline"}) as codex:
        turn = codex.thread_start().turn(
            "APPROVAL DELTAS:1", request_handler=lambda r: {"decision": "acceptForSession"}
        )
        assert turn.run(10).text.startswith("approval:acceptForSession ")


def test_cancelling_an_approval_interrupts_the_turn(fake_bin: str) -> None:
    with Codex(codex_bin=fake_bin, approval_handler=lambda r: {"decision": "cancel"}) as codex:
        assert codex.thread_start().run("APPROVAL", timeout=10).status == "interrupted"


def test_a_raising_handler_is_answered_with_the_safe_default(fake_bin: str) -> None:
    def broken(request: ServerRequest) -> dict[str, str]:
        raise RuntimeError("handler bug")

    with Codex(codex_bin=fake_bin, approval_handler=broken) as codex:
        result = codex.thread_start().run("APPROVAL DELTAS:1", timeout=10)
        assert result.text.startswith("approval:decline ")


def test_approval_requests_appear_in_the_turn_stream(codex: Codex) -> None:
    turn = codex.thread_start().turn("APPROVAL DELTAS:1")
    requests = [e for e in turn.stream(timeout=10) if isinstance(e, ServerRequest)]
    assert [r.method for r in requests] == ["item/commandExecution/requestApproval"]
    assert isinstance(requests[0].id, int)
    assert requests[0].settled


def test_unknown_server_requests_get_a_method_not_found_error(codex: Codex) -> None:
    result = codex.thread_start().run("UNKNOWN_REQUEST DELTAS:1", timeout=10)
    assert result.text.startswith("unknown:error:-32601 ")


def test_unknown_notifications_route_by_raw_turn_id(codex: Codex) -> None:
    turn = codex.thread_start().turn("UNKNOWN_NOTIFY DELTAS:1")
    custom = [e for e in turn.stream(timeout=10) if e.method == "x/customEvent"]
    assert len(custom) == 1
    assert custom[0].params.raw["value"] == 1  # type: ignore[attr-defined]
    assert not custom[0].known


def test_unknown_global_notifications_reach_the_global_channel(codex: Codex) -> None:
    codex.thread_start().run("UNKNOWN_NOTIFY DELTAS:1", timeout=10)
    methods = [n.method for n in codex.notifications(timeout=0.5)]
    assert "x/globalEvent" in methods


def test_malformed_lines_are_skipped_without_affecting_the_turn(codex: Codex) -> None:
    result = codex.thread_start().run("GARBAGE DELTAS:4", timeout=10)
    assert result.text == deltas(4)
    assert codex.router.malformed >= 5


def test_server_death_releases_every_waiting_consumer_promptly(codex: Codex) -> None:
    hanging = [codex.thread_start().turn("HANG DELTAS:1") for _ in range(3)]
    dying = codex.thread_start().turn("DIE_AFTER:2 DELTAS:5")
    started = time.monotonic()
    for turn in [*hanging, dying]:
        with pytest.raises(TransportClosedError) as info:
            turn.run(10)
        assert "model stream broke" in str(info.value)
    assert time.monotonic() - started < 5
    assert "sk-test-SECRET123" not in str(info.value)


def test_calls_after_server_death_fail_immediately(codex: Codex) -> None:
    turn = codex.thread_start().turn("DIE_AFTER:0")
    with pytest.raises(TransportClosedError):
        turn.run(10)
    with pytest.raises(TransportClosedError):
        codex.thread_start()


def test_notifications_iterator_drains_then_ends_when_the_server_dies(codex: Codex) -> None:
    turn = codex.thread_start().turn("DIE_AFTER:0")
    with pytest.raises(TransportClosedError):
        turn.run(10)
    assert "configWarning" in [n.method for n in codex.notifications()]


def test_run_timeout_raises_a_timeout_error_and_the_turn_keeps_running(codex: Codex) -> None:
    turn = codex.thread_start().turn("HANG DELTAS:1")
    with pytest.raises(CodexTimeoutError):
        turn.run(timeout=0.2)
    assert not turn.done()
    turn.interrupt(timeout=5)
    assert turn.run(5).status == "interrupted"


def test_stream_timeout_raises_a_builtin_timeout_error(codex: Codex) -> None:
    turn = codex.thread_start().turn("HANG DELTAS:1")
    with pytest.raises(TimeoutError):
        for _ in turn.stream(timeout=0.2):
            pass
    turn.interrupt(timeout=5)


def test_failed_model_call_ends_the_turn_as_failed_with_the_error(codex: Codex) -> None:
    result = codex.thread_start().run("FAIL", timeout=10)
    assert result.status == "failed"
    assert result.error is not None and "model exploded" in result.error.message


def test_steer_adds_input_to_the_running_turn(codex: Codex) -> None:
    turn = codex.thread_start().turn("HANG DELTAS:1")
    turn.steer("more please", timeout=5)
    seen = next(t for t in turn.stream_text(timeout=5) if t.startswith("steered:"))
    assert seen == "steered:more please "
    turn.interrupt(timeout=5)
    assert turn.run(5).status == "interrupted"


def test_steer_with_a_stale_turn_id_is_an_invalid_request(codex: Codex) -> None:
    turn = codex.thread_start().turn("DELTAS:1")
    turn.run(10)
    with pytest.raises(InvalidRequestError):
        turn.steer("too late", timeout=5)


def test_unknown_client_method_raises_method_not_found(codex: Codex) -> None:
    with pytest.raises(MethodNotFoundError):
        codex.request("no/such/method", {})


def test_a_thousand_completed_turns_leave_no_per_turn_state(codex: Codex) -> None:
    thread = codex.thread_start()
    for _ in range(1000):
        thread.run("DELTAS:1", timeout=10)
    gc.collect()
    assert codex.router.live_turns() == 0
    assert len(codex.router._finished) == 0
    assert len(codex.router._unclaimed) == 0
    assert codex.router._threads == {}  # no turn handler outlives its turn
    assert codex.router.open_server_requests() == 0


def test_same_thread_second_turn_start_folds_into_the_running_turn(codex: Codex) -> None:
    thread = codex.thread_start()
    first = thread.turn("DELTAS:50 DELAY_MS:2")
    second = thread.turn("DELTAS:2")
    assert second.id == first.id
    assert first.run(10) is not None and second.run(10).status == "completed"


def test_resume_unknown_thread_raises_invalid_request(codex: Codex) -> None:
    with pytest.raises(InvalidRequestError):
        codex.thread_resume("no-such-thread")


def test_startup_exit_gives_a_startup_error_with_stderr(tmp_path: Path) -> None:
    binary = fake_codex_bin(tmp_path, FAKE_CODEX_EXIT_ON_START=1)
    with pytest.raises(StartupError) as info:
        Codex(codex_bin=binary)
    assert "no longer supported" in str(info.value)


def test_exit_during_initialize_gives_a_startup_error(tmp_path: Path) -> None:
    binary = fake_codex_bin(tmp_path, FAKE_CODEX_EXIT_ON_INIT=1)
    with pytest.raises(StartupError):
        Codex(codex_bin=binary)


def test_close_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    codex = Codex(codex_bin=fake_codex_bin(tmp_path, FAKE_CODEX_IGNORE_SIGTERM=1))
    codex.close()
    assert codex._core.transport.returncode is not None  # type: ignore[attr-defined]


def test_close_is_idempotent_and_fails_later_calls(codex: Codex) -> None:
    codex.close()
    codex.close()
    with pytest.raises(TransportClosedError):
        codex.thread_start()


def test_close_from_another_thread_releases_a_waiting_run(codex: Codex) -> None:
    turn = codex.thread_start().turn("HANG")
    threading.Timer(0.2, codex.close).start()
    with pytest.raises(TransportClosedError):
        turn.run(10)


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    from codex_notebook import BinaryNotFoundError

    with pytest.raises(BinaryNotFoundError, match="not an executable"):
        Codex(codex_bin=tmp_path / "nope")


def test_server_request_ids_are_echoed_as_integers(tmp_path: Path) -> None:
    log = tmp_path / "received.jsonl"
    binary = fake_codex_bin(tmp_path, FAKE_CODEX_LOG=str(log))
    with Codex(codex_bin=binary) as codex:
        codex.thread_start().run("APPROVAL DELTAS:1", timeout=10)
    assert '{"id":0,"result":{"decision":"decline"}}' in log.read_text().replace(" ", "")


# -- issue 13 ---------------------------------------------------------------------------------


def test_close_is_not_blocked_by_a_writer_stuck_on_a_full_pipe(tmp_path: Path) -> None:
    binary = fake_codex_bin(tmp_path, FAKE_CODEX_STALL_STDIN=1, FAKE_CODEX_IGNORE_SIGTERM=1)
    codex = Codex(codex_bin=binary)
    pid = codex.pid
    assert pid is not None
    errors: list[BaseException] = []

    def send_a_huge_request() -> None:  # a long prompt the server never reads
        try:
            codex.request("thread/start", {"baseInstructions": "x" * (8 << 20)}, timeout=60)
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send_a_huge_request, daemon=True)
    closer = threading.Thread(target=codex.close, daemon=True)
    try:
        sender.start()
        assert eventually(codex._core.transport._write_lock.locked)  # type: ignore[attr-defined]
        closer.start()
        closer.join(15)  # grace 1 s: SIGTERM (ignored), 1 s, SIGKILL
        assert not closer.is_alive(), "close() is stuck behind the blocked writer"
        sender.join(10)
        assert [type(e) for e in errors] == [TransportClosedError]
        assert codex._core.transport.returncode is not None  # type: ignore[attr-defined]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_dropping_the_last_reference_stops_the_app_server(fake_bin: str) -> None:
    codex = Codex(codex_bin=fake_bin)
    codex.thread_start().run("DELTAS:1", timeout=10)
    process = psutil.Process(codex.pid)
    ref = weakref.ref(codex)
    del codex
    gc.collect()
    assert ref() is None
    assert eventually(lambda: not process.is_running() or process.status() == "zombie")


def test_a_turn_handler_answers_a_request_sent_before_the_turn_start_response(
    codex: Codex,
) -> None:
    turn = codex.thread_start().turn(
        "COMPLETE_FIRST APPROVAL DELTAS:1", request_handler=lambda r: {"decision": "accept"}
    )
    assert turn.run(10).text.startswith("approval:accept ")


def test_an_unknown_option_is_rejected_by_name_before_anything_is_sent(tmp_path: Path) -> None:
    received = tmp_path / "received.jsonl"
    with Codex(codex_bin=fake_codex_bin(tmp_path, FAKE_CODEX_LOG=str(received))) as codex:
        with pytest.raises(InvalidArgumentError) as info:
            codex.thread_start(developer_instruction="be brief")
        message = str(info.value)
        assert "developer_instruction=" in message
        assert "Did you mean developer_instructions=?" in message
        assert "service_tier" in message  # the valid names are listed
        with pytest.raises(InvalidArgumentError, match="Did you mean effort="):
            codex.thread_start().turn("DELTAS:1", efort="high")
    assert "developer_instruction" not in received.read_text()
    assert received.read_text().count('"turn/start"') == 0


def test_a_known_extra_option_goes_to_the_wire_in_camel_case(tmp_path: Path) -> None:
    received = tmp_path / "received.jsonl"
    with Codex(codex_bin=fake_codex_bin(tmp_path, FAKE_CODEX_LOG=str(received))) as codex:
        codex.thread_start(service_tier="flex", developer_instructions="be brief")
    sent = received.read_text()
    assert '"serviceTier":"flex"' in sent.replace(" ", "")
    assert '"developerInstructions":"bebrief"' in sent.replace(" ", "")


def test_options_this_library_sets_itself_point_to_their_parameter(codex: Codex) -> None:
    with pytest.raises(InvalidArgumentError, match=r"approval_policy='ask'\|'review'\|'deny'"):
        codex.thread_start(approvals_reviewer="user")


@pytest.mark.parametrize(
    ("approval", "policy", "reviewer"),
    [
        ("ask", "on-request", "user"),
        ("review", "on-request", "auto_review"),
        ("deny", "never", None),
    ],
)
def test_approval_words_become_codex_policy_and_reviewer(
    codex: Codex, approval: Approval, policy: str, reviewer: str | None
) -> None:
    info = codex.thread_start(approval_policy=approval).info
    assert info["approvalPolicy"] == policy
    assert info["approvalsReviewer"] == (reviewer or "user")  # "user" is the server default


def test_full_access_is_codex_danger_full_access(codex: Codex) -> None:
    assert codex.thread_start(sandbox="full-access").info["sandbox"]["type"] == "dangerFullAccess"


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"sandbox": "danger-full-access"}, "'full-access'"),
        ({"sandbox": "yolo"}, "read-only, workspace-write, full-access"),
        ({"approval_policy": "on-request"}, "ask (a person decides)"),
        ({"approval_policy": "never"}, "deny"),
    ],
)
def test_codex_wire_words_are_refused_with_the_word_to_use(
    codex: Codex, kwargs: dict[str, str], hint: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        codex.thread_start(**kwargs)  # type: ignore[arg-type]
    assert hint in str(info.value)


def test_resume_does_not_load_the_history_unless_asked(codex: Codex) -> None:
    thread = codex.thread_start()
    thread.run("DELTAS:1", timeout=10)
    assert codex.thread_resume(thread.id).info["thread"]["turns"] == []
    assert len(codex.thread_resume(thread.id, include_turns=True).info["thread"]["turns"]) == 1


def test_thread_list_and_set_name(codex: Codex) -> None:
    thread = codex.thread_start()
    thread.set_name("analysis")
    listed = codex.thread_list(limit=5)["data"]
    assert [t["name"] for t in listed if t["id"] == thread.id] == ["analysis"]


def test_a_response_without_a_thread_id_is_a_protocol_error(codex: Codex) -> None:
    setup = codex._core.thread_setup("thread/start")
    with pytest.raises(ProtocolError, match="thread/start answered without a thread id"):
        codex._core.adopt_thread(setup, {"thread": {}})


def test_turn_cursor_take_never_blocks_and_ends_with_none(codex: Codex) -> None:
    turn = codex.thread_start().turn("DELTAS:3")
    cursor = turn.cursor()
    assert turn.wait(10)
    methods = [e.method for e in cursor.take() or []]
    assert methods[-1] == "turn/completed"
    assert cursor.take() is None


def test_pending_requests_lists_a_deferred_approval_until_it_is_answered(fake_bin: str) -> None:
    with Codex(codex_bin=fake_bin) as codex:
        turn = codex.thread_start().turn("APPROVAL DELTAS:1", request_handler=lambda r: DEFER)
        assert eventually(lambda: bool(turn.pending_requests))
        (request,) = turn.pending_requests
        assert request.method == "item/commandExecution/requestApproval"
        assert request.respond({"decision": "accept"})
        assert turn.run(10).text.startswith("approval:accept ")
        assert turn.pending_requests == []


def test_a_client_collected_on_its_own_reader_thread_still_stops_cleanly(fake_bin: str) -> None:
    """The cyclic garbage collector runs on whichever thread allocates, and the reader thread
    allocates the most: a client dropped in a reference cycle can be finalized there while
    the reader holds the router's lock. That must not deadlock the reader."""
    codex = Codex(codex_bin=fake_bin)
    codex.cycle = codex  # type: ignore[attr-defined]  # only the cyclic collector frees it
    core = codex._core  # the core never refers back to the face
    reader = core.transport._reader  # type: ignore[attr-defined]
    router = core.router
    thread_id = codex.thread_start().id
    dropped = threading.Event()
    collected_under_lock: list[bool] = []
    unpatched = router._turn_log

    def collect_first(turn_id: str, thread_id: str | None) -> Any:  # reader thread, lock held
        if dropped.is_set() and not collected_under_lock:
            collected_under_lock.append(router._lock.locked())
            gc.collect()
        return unpatched(turn_id, thread_id)

    router._turn_log = collect_first  # type: ignore[method-assign]
    # a turn nobody claims: each of its events takes the router lock on the reader thread
    text = {"type": "text", "text": "DELTAS:300 DELAY_MS:10"}
    codex.request("turn/start", {"threadId": thread_id, "input": [text]})
    ref = weakref.ref(codex)
    del codex
    dropped.set()
    assert eventually(lambda: ref() is None)
    assert collected_under_lock == [True]
    reader.join(15)
    assert not reader.is_alive(), "the reader deadlocked in the finalizer"
    assert router.error is not None


@pytest.mark.parametrize("how", ["run", "wait", "stream", "request", "settled"])
def test_an_endless_timeout_means_no_limit(codex: Codex, how: str) -> None:
    """``timeout=float("inf")`` (or any number beyond what a thread wait takes) is "no
    limit", never an OverflowError from deep inside threading."""
    endless = float("inf")
    thread = codex.thread_start()
    if how == "request":
        assert codex.request("thread/read", {"threadId": thread.id}, timeout=endless)
        return
    if how == "settled":
        turn = thread.turn("APPROVAL DELTAS:1", request_handler=lambda r: DEFER)
        assert eventually(lambda: bool(turn.pending_requests))
        (request,) = turn.pending_requests
        threading.Timer(0.1, request.respond, args=({"decision": "accept"},)).start()
        assert request.wait_settled(endless)
        return
    turn = thread.turn("DELTAS:3 DELAY_MS:50")
    if how == "run":
        assert turn.run(endless).status == "completed"
    elif how == "wait":
        assert turn.wait(endless)
    else:
        assert [e.method for e in turn.stream(timeout=endless)][-1] == "turn/completed"
