"""Building request params: keyword options in, checked camelCase wire dicts out.

Written once for the sync and asyncio clients.  Nothing unknown reaches the
wire: keyword options beyond the explicit parameters are checked against the
generated params model of the method (``protocol.params_model``), so a typo
such as ``developer_instruction=`` fails here, by name, with the valid names in
the message, instead of being silently ignored by the server.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel

from . import protocol
from .errors import InvalidArgumentError, ProtocolError
from .policies import approval_fields, sandbox_mode, sandbox_policy

__all__ = [
    "InputLike",
    "check_options",
    "input_items",
    "output_model",
    "output_schema_of",
    "strict_schema",
    "thread_id_of",
    "thread_params",
    "turn_id_of",
    "turn_params",
]

InputLike = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]]

# Wire fields this library sets itself, and the parameter a caller uses instead.
_MANAGED: dict[str, str] = {
    "approval_policy": "approval_policy='ask'|'review'|'deny'",
    "approvals_reviewer": "approval_policy='ask'|'review'|'deny'",
    "sandbox": "sandbox='read-only'|'workspace-write'|'full-access'",
    "sandbox_policy": "sandbox='read-only'|'workspace-write'|'full-access'",
    "thread_id": "the thread (it is sent for you)",
    "expected_turn_id": "the turn handle (it is sent for you)",
    "input": "the input argument",
    "output_schema": "output_schema=",
    "exclude_turns": "include_turns=",
    "dynamic_tools": "tools=",
}


@cache
def _wire_names(method: str) -> dict[str, str]:
    """Python field name -> wire name, from the generated params model of ``method``."""
    model = protocol.params_model(method, "client_request")
    if model is None:  # pragma: no cover - every method we build params for is generated
        return {}
    return {name: field.alias or name for name, field in model.model_fields.items()}


def check_options(method: str, options: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """Translate extra keyword options of ``where`` (e.g. ``"thread_start()"``) to wire names.

    Options set to None are dropped (None means "server default" everywhere in this API).
    Raises :class:`InvalidArgumentError` for a name the method's params model does not have,
    or one this library manages through a dedicated parameter.
    """
    if not options:
        return {}
    names = _wire_names(method)
    wire: dict[str, Any] = {}
    for key, value in options.items():
        if key in _MANAGED:
            raise InvalidArgumentError(f"{where} does not take {key}=; set it with {_MANAGED[key]}")
        if key not in names:
            valid = sorted(n for n in names if n not in _MANAGED)
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" Did you mean {close[0]}=?" if close else ""
            raise InvalidArgumentError(
                f"{where} got an unknown option {key}=.{hint} "
                f"Valid options for {method}: {', '.join(valid)}"
            )
        if value is not None:
            wire[names[key]] = value
    return wire


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _path(value: str | os.PathLike[str] | None) -> str | None:
    return os.fspath(value) if value is not None else None


def thread_params(
    method: str,
    *,
    where: str,
    model: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    sandbox: str | None = None,
    approval_policy: str | None = None,
    config: Mapping[str, Any] | None = None,
    base_instructions: str | None = None,
    developer_instructions: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Params shared by thread/start, thread/resume and thread/fork (camelCase on the wire)."""
    return {
        **_drop_none(
            {
                "model": model,
                "cwd": _path(cwd),
                "sandbox": sandbox_mode(sandbox),
                "config": dict(config) if config else None,
                "baseInstructions": base_instructions,
                "developerInstructions": developer_instructions,
            }
        ),
        **approval_fields(approval_policy),
        **check_options(method, options or {}, where=where),
    }


def input_items(value: InputLike) -> list[dict[str, Any]]:
    """A prompt string, one input item, or a list of them -> the wire's input list."""
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if isinstance(value, Mapping):
        return [dict(value)]
    if not isinstance(value, Sequence):
        raise InvalidArgumentError(
            f"a turn's input must be a prompt string, an input item dict or a list of them, "
            f"not {type(value).__name__}"
        )
    items: list[dict[str, Any]] = []
    for part in value:
        if not isinstance(part, (str, Mapping)):
            raise InvalidArgumentError(
                f"each input part must be a string or an input item dict, not {type(part).__name__}"
            )
        items.extend(input_items(part))
    if not items:
        raise InvalidArgumentError("a turn needs some input: pass a prompt string or input items")
    return items


def output_schema_of(schema: type[BaseModel] | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """JSON Schema for ``outputSchema``: from a pydantic model (made strict) or as given."""
    if schema is None:
        return None
    if isinstance(schema, Mapping):
        return dict(schema)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        strict: dict[str, Any] = strict_schema(schema.model_json_schema())
        return strict
    raise InvalidArgumentError(
        f"output_schema must be a pydantic model class or a JSON Schema dict, "
        f"not {type(schema).__name__}"
    )


def strict_schema(node: Any) -> Any:
    """Make a pydantic JSON Schema acceptable to strict structured outputs.

    OpenAI's strict mode wants every object closed (``additionalProperties:
    false``) with all properties required; optional fields stay expressible as
    ``anyOf [..., null]``, which pydantic already emits for ``X | None``.
    """
    if isinstance(node, list):
        return [strict_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items() if k != "default"}
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    return out


def turn_params(
    thread_id: str,
    value: InputLike,
    *,
    model: str | None = None,
    effort: str | None = None,
    summary: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    sandbox: str | None = None,
    approval_policy: str | None = None,
    output_schema: type[BaseModel] | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Params of turn/start."""
    return {
        **_drop_none(
            {
                "threadId": thread_id,
                "input": input_items(value),
                "model": model,
                "effort": effort,
                "summary": summary,
                "cwd": _path(cwd),
                "sandboxPolicy": sandbox_policy(sandbox),
                "outputSchema": output_schema_of(output_schema),
            }
        ),
        **approval_fields(approval_policy),
        **check_options("turn/start", options or {}, where="turn()"),
    }


def output_model(schema: type[BaseModel] | Mapping[str, Any] | None) -> type[BaseModel] | None:
    return schema if isinstance(schema, type) and issubclass(schema, BaseModel) else None


def thread_id_of(result: Any, method: str) -> str:
    thread = result.get("thread") if isinstance(result, dict) else None
    thread_id = thread.get("id") if isinstance(thread, dict) else None
    if not isinstance(thread_id, str):
        raise ProtocolError(f"{method} answered without a thread id: {str(result)[:300]}")
    return thread_id


def turn_id_of(result: Any) -> str:
    turn = result.get("turn") if isinstance(result, dict) else None
    turn_id = turn.get("id") if isinstance(turn, dict) else None
    if not isinstance(turn_id, str):
        raise ProtocolError(f"turn/start answered without a turn id: {str(result)[:300]}")
    return turn_id
