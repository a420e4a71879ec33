#!/usr/bin/env python3
"""Rebuild the prebuilt JupyterLab / Notebook 7 extension that the wheel ships.

Sources live in ``extension/labextension/`` (TypeScript, the stylesheet, ``package.json``, the
npm lockfile); the built extension is committed in ``extension/labextensions/codex-notebook/``
and installed by the wheel (hatch ``shared-data``) to
``share/jupyter/labextensions/codex-notebook/``, where JupyterLab and Notebook 7 load it without
a rebuild of their own::

    python scripts/build_labextension.py            # npm ci if needed, tsc, bundle, record
    python scripts/build_labextension.py --check    # the committed build matches its sources?

Users never run this: it is for a maintainer who changed the sources. It needs ``node`` (20+)
and ``npm`` with the npm registry, nothing else (no JupyterLab, no Python packages): the
bundler, ``@jupyter/builder``, and the JupyterLab package metadata it links against,
``@jupyterlab/core-meta``, are pinned by the lockfile. Module ids are numbered in order of use
(``rspack.config.js``), so the output is byte-identical whichever folder the build runs in.

Each build writes ``build_info.json`` beside the output: a SHA-256 over every source file and
the tool versions. ``--check`` (and tests/unit/test_labextension_build.py) recompute the digest,
so a source edit without a rebuild is caught without needing node.

Exit status: 0 on success; 1 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "extension" / "labextension"
OUTPUT_DIR = REPO_ROOT / "extension" / "labextensions" / "codex-notebook"
BUILD_INFO = "build_info.json"
# Everything the output depends on, relative to SOURCE_DIR (globs; node_modules and lib excluded).
SOURCE_GLOBS = (
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "rspack.config.js",
    "src/*.ts",
    "style/*.css",
)
VERSION_TS = re.compile(r"""export const VERSION = '([^']+)';""")
# The [project] table's version (tomllib is 3.11+, the project supports 3.10).
PYPROJECT_VERSION = re.compile(r'^\[project\]$.*?^version = "([^"]+)"$', re.M | re.S)
NPM_TIMEOUT_S = 900
BUILD_TIMEOUT_S = 300


class BuildError(Exception):
    """A build step failed, or the tree is inconsistent; the message says what to do."""


def source_files(source_dir: Path = SOURCE_DIR) -> list[Path]:
    """The files the build reads, sorted by their path relative to ``source_dir``."""
    found = {
        path for pattern in SOURCE_GLOBS for path in source_dir.glob(pattern) if path.is_file()
    }
    return sorted(found, key=lambda path: path.relative_to(source_dir).as_posix())


def sources_digest(source_dir: Path = SOURCE_DIR) -> str:
    """SHA-256 over each source file's relative path and bytes (line endings as committed)."""
    digest = hashlib.sha256()
    for path in source_files(source_dir):
        data = path.read_bytes()
        digest.update(path.relative_to(source_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(str(len(data)).encode())
        digest.update(b"\0")
        digest.update(data)
    return digest.hexdigest()


def versions(repo_root: Path = REPO_ROOT) -> dict[str, str]:
    """The version as each place that states it says it (they must all agree)."""
    pyproject = PYPROJECT_VERSION.search((repo_root / "pyproject.toml").read_text(encoding="utf-8"))
    source_dir = repo_root / "extension" / "labextension"
    package = json.loads((source_dir / "package.json").read_text(encoding="utf-8"))
    match = VERSION_TS.search((source_dir / "src" / "version.ts").read_text(encoding="utf-8"))
    return {
        "pyproject.toml": pyproject.group(1) if pyproject else "(missing)",
        "extension/labextension/package.json": str(package["version"]),
        "extension/labextension/src/version.ts": match.group(1) if match else "(missing)",
    }


def check_versions(repo_root: Path = REPO_ROOT) -> str:
    found = versions(repo_root)
    if len(set(found.values())) != 1:
        stated = ", ".join(f"{where}: {version}" for where, version in found.items())
        raise BuildError(f"the versions disagree ({stated}); make them equal, then rebuild")
    return next(iter(found.values()))


def check_output(output_dir: Path = OUTPUT_DIR, source_dir: Path = SOURCE_DIR) -> list[str]:
    """What is wrong with the committed build (empty when it matches its sources)."""
    problems: list[str] = []
    info_path = output_dir / BUILD_INFO
    if not info_path.is_file():
        return [f"{info_path} is missing: run scripts/build_labextension.py"]
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.get("sources_sha256") != sources_digest(source_dir):
        problems.append(
            "the sources changed since the committed build: run scripts/build_labextension.py "
            "and commit extension/labextensions/codex-notebook/"
        )
    try:
        built = json.loads((output_dir / "package.json").read_text(encoding="utf-8"))
        load = built["jupyterlab"]["_build"]["load"]
    except (OSError, KeyError, ValueError) as error:
        return [*problems, f"{output_dir / 'package.json'} has no jupyterlab._build.load: {error}"]
    if not (output_dir / load).is_file():
        problems.append(f"the entry point {load} named in package.json is missing")
    listed = set(info.get("files", []))
    present = {p.relative_to(output_dir).as_posix() for p in output_dir.rglob("*") if p.is_file()}
    present.discard(BUILD_INFO)
    if listed != present:
        problems.append(
            f"the output files differ from the build's: extra {sorted(present - listed)}, "
            f"missing {sorted(listed - present)}"
        )
    return problems


def run(command: list[str], cwd: Path, timeout: float) -> str:
    """Run a build tool; its output is shown only when it fails."""
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as error:
        raise BuildError(f"{command[0]} is not installed: {error}") from error
    except subprocess.TimeoutExpired as error:
        raise BuildError(f"`{' '.join(command)}` took longer than {timeout} s") from error
    if done.returncode != 0:
        raise BuildError(
            f"`{' '.join(command)}` exited with {done.returncode}:\n"
            f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done.stdout


def npm_ci_needed(source_dir: Path) -> bool:
    """node_modules is missing, or older than the lockfile (npm ci makes it match exactly)."""
    installed = source_dir / "node_modules" / ".package-lock.json"
    lock = source_dir / "package-lock.json"
    return not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime


def installed_version(source_dir: Path, package: str) -> str:
    meta = source_dir / "node_modules" / package / "package.json"
    return str(json.loads(meta.read_text(encoding="utf-8"))["version"])


def build(source_dir: Path = SOURCE_DIR, output_dir: Path = OUTPUT_DIR) -> dict[str, object]:
    """npm ci (when needed), tsc, bundle with @jupyter/builder, write build_info.json."""
    version = check_versions()
    if npm_ci_needed(source_dir):
        run(["npm", "ci", "--no-audit", "--no-fund"], source_dir, NPM_TIMEOUT_S)
    shutil.rmtree(source_dir / "lib", ignore_errors=True)
    node_modules = source_dir / "node_modules"
    run(
        ["node", str(node_modules / "typescript" / "bin" / "tsc"), "-p", "tsconfig.json"],
        source_dir,
        BUILD_TIMEOUT_S,
    )
    # The builder empties the output folder itself and writes package.json + static/.
    run(
        [
            "node",
            str(node_modules / "@jupyter" / "builder" / "lib" / "build-labextension.js"),
            "--core-package-file",
            str(node_modules / "@jupyterlab" / "core-meta" / "core.package.json"),
            ".",
        ],
        source_dir,
        BUILD_TIMEOUT_S,
    )
    files = sorted(
        p.relative_to(output_dir).as_posix()
        for p in output_dir.rglob("*")
        if p.is_file() and p.name != BUILD_INFO
    )
    info: dict[str, object] = {
        "name": "codex-notebook",
        "version": version,
        "sources_sha256": sources_digest(source_dir),
        "sources": [p.relative_to(source_dir).as_posix() for p in source_files(source_dir)],
        "files": files,
        "tools": {
            "@jupyter/builder": installed_version(source_dir, "@jupyter/builder"),
            "@jupyterlab/core-meta": installed_version(source_dir, "@jupyterlab/core-meta"),
            "typescript": installed_version(source_dir, "typescript"),
            "node": run(["node", "--version"], source_dir, 30).strip(),
        },
    }
    (output_dir / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check that the committed build matches its sources (no node needed)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            check_versions()
            problems = check_output()
            if problems:
                raise BuildError("\n".join(problems))
            print(f"{OUTPUT_DIR.relative_to(REPO_ROOT)} matches its sources")
            return 0
        info = build()
    except BuildError as error:
        print(f"build_labextension: {error}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in OUTPUT_DIR.rglob("*") if p.is_file())
    print(
        f"built {OUTPUT_DIR.relative_to(REPO_ROOT)}: {size} bytes, sources {info['sources_sha256']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
