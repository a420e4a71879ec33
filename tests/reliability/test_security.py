"""Untrusted model output is inert, secrets stay out of outputs, approvals are never automatic."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from codex_notebook.demo import DemoBackend
from codex_notebook.demo.server import DemoModelServer, DemoServerProcess
from codex_notebook.notebook.session import NotebookSession, NotebookTurn
from tests.fakes import FAKE_APP_SERVER, fake_codex_bin
from tests.html_checks import assert_inert
from tests.notebook_helpers import WidgetRecorder, submit, wait_for

HOSTILE = (
    'ECHO <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
    '[click](javascript:alert(3)) <a href="javascript:alert(4)">link</a>'
)


@pytest.fixture
def demo_session(tmp_path: Path) -> Iterator[NotebookSession]:
    session = NotebookSession(state_dir=tmp_path / "state", backend="demo")
    yield session
    session.close()


def run(session: NotebookSession, prompt: str) -> tuple[NotebookTurn, WidgetRecorder]:
    recorder = WidgetRecorder()
    turn = submit(session, prompt, show=recorder)
    turn.result(60)
    return turn, recorder


@pytest.mark.e2e
def test_model_html_and_script_are_inert_in_widget_and_static_output(
    demo_session: NotebookSession,
) -> None:
    turn, recorder = run(demo_session, HOSTILE)
    static = turn.widget.bundle["text/html"]
    assert "&lt;script&gt;window.__pwned=2&lt;/script&gt;" in static  # shown as text...
    assert recorder.html()
    for html in (static, *recorder.html()):
        assert_inert(html, our_styles=True)  # ...but nothing in it can run


@pytest.mark.e2e
def test_ansi_escapes_in_command_output_are_stripped(demo_session: NotebookSession) -> None:
    turn, recorder = run(demo_session, r"TOOL:printf '\033[31mred\033[0m plain'")
    assert "red plain" in turn.widget.bundle["text/markdown"]
    assert "\x1b" not in json.dumps(recorder.messages)
    assert "\x1b" not in json.dumps(turn.widget.bundle)


def _leaky_codex(tmp_path: Path) -> str:
    """A fake codex that prints its API key to stderr, then dies mid-turn."""
    script = tmp_path / "leaky-codex"
    script.write_text(
        "#!/bin/sh\n"
        'echo "debug: using key=$OPENAI_API_KEY for requests" >&2\n'
        'echo "Authorization: Bearer $OPENAI_API_KEY" >&2\n'
        f'exec "{sys.executable}" "{FAKE_APP_SERVER}" "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_secrets_in_stderr_never_reach_widgets_outputs_or_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "plain-secret-value-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    session = NotebookSession(
        state_dir=tmp_path / "state", backend="codex", codex_bin=_leaky_codex(tmp_path)
    )
    try:
        recorder = WidgetRecorder()
        turn = submit(session, "DIE_AFTER:1 DELTAS:3", show=recorder)
        assert turn.wait(10)
        assert turn.state == "error"
        everything = json.dumps([recorder.messages, turn.widget.bundle, turn.provenance()])
        assert "stopped" in everything
        assert secret not in everything
        assert "sk-test-SECRET123" not in everything
        assert "[REDACTED]" in everything
    finally:
        session.close()


def test_approvals_wait_for_a_person_under_the_default_policy(tmp_path: Path) -> None:
    log = tmp_path / "received.jsonl"
    binary = fake_codex_bin(tmp_path, FAKE_CODEX_LOG=str(log))
    session = NotebookSession(state_dir=tmp_path / "state", backend="codex", codex_bin=binary)
    try:
        turn = submit(session, "APPROVAL DELTAS:1")
        wait_for(lambda: bool(turn.pending_approvals))
        answered = [json.loads(line) for line in log.read_text().splitlines()]
        assert not any(m.get("id") == 0 and "result" in m for m in answered)
        turn.interrupt()
        assert turn.result(10).status == "interrupted"
        answered = [json.loads(line) for line in log.read_text().splitlines()]
        assert not any(
            m.get("id") == 0 and str(m.get("result", {}).get("decision", "")).startswith("accept")
            for m in answered
        )
    finally:
        session.close()


def test_the_in_process_demo_server_listens_on_loopback_only() -> None:
    with DemoModelServer() as server:
        sockets = [
            c
            for c in psutil.Process().net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port
        ]
    assert sockets
    assert {c.laddr.ip for c in sockets} == {"127.0.0.1"}


def test_the_demo_server_process_listens_on_loopback_only() -> None:
    with DemoServerProcess() as server:
        assert server._proc is not None
        listening = [
            c
            for c in psutil.Process(server._proc.pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN
        ]
    assert listening
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}


def test_the_demo_backend_strips_credentials_from_the_child_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-pass-0000")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_should_not_pass")
    with DemoBackend(probe_sandbox=False) as backend:
        env = backend.env()
    assert "OPENAI_API_KEY" not in env
    assert "GITHUB_TOKEN" not in env
    assert os.environ["OPENAI_API_KEY"] == "sk-should-not-pass-0000"
