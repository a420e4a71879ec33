"""Start an app-server that listens on a WebSocket (real codex or the fake) and find its URL.

``codex app-server --listen ws://127.0.0.1:0`` picks a free port and prints it on stderr
(``listening on: ws://127.0.0.1:PORT``); so does ``fake_ws_app_server.py``. Used by the e2e
tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import FAKE_APP_SERVER

FAKE_WS_APP_SERVER = FAKE_APP_SERVER.with_name("fake_ws_app_server.py")
_LISTENING = re.compile(r"listening on: (ws://\S+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

__all__ = ["FAKE_WS_APP_SERVER", "ListeningServer", "fake_ws_argv", "listen"]


@dataclass
class ListeningServer:
    """A running ``app-server --listen ws://…`` process. ``stop()`` kills its process group."""

    proc: subprocess.Popen[bytes]
    url: str
    token: str | None
    token_file: Path | None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        self.signal(signal.SIGCONT)  # in case a test stopped it
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.drain is not None:
            self.drain.join(5)  # it ends at EOF, once the process group is gone
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def fake_ws_argv() -> list[str]:
    """The argv prefix that runs the fake like a codex binary (``+ ["app-server", ...]``)."""
    return [sys.executable, str(FAKE_WS_APP_SERVER)]


def listen(
    binary: str | Sequence[str],
    *,
    token_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> ListeningServer:
    """Start ``<binary> app-server --listen ws://127.0.0.1:0`` and wait for its URL.

    With ``token_dir``, a fresh capability token is written to ``token_dir/token`` and the
    server requires it (``--ws-auth capability-token --ws-token-file``).
    """
    argv = [binary] if isinstance(binary, str) else list(binary)
    argv += ["app-server", "--listen", "ws://127.0.0.1:0"]
    token = token_file = None
    if token_dir is not None:
        token = secrets.token_urlsafe(24)
        token_file = Path(token_dir) / "token"
        token_file.write_text(token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        argv += ["--ws-auth", "capability-token", "--ws-token-file", str(token_file)]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ if env is None else env),
        cwd=cwd,
        start_new_session=True,
    )
    assert proc.stderr is not None
    lines: deque[str] = deque(maxlen=200)
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:  # keep reading, so the server never blocks on a full stderr pipe
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
            lines.append(line)
            if not url and (match := _LISTENING.search(line)):
                url.append(match.group(1))
                found.set()
        found.set()

    drainer = threading.Thread(target=drain, name="app-server-stderr", daemon=True)
    drainer.start()
    if not found.wait(timeout) or not url:
        ListeningServer(proc, "", None, None, lines, drainer).stop()
        raise RuntimeError(
            f"{argv[0]} printed no 'listening on' line within {timeout} s:\n" + "\n".join(lines)
        )
    return ListeningServer(proc, url[0], token, token_file, lines, drainer)
