"""The notebook layer on a remote app-server (the fake, behind a WebSocket): the same
variables select it, %codex connect switches to it, the badge and status say where turns run,
thread names are kept per server, and the token never shows."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from codex_notebook.notebook import extension
from codex_notebook.notebook.session import NotebookSession
from tests.fakes.listen import ListeningServer, fake_ws_argv, listen
from tests.notebook_helpers import WidgetRecorder, submit


def _server(directory: Path) -> ListeningServer:
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CODEX_HOME": str(directory)}
    return listen(fake_ws_argv(), token_dir=directory, env=env)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ListeningServer]:
    running = _server(tmp_path / "server-one")
    yield running
    running.stop()


@pytest.fixture
def remote_env(server: ListeningServer, monkeypatch: pytest.MonkeyPatch) -> ListeningServer:
    monkeypatch.delenv("CODEX_NOTEBOOK_BACKEND", raising=False)
    monkeypatch.setenv("CODEX_APP_SERVER_URL", server.url)
    monkeypatch.setenv("CODEX_APP_SERVER_TOKEN_FILE", str(server.token_file))
    return server


@pytest.fixture
def session(remote_env: ListeningServer, tmp_path: Path) -> Iterator[NotebookSession]:
    session = NotebookSession(state_dir=tmp_path / "state", notebook=lambda: "remote.ipynb")
    yield session
    session.close()


def test_the_server_variables_select_the_remote_backend(
    session: NotebookSession, remote_env: ListeningServer
) -> None:
    assert session.backend_name == "remote"
    recorder = WidgetRecorder()
    turn = submit(session, "DELTAS:3", show=recorder)
    assert turn.result(10).text == "d0 d1 d2 "
    client = session.server.current()
    assert client is not None and client.pid is None and client.server_url == remote_env.url
    assert recorder.headers()[0]["badge"] == f"remote · {remote_env.url}"
    assert turn.provenance()["codex_notebook"]["server"] == remote_env.url


def test_the_token_never_reaches_widgets_outputs_or_metadata(
    session: NotebookSession, remote_env: ListeningServer
) -> None:
    recorder = WidgetRecorder()
    turn = submit(session, "DELTAS:2", show=recorder)
    turn.result(10)
    assert remote_env.token
    everything = json.dumps([recorder.messages, turn.widget.bundle, turn.provenance()])
    assert remote_env.token not in everything
    assert remote_env.token not in session.log_text()
    assert remote_env.token not in session.server.where


def test_thread_names_are_kept_per_server(
    session: NotebookSession, tmp_path: Path, remote_env: ListeningServer
) -> None:
    first = submit(session, "DELTAS:1")
    first.result(10)
    other = _server(tmp_path / "server-two")
    try:
        os.environ["CODEX_APP_SERVER_TOKEN_FILE"] = str(other.token_file)
        from codex_notebook.notebook.backends import RemoteTarget

        session.restart(backend="remote", remote=RemoteTarget.parse(other.url))
        assert session.threads() == {}
        again = submit(session, "DELTAS:1")
        again.result(10)
        assert again.thread_id != first.thread_id
    finally:
        other.stop()


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODEX_NOTEBOOK_BACKEND", "demo")
    monkeypatch.delenv("CODEX_APP_SERVER_URL", raising=False)
    monkeypatch.delenv("CODEX_APP_SERVER_TOKEN_FILE", raising=False)
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("codex_notebook")
    try:
        yield ip
    finally:
        ip.extension_manager.unload_extension("codex_notebook")
        InteractiveShell.clear_instance()


def _session() -> NotebookSession:
    current = extension.current_session()
    assert current is not None
    return current


def test_connect_switches_a_running_session_to_the_server(
    shell: InteractiveShell, server: ListeningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("codex", f"connect {server.url} --token-file {server.token_file}")
    assert f"connected: turns now run on {server.url}" in capsys.readouterr().out
    assert _session().backend_name == "remote"
    turn = submit(_session(), "DELTAS:2")
    assert turn.result(10).status == "completed"


def test_connect_with_a_wrong_token_says_so_at_once(
    shell: InteractiveShell, server: ListeningServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token\n")
    shell.run_line_magic("codex", f"connect {server.url} --token-file {wrong}")
    err = capsys.readouterr().err
    assert f"Could not connect to {server.url}" in err
    assert "401" in err or "token" in err.lower()
    assert "not-the-token" not in err


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("connect", "usage: %codex connect"),
        ("connect http://x:1", "is not a server URL"),
        ("connect ws://user:pw@host:1", "not in the URL"),
        ("connect ws://127.0.0.1:1 --token-file /no/such/file", "no token file"),
        ("backend remote", "needs a server"),
    ],
)
def test_bad_connect_lines_name_the_problem(
    shell: InteractiveShell, line: str, problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        shell.run_line_magic("codex", line)
