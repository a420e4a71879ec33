"""The subprocess transport's lifecycle against the scripted fake app-server: start, close, die."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from codex_notebook import Codex, TransportClosedError
from codex_notebook import transport as transport_module
from codex_notebook.transport import SubprocessTransport
from tests.fakes import FAKE_APP_SERVER


@pytest.fixture
def daemon_pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where a wrapper writes the pid of the daemon it left behind; killed after the test."""
    path = tmp_path / "daemon.pid"
    yield path
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(path.read_text().strip()), signal.SIGKILL)


def leaves_a_daemon(tmp_path: Path, pid_file: Path, redirect: str) -> str:
    """A codex that starts a process in its own session holding the server's output pipes
    open (a ``notify`` program inherits all three; a helper that daemonized): killing
    codex's process group misses it. ``redirect``: the daemon's redirections."""
    script = tmp_path / "codex"
    script.write_text(
        "#!/bin/sh\n"
        f"setsid sleep 120 {redirect} &\n"
        f"echo $! > {shlex.quote(str(pid_file))}\n"
        f'exec "{sys.executable}" "{FAKE_APP_SERVER}" "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_close_returns_while_a_daemon_still_holds_the_servers_stderr(
    tmp_path: Path, daemon_pid_file: Path
) -> None:
    binary = leaves_a_daemon(tmp_path, daemon_pid_file, "</dev/null >/dev/null")
    codex = Codex(codex_bin=binary)
    codex.thread_start().run("DELTAS:1", timeout=10)
    closer = threading.Thread(target=codex.close, daemon=True)
    closer.start()
    closer.join(15)
    assert not closer.is_alive(), "close() hangs on the stderr pipe the daemon keeps open"
    assert codex._core.transport.returncode is not None  # type: ignore[attr-defined]


class NullSink:
    def feed_batch(self, lines: Iterable[bytes]) -> None:
        pass

    def closed(self, error: TransportClosedError) -> None:
        pass


def test_a_close_that_wins_the_race_with_start_leaves_no_server_running(fake_bin: str) -> None:
    """``close()`` from another thread (a cancelled ``AsyncCodex.start()``, a restart) can run
    between the client deciding to start and the transport spawning: the spawn must not
    happen, or nothing would ever stop that server."""
    transport = SubprocessTransport(fake_bin)
    transport.close()
    with pytest.raises(TransportClosedError, match="closed"):
        transport.start(NullSink())
    assert transport.pid is None


def test_the_death_of_codex_is_noticed_while_a_daemon_holds_its_output(
    tmp_path: Path, daemon_pid_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """codex crashed, but a process it started still holds its stdout: the pipe never ends,
    yet every waiter must still fail with the transport error."""
    monkeypatch.setattr(transport_module, "EXIT_EOF_GRACE_S", 0.5)
    binary = leaves_a_daemon(tmp_path, daemon_pid_file, "</dev/null")
    with Codex(codex_bin=binary) as codex:
        turn = codex.thread_start().turn("DIE")
        started = time.monotonic()
        with pytest.raises(TransportClosedError, match="exited"):
            turn.run(20)
        assert time.monotonic() - started < 10


def test_a_dying_servers_stderr_reaches_the_error_without_terminal_escapes(
    tmp_path: Path,
) -> None:
    script = tmp_path / "codex"
    script.write_text(
        "#!/bin/sh\n"  # a hyperlink (OSC 8), a clipboard write (OSC 52), colours, clear screen
        r"printf 'fatal: \033]8;;http://evil/\007click here\033]8;;\007 "
        r"\033]52;c;cm0gLXJmIH4=\007\033[31mred\033[0m\033[2J\n' >&2" + "\n"
        "exit 3\n"
    )
    script.chmod(0o755)
    with pytest.raises(TransportClosedError) as caught:
        Codex(codex_bin=str(script))
    message = str(caught.value)
    assert "fatal: click here red" in message
    assert "\x1b" not in message and "\x07" not in message
