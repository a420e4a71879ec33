"""The names users and acceptance tests rely on (DESIGN.md, "Public contract")."""

from __future__ import annotations

import subprocess
import sys

import codex_notebook

CONTRACT = {
    "AsyncCodex",
    "AsyncThread",
    "AsyncTurnHandle",
    "Codex",
    "CodexError",
    "Notification",
    "Thread",
    "TransportClosedError",
    "TurnHandle",
    "TurnResult",
    "last_turn",
    "load_ipython_extension",
    "unload_ipython_extension",
}


def test_the_public_contract_is_exported() -> None:
    assert set(codex_notebook.__all__) >= CONTRACT


def test_every_exported_name_exists() -> None:
    missing = [name for name in codex_notebook.__all__ if not hasattr(codex_notebook, name)]
    assert missing == []


def test_turn_result_has_the_documented_fields() -> None:
    fields = codex_notebook.TurnResult.__dataclass_fields__
    assert {"id", "thread_id", "status", "text", "items", "usage", "error", "duration_ms"} <= set(
        fields
    )
    assert hasattr(codex_notebook.TurnResult, "parsed")


def test_notification_has_the_documented_attributes() -> None:
    note = codex_notebook.Notification("warning", {"method": "warning", "params": {}}, None, None)
    assert (note.method, note.turn_id, note.thread_id, note.raw["method"]) == (
        "warning",
        None,
        None,
        "warning",
    )
    assert note.params is not None


def test_importing_the_package_does_not_load_the_generated_models_or_ipython() -> None:
    code = (
        "import sys, codex_notebook; "
        "print('codex_notebook.protocol._generated' in sys.modules, 'IPython' in sys.modules, "
        "'websockets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
