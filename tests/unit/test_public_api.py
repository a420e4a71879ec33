"""The names users and acceptance tests rely on (DESIGN.md, "Public contract")."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

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


FACES = [
    (codex_notebook.Codex, codex_notebook.AsyncCodex),
    (codex_notebook.Thread, codex_notebook.AsyncThread),
    (codex_notebook.TurnHandle, codex_notebook.AsyncTurnHandle),
]
#: The only intended difference: an AsyncCodex is started with ``await codex.start()`` (or
#: ``async with``), a Codex in its constructor.
ASYNC_ONLY = {"start"}


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def _parameters(func: object) -> list[tuple[str, object, object]]:
    signature = inspect.signature(func)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("sync", "async_"), FACES, ids=lambda c: c.__name__)
def test_sync_and_async_faces_have_the_same_public_names(sync: type, async_: type) -> None:
    assert _public(sync) == _public(async_) - ASYNC_ONLY


@pytest.mark.parametrize(("sync", "async_"), FACES, ids=lambda c: c.__name__)
def test_sync_and_async_methods_take_the_same_parameters(sync: type, async_: type) -> None:
    for name in [*sorted(_public(sync)), "__init__"]:
        sync_member, async_member = getattr(sync, name), getattr(async_, name)
        if isinstance(sync_member, property) or not callable(sync_member):
            assert not callable(async_member) or isinstance(async_member, property), name
            continue
        assert _parameters(sync_member) == _parameters(async_member), name


def test_async_methods_are_awaitable_where_the_sync_ones_block() -> None:
    blocking = {
        "AsyncCodex": [
            "request",
            "thread_start",
            "thread_resume",
            "thread_fork",
            "thread_read",
            "thread_list",
            "close",
            "start",
        ],
        "AsyncThread": ["turn", "run", "read", "fork", "set_name"],
        "AsyncTurnHandle": ["wait", "run", "interrupt", "steer"],
    }
    for cls_name, names in blocking.items():
        cls = getattr(codex_notebook, cls_name)
        for name in names:
            assert inspect.iscoroutinefunction(getattr(cls, name)), f"{cls_name}.{name}"
    for cls, name in [
        (codex_notebook.AsyncCodex, "notifications"),
        (codex_notebook.AsyncTurnHandle, "stream"),
        (codex_notebook.AsyncTurnHandle, "stream_text"),
    ]:
        assert inspect.isasyncgenfunction(getattr(cls, name)), f"{cls.__name__}.{name}"


def test_the_client_tools_api_is_exported() -> None:
    assert {"Tool", "Toolset", "ToolCall", "ToolResult", "DEFER", "TurnCursor"} <= set(
        codex_notebook.__all__
    )
    assert {"Sandbox", "Approval", "InvalidArgumentError"} <= set(codex_notebook.__all__)
