"""The user's variables: a snapshot of the namespace, which names are the user's, dotted lookups.

``user_ns`` is a dict the kernel's main thread mutates while cells run.  A worker thread may
only read a snapshot (``list(user_ns.items())`` is taken atomically under the GIL; iterating the
dict itself raised "dictionary changed size during iteration", JUPYTER.md).  Resolving a dotted
name runs ``getattr`` — properties are user code — so do it on the main thread.

What counts as the user's: the rule of IPython's ``%who`` — names not starting with ``_``, and
not IPython's own start-up names (``shell.user_ns_hidden``) unless the user rebound them.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ResolveError", "resolve", "snapshot", "user_variables", "valid_name"]

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class ResolveError(LookupError):
    """A name the agent asked about does not resolve; the message is written for the model."""


def snapshot(shell: Any) -> list[tuple[str, object]]:
    """A consistent copy of the namespace's items, safe to take from any thread."""
    return list(shell.user_ns.items())


def user_variables(
    shell: Any, items: Iterable[tuple[str, object]] | None = None
) -> dict[str, object]:
    """The user's own variables, in definition order (``%who``'s rule; modules included).

    ``items`` is a snapshot from :func:`snapshot`; without it one is taken now.
    """
    hidden: Mapping[str, object] = getattr(shell, "user_ns_hidden", {}) or {}
    missing = object()
    return {
        name: value
        for name, value in (snapshot(shell) if items is None else items)
        if not name.startswith("_") and value is not hidden.get(name, missing)
    }


def valid_name(name: str) -> bool:
    """Is this a variable name or a dotted attribute path (``df``, ``model.coef_``)?"""
    return _DOTTED.fullmatch(name) is not None


def resolve(namespace: Mapping[str, object], name: str) -> object:
    """The value of ``name`` (``df`` or ``model.coef_``) without evaluating any code.

    Each segment is looked up with ``getattr`` (properties run: that is attribute access),
    except that:

    - nothing is imported: on a module only the attributes it already holds are visible (its
      ``__getattr__``, which lazy packages use to import submodules, is not called);
    - dunder segments (``__class__``, ``__globals__``) are refused, so a lookup cannot walk to
      interpreter internals;
    - no indexing, calls or expressions: the agent has ``run_python`` for those.

    Raises :class:`ResolveError` with a message that says what was wrong (and close matches).
    """
    name = name.strip()
    if not valid_name(name):
        raise ResolveError(
            f"{name!r} is not a variable name or a dotted attribute path such as 'df' or "
            "'model.coef_' (no indexing, calls or expressions; use run_python for those)"
        )
    first, *rest = name.split(".")
    if first not in namespace:
        close = difflib.get_close_matches(first, [k for k in namespace if not k.startswith("_")])
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ResolveError(f"there is no variable named {first!r} in the notebook.{hint}")
    value = namespace[first]
    path = first
    for attr in rest:
        if attr.startswith("__"):
            raise ResolveError(f"{path}.{attr}: dunder attributes are not looked up")
        if isinstance(value, types.ModuleType):
            members = vars(value)
            if attr not in members:
                raise ResolveError(
                    f"module {path!r} has no attribute {attr!r} loaded (submodules that were "
                    "never imported are not imported for you)"
                )
            value = members[attr]
        else:
            try:
                value = getattr(value, attr)
            except AttributeError:
                close = difflib.get_close_matches(attr, _public_attrs(value))
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise ResolveError(
                    f"{path} ({type(value).__name__}) has no attribute {attr!r}.{hint}"
                ) from None
            except Exception as exc:  # a property raised
                raise ResolveError(
                    f"reading {path}.{attr} raised {type(exc).__name__}: {exc}"
                ) from None
        path = f"{path}.{attr}"
    return value


def _public_attrs(value: object) -> list[str]:
    try:
        return [a for a in dir(value) if not a.startswith("_")]
    except Exception:
        return []
