"""Test doubles: a scripted fake ``codex app-server`` (see ``fake_app_server.py``)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

FAKE_APP_SERVER = Path(__file__).with_name("fake_app_server.py")

__all__ = ["FAKE_APP_SERVER", "fake_codex_bin"]


def fake_codex_bin(tmp_path: Path | str, **env: str | int) -> str:
    """Write an executable ``codex`` wrapper running the fake app-server; return its path.

    Keyword arguments become environment variables exported by the wrapper, e.g.
    ``fake_codex_bin(tmp_path, FAKE_CODEX_IGNORE_SIGTERM=1)``; without them the wrapper runs
    the fake with the caller's environment.
    """
    exports = "".join(f"export {name}={shlex.quote(str(value))}\n" for name, value in env.items())
    script = Path(tmp_path) / "codex"
    script.write_text(f'#!/bin/sh\n{exports}exec "{sys.executable}" "{FAKE_APP_SERVER}" "$@"\n')
    os.chmod(script, 0o755)
    return str(script)
