"""The committed protocol package matches what the installed codex binary generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "generate_protocol.py"


@pytest.mark.timeout(60)
def test_committed_protocol_matches_the_installed_codex_schema(pinned_codex_bin: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--codex-bin", pinned_codex_bin, "--check"],
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
