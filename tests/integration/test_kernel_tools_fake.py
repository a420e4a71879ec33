"""The notebook tools through ``item/tool/call`` from the scripted fake app-server, answered by
a session on a real ``InteractiveShell``: every tool, the gates, run_python asked, approved,
declined and denied, proposals, and nothing left queued when a turn ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from codex_notebook.notebook.kernel_tools import NotebookTools
from codex_notebook.notebook.mainthread import MainThreadQueue
from codex_notebook.notebook.session import NotebookSession, NotebookTurn
from codex_notebook.notebook.tools import calls
from codex_notebook.notebook.tools.kernel_state import CellWatcher
from tests.fakes import fake_codex_bin
from tests.notebook_helpers import WidgetRecorder, submit, wait_for


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.user_ns.update(sales=[3, 1, 2], api_key="sk-live-1234567890abcdefghij", greeting="hello")
    try:
        yield ip
    finally:
        InteractiveShell.clear_instance()


@pytest.fixture
def queue() -> Iterator[MainThreadQueue]:
    queue = MainThreadQueue()  # no kernel: jobs run while the test's main thread waits
    yield queue
    queue.close()


@pytest.fixture
def fake_bin(tmp_path: Path) -> str:
    """One fake codex whose threads (and their records) outlive a process."""
    home = tmp_path / "codex-home"
    home.mkdir()
    return fake_codex_bin(
        tmp_path, FAKE_CODEX_STATE=str(tmp_path / "threads.json"), CODEX_HOME=str(home)
    )


@pytest.fixture
def session(
    tmp_path: Path, shell: InteractiveShell, queue: MainThreadQueue, fake_bin: str
) -> Iterator[NotebookSession]:
    watcher = CellWatcher(shell).install()
    session = NotebookSession(
        state_dir=tmp_path / "state",
        backend="codex",
        codex_bin=fake_bin,
        notebook=lambda: "tools.ipynb",
        waiter=queue.blocking_wait,
        tools=lambda s: NotebookTools(shell, queue, watcher, s.active_turn),
    )
    yield session
    session.close()
    watcher.uninstall()


def run(session: NotebookSession, prompt: str, **options: Any) -> tuple[NotebookTurn, str]:
    turn = submit(session, prompt, **options)
    return turn, turn.result(20).text


def test_variables_answers_from_the_namespace_without_secrets(session: NotebookSession) -> None:
    _, text = run(session, "DYNTOOL:notebook.variables")
    assert text.startswith("tool:notebook.variables:ok:")
    assert "sales" in text and "greeting" in text
    assert "sk-live" not in text


def test_a_read_that_fails_answers_an_error_without_the_secrets_in_its_message(
    session: NotebookSession, shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(shell: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"could not read {shell.user_ns['api_key']}")

    monkeypatch.setattr(calls, "variables", failing)
    _, text = run(session, "DYNTOOL:notebook.variables")
    assert text.startswith("tool:notebook.variables:failed:ERROR:")
    assert "RuntimeError: could not read" in text and "sk-live" not in text


def test_inspect_describes_one_name(session: NotebookSession) -> None:
    _, text = run(session, 'DYNTOOL:notebook.inspect ARGS:{"name":"sales"}')
    assert text.startswith("tool:notebook.inspect:ok:")
    assert "list" in text and "3" in text


def test_an_unknown_name_is_an_error_the_model_can_read(session: NotebookSession) -> None:
    _, text = run(session, 'DYNTOOL:notebook.inspect ARGS:{"name":"salez"}')
    assert text.startswith("tool:notebook.inspect:failed:ERROR:")
    assert "sales" in text  # a close match is suggested


def test_cells_and_last_error_read_the_history(
    session: NotebookSession, shell: InteractiveShell
) -> None:
    shell.run_cell("total = sum(sales)", store_history=True)
    shell.run_cell("1 / 0", store_history=True)
    _, text = run(session, "DYNTOOL:notebook.cells DYNTOOL:notebook.last_error")
    assert "total = sum(sales)" in text
    assert "ZeroDivisionError" in text


def test_run_python_runs_only_after_the_person_accepts(
    session: NotebookSession, shell: InteractiveShell
) -> None:
    turn = submit(session, 'DYNTOOL:notebook.run_python ARGS:{"code":"doubled=len(sales)*2"}')
    approval = turn.wait_for_approval(20)
    assert approval is not None and approval.kind == "python code"
    assert approval.summary == "doubled=len(sales)*2"
    assert "doubled" not in shell.user_ns  # nothing ran yet
    assert turn.state == "waiting for approval"
    turn.decide("accept")
    text = turn.result(20).text
    assert shell.user_ns["doubled"] == 6
    assert text.startswith("tool:notebook.run_python:ok:")
    markdown = turn.widget.bundle["text/markdown"]
    assert "changed: `doubled`" in markdown
    assert "Approved — it ran in the kernel" in markdown


def test_approved_code_whose_run_is_interrupted_outside_the_code_still_answers_the_model(
    session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(shell: Any, code: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt  # the kernel's Interrupt, landing before the code itself ran

    monkeypatch.setattr(calls, "run_python", interrupted)
    turn = submit(session, 'DYNTOOL:notebook.run_python ARGS:{"code":"ran=True"}')
    assert turn.wait_for_approval(20) is not None
    turn.decide("accept")  # queued: the job runs in this (main) thread's next wait
    with pytest.raises(KeyboardInterrupt):
        turn.wait(20)
    text = turn.result(20).text
    assert text.startswith("tool:notebook.run_python:failed:ERROR:")
    assert "KeyboardInterrupt" in text


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "code",
    [
        "__import__('codex_notebook').last_turn().result(5)",  # no spaces: one directive
        "session.wait(session.running(),5)",  # what %codex wait all does
    ],
)
def test_approved_code_that_waits_for_its_own_turn_fails_instead_of_hanging(
    session: NotebookSession, shell: InteractiveShell, code: str
) -> None:
    shell.user_ns["session"] = session
    turn = submit(session, f'DYNTOOL:notebook.run_python ARGS:{{"code":"{code}"}}')
    assert turn.wait_for_approval(20) is not None
    turn.decide("accept")
    text = turn.result(20).text
    assert text.startswith("tool:notebook.run_python:failed:")
    assert "waits for this code" in text


def test_run_python_declined_never_runs_and_tells_the_model(
    session: NotebookSession, shell: InteractiveShell
) -> None:
    turn = submit(session, 'DYNTOOL:notebook.run_python ARGS:{"code":"ran=True"}')
    assert turn.wait_for_approval(20) is not None
    turn.decide("decline")
    text = turn.result(20).text
    assert "ran" not in shell.user_ns
    assert text.startswith("tool:notebook.run_python:failed:ERROR: the user declined")


def test_run_python_is_refused_without_asking_under_approval_deny(
    session: NotebookSession, shell: InteractiveShell
) -> None:
    _, text = run(session, 'DYNTOOL:notebook.run_python ARGS:{"code":"ran=True"}', approval="deny")
    assert "ran" not in shell.user_ns
    assert "--approval deny" in text


@pytest.mark.parametrize(
    ("level", "tool", "allowed"),
    [("read", "variables", True), ("read", "run_python", False), ("none", "variables", False)],
)
def test_tools_are_gated_by_the_cell(
    session: NotebookSession, level: str, tool: str, allowed: bool
) -> None:
    _, text = run(session, f'DYNTOOL:notebook.{tool} ARGS:{{"code":"x=1"}}', tools=level)
    assert text.startswith(
        f"tool:notebook.{tool}:ok:" if allowed else f"tool:notebook.{tool}:failed:"
    )
    if not allowed:
        assert "turned off" in text


def test_a_proposed_cell_is_listed_and_shown(session: NotebookSession) -> None:
    recorder = WidgetRecorder()
    turn = submit(
        session,
        'DYNTOOL:notebook.propose_cell ARGS:{"code":"print(sum(sales))","explanation":"adds"}',
        show=recorder,
    )
    text = turn.result(20).text
    assert turn.proposals == ["print(sum(sales))"]
    assert "proposed cell 1" in text
    assert any(b.get("kind") == "proposal" for b in recorder.blocks())
    assert "Proposed cell 1" in turn.widget.bundle["text/markdown"]


def test_a_turn_stopped_while_a_call_waits_for_the_person_leaves_nothing_behind(
    session: NotebookSession, queue: MainThreadQueue, shell: InteractiveShell
) -> None:
    turn = submit(session, 'DYNTOOL:notebook.run_python ARGS:{"code":"late=True"}')
    assert turn.wait_for_approval(20) is not None
    turn.interrupt()
    assert turn.result(20).status == "interrupted"
    assert turn.pending_approvals == []
    assert queue.pending() == 0
    queue.run_pending()
    assert "late" not in shell.user_ns


def test_approved_code_queued_behind_a_finished_turn_never_runs(
    session: NotebookSession, queue: MainThreadQueue, shell: InteractiveShell
) -> None:
    turn = submit(session, 'DYNTOOL:notebook.run_python ARGS:{"code":"late=True"}')
    approval = turn.wait_for_approval(20)
    assert approval is not None
    approval.answer("accept")  # as a click would, from a thread: the job is queued, not run
    assert queue.pending() == 1
    turn.interrupt()
    wait_for(turn.done)
    assert queue.pending() == 0  # the turn's end cancelled it
    queue.run_pending()
    assert "late" not in shell.user_ns


def test_a_conversation_without_the_tools_says_so(
    session: NotebookSession, tmp_path: Path, fake_bin: str
) -> None:
    plain = NotebookSession(
        state_dir=tmp_path / "state",
        backend="codex",
        codex_bin=fake_bin,
        notebook=lambda: "tools.ipynb",
    )
    try:
        first = submit(plain, "DELTAS:1", thread="old")
        first.result(20)
    finally:
        plain.close()
    resumed = submit(session, "DELTAS:1", thread="old")
    resumed.result(20)
    assert resumed.thread_id == first.thread_id
    assert "started without the notebook's tools" in resumed.widget.bundle["text/plain"]
    fresh = submit(session, "DELTAS:1", thread="new")
    fresh.result(20)
    assert "started without" not in fresh.widget.bundle["text/plain"]
