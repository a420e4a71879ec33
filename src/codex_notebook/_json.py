"""Strict JSON encoding of what we send, with errors that name the offending field.

orjson would quietly turn a ``datetime`` or a dataclass into JSON; a request
param of that kind is almost always a mistake, and the server would see
something the caller did not mean.  So only JSON's own types are accepted
(str, int, float, bool, None, dict with str keys, list, tuple), and anything
else is an :class:`~codex_notebook.errors.InvalidArgumentError` naming the
path, e.g. ``params.config.when``.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import InvalidArgumentError

__all__ = ["check_json"]

_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def check_json(value: Any, where: str) -> None:
    """Raise :class:`InvalidArgumentError` unless ``value`` is plain JSON data."""
    try:
        orjson.dumps(value, option=_STRICT)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        path, bad = _first_bad(value, where)
        what = f"of type {type(bad).__name__}" if bad is not _NOT_FOUND else "not JSON"
        raise InvalidArgumentError(
            f"{path} is {what}, which cannot be sent as JSON ({exc}); "
            "pass str, int, float, bool, None, or lists and str-keyed dicts of them"
        ) from exc


_NOT_FOUND = object()


def _first_bad(value: Any, path: str) -> tuple[str, Any]:
    """The path and value of the first thing that is not plain JSON (depth first)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return path, _NOT_FOUND
    if isinstance(value, int):
        return (path, value) if not -(2**63) <= value < 2**64 else (path, _NOT_FOUND)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} key {key!r}", key
            found = _first_bad(item, f"{path}.{key}")
            if found[1] is not _NOT_FOUND:
                return found
        return path, _NOT_FOUND
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _first_bad(item, f"{path}[{index}]")
            if found[1] is not _NOT_FOUND:
                return found
        return path, _NOT_FOUND
    return path, value
