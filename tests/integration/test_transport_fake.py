"""The subprocess transport's lifecycle against the scripted fake app-server: start, close, die."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from codex_notebook import Codex, TransportClosedError
from codex_notebook.transport import SubprocessTransport
from tests.fakes import FAKE_APP_SERVER


@pytest.fixture
def daemon_pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where a wrapper writes the pid of the daemon it left behind; killed after the test."""
    path = tmp_path / "daemon.pid"
    yield path
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(path.read_text().strip()), signal.SIGKILL)


def leaves_a_daemon_on_stderr(tmp_path: Path, pid_file: Path) -> str:
    """A codex that starts a process in its own session holding the server's stderr open
    (an MCP server or a helper that daemonized): killing codex's process group misses it."""
    script = tmp_path / "codex"
    script.write_text(
        "#!/bin/sh\n"
        "setsid sleep 120 </dev/null >/dev/null &\n"
        f"echo $! > {shlex.quote(str(pid_file))}\n"
        f'exec "{sys.executable}" "{FAKE_APP_SERVER}" "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_close_returns_while_a_daemon_still_holds_the_servers_stderr(
    tmp_path: Path, daemon_pid_file: Path
) -> None:
    codex = Codex(codex_bin=leaves_a_daemon_on_stderr(tmp_path, daemon_pid_file))
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
