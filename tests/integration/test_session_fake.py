"""The notebook session's logic (queueing, threads, approvals, faults) on the fake server."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_notebook import CodexTimeoutError, ServerRequest, last_turn
from codex_notebook.notebook.session import NotebookSession, NotebookTurn
from tests.fakes import fake_codex_bin


@pytest.fixture
def make_session(tmp_path: Path) -> Iterator[object]:
    sessions: list[NotebookSession] = []
    state = tmp_path / "fake-state.json"

    def make(**env: str) -> NotebookSession:
        binary = fake_codex_bin(tmp_path, FAKE_CODEX_STATE=str(state), **env)
        session = NotebookSession(
            state_dir=tmp_path / ".codex_notebook", backend="codex", codex_bin=binary
        )
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def session(make_session: object) -> NotebookSession:
    return make_session()  # type: ignore[operator,no-any-return]


def start(session: NotebookSession, prompt: str, **options: object) -> NotebookTurn:
    turn = session.start_turn(prompt, session.with_defaults(**options))
    turn.start()
    return turn


def test_a_turn_completes_with_its_text(session: NotebookSession) -> None:
    turn = start(session, "DELTAS:4")
    assert turn.result(10).text == "d0 d1 d2 d3 "
    assert turn.state == "completed"


def test_turns_on_different_names_run_concurrently(session: NotebookSession) -> None:
    hanging = start(session, "HANG DELTAS:1", thread="a")
    quick = start(session, "DELTAS:2", thread="b")
    assert quick.result(10).status == "completed"
    assert not hanging.done()
    hanging.interrupt()
    assert hanging.result(10).status == "interrupted"


def test_turns_on_one_name_queue_in_order(session: NotebookSession) -> None:
    first = start(session, "DELTAS:20 DELAY_MS:5", thread="t")
    second = start(session, "DELTAS:2", thread="t")
    assert second.result(10).status == "completed"
    assert first.ended_at is not None and second.started_at is not None
    assert second.started_at >= first.ended_at
    assert first.thread_id == second.thread_id


def test_a_queued_turn_shows_what_it_waits_for(session: NotebookSession) -> None:
    first = start(session, "HANG DELTAS:1", thread="t")
    second = session.start_turn("DELTAS:1", session.with_defaults(thread="t"), cell=7)
    second.start()
    assert second.state == "queued"
    first.interrupt()
    assert second.result(10).status == "completed"


def test_stopping_a_queued_turn_means_it_never_starts(session: NotebookSession) -> None:
    first = start(session, "HANG DELTAS:1", thread="t")
    second = start(session, "DELTAS:1", thread="t")
    second.interrupt()
    first.interrupt()
    assert second.wait(10)
    assert second.turn_id is None and second.state == "interrupted"


def test_new_starts_a_fresh_thread_without_queueing(session: NotebookSession) -> None:
    first = start(session, "HANG DELTAS:1", thread="t")
    fresh = start(session, "DELTAS:1", thread="t", new=True)
    assert fresh.result(10).status == "completed"
    assert fresh.thread_id != first.thread_id
    first.interrupt()


def test_a_stopped_turn_says_it_was_stopped_from_the_notebook(session: NotebookSession) -> None:
    turn = start(session, "HANG DELTAS:1")
    _wait_running(turn)
    turn.interrupt()
    assert turn.result(10).status == "interrupted"
    assert turn.widget.header["detail"] == "stopped from the notebook"


def test_timeout_interrupts_the_turn(session: NotebookSession) -> None:
    turn = start(session, "HANG DELTAS:1", timeout=0.3)
    assert turn.result(10).status == "interrupted"


def test_result_with_timeout_raises_while_running(session: NotebookSession) -> None:
    turn = start(session, "HANG DELTAS:1")
    with pytest.raises(CodexTimeoutError, match="still"):
        turn.result(timeout=0.1)
    turn.interrupt()


def test_last_turn_is_the_latest_started(session: NotebookSession) -> None:
    start(session, "DELTAS:1")
    latest = start(session, "DELTAS:1", thread="other")
    assert last_turn() is latest


def test_approval_waits_for_a_decision(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:1")
    request = _pending_request(turn)
    assert turn.state == "waiting for approval"
    turn.decide("accept", request.id)
    assert turn.result(10).text.startswith("approval:accept ")


def test_deny_policy_declines_without_asking(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:1", approval="deny")
    assert turn.result(10).text.startswith("approval:decline ")


def test_stop_while_waiting_for_approval_ends_the_turn(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:1")
    _pending_request(turn)
    turn.interrupt()
    assert turn.result(10).status == "interrupted"


def test_server_death_ends_every_live_turn_and_the_next_turn_restarts_it(
    session: NotebookSession,
) -> None:
    turns = [start(session, "HANG DELTAS:1", thread=f"t{i}") for i in range(3)]
    for turn in turns:
        _wait_running(turn)
    client = session.client()
    assert client.pid is not None
    os.kill(client.pid, signal.SIGKILL)
    for turn in turns:
        assert turn.wait(10)
        assert turn.state == "error"
        assert "stopped" in turn.view.static_bundle()["text/plain"].lower()
    assert start(session, "DELTAS:2", thread="t0").result(10).status == "completed"
    assert session.client() is not client


def test_thread_names_resume_in_a_new_session(make_session: object) -> None:
    one: NotebookSession = make_session()  # type: ignore[operator]
    first = start(one, "DELTAS:1", thread="analysis")
    first.result(10)
    one.close()
    two: NotebookSession = make_session()  # type: ignore[operator]
    again = start(two, "DELTAS:1", thread="analysis")
    again.result(10)
    assert again.thread_id == first.thread_id


def test_a_failed_resume_starts_a_new_thread_and_says_so(session: NotebookSession) -> None:
    session.thread_map.set(session.store, "ghost", "no-such-thread")
    turn = start(session, "DELTAS:1", thread="ghost")
    turn.result(10)
    assert turn.thread_id != "no-such-thread"
    assert "Could not resume thread 'ghost'" in turn.view.static_bundle()["text/markdown"]


def test_close_stops_running_turns(session: NotebookSession) -> None:
    turn = start(session, "HANG DELTAS:1")
    _wait_running(turn)
    session.close()
    assert turn.done()


def _wait_running(turn: NotebookTurn) -> None:
    turn.session._wait_until(lambda: turn.handle is not None or turn.done(), timeout=10)
    assert turn.handle is not None


def _pending_request(turn: NotebookTurn) -> ServerRequest:
    _wait_running(turn)
    assert turn.handle is not None
    for event in turn.handle.stream(timeout=10):
        if isinstance(event, ServerRequest):
            turn.session._wait_until(lambda: turn.state == "waiting for approval", timeout=10)
            return event
    raise AssertionError("no server request")


class _RecordingDisplay:
    """Stands in for IPython's DisplayHandle: records every update."""

    def __init__(self) -> None:
        self.updates: list[dict[str, str]] = []

    def update(self, bundle: dict[str, str], **_: object) -> None:
        self.updates.append(bundle)


def test_the_final_rendering_replaces_the_widget_and_can_be_resent(
    session: NotebookSession,
) -> None:
    turn = session.start_turn("DELTAS:2", session.with_defaults())
    turn.display = _RecordingDisplay()
    turn.start()
    turn.result(10)
    display = turn.display
    assert len(display.updates) == 1
    assert "text/html" in display.updates[0]
    assert "application/vnd.jupyter.widget-view+json" not in display.updates[0]
    turn.republish()  # what %codex wait does, from the cell running now
    assert display.updates == [display.updates[0]] * 2


def test_structured_answers_render_as_json_code(session: NotebookSession) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        n: int

    turn = session.start_turn('JSON:{"n":1}', session.with_defaults(schema=Answer))
    turn.start()
    assert turn.result(10).parsed == Answer(n=1)
    assert '```json\n{"n":1}\n```' in turn.view.static_bundle()["text/markdown"]


def test_the_backend_notice_is_shown_in_every_widget(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    session.client()
    assert session._backend is not None
    monkeypatch.setattr(session._backend, "notice", "Sandbox unavailable: running unsandboxed.")
    turn = start(session, "DELTAS:1")
    turn.result(10)
    assert turn.widget.header["notice"] == "Sandbox unavailable: running unsandboxed."
