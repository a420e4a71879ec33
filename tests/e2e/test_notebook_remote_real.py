"""The notebook layer on a real ``codex app-server --listen ws://…`` (capability token, demo
model), for each codex build: turns run there and no local app-server is started."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from codex_notebook.demo import DemoBackend
from codex_notebook.notebook.session import NotebookSession
from tests.fakes.listen import ListeningServer, listen
from tests.notebook_helpers import WidgetRecorder, submit, wait_for
from tests.processes import app_servers

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(codex_bin: str, tmp_path: Path) -> Iterator[ListeningServer]:
    with DemoBackend(codex_bin=codex_bin, approval_policy="on-request") as demo:
        running = listen(codex_bin, token_dir=tmp_path, env=demo.env(), cwd=demo.workspace)
        yield running
        running.stop()


@pytest.fixture
def session(
    server: ListeningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NotebookSession]:
    monkeypatch.delenv("CODEX_NOTEBOOK_BACKEND", raising=False)
    monkeypatch.setenv("CODEX_APP_SERVER_URL", server.url)
    monkeypatch.setenv("CODEX_APP_SERVER_TOKEN_FILE", str(server.token_file))
    session = NotebookSession(state_dir=tmp_path / "state", notebook=lambda: "remote.ipynb")
    yield session
    session.close()


def _local_codex(server: ListeningServer) -> list[psutil.Process]:
    """App-servers this process started, except the one the test itself listens with."""
    listening = {server.pid, *(p.pid for p in psutil.Process(server.pid).children(True))}
    ours = psutil.Process(os.getpid()).children(recursive=True)
    return app_servers(p for p in ours if p.pid not in listening)


def test_a_notebook_runs_its_turns_on_the_remote_server(
    session: NotebookSession, server: ListeningServer, codex_version: str
) -> None:
    recorder = WidgetRecorder()
    turn = submit(session, "DELTAS:40", show=recorder)
    result = turn.result(60)
    assert result.status == "completed"
    assert result.text == " ".join(f"chunk{i}" for i in range(40))
    assert _local_codex(server) == []
    assert session.server_version == codex_version
    assert recorder.headers()[0]["badge"] == f"remote · {server.url}"
    assert server.token is not None
    assert server.token not in repr(recorder.messages) + repr(turn.widget.bundle)


def test_an_approval_on_the_remote_server_is_answered_from_the_notebook(
    session: NotebookSession,
) -> None:
    turn = submit(session, "TOOL:echo remote-approved ESCALATE")
    wait_for(lambda: bool(turn.pending_approvals) or turn.done(), timeout=60)
    turn.decide("accept")
    result = turn.result(60)
    assert result.status == "completed"
    assert "remote-approved" in result.text


def test_a_second_cell_continues_the_conversation_on_the_server(
    session: NotebookSession,
) -> None:
    first = submit(session, "DELTAS:2", thread="t")
    second = submit(session, "DELTAS:3", thread="t")
    assert second.result(60).status == "completed"
    assert first.thread_id == second.thread_id
