"""Shared fixtures: the scripted fake app-server and clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_notebook import Codex
from tests.fakes import fake_codex_bin

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_bin(tmp_path: Path) -> str:
    return fake_codex_bin(tmp_path)


@pytest.fixture
def codex(fake_bin: str) -> Iterator[Codex]:
    with Codex(codex_bin=fake_bin) as client:
        yield client
