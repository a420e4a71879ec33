#!/usr/bin/env python3
"""Install the newest ``@openai/codex`` from the npm registry into a project-local folder.

The tests run against two codex binaries: the pinned ``openai-codex-cli-bin`` wheel and whatever
npm calls ``latest`` today. This script provides the second one::

    python scripts/install_latest_codex.py                 # prints the native binary's path
    python scripts/install_latest_codex.py --json          # {"path", "version", "cached", ...}
    python scripts/install_latest_codex.py --spec 0.169.0  # a given version (or dist-tag)

Every version gets its own npm prefix, ``.codex-npm/<version>/`` at the repository root
(gitignored), so a version is downloaded once and reused afterwards: a second run costs one
``npm view`` (about a second). Without the registry, the newest version already installed is
used, with a warning on stderr; with nothing installed the script exits 1 with the reason.

The npm package is a small JS launcher (``bin/codex.js``) plus one optional dependency per
platform, e.g. ``@openai/codex-linux-x64`` (an alias of ``@openai/codex@<version>-linux-x64``),
whose ``vendor/<target triple>/bin/codex`` is the statically linked native binary; the launcher
only finds it and ``execve``s it. We use that binary directly (no node at run time); it finds
its own ``codex-path/`` helpers (``rg``) through ``vendor/<triple>/codex-package.json``. If no
native binary is found, the launcher (``node_modules/.bin/codex``) is used when it works.

Exit status: 0 and the path on stdout; 1 and a one-line reason on stderr when npm fails or the
package has no binary for this platform.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "@openai/codex"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO_ROOT / ".codex-npm"
NPM_TIMEOUT_S = 900  # the linux-x64 tarball is ~150 MB
# The lookup should fail in seconds without a registry (npm's default retries take ~70 s).
FAIL_FAST = ("--fetch-retries=0", "--fetch-timeout=30000")
# The download itself may retry, briefly (npm's defaults back off for over a minute).
FEW_RETRIES = (
    "--fetch-retries=1",
    "--fetch-retry-mintimeout=2000",
    "--fetch-retry-maxtimeout=10000",
)
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$")

# (sys.platform, machine) -> (npm platform package, vendor target triple), as in bin/codex.js.
TARGETS: dict[tuple[str, str], tuple[str, str]] = {
    ("linux", "x86_64"): ("@openai/codex-linux-x64", "x86_64-unknown-linux-musl"),
    ("linux", "amd64"): ("@openai/codex-linux-x64", "x86_64-unknown-linux-musl"),
    ("linux", "aarch64"): ("@openai/codex-linux-arm64", "aarch64-unknown-linux-musl"),
    ("linux", "arm64"): ("@openai/codex-linux-arm64", "aarch64-unknown-linux-musl"),
    ("darwin", "x86_64"): ("@openai/codex-darwin-x64", "x86_64-apple-darwin"),
    ("darwin", "arm64"): ("@openai/codex-darwin-arm64", "aarch64-apple-darwin"),
}


class InstallError(RuntimeError):
    """npm failed, or the package holds no usable binary for this machine."""


def target() -> tuple[str, str]:
    key = (sys.platform, platform.machine().lower())
    if key not in TARGETS:
        raise InstallError(f"{PACKAGE} ships no binary for {key[0]}/{key[1]}")
    return TARGETS[key]


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        raise InstallError("npm is not installed (needed to fetch the newest codex)")
    return found


def _npm_env() -> dict[str, str]:
    # No update notices, no funding/audit chatter; keep the user's registry/proxy settings.
    return {**os.environ, "NO_UPDATE_NOTIFIER": "1", "npm_config_update_notifier": "false"}


def resolve_version(spec: str) -> str:
    """``latest`` / a dist-tag / a range -> the exact version npm would install (one lookup)."""
    if VERSION_RE.match(spec):
        return spec
    proc = subprocess.run(
        [npm(), "view", f"{PACKAGE}@{spec}", "version", "--json", *FAIL_FAST],
        capture_output=True,
        text=True,
        timeout=120,
        env=_npm_env(),
    )
    if proc.returncode != 0:
        raise InstallError(f"`npm view {PACKAGE}@{spec}` failed: {_npm_error(proc)}")
    try:
        found = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise InstallError(f"`npm view` printed no JSON: {proc.stdout[:200]!r}") from exc
    if isinstance(found, list):  # a range matching several versions: npm installs the highest
        found = found[-1] if found else None
    if not isinstance(found, str) or not VERSION_RE.match(found):
        raise InstallError(f"no {PACKAGE} version matches {spec!r}")
    return found


def _npm_error(proc: subprocess.CompletedProcess[str]) -> str:
    """npm's own one-line reason: ``--json`` output's summary, else its ``npm error`` lines."""
    with contextlib.suppress(json.JSONDecodeError, AttributeError, TypeError):
        error = json.loads(proc.stdout)["error"]
        return f"{error.get('code', 'error')}: {error['summary']}"
    code, reasons = "", []
    for line in proc.stderr.splitlines():
        if not line.startswith("npm error"):
            continue
        text = line[len("npm error") :].strip()
        if text.startswith("code "):
            code = text[len("code ") :]
        elif text and not text.startswith(("A complete log", "at ", "syscall", "errno", "{", "}")):
            reasons.append(text)
    reason = reasons[0] if reasons else f"exit status {proc.returncode}"
    return f"{code}: {reason}" if code else reason


def find_binary(prefix: Path) -> Path | None:
    """The native codex binary inside an npm prefix, else the JS launcher, else None."""
    package, triple = target()
    modules = prefix / "node_modules"
    candidates = [
        modules / package / "vendor" / triple / "bin" / "codex",  # the platform package
        modules / PACKAGE / "vendor" / triple / "bin" / "codex",  # older all-in-one layout
        modules / PACKAGE / "vendor" / triple / "codex" / "codex",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    launcher = modules / ".bin" / "codex"
    if launcher.exists() and shutil.which("node"):
        return launcher
    return None


def binary_version(path: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    return match.group(1) if match else None


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One installer at a time per cache (parallel pytest sessions share it)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(root: Path, version: str) -> Path | None:
    binary = find_binary(root / version)
    if binary is not None and binary_version(binary) == version:
        return binary
    return None


def newest_cached(root: Path) -> tuple[str, Path] | None:
    if not root.is_dir():
        return None
    versions = [p.name for p in root.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
    for version in sorted(versions, key=_version_key, reverse=True):
        binary = cached(root, version)
        if binary is not None:
            return version, binary
    return None


def _version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    core, _, rest = version.partition("-")
    numbers = tuple(int(n) for n in re.findall(r"\d+", core)[:3])
    return numbers, 0 if rest else 1, rest  # a pre-release sorts before its release


def npm_install(root: Path, version: str) -> Path:
    """Install ``@openai/codex@version`` into ``root/<version>`` (atomically) and return it."""
    staging = Path(tempfile.mkdtemp(prefix=f".install-{version}-", dir=root))
    try:
        proc = subprocess.run(
            [
                npm(),
                "install",
                "--prefix",
                str(staging),
                "--include=optional",  # the platform binary is an optional dependency
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--loglevel=error",
                *FEW_RETRIES,
                f"{PACKAGE}@{version}",
            ],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            env=_npm_env(),
        )
        if proc.returncode != 0:
            raise InstallError(f"`npm install {PACKAGE}@{version}` failed: {_npm_error(proc)}")
        if find_binary(staging) is None:
            package, triple = target()
            raise InstallError(
                f"{PACKAGE}@{version} installed, but without a codex binary for {triple} "
                f"(expected {package}/vendor/{triple}/bin/codex)"
            )
        staging.chmod(0o755)  # mkdtemp made it private
        final = root / version
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        return final
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"`npm install` took longer than {NPM_TIMEOUT_S} s") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def install(spec: str = "latest", root: Path = DEFAULT_ROOT) -> dict[str, object]:
    """Resolve, install if needed, verify. Returns ``{path, version, cached, offline}``."""
    root = root.resolve()
    try:
        version = resolve_version(spec)
    except InstallError as exc:
        fallback = newest_cached(root) if spec == "latest" else None
        if fallback is None:
            raise
        version, binary = fallback
        print(
            f"warning: {exc}; using the newest installed {PACKAGE} ({version}), "
            "which may not be the newest release",
            file=sys.stderr,
        )
        return {"path": str(binary), "version": version, "cached": True, "offline": True}
    with locked(root):
        found = cached(root, version)
        was_cached = found is not None
        if found is None:
            found = find_binary(npm_install(root, version))
            if found is None:  # npm_install checked it; keep the promise visible anyway
                raise InstallError(f"no codex binary in {root / version}")
            reported = binary_version(found)
            if reported != version:
                raise InstallError(f"{found} reports version {reported!r}, expected {version}")
        binary = found
    return {"path": str(binary), "version": version, "cached": was_cached, "offline": False}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="latest", help="version, dist-tag or range (latest)")
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help=f"cache folder (default: {DEFAULT_ROOT})"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object, not the path")
    args = parser.parse_args(argv)
    try:
        info = install(args.spec, args.root)
    except (InstallError, OSError, subprocess.SubprocessError) as exc:
        print(f"error: could not install {PACKAGE}@{args.spec}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info) if args.json else info["path"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
