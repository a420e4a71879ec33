#!/usr/bin/env python3
"""Generate ``codex_notebook.protocol`` from the codex binary's own JSON Schema.

Maintainer tool. It never hand-writes protocol knowledge that the schema carries:

1. ``<codex> app-server generate-json-schema --out TMP`` dumps the schema.
2. The v2 bundle (``codex_app_server_protocol.v2.schemas.json``) is merged with the root-level
   definitions of the full bundle (``codex_app_server_protocol.schemas.json``): the v2 bundle
   lacks the server -> client request params/responses (approvals, user input, ...) and the v1
   ``InitializeResponse``. The merge checks that every shared definition is identical.
3. datamodel-code-generator (run with this interpreter) turns the merged definitions into
   pydantic v2 models: ``<out>/_generated.py``.
4. The routing registry ``<out>/_registry.py`` (plain literals, imports nothing) is derived from
   the schema: method -> params/response class names from the ``ServerNotification`` /
   ``ServerRequest`` / ``ClientRequest`` unions, and where each method's params carry the turn and
   thread ids (found by resolving ``$ref``s in the params schema).

Usage::

    python scripts/generate_protocol.py [--codex-bin PATH] [--out DIR]    # regenerate
    python scripts/generate_protocol.py --check                          # drift check (CI)
    python scripts/generate_protocol.py diff OLD NEW                     # compare two versions

``OLD`` / ``NEW`` are codex binaries or directories written by ``generate-json-schema``.
Output is deterministic (sorted, no timestamps), so ``--check`` is a plain text comparison.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "src" / "codex_notebook" / "protocol"
GENERATED_FILE = "_generated.py"
REGISTRY_FILE = "_registry.py"
BASE_CLASS = "codex_notebook.protocol._base.ProtocolModel"

V2_BUNDLE = "codex_app_server_protocol.v2.schemas.json"
FULL_BUNDLE = "codex_app_server_protocol.schemas.json"

# Envelope unions: read by the registry builder, but not turned into models (they only produce
# numbered variant classes such as ``ServerNotification37`` whose names shift between releases).
ENVELOPES = ("ClientNotification", "ClientRequest", "ServerNotification", "ServerRequest")

# The schema names every request's params type but not its response type. Responses are found by
# the convention ``FooParams -> FooResponse``; the client requests below break the convention
# (no params, or a shared response), so their response type is listed here, as declared in
# codex-rs/app-server-protocol/src/protocol/common.rs. Entries whose class is missing from the
# schema are reported and skipped, never invented.
CLIENT_RESPONSE_OVERRIDES: dict[str, str] = {
    "account/gatewayOAuth/cancel": "GatewayOAuthCancelResponse",
    "account/gatewayOAuth/login": "GatewayOAuthLoginResponse",
    "account/gatewayOAuth/read": "GatewayOAuthReadResponse",
    "account/logout": "LogoutAccountResponse",
    "account/securitySetup/read": "GetAccountSecuritySetupResponse",  # 0.169+
    "account/workspaceMessages/read": "GetWorkspaceMessagesResponse",
    "config/batchWrite": "ConfigWriteResponse",
    "config/mcpServer/reload": "McpServerRefreshResponse",
    "config/value/write": "ConfigWriteResponse",
    "configRequirements/read": "ConfigRequirementsReadResponse",
    "externalAgentConfig/import/readHistories": "ExternalAgentConfigImportHistoriesReadResponse",
    "windowsSandbox/readiness": "WindowsSandboxReadinessResponse",
}

CODEGEN_ARGS = (
    "--input-file-type=jsonschema",
    "--output-model-type=pydantic_v2.BaseModel",
    f"--base-class={BASE_CLASS}",
    "--snake-case-field",
    "--target-python-version=3.10",
    "--use-standard-collections",
    "--use-union-operator",
    "--use-double-quotes",
    "--field-constraints",
    "--collapse-root-models",
    "--enum-field-as-literal=all",
    "--use-schema-description",
    "--disable-timestamp",
    "--formatters",
    "black",
    "isort",
)


class GenerationError(RuntimeError):
    """The schema does not have the shape this generator relies on."""


# --------------------------------------------------------------------------------------------
# Getting the schema


def find_codex_bin(explicit: str | None) -> str:
    """``--codex-bin`` -> ``$CODEX_BIN`` -> the bundled ``codex_cli_bin`` binary -> PATH."""
    if explicit:
        return explicit
    if os.environ.get("CODEX_BIN"):
        return os.environ["CODEX_BIN"]
    try:
        import codex_cli_bin

        return str(codex_cli_bin.bundled_codex_path())
    except Exception:
        pass
    found = shutil.which("codex")
    if found:
        return found
    raise GenerationError("no codex binary: pass --codex-bin, set CODEX_BIN or install it")


def codex_version(codex_bin: str) -> str:
    out = subprocess.run(
        [codex_bin, "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    match = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    if not match:
        raise GenerationError(f"cannot parse `{codex_bin} --version` output: {out!r}")
    return match.group(1)


def dump_schema(codex_bin: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [codex_bin, "app-server", "generate-json-schema", "--out", str(dest)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    if not (dest / V2_BUNDLE).is_file():
        raise GenerationError(f"{codex_bin} wrote no {V2_BUNDLE} into {dest}")
    return dest


@dataclass
class SchemaSource:
    """A schema directory plus the codex version it came from (``None`` if unknown)."""

    directory: Path
    version: str | None


def materialize(spec: str, workdir: Path) -> SchemaSource:
    """A codex binary or an existing schema directory -> a schema directory."""
    path = Path(spec)
    if path.is_dir():
        return SchemaSource(path, None)
    dest = workdir / f"schema-{len(list(workdir.iterdir()))}"
    return SchemaSource(dump_schema(spec, dest), codex_version(spec))


# --------------------------------------------------------------------------------------------
# Reading the schema


def _rewrite_v2_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (v.replace("#/definitions/v2/", "#/definitions/") if k == "$ref" else v)
            if isinstance(v, str)
            else _rewrite_v2_refs(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_v2_refs(v) for v in node]
    return node


def _essence(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in ("$schema", "title")}


def load_definitions(schema_dir: Path) -> dict[str, Any]:
    """All definitions: the v2 bundle plus the full bundle's root-level ones, refs flattened."""
    v2 = json.loads((schema_dir / V2_BUNDLE).read_text(encoding="utf-8"))
    definitions: dict[str, Any] = dict(v2["definitions"])
    full_path = schema_dir / FULL_BUNDLE
    if full_path.is_file():
        full = json.loads(full_path.read_text(encoding="utf-8"))
        for name, node in full["definitions"].items():
            if name == "v2":
                continue
            node = _rewrite_v2_refs(node)
            if name in definitions:
                if _essence(node) != _essence(definitions[name]):
                    raise GenerationError(f"definition {name} differs between the two bundles")
                continue
            definitions[name] = node
    else:
        # Older layouts: fall back to the per-type files for the server -> client requests.
        for path in sorted(schema_dir.glob("*.json")):
            if path.name in (V2_BUNDLE, FULL_BUNDLE):
                continue
            node = json.loads(path.read_text(encoding="utf-8"))
            for name, sub in node.pop("definitions", {}).items():
                definitions.setdefault(name, sub)
            definitions.setdefault(path.stem, node)
    missing = [name for name in ("ServerNotification", "ClientRequest") if name not in definitions]
    if "ServerRequest" not in definitions and (schema_dir / "ServerRequest.json").is_file():
        node = json.loads((schema_dir / "ServerRequest.json").read_text(encoding="utf-8"))
        for name, sub in node.pop("definitions", {}).items():
            definitions.setdefault(name, sub)
        definitions["ServerRequest"] = node
    if "ServerRequest" not in definitions:
        missing.append("ServerRequest")
    if missing:
        raise GenerationError(f"schema in {schema_dir} lacks {', '.join(missing)}")
    return dict(sorted(definitions.items()))


def ref_name(node: Any) -> str | None:
    """``{"$ref": "#/definitions/X"}`` (possibly inside a nullable anyOf) -> ``"X"``."""
    if not isinstance(node, dict):
        return None
    ref = node.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = node.get(key)
        if isinstance(branches, list):
            names = [ref_name(b) for b in branches if not _is_null(b)]
            if len(names) == 1:
                return names[0]
    return None


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null" and len(node) <= 2


@dataclass
class Method:
    method: str
    params: str | None  # params definition name; None when the method takes no params
    params_nullable: bool = False


def envelope_methods(definitions: dict[str, Any], envelope: str) -> list[Method]:
    """The ``oneOf`` entries of an envelope union: ``method`` enum -> ``params`` $ref."""
    methods: list[Method] = []
    for entry in definitions[envelope].get("oneOf", []):
        props = entry.get("properties", {})
        enum = props.get("method", {}).get("enum")
        if not (isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str)):
            raise GenerationError(f"{envelope} entry without a single method enum: {entry}")
        params = props.get("params")
        name = ref_name(params)
        nullable = (
            params is None
            or _is_null(params)
            or "params" not in entry.get("required", [])
            or any(_is_null(b) for b in (params or {}).get("anyOf", []))
        )
        if params is not None and not _is_null(params) and name is None:
            raise GenerationError(f"{envelope} {enum[0]}: params is not a $ref: {params}")
        methods.append(Method(enum[0], name, nullable))
    names = [m.method for m in methods]
    if len(names) != len(set(names)):
        raise GenerationError(f"{envelope} lists a method twice")
    return sorted(methods, key=lambda m: m.method)


# --------------------------------------------------------------------------------------------
# Where the ids live


def resolve(definitions: dict[str, Any], node: Any) -> Any:
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            break
        seen.add(name)
        node = definitions.get(name, {})
    return node


def _nullable(definitions: dict[str, Any], node: Any) -> bool:
    node = resolve(definitions, node)
    if not isinstance(node, dict):
        return True
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    for key in ("anyOf", "oneOf"):
        branches = node.get(key)
        if isinstance(branches, list) and any(
            _nullable(definitions, branch) for branch in branches
        ):
            return True
    return False


def _object_branches(definitions: dict[str, Any], node: Any) -> list[dict[str, Any]]:
    """The object schemas a (possibly nullable / union) schema can take."""
    node = resolve(definitions, node)
    if not isinstance(node, dict):
        return []
    # An object's own properties apply to every branch of its combinators
    # (e.g. McpServerElicitationRequestParams: {threadId, turnId} + oneOf the four modes).
    own: dict[str, Any] = {
        "properties": dict(node.get("properties", {})),
        "required": list(node.get("required", [])),
    }
    branches: list[dict[str, Any]] = [own]
    for key in ("allOf", "anyOf", "oneOf"):
        if not isinstance(node.get(key), list):
            continue
        alternatives = [
            obj for branch in node[key] for obj in _object_branches(definitions, branch)
        ]
        if key == "allOf":  # every part holds: merge them all into each branch
            alternatives = [_merge(alternatives)] if alternatives else []
        if alternatives:
            branches = [_merge([b, alt]) for b in branches for alt in alternatives]
        elif key != "allOf" and not own["properties"]:
            return []  # e.g. a union of non-objects
    return [b for b in branches if b["properties"]]


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in parts:
        properties.update(part.get("properties", {}))
        required += [r for r in part.get("required", []) if r not in required]
    return {"properties": properties, "required": required}


def id_location(definitions: dict[str, Any], params: str | None, entity: str) -> str:
    """``nested`` (params.<entity>.id) / ``direct`` (params.<entity>Id, required, non-null) /
    ``nullable`` (params.<entity>Id optional or nullable) / ``none``."""
    if params is None:
        return "none"
    branches = _object_branches(definitions, {"$ref": f"#/definitions/{params}"})
    if not branches:
        return "none"
    found: set[str] = set()
    for obj in branches:
        props = obj.get("properties", {})
        required = set(obj.get("required", []))
        key = f"{entity}Id"
        if key in props:
            direct = key in required and not _nullable(definitions, props[key])
            found.add("direct" if direct else "nullable")
        elif entity in props and any(
            "id" in b.get("properties", {}) for b in _object_branches(definitions, props[entity])
        ):
            found.add("nested")
        else:
            found.add("none")
    if len(found) == 1:
        return found.pop()
    # Union params whose variants disagree: the id may be absent, so the caller must cope.
    return "nullable" if found <= {"direct", "nullable", "none"} else sorted(found)[0]


# --------------------------------------------------------------------------------------------
# The registry


@dataclass
class Registry:
    version: str
    schema_sha256: str
    notification_params: dict[str, str] = field(default_factory=dict)
    server_request_params: dict[str, str] = field(default_factory=dict)
    server_request_responses: dict[str, str] = field(default_factory=dict)
    client_request_params: dict[str, str] = field(default_factory=dict)
    client_request_responses: dict[str, str] = field(default_factory=dict)
    client_request_methods: list[str] = field(default_factory=list)
    turn_id_location: dict[str, str] = field(default_factory=dict)
    thread_id_location: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def build_registry(definitions: dict[str, Any], version: str) -> Registry:
    digest = hashlib.sha256(
        json.dumps(definitions, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    reg = Registry(version=version, schema_sha256=digest)

    for m in envelope_methods(definitions, "ServerNotification"):
        if m.params is None:
            raise GenerationError(f"notification {m.method} has no params type")
        reg.notification_params[m.method] = m.params

    for m in envelope_methods(definitions, "ServerRequest"):
        if m.params is None:
            raise GenerationError(f"server request {m.method} has no params type")
        reg.server_request_params[m.method] = m.params
        response = _response_for(m.params)
        if response in definitions:
            reg.server_request_responses[m.method] = response
        else:
            reg.warnings.append(f"server request {m.method}: no {response} in the schema")

    for m in envelope_methods(definitions, "ClientRequest"):
        reg.client_request_methods.append(m.method)
        if m.params is not None:
            reg.client_request_params[m.method] = m.params
        result: str | None = _response_for(m.params) if m.params else None
        if result not in definitions:
            result = CLIENT_RESPONSE_OVERRIDES.get(m.method)
        if result is not None and result in definitions:
            reg.client_request_responses[m.method] = result
        else:
            reg.warnings.append(f"client request {m.method}: response type unknown")

    for method, params in [*reg.notification_params.items(), *reg.server_request_params.items()]:
        turn = id_location(definitions, params, "turn")
        thread = id_location(definitions, params, "thread")
        if reg.turn_id_location.get(method, turn) != turn:
            raise GenerationError(f"{method} is both a notification and a server request")
        reg.turn_id_location[method] = turn
        reg.thread_id_location[method] = thread
    reg.turn_id_location = dict(sorted(reg.turn_id_location.items()))
    reg.thread_id_location = dict(sorted(reg.thread_id_location.items()))
    return reg


def _response_for(params: str) -> str:
    stem = params[: -len("Params")] if params.endswith("Params") else params
    return f"{stem}Response"


def _dict_literal(name: str, doc: str, table: dict[str, str]) -> Iterator[str]:
    yield from (f"# {line}" for line in doc.splitlines())
    yield f"{name}: dict[str, str] = {{"
    for key in sorted(table):
        yield f"    {json.dumps(key)}: {json.dumps(table[key])},"
    yield "}"
    yield ""


def render_registry(reg: Registry) -> str:
    lines = [
        f'"""Protocol registry for codex-cli {reg.version}.',
        "",
        "GENERATED by scripts/generate_protocol.py from the codex binary's JSON Schema -- do not",
        "edit; regenerate with `python scripts/generate_protocol.py`. Plain literals only: this",
        "module must import fast and must not import ``_generated``.",
        '"""',
        "",
        f"CODEX_VERSION = {json.dumps(reg.version)}",
        f"SCHEMA_SHA256 = {json.dumps(reg.schema_sha256)}",
        "",
    ]
    lines += _dict_literal(
        "NOTIFICATION_PARAMS",
        "server notification method -> params class in _generated",
        reg.notification_params,
    )
    lines += _dict_literal(
        "SERVER_REQUEST_PARAMS",
        "server -> client request method -> params class",
        reg.server_request_params,
    )
    lines += _dict_literal(
        "SERVER_REQUEST_RESPONSES",
        "server -> client request method -> class of the result the client sends back",
        reg.server_request_responses,
    )
    lines += _dict_literal(
        "CLIENT_REQUEST_PARAMS",
        "client -> server request method -> params class (methods without params are absent)",
        reg.client_request_params,
    )
    lines += _dict_literal(
        "CLIENT_REQUEST_RESPONSES",
        "client -> server request method -> result class",
        reg.client_request_responses,
    )
    lines.append("# every client -> server request method, including those without params")
    lines.append("CLIENT_REQUEST_METHODS: tuple[str, ...] = (")
    lines += [f"    {json.dumps(m)}," for m in sorted(reg.client_request_methods)]
    lines += [")", ""]
    location_doc = (
        "notification / server request method -> where its params carry the {0} id:\n"
        '"nested" (params.{0}.id), "direct" (params.{0}Id, required, non-null),\n'
        '"nullable" (params.{0}Id, optional or null), "none" (no {0} id)'
    )
    lines += _dict_literal("TURN_ID_LOCATION", location_doc.format("turn"), reg.turn_id_location)
    lines += _dict_literal(
        "THREAD_ID_LOCATION", location_doc.format("thread"), reg.thread_id_location
    )
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------
# The models


def model_input(definitions: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "CodexAppServerProtocol",
        "definitions": {k: v for k, v in definitions.items() if k not in ENVELOPES},
    }


def run_codegen(schema_file: Path, output: Path, version: str) -> None:
    header = (
        f"Pydantic models for the codex app-server protocol (codex-cli {version}).\n"
        "GENERATED by scripts/generate_protocol.py with datamodel-code-generator from the codex\n"
        "binary's JSON Schema -- do not edit; regenerate instead."
    )
    cmd = [
        sys.executable,
        "-m",
        "datamodel_code_generator",
        f"--input={schema_file}",
        f"--output={output}",
        f"--custom-file-header={_comment(header)}",
        *CODEGEN_ARGS,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # cwd: datamodel-codegen, black and isort read pyproject.toml settings from the cwd.
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise GenerationError(f"datamodel-codegen failed:\n{proc.stderr[-4000:]}")


def _comment(text: str) -> str:
    return "\n".join(f"# {line}" if line else "#" for line in text.splitlines())


def verify_generated(generated: Path, reg: Registry) -> None:
    """Every class the registry names exists in the generated module."""
    source = generated.read_text(encoding="utf-8")
    classes = set(re.findall(r"^class (\w+)\(", source, flags=re.MULTILINE))
    tables = (
        reg.notification_params,
        reg.server_request_params,
        reg.server_request_responses,
        reg.client_request_params,
        reg.client_request_responses,
    )
    missing = sorted({name for table in tables for name in table.values()} - classes)
    if missing:
        raise GenerationError(f"registry names classes absent from the models: {missing}")


# --------------------------------------------------------------------------------------------
# Commands


def generate(codex_bin: str, out_dir: Path, quiet: bool = False) -> Registry:
    started = time.perf_counter()
    version = codex_version(codex_bin)
    with tempfile.TemporaryDirectory(prefix="codex-schema-") as tmp:
        schema_dir = dump_schema(codex_bin, Path(tmp) / "schema")
        definitions = load_definitions(schema_dir)
        reg = build_registry(definitions, version)
        schema_file = Path(tmp) / "codex_app_server_protocol.json"
        schema_file.write_text(
            json.dumps(model_input(definitions), indent=1, sort_keys=True), encoding="utf-8"
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        generated_tmp = Path(tmp) / GENERATED_FILE
        run_codegen(schema_file, generated_tmp, version)
        verify_generated(generated_tmp, reg)
        shutil.copyfile(generated_tmp, out_dir / GENERATED_FILE)
    (out_dir / REGISTRY_FILE).write_text(render_registry(reg), encoding="utf-8")
    if not quiet:
        for warning in reg.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(
            f"codex-cli {version}: {len(reg.notification_params)} notifications, "
            f"{len(reg.server_request_params)} server requests, "
            f"{len(reg.client_request_methods)} client requests -> {out_dir} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return reg


def check(codex_bin: str, out_dir: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="codex-protocol-check-") as tmp:
        fresh = Path(tmp)
        reg = generate(codex_bin, fresh, quiet=True)
        problems: list[str] = []
        for name in (GENERATED_FILE, REGISTRY_FILE):
            committed = out_dir / name
            new = (fresh / name).read_text(encoding="utf-8").splitlines(keepends=True)
            if not committed.is_file():
                problems.append(f"{committed} is missing")
                continue
            old = committed.read_text(encoding="utf-8").splitlines(keepends=True)
            if old == new:
                continue
            delta = list(difflib.unified_diff(old, new, f"committed/{name}", f"fresh/{name}"))
            added = sum(1 for d in delta if d.startswith("+") and not d.startswith("+++"))
            removed = sum(1 for d in delta if d.startswith("-") and not d.startswith("---"))
            problems.append(f"{name}: +{added} -{removed} lines")
            problems.extend("    " + d.rstrip("\n") for d in delta[:40])
            if len(delta) > 40:
                problems.append(f"    ... {len(delta) - 40} more diff lines")
    if problems:
        print(
            f"protocol drift against codex-cli {reg.version} ({codex_bin}); run "
            "`python scripts/generate_protocol.py` to regenerate:",
            file=sys.stderr,
        )
        for line in problems:
            print(line, file=sys.stderr)
        return 1
    print(f"protocol up to date with codex-cli {reg.version}")
    return 0


def _type_signature(definitions: dict[str, Any], node: Any) -> str:
    if not isinstance(node, dict):
        return "any"
    if "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(node.get(key), list):
            return "|".join(sorted(_type_signature(definitions, b) for b in node[key]))
    kind = node.get("type", "any")
    if isinstance(kind, list):
        kind = "|".join(sorted(str(k) for k in kind))
    if "enum" in node:
        return f"{kind}{sorted(map(str, node['enum']))}"
    if "array" in str(kind) and "items" in node:
        return str(kind).replace("array", f"array[{_type_signature(definitions, node['items'])}]")
    return str(kind)


def _fields(definitions: dict[str, Any], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for obj in _object_branches(definitions, {"$ref": f"#/definitions/{name}"}):
        required = set(obj.get("required", []))
        for prop, sub in obj.get("properties", {}).items():
            mark = "" if prop in required else "?"
            out[prop + mark] = _type_signature(definitions, sub)
    return out


def schema_diff(
    old: Registry, new: Registry, old_defs: dict[str, Any], new_defs: dict[str, Any]
) -> Iterator[str]:
    """Yield report lines: methods added/removed, fields changed per params/response type."""
    groups = (
        ("notifications", old.notification_params, new.notification_params),
        ("server requests", old.server_request_params, new.server_request_params),
        (
            "client requests",
            dict.fromkeys(old.client_request_methods, ""),
            dict.fromkeys(new.client_request_methods, ""),
        ),
    )
    for label, before, after in groups:
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        yield f"{label}: {len(before)} -> {len(after)}"
        yield from (f"  + {m}" for m in added)
        yield from (f"  - {m}" for m in removed)
    for label, before, after in (
        ("turn id location", old.turn_id_location, new.turn_id_location),
        ("thread id location", old.thread_id_location, new.thread_id_location),
    ):
        moved = [m for m in sorted(set(before) & set(after)) if before[m] != after[m]]
        if moved:
            yield f"{label} changed:"
            yield from (f"  ~ {m}: {before[m]} -> {after[m]}" for m in moved)
    types: set[str] = set()
    for table in ("notification_params", "server_request_params", "server_request_responses",
                  "client_request_params", "client_request_responses"):  # fmt: skip
        types |= set(getattr(old, table).values()) & set(getattr(new, table).values())
    changed: list[str] = []
    for name in sorted(types):
        a, b = _fields(old_defs, name), _fields(new_defs, name)
        if a == b:
            continue
        changed.append(f"  {name}:")
        for prop in sorted(set(a) | set(b)):
            if prop not in a:
                changed.append(f"    + {prop}: {b[prop]}")
            elif prop not in b:
                changed.append(f"    - {prop}: {a[prop]}")
            elif a[prop] != b[prop]:
                changed.append(f"    ~ {prop}: {a[prop]} -> {b[prop]}")
    yield f"params/response types with changed fields: {sum(1 for c in changed if c.endswith(':'))}"
    yield from changed


def diff(old_spec: str, new_spec: str) -> int:
    with tempfile.TemporaryDirectory(prefix="codex-schema-diff-") as tmp:
        workdir = Path(tmp)
        old_src, new_src = materialize(old_spec, workdir), materialize(new_spec, workdir)
        old_defs = load_definitions(old_src.directory)
        new_defs = load_definitions(new_src.directory)
    old = build_registry(old_defs, old_src.version or old_spec)
    new = build_registry(new_defs, new_src.version or new_spec)
    print(f"old: {old.version}   new: {new.version}")
    for line in schema_diff(old, new, old_defs, new_defs):
        print(line)
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codex-bin", help="codex binary (default: CODEX_BIN, bundled, PATH)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output package (default: {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the committed files differ from a fresh run"
    )
    sub = parser.add_subparsers(dest="command")
    diff_parser = sub.add_parser("diff", help="compare two codex binaries or schema directories")
    diff_parser.add_argument("old", help="codex binary or generate-json-schema output directory")
    diff_parser.add_argument("new", help="codex binary or generate-json-schema output directory")
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        if args.command == "diff":
            return diff(args.old, args.new)
        codex_bin = find_codex_bin(args.codex_bin)
        if args.check:
            return check(codex_bin, args.out)
        generate(codex_bin, args.out)
        return 0
    except BrokenPipeError:  # output piped into `head`
        return 0
    except (GenerationError, subprocess.CalledProcessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
