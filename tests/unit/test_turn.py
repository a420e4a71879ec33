"""A notebook turn's guard against approved code waiting for its own turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_notebook.errors import CodexError
from codex_notebook.notebook.registry import ThreadRegistry
from codex_notebook.notebook.threads import Scope, ThreadMap
from codex_notebook.notebook.turn import NotebookTurn, TurnOptions


@pytest.fixture
def turn(tmp_path: Path) -> NotebookTurn:
    registry = ThreadRegistry(ThreadMap(tmp_path / "threads.json"), lambda: Scope("test", None))
    return NotebookTurn(
        number=1,
        cell=1,
        prompt="hi",
        options=TurnOptions(),
        slot=registry.bind("main", fresh=False),
        badge="test",
    )


def test_approved_code_cannot_wait_for_its_own_turn(turn: NotebookTurn) -> None:
    with turn.running_code(), pytest.raises(CodexError, match="waits for this code"):
        turn.check_wait_allowed()


def test_waiting_is_allowed_again_once_the_approved_code_ended(turn: NotebookTurn) -> None:
    with turn.running_code():
        pass
    turn.check_wait_allowed()


def test_approved_code_run_inside_approved_code_leaves_the_outer_guard_in_place(
    turn: NotebookTurn,
) -> None:
    # the outer code waits on another turn; the main-thread waiter runs a second approved job
    with turn.running_code():
        with turn.running_code():
            pass
        with pytest.raises(CodexError, match="waits for this code"):
            turn.check_wait_allowed()
