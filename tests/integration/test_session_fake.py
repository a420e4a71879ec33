"""The notebook session (binding, queueing, approvals, faults, memory) on the fake server."""

from __future__ import annotations

import gc
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_notebook import CodexError, CodexTimeoutError, Notification, last_turn
from codex_notebook.notebook import session as session_module
from codex_notebook.notebook.session import NotebookSession, NotebookTurn
from tests.fakes import fake_codex_bin
from tests.notebook_helpers import wait_for

SessionFactory = Callable[..., NotebookSession]


@pytest.fixture
def make_session(tmp_path: Path) -> Iterator[SessionFactory]:
    sessions: list[NotebookSession] = []
    state = tmp_path / "fake-state.json"

    def make(notebook: str | None = "analysis.ipynb", **env: str) -> NotebookSession:
        binary = fake_codex_bin(tmp_path, FAKE_CODEX_STATE=str(state), **env)
        session = NotebookSession(
            state_dir=tmp_path / ".codex_notebook",
            backend="codex",
            codex_bin=binary,
            notebook=lambda: notebook,
        )
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def session(make_session: SessionFactory) -> NotebookSession:
    return make_session()


def start(
    session: NotebookSession, prompt: str, *, cell: int | None = None, **options: Any
) -> NotebookTurn:
    return session.submit(prompt, session.with_defaults(**options), cell=cell)


def hold_server_start(session: NotebookSession, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The server's start waits (at most 10 s) until the returned event is set."""
    release = threading.Event()
    real = session.server._factory

    def slow_start(backend: Any) -> Any:
        release.wait(10)
        return real(backend)

    monkeypatch.setattr(session.server, "_factory", slow_start)
    return release


def wait_running(turn: NotebookTurn) -> None:
    wait_for(lambda: turn.turn_id is not None or turn.done())
    assert turn.turn_id is not None, turn.error


# --------------------------------------------------------------------------- turns


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


def test_a_queued_turn_says_which_cell_it_waits_behind(session: NotebookSession) -> None:
    first = start(session, "HANG DELTAS:1", thread="t", cell=19)
    second = start(session, "DELTAS:1", thread="t", cell=20)
    wait_for(lambda: second.header().detail != "")
    assert second.state == "queued"
    assert second.header().detail == "queued behind cell [19] on thread 't'"
    first.interrupt()
    assert second.result(10).status == "completed"


def test_stopping_a_queued_turn_means_it_never_starts(session: NotebookSession) -> None:
    first = start(session, "HANG DELTAS:1", thread="t")
    second = start(session, "DELTAS:1", thread="t")
    wait_running(first)
    second.interrupt()
    assert second.wait(10)
    assert second.turn_id is None and second.state == "interrupted"
    with pytest.raises(CodexError, match="stopped before it started"):
        second.result(0)
    first.interrupt()
    assert first.result(10).status == "interrupted"


def test_the_history_forgets_finished_turns_never_live_ones(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_module, "HISTORY", 2)
    done = start(session, "DELTAS:1", thread="d")
    assert done.wait(10)
    live = [start(session, "HANG DELTAS:1", thread="t") for _ in range(3)]  # one runs, two queue
    assert session.select(None) == live  # over the limit: only the finished turn went
    assert session.running() == live
    for turn in live:
        turn.interrupt()
    assert all(turn.wait(10) for turn in live)
    start(session, "DELTAS:1", thread="d").wait(10)
    assert len(session.select(None)) == 2


def test_new_binds_a_fresh_thread_at_submission_whatever_the_drivers_do(
    session: NotebookSession,
) -> None:
    for round_ in range(8):  # the old race lost about 2 runs in 10
        name = f"x{round_}"
        first = start(session, "HANG DELTAS:1", thread=name)
        fresh = start(session, "DELTAS:1", thread=name, new=True)
        assert fresh.result(10).status == "completed"
        wait_running(first)
        assert fresh.thread_id != first.thread_id
        first.interrupt()
        assert first.result(10).status == "interrupted"


def test_cells_after_new_continue_the_fresh_conversation(session: NotebookSession) -> None:
    old = start(session, "DELTAS:1", thread="t")
    old.result(10)
    fresh = start(session, "DELTAS:1", thread="t", new=True)
    after = start(session, "DELTAS:1", thread="t")
    assert after.result(10).status == "completed"
    assert after.thread_id == fresh.thread_id != old.thread_id


def test_a_failure_between_queueing_and_starting_does_not_wedge_the_name(
    session: NotebookSession,
) -> None:
    def broken_display(turn: NotebookTurn) -> Any:
        raise RuntimeError("display failed")

    with pytest.raises(RuntimeError, match="display failed"):
        session.submit("DELTAS:1", session.with_defaults(thread="t"), show=broken_display)
    later = start(session, "DELTAS:2", thread="t")
    assert later.result(10).status == "completed"


def test_a_turn_whose_server_cannot_start_releases_its_name(make_session: SessionFactory) -> None:
    session = make_session(FAKE_CODEX_EXIT_ON_START="1")
    first = start(session, "DELTAS:1", thread="t")
    second = start(session, "DELTAS:1", thread="t")
    for turn in (first, second):
        assert turn.wait(20)
        assert turn.state == "error"
    assert isinstance(first.error, CodexError)


def test_submitting_returns_before_the_server_has_started(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = hold_server_start(session, monkeypatch)
    first = start(session, "DELTAS:1", thread="a")
    wait_for(lambda: first.state == "starting")
    second = start(session, "DELTAS:1", thread="b")  # the main thread is not held up
    assert session.running() == [first, second]
    release.set()
    assert second.result(10).status == "completed"


def test_a_stopped_turn_says_it_was_stopped_from_the_notebook(session: NotebookSession) -> None:
    turn = start(session, "HANG DELTAS:1")
    wait_running(turn)
    turn.interrupt()
    assert turn.result(10).status == "interrupted"
    assert "Stopped from the notebook." in turn.widget.bundle["text/markdown"]


def test_timeout_interrupts_the_turn(session: NotebookSession) -> None:
    turn = start(session, "HANG DELTAS:1", timeout=0.3)
    assert turn.result(10).status == "interrupted"


def test_result_with_timeout_raises_while_running(session: NotebookSession) -> None:
    turn = start(session, "HANG DELTAS:1")
    with pytest.raises(CodexTimeoutError, match="still"):
        turn.result(timeout=0.1)
    turn.interrupt()


def test_last_turn_is_the_latest_submitted(session: NotebookSession) -> None:
    start(session, "DELTAS:1")
    latest = start(session, "DELTAS:1", thread="other")
    assert last_turn() is latest


# --------------------------------------------------------------------------- approvals


def pending(turn: NotebookTurn) -> Any:
    wait_for(lambda: bool(turn.pending_approvals) or turn.done())
    (approval,) = turn.pending_approvals
    return approval


def test_approval_waits_for_a_decision(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:1")
    approval = pending(turn)
    assert turn.state == "waiting for approval"
    turn.decide("accept", approval.id)
    assert turn.result(10).text.startswith("approval:accept ")


def test_state_is_running_again_once_the_approval_is_answered(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:3 DELAY_MS:200")
    approval = pending(turn)
    turn.decide("decline", approval.id)
    assert turn.state in ("running", "completed")
    assert turn.result(10).text.startswith("approval:decline ")


def test_an_approval_is_answered_exactly_once(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:1")
    approval = pending(turn)
    turn.decide("accept", approval.id)
    with pytest.raises(CodexError, match="no pending approval"):
        turn.decide("decline", approval.id)
    assert turn.result(10).text.startswith("approval:accept ")


def test_deny_policy_declines_without_asking(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:1", approval="deny")
    assert turn.result(10).text.startswith("approval:decline ")


def test_stop_while_waiting_for_approval_ends_the_turn(session: NotebookSession) -> None:
    turn = start(session, "APPROVAL DELTAS:1")
    pending(turn)
    turn.interrupt()
    assert turn.result(10).status == "interrupted"
    assert turn.pending_approvals == []
    assert turn.state == "interrupted"


# --------------------------------------------------------------------------- the server


def test_server_death_ends_every_live_turn_and_the_next_turn_restarts_it(
    session: NotebookSession,
) -> None:
    turns = [start(session, "HANG DELTAS:1", thread=f"t{i}") for i in range(3)]
    for turn in turns:
        wait_running(turn)
    client = session.server.current()
    assert client is not None and client.pid is not None
    os.kill(client.pid, signal.SIGKILL)
    for turn in turns:
        assert turn.wait(10)
        assert turn.state == "error"
        assert "app-server stopped" in turn.widget.bundle["text/plain"]
    assert start(session, "DELTAS:2", thread="t0").result(10).status == "completed"
    assert session.server.current() is not client


def test_close_stops_running_and_queued_turns(session: NotebookSession) -> None:
    running = start(session, "HANG DELTAS:1")
    queued = start(session, "DELTAS:1")
    wait_running(running)
    session.close()
    assert running.done() and queued.done()
    assert queued.turn_id is None


def test_restart_while_a_server_starts_fails_that_turn_cleanly(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = hold_server_start(session, monkeypatch)
    turn = start(session, "DELTAS:1")
    wait_for(lambda: turn.state == "starting")
    session.server.restart()
    release.set()
    assert turn.wait(10)
    assert turn.state == "error"
    assert start(session, "DELTAS:1").result(10).status == "completed"


def test_a_refused_backend_switch_leaves_the_session_and_its_turns_alone(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODEX_APP_SERVER_URL", raising=False)
    running = start(session, "HANG DELTAS:1")
    wait_running(running)
    with pytest.raises(ValueError, match="needs a server"):
        session.restart(backend="remote")  # %codex backend remote, no server known
    assert not session.closing
    assert running.state == "running"
    assert start(session, "DELTAS:1", thread="other").result(10).status == "completed"


def test_a_restart_interrupted_while_it_waits_still_lets_the_next_cell_run(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_running(start(session, "HANG DELTAS:1"))

    def interrupted(until: Callable[[], bool], timeout: float | None) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(session, "_waiter", interrupted)  # Ctrl-C during %codex restart
    with pytest.raises(KeyboardInterrupt):
        session.restart()
    monkeypatch.setattr(session, "_waiter", None)
    assert not session.closing
    assert start(session, "DELTAS:1").result(10).status == "completed"


# --------------------------------------------------------------------------- names on disk


def test_thread_names_resume_in_a_new_session(make_session: SessionFactory) -> None:
    one = make_session()
    first = start(one, "DELTAS:1", thread="analysis")
    first.result(10)
    one.close()
    two = make_session()
    again = start(two, "DELTAS:1", thread="analysis")
    again.result(10)
    assert again.thread_id == first.thread_id


def test_thread_names_belong_to_their_notebook(make_session: SessionFactory) -> None:
    one = make_session(notebook="one.ipynb")
    two = make_session(notebook="two.ipynb")
    first = start(one, "DELTAS:1")
    first.result(10)
    second = start(two, "DELTAS:1")
    second.result(10)
    assert second.thread_id != first.thread_id
    assert one.threads() == {"main": first.thread_id}
    assert two.threads() == {"main": second.thread_id}


def test_a_kernel_without_a_notebook_keeps_names_in_memory(make_session: SessionFactory) -> None:
    one = make_session(notebook=None)
    first = start(one, "DELTAS:1")
    first.result(10)
    assert one.threads() == {"main": first.thread_id}
    two = make_session(notebook=None)
    assert two.threads() == {}


def test_a_failed_resume_starts_a_new_thread_and_says_so(session: NotebookSession) -> None:
    session.thread_map.set(session.scope(), "ghost", "no-such-thread")
    turn = start(session, "DELTAS:1", thread="ghost")
    turn.result(10)
    assert turn.thread_id != "no-such-thread"
    assert "Could not resume thread 'ghost'" in turn.widget.bundle["text/markdown"]


def test_new_forgets_the_stored_name(session: NotebookSession) -> None:
    first = start(session, "DELTAS:1", thread="t")
    first.result(10)
    session.forget_thread("t")
    assert "t" not in session.threads()
    again = start(session, "DELTAS:1", thread="t")
    again.result(10)
    assert again.thread_id != first.thread_id
    assert session.threads()["t"] == again.thread_id


# --------------------------------------------------------------------------- outputs


class _RecordingDisplay:
    """Stands in for IPython's DisplayHandle: records every update."""

    def __init__(self) -> None:
        self.updates: list[dict[str, str]] = []

    def update(self, bundle: dict[str, str], **_: object) -> None:
        self.updates.append(bundle)


def test_the_final_rendering_replaces_the_widget_and_can_be_resent(
    session: NotebookSession,
) -> None:
    display = _RecordingDisplay()
    turn = session.submit("DELTAS:2", session.with_defaults(), show=lambda turn: display)
    turn.result(10)
    assert len(display.updates) == 1
    assert "text/html" in display.updates[0]
    assert "application/vnd.jupyter.widget-view+json" not in display.updates[0]
    turn.republish(7)  # what %codex wait does, from the cell running now
    assert display.updates == [display.updates[0]] * 2
    turn.republish(8)  # once landed, never again
    assert len(display.updates) == 2


def test_a_rendering_published_while_its_own_cell_runs_is_not_resent(
    make_session: SessionFactory,
) -> None:
    session = make_session()
    session.current_cell = lambda: 3
    display = _RecordingDisplay()
    turn = session.submit("DELTAS:1", session.with_defaults(), cell=3, show=lambda turn: display)
    turn.result(10)
    turn.republish(4)
    assert len(display.updates) == 1


def test_structured_answers_render_as_json_code(session: NotebookSession) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        n: int

    turn = start(session, 'JSON:{"n":1}', schema=Answer)
    assert turn.result(10).parsed == Answer(n=1)
    assert '```json\n{"n":1}\n```' in turn.widget.bundle["text/markdown"]


def test_the_backend_notice_is_shown_in_every_widget(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(type(session.server), "notice", "Sandbox unavailable: running unsandboxed.")
    turn = start(session, "DELTAS:1")
    turn.result(10)
    assert "Sandbox unavailable: running unsandboxed." in turn.widget.bundle["text/plain"]


def test_status_elapsed_and_widget_elapsed_agree(session: NotebookSession) -> None:
    turn = start(session, "DELTAS:3 DELAY_MS:50")
    turn.result(10)
    assert turn.header().elapsed == turn.elapsed_text != ""


# --------------------------------------------------------------------------- memory


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, kind))


def test_finished_turns_let_go_of_their_widget_and_events(session: NotebookSession) -> None:
    from ipywidgets.widgets.widget import _instances as open_comms

    from codex_notebook.notebook.widget import TurnWidget

    comms_before, widgets_before = len(open_comms), _live(TurnWidget)
    turns = [start(session, "DELTAS:300", thread=f"t{i % 3}") for i in range(12)]
    for turn in turns:
        assert turn.result(10).status == "completed"
    assert all(turn.view is None for turn in turns)
    assert _live(TurnWidget) == widgets_before
    assert len(open_comms) == comms_before  # the widgets and their Layout children too
    assert _live(Notification) < 300  # not 12 × 300 deltas: only what a live turn would hold
    assert all(turn.text.startswith("d0 ") for turn in turns)


def test_a_turn_whose_final_rendering_fails_still_closes_its_widget(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipywidgets.widgets.widget import _instances as open_comms

    from codex_notebook.notebook.widget import TurnView

    def broken(self: TurnView, header: Any) -> dict[str, str]:
        raise ValueError("a renderer bug")

    monkeypatch.setattr(TurnView, "static_bundle", broken)
    comms_before = len(open_comms)
    turn = start(session, "DELTAS:3")
    assert turn.wait(10)
    assert len(open_comms) == comms_before  # the widget and its Layout were closed anyway
