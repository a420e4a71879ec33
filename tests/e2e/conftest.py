"""Fixtures for end-to-end tests: the real codex binary against the built-in demo model.

Every test that uses ``codex_bin`` (directly or through ``demo_backend``) runs once per codex
build, with ids naming the version each binary reports:

* ``codex-0.163.0``: the pinned binary (``$CODEX_BIN``, else the bundled ``openai-codex-cli-bin``
  wheel, else ``codex`` on PATH), the one the committed protocol models come from;
* ``codex-npm-<version>``: the newest ``@openai/codex`` on npm, installed once into
  ``.codex-npm/<version>/`` by ``scripts/install_latest_codex.py`` (a second session only pays
  one ``npm view``, about a second).

Test ids need the versions, so both builds are resolved while tests are collected (once per
session, and not at all when ``-m`` deselects e2e). A build that is unavailable (no binary, npm
unreachable with nothing cached, no binary for this platform) still gets its tests: they are
reported SKIPPED with the reason, never silently dropped. ``CODEX_NPM=0`` turns the npm build
off (also reported as skipped), as does ``CODEX_NOTEBOOK_SKIP_LATEST=1`` (nothing is downloaded);
``CODEX_NPM=<version or dist-tag>`` tests that instead of latest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from codex_notebook.demo import DemoBackend, resolve_codex_bin

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install_latest_codex.py"
INSTALL_TIMEOUT_S = 1200


@dataclass(frozen=True)
class CodexBuild:
    """One codex binary the e2e suite runs against."""

    kind: str  # "pinned" or "npm"
    path: str | None
    version: str | None
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        prefix = "codex" if self.kind == "pinned" else f"codex-{self.kind}"
        return f"{prefix}-{self.version or 'unavailable'}"


def _version_of(path: str) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+\.\d+\.\d+\S*)", out)
    return match.group(1) if match else None


@cache
def pinned_build() -> CodexBuild:
    path = resolve_codex_bin(os.environ.get("CODEX_BIN") or None)
    if path is None or not os.path.exists(path):
        return CodexBuild(
            "pinned", None, None, "no codex binary (set CODEX_BIN or install openai-codex-cli-bin)"
        )
    version = _version_of(path)
    if version is None:
        return CodexBuild("pinned", path, None, f"`{path} --version` reports no version")
    return CodexBuild("pinned", path, version)


@cache
def npm_build() -> CodexBuild:
    skip = os.environ.get("CODEX_NOTEBOOK_SKIP_LATEST", "").strip()
    if skip.lower() not in ("", "0", "false"):
        return CodexBuild(
            "npm",
            None,
            None,
            f"the npm codex build is turned off (CODEX_NOTEBOOK_SKIP_LATEST={skip})",
        )
    spec = os.environ.get("CODEX_NPM", "latest").strip() or "latest"
    if spec.lower() in ("0", "off", "no", "false"):
        return CodexBuild(
            "npm", None, None, f"the npm codex build is turned off (CODEX_NPM={spec})"
        )
    try:
        proc = subprocess.run(
            [sys.executable, str(INSTALL_SCRIPT), "--json", "--spec", spec],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return CodexBuild(
            "npm", None, None, f"installing @openai/codex@{spec} took over {INSTALL_TIMEOUT_S} s"
        )
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        return CodexBuild("npm", None, None, f"{INSTALL_SCRIPT.name} failed: {reason}")
    info = json.loads(proc.stdout)
    return CodexBuild("npm", str(info["path"]), str(info["version"]))


def _e2e_deselected(config: pytest.Config) -> bool:
    """Whether ``-m`` deselects e2e tests anyway (then do not touch npm at collection)."""
    markexpr = config.getoption("markexpr", default="") or ""
    if not markexpr:
        return False
    try:
        from _pytest.mark.expression import Expression

        def only_e2e(name: str, /, **kwargs: str | int | bool | None) -> bool:
            return name == "e2e"

        return not Expression.compile(markexpr).evaluate(only_e2e)
    except Exception:
        return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "codex_build" not in metafunc.fixturenames:
        return
    if _e2e_deselected(metafunc.config):
        builds = [CodexBuild(kind, None, None, "e2e deselected") for kind in ("pinned", "npm")]
    else:
        builds = [pinned_build(), npm_build()]
    metafunc.parametrize(
        "codex_build", builds, ids=[b.id for b in builds], indirect=True, scope="session"
    )


@pytest.fixture(scope="session")
def codex_build(request: pytest.FixtureRequest) -> CodexBuild:
    """The codex build of this test run (parametrized: pinned and newest npm)."""
    build: CodexBuild = request.param
    if build.skip_reason is not None or build.path is None:
        pytest.skip(f"{build.id}: {build.skip_reason}")
    return build


@pytest.fixture(scope="session")
def codex_bin(codex_build: CodexBuild) -> str:
    """The codex binary of this run: the pinned one, then the newest from npm."""
    assert codex_build.path is not None
    return codex_build.path


@pytest.fixture(scope="session")
def codex_version(codex_build: CodexBuild) -> str:
    """What ``codex_bin --version`` reports, e.g. ``"0.163.0"``."""
    assert codex_build.version is not None
    return codex_build.version


@pytest.fixture
def demo_backend(codex_bin: str) -> Iterator[DemoBackend]:
    """A started DemoBackend with a fresh CODEX_HOME and workspace for this test only."""
    with DemoBackend(codex_bin=codex_bin) as backend:
        yield backend
