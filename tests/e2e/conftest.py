"""Fixtures for end-to-end tests: the real codex binary against the built-in demo model."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from codex_notebook.demo import DemoBackend, resolve_codex_bin


@pytest.fixture(scope="session")
def codex_bin() -> str:
    """The codex binary: ``$CODEX_BIN`` first, then the bundled wheel, then PATH; else skip."""
    path = resolve_codex_bin(os.environ.get("CODEX_BIN") or None)
    if path is None or not os.path.exists(path):
        pytest.skip("no codex binary (set CODEX_BIN or install openai-codex-cli-bin)")
    return path


@pytest.fixture
def demo_backend(codex_bin: str) -> Iterator[DemoBackend]:
    """A started DemoBackend with a fresh CODEX_HOME and workspace for this test only."""
    with DemoBackend(codex_bin=codex_bin) as backend:
        yield backend
