"""Shared fixtures for unit tests: recorded app-server transcripts and the pinned codex binary."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The in-repo copy (so a clean clone has it) wins over the shared workspace original.
TRANSCRIPT_DIRS = (
    REPO_ROOT / "tests" / "fixtures" / "transcripts",
    REPO_ROOT.parent / "shared" / "fixtures" / "transcripts",
)


@pytest.fixture(scope="session")
def transcripts_dir() -> Path:
    """Directory of the real codex-cli 0.163.0 app-server transcripts (*.jsonl)."""
    for candidate in TRANSCRIPT_DIRS:
        if any(candidate.glob("*.jsonl")):
            return candidate
    pytest.skip(
        "no app-server transcripts: expected *.jsonl in "
        + " or ".join(str(d) for d in TRANSCRIPT_DIRS)
    )


@pytest.fixture(scope="session")
def transcript_records(transcripts_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every recorded line as ``(file name, {"dir": ..., "msg": ...})``, in wire order."""
    records: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(transcripts_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append((path.name, json.loads(line)))
    return records


def find_codex_bin() -> str | None:
    """``$CODEX_BIN``, else the bundled ``openai-codex-cli-bin`` binary, else ``codex`` on PATH."""
    if os.environ.get("CODEX_BIN"):
        return os.environ["CODEX_BIN"]
    try:
        import codex_cli_bin

        path = str(codex_cli_bin.bundled_codex_path())
        if os.path.isfile(path):
            return path
    except Exception:
        pass
    return shutil.which("codex")


@pytest.fixture(scope="session")
def pinned_codex_bin() -> str:
    """The codex binary the committed protocol was generated from (skips if none installed)."""
    path = find_codex_bin()
    if path is None:
        pytest.skip("no codex binary (install openai-codex-cli-bin==0.163.0 or set CODEX_BIN)")
    return path
