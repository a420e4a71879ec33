"""The codex app-server protocol: routing tables and (lazily imported) pydantic models.

Everything here comes from the codex binary's JSON Schema via ``scripts/generate_protocol.py``:
``_registry`` (plain literals, cheap to import) and ``_generated`` (~1,000 pydantic models,
imported on the first :func:`params_model` / :func:`response_model` call, never at import time).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from codex_notebook.protocol._registry import (
    CLIENT_REQUEST_METHODS,
    CLIENT_REQUEST_PARAMS,
    CLIENT_REQUEST_RESPONSES,
    CODEX_VERSION,
    NOTIFICATION_PARAMS,
    SCHEMA_SHA256,
    SERVER_REQUEST_PARAMS,
    SERVER_REQUEST_RESPONSES,
    THREAD_ID_LOCATION,
    TURN_ID_LOCATION,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from codex_notebook.protocol._base import ProtocolModel

__all__ = [
    "CLIENT_REQUEST_METHODS",
    "CLIENT_REQUEST_PARAMS",
    "CLIENT_REQUEST_RESPONSES",
    "CODEX_VERSION",
    "NOTIFICATION_PARAMS",
    "SCHEMA_SHA256",
    "SERVER_REQUEST_PARAMS",
    "SERVER_REQUEST_RESPONSES",
    "THREAD_ID_LOCATION",
    "TURN_ID_LOCATION",
    "ProtocolModel",
    "generated_module",
    "params_model",
    "response_model",
    "route_ids",
]


def __getattr__(name: str) -> Any:
    # ``ProtocolModel`` pulls in pydantic: only on demand, so importing the tables stays cheap.
    if name == "ProtocolModel":
        from codex_notebook.protocol._base import ProtocolModel

        return ProtocolModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# method -> (turn id key, turn id nested?, thread id key, thread id nested?): the params key to
# read ("" when the method carries no such id) and whether the id sits one level down, as "id"
# of that key's object ("turn" / "thread") rather than directly under it ("turnId" / "threadId").
def _route(location: str, entity: str) -> tuple[str, bool]:
    if location in ("direct", "nullable"):
        return entity + "Id", False
    if location == "nested":
        return entity, True
    return "", False


_ROUTES: dict[str, tuple[str, bool, str, bool]] = {
    method: (
        *_route(TURN_ID_LOCATION[method], "turn"),
        *_route(THREAD_ID_LOCATION.get(method, "none"), "thread"),
    )
    for method in TURN_ID_LOCATION
}


def _fallback(params: Mapping[str, Any], key: str, nested: str) -> str | None:
    value = params.get(key)
    if type(value) is str:
        return value
    inner = params.get(nested)
    if type(inner) is dict or isinstance(inner, Mapping):
        value = inner.get("id")
        if type(value) is str:
            return value
    return None


def route_ids(method: str, params: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """``(turn_id, thread_id)`` of a notification or server request, from its raw params.

    Known methods read exactly where the schema puts the ids (``TURN_ID_LOCATION`` /
    ``THREAD_ID_LOCATION``); unknown ones (newer servers) fall back to ``params["turnId"]`` or
    ``params["turn"]["id"]`` and ``params["threadId"]`` or ``params["thread"]["id"]``. Never
    raises: non-mapping params or non-string ids give ``None``.
    """
    if type(params) is not dict and not isinstance(params, Mapping):
        return None, None
    route = _ROUTES.get(method) if type(method) is str else None
    if route is None:
        return _fallback(params, "turnId", "turn"), _fallback(params, "threadId", "thread")
    turn_key, turn_nested, thread_key, thread_nested = route
    turn = params.get(turn_key) if turn_key else None
    if turn_nested:
        turn = turn.get("id") if type(turn) is dict or isinstance(turn, Mapping) else None
    thread = params.get(thread_key) if thread_key else None
    if thread_nested:
        thread = thread.get("id") if type(thread) is dict or isinstance(thread, Mapping) else None
    return (
        turn if type(turn) is str else None,
        thread if type(thread) is str else None,
    )


_GENERATED = "codex_notebook.protocol._generated"
_generated: ModuleType | None = None


def generated_module() -> ModuleType:
    """The generated models module, imported on first use (it is large)."""
    global _generated
    if _generated is None:
        _generated = importlib.import_module(_GENERATED)
    return _generated


def _model(name: str | None) -> type[BaseModel] | None:
    if name is None:
        return None
    from pydantic import BaseModel

    model = getattr(generated_module(), name, None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    return None


_PARAMS_TABLES: dict[str, Mapping[str, str]] = {
    "notification": NOTIFICATION_PARAMS,
    "server_request": SERVER_REQUEST_PARAMS,
    "client_request": CLIENT_REQUEST_PARAMS,
}
_RESPONSE_TABLES: dict[str, Mapping[str, str]] = {
    "client_request": CLIENT_REQUEST_RESPONSES,
    "server_request": SERVER_REQUEST_RESPONSES,
}


def params_model(
    method: str,
    kind: Literal["notification", "server_request", "client_request"] = "notification",
) -> type[BaseModel] | None:
    """The pydantic model of ``method``'s params, or ``None`` for an unknown method."""
    table = _PARAMS_TABLES.get(kind)
    return _model(table.get(method)) if table is not None else None


def response_model(
    method: str,
    kind: Literal["client_request", "server_request"] = "client_request",
) -> type[BaseModel] | None:
    """The pydantic model of ``method``'s result: what the server answers to a client request
    (default), or with ``kind="server_request"`` what the client must send back."""
    table = _RESPONSE_TABLES.get(kind)
    return _model(table.get(method)) if table is not None else None
