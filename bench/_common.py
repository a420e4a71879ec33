"""Helpers shared by the benchmark scripts (not a test: figures, not assertions)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fakes import fake_codex_bin  # noqa: E402


def fake_bin(**env: str | int) -> str:
    return fake_codex_bin(Path(tempfile.mkdtemp(prefix="codex-bench-")), **env)


def best_of(runs: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    """Run ``fn`` (which returns a rate) ``runs`` times; return the median and all values."""
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
