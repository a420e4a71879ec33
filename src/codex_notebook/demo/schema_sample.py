"""Build a deterministic JSON instance that satisfies a JSON Schema.

The demo model has no language model behind it, yet a turn that asks for structured output
(``turn/start`` with ``outputSchema``, forwarded by codex as ``text.format`` of type
``json_schema``) must still end with a JSON document the client can validate and parse into
the user's pydantic model. :func:`sample_instance` walks the schema and picks the simplest valid
value at every node, always the same one, so tests can assert exact documents.

Supported: ``type`` (single or list), ``object``/``properties``/``required``, ``array``/``items``/
``prefixItems``/``minItems``/``maxItems``, ``enum``, ``const``, ``default``, ``examples``,
``anyOf``/``oneOf`` (first usable branch), ``allOf`` (merged), ``$ref`` into ``$defs``/
``definitions`` (and ``#``), numeric bounds and ``multipleOf``, string length bounds, and a few
common ``format`` values so pydantic's ``datetime``/``date``/``UUID``... fields validate. Other
keywords (``pattern``, ``not``, ``if``...) are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["SchemaSampleError", "sample_instance"]

# Past this depth a recursive schema (a tree node that contains nodes) stops growing: optional
# properties are dropped, arrays stay at their minimum length and nullable branches win.
_MAX_DEPTH = 6

_FORMAT_SAMPLES: dict[str, str] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "duration": "PT1S",
    "email": "demo@example.com",
    "idn-email": "demo@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "json-pointer": "/demo",
    "regex": "demo",
}

_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")


class SchemaSampleError(ValueError):
    """The schema cannot be satisfied by this sampler (bad ``$ref``, non-schema value...)."""


def sample_instance(schema: Mapping[str, Any] | bool) -> Any:
    """Return a deterministic JSON value (dicts, lists, str, int, float, bool, None) for *schema*.

    The same schema always yields the same value. Every property of an object is filled (not only
    the required ones) because OpenAI's strict structured output requires all of them and a
    fuller document shows better in a demo; recursion is cut off at a fixed depth.
    """
    return _Sampler(schema).sample(schema, depth=0, hint="")


class _Sampler:
    """One walk over one root schema; holds the root so ``$ref`` can be resolved."""

    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        self._root = root

    def sample(self, schema: Any, *, depth: int, hint: str) -> Any:
        if schema is True or schema is None:
            return None
        if schema is False:
            raise SchemaSampleError("the schema `false` accepts no value")
        if not isinstance(schema, Mapping):
            raise SchemaSampleError(f"not a JSON Schema: {schema!r}")
        if depth > 64:
            raise SchemaSampleError("schema recursion too deep (a $ref cycle with no way out?)")

        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[0]
        if "default" in schema:
            return schema["default"]
        examples = schema.get("examples")
        if isinstance(examples, list) and examples:
            return examples[0]

        if "allOf" in schema and isinstance(schema["allOf"], list):
            merged = _merge_all_of(schema, [self._resolve(part) for part in schema["allOf"]])
            return self.sample(merged, depth=depth + 1, hint=hint)
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                branch = self._pick_branch(branches, depth)
                combined = _merge_all_of(rest, [self._resolve(branch)]) if rest else branch
                return self.sample(combined, depth=depth + 1, hint=hint)

        kind = self._type_of(schema, depth)
        if kind == "object":
            return self._object(schema, depth, hint)
        if kind == "array":
            return self._array(schema, depth, hint)
        if kind == "string":
            return _string(schema, hint)
        if kind == "integer":
            return _integer(schema)
        if kind == "number":
            return _number(schema)
        if kind == "boolean":
            return True
        return None

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow ``$ref`` chains; keywords beside a ``$ref`` override the referenced ones."""
        seen: set[str] = set()
        while isinstance(schema.get("$ref"), str):
            ref: str = schema["$ref"]
            if ref in seen:
                raise SchemaSampleError(f"$ref cycle at {ref}")
            seen.add(ref)
            target = self._lookup(ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings} if siblings else target
        return schema

    def _lookup(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            raise SchemaSampleError(f"only local $ref is supported, got {ref!r}")
        node: Any = self._root
        pointer = ref[1:]
        if pointer:
            for raw in pointer.lstrip("/").split("/"):
                token = raw.replace("~1", "/").replace("~0", "~")
                if isinstance(node, Mapping) and token in node:
                    node = node[token]
                elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                    node = node[int(token)]
                else:
                    raise SchemaSampleError(f"unresolvable $ref {ref!r}")
        if node is True:
            return {}
        if not isinstance(node, Mapping):
            raise SchemaSampleError(f"$ref {ref!r} does not point at a schema")
        return node

    def _pick_branch(self, branches: list[Any], depth: int) -> Any:
        """First branch that is not ``null``; deep in recursion prefer ones that end it."""
        usable = [b for b in branches if b is not False]
        if not usable:
            raise SchemaSampleError("anyOf/oneOf has no satisfiable branch")
        if depth >= _MAX_DEPTH:
            for branch in usable:
                if isinstance(branch, Mapping) and "$ref" not in branch:
                    return branch
            return usable[0]
        for branch in usable:
            resolved = self._resolve(branch) if isinstance(branch, Mapping) else branch
            if not (isinstance(resolved, Mapping) and resolved.get("type") == "null"):
                return branch
        return usable[0]

    def _type_of(self, schema: Mapping[str, Any], depth: int) -> str | None:
        declared = schema.get("type")
        if isinstance(declared, str):
            return declared
        if isinstance(declared, list) and declared:
            names = [t for t in declared if isinstance(t, str)]
            if depth >= _MAX_DEPTH and "null" in names:
                return "null"
            non_null = [t for t in names if t != "null"]
            if non_null:
                return min(non_null, key=lambda t: _TYPE_ORDER.index(t) if t in _TYPE_ORDER else 99)
            return "null"
        if "properties" in schema or "required" in schema or "additionalProperties" in schema:
            return "object"
        if "items" in schema or "prefixItems" in schema:
            return "array"
        return None

    def _object(self, schema: Mapping[str, Any], depth: int, hint: str) -> dict[str, Any]:
        properties = schema.get("properties")
        props: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
        required_raw = schema.get("required")
        required = (
            [r for r in required_raw if isinstance(r, str)]
            if isinstance(required_raw, list)
            else []
        )
        keep_all = depth < _MAX_DEPTH
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if keep_all or name in required:
                out[name] = self.sample(sub, depth=depth + 1, hint=name)
        for name in required:
            if name not in out:
                extra = schema.get("additionalProperties")
                sub = extra if isinstance(extra, Mapping) else {"type": "string"}
                out[name] = self.sample(sub, depth=depth + 1, hint=name)
        min_props = schema.get("minProperties")
        if isinstance(min_props, int) and len(out) < min_props:
            extra = schema.get("additionalProperties")
            sub = extra if isinstance(extra, Mapping) else {"type": "string"}
            index = 0
            while len(out) < min_props:
                key = f"{hint or 'key'}_{index}"
                index += 1
                if key not in out:
                    out[key] = self.sample(sub, depth=depth + 1, hint=key)
        return out

    def _array(self, schema: Mapping[str, Any], depth: int, hint: str) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(items, list):  # draft 4-7 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        prefix_list: list[Any] = prefix if isinstance(prefix, list) else []
        min_items = schema.get("minItems")
        max_items = schema.get("maxItems")
        wanted = max(min_items if isinstance(min_items, int) else 0, len(prefix_list))
        if depth < _MAX_DEPTH:
            wanted = max(wanted, 1)
        if isinstance(max_items, int):
            wanted = min(wanted, max_items)
        if items is False:
            wanted = min(wanted, len(prefix_list))
        item_hint = hint[:-1] if hint.endswith("s") and len(hint) > 1 else hint
        out: list[Any] = []
        while len(out) < wanted:
            index = len(out)
            if index < len(prefix_list):
                sub = prefix_list[index]
            else:
                sub = items if isinstance(items, Mapping) else {}
            value = self.sample(sub, depth=depth + 1, hint=item_hint)
            if schema.get("uniqueItems") is True and value in out:
                break
            out.append(value)
        return out


def _merge_all_of(base: Mapping[str, Any], parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Fold ``allOf`` parts into one schema: properties and required are unioned."""
    merged: dict[str, Any] = {k: v for k, v in base.items() if k != "allOf"}
    for part in parts:
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                props = dict(merged.get("properties") or {})
                props.update(value)
                merged["properties"] = props
            elif key == "required" and isinstance(value, list):
                required = list(merged.get("required") or [])
                required.extend(v for v in value if v not in required)
                merged["required"] = required
            elif key not in merged:
                merged[key] = value
    return merged


def _string(schema: Mapping[str, Any], hint: str) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMAT_SAMPLES:
        return _FORMAT_SAMPLES[fmt]
    text = f"example {hint}" if hint else "example"
    min_len = schema.get("minLength")
    max_len = schema.get("maxLength")
    if isinstance(min_len, int) and len(text) < min_len:
        text = (text + " " + "x" * min_len)[:min_len]
    if isinstance(max_len, int) and len(text) > max_len:
        text = text[:max_len]
    return text


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    """(low, high, low_exclusive, high_exclusive), accepting draft-4 boolean exclusives."""
    low = schema.get("minimum")
    high = schema.get("maximum")
    low_ex = high_ex = False
    ex_min = schema.get("exclusiveMinimum")
    ex_max = schema.get("exclusiveMaximum")
    if isinstance(ex_min, bool):
        low_ex = ex_min
    elif isinstance(ex_min, (int, float)) and (low is None or ex_min >= low):
        low, low_ex = ex_min, True
    if isinstance(ex_max, bool):
        high_ex = ex_max
    elif isinstance(ex_max, (int, float)) and (high is None or ex_max <= high):
        high, high_ex = ex_max, True
    low_f = float(low) if isinstance(low, (int, float)) and not isinstance(low, bool) else None
    high_f = float(high) if isinstance(high, (int, float)) and not isinstance(high, bool) else None
    return low_f, high_f, low_ex, high_ex


def _integer(schema: Mapping[str, Any]) -> int:
    low, high, low_ex, high_ex = _bounds(schema)
    lo = None if low is None else (math.floor(low) + 1 if low_ex else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_ex else math.floor(high))
    value = 0
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    step = schema.get("multipleOf")
    if isinstance(step, int) and not isinstance(step, bool) and step > 0 and value % step:
        value += step - value % step
        if hi is not None and value > hi:
            value -= step
    return value


def _number(schema: Mapping[str, Any]) -> float:
    low, high, low_ex, high_ex = _bounds(schema)
    value = 0.0
    if low is not None and (value < low or (low_ex and value <= low)):
        value = low + 1.0 if low_ex else low
    if high is not None and (value > high or (high_ex and value >= high)):
        value = high - 1.0 if high_ex else high
    if low is not None and high is not None and (value < low or (low_ex and value <= low)):
        value = (low + high) / 2
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
        candidate = math.ceil(value / step) * float(step)
        if high is not None and (candidate > high or (high_ex and candidate >= high)):
            candidate = math.floor(value / step) * float(step)
        value = candidate
    return float(value)
