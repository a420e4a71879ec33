"""binder/ follows repo2docker's conventions and runs the demo model, with no secrets."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"

# A requirement line that installs this checkout (repo2docker runs pip from the repo root).
LOCAL_PACKAGE = re.compile(r"^(?:-e\s+|--editable[=\s]+)?\.(?:\[(?P<extras>[\w,\s-]+)\])?$")
SECRET_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style keys
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\b(?:[A-Z0-9_]*API_?KEY|[A-Z0-9_]*TOKEN|PASSWORD|SECRET)\s*[=:]\s*\S"),
]


def requirement_lines() -> list[str]:
    text = (BINDER / "requirements.txt").read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def test_binder_files_exist() -> None:
    for name in ("requirements.txt", "start", "runtime.txt"):
        assert (BINDER / name).is_file(), f"binder/{name} is missing"


def test_requirements_install_this_checkout_with_the_demo_extra() -> None:
    matches = [m for m in map(LOCAL_PACKAGE.match, requirement_lines()) if m]
    assert matches, "binder/requirements.txt must install the package from the repo root ('.')"
    extras = {e.strip() for m in matches for e in (m.group("extras") or "").split(",")}
    assert "demo" in extras, "install '.[demo]' so JupyterLab comes with it"


def test_the_demo_extra_exists() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "demo" in project["optional-dependencies"]


def test_runtime_is_a_supported_python() -> None:
    runtime = (BINDER / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-3\.(\d+)", runtime)
    assert match, f"repo2docker expects 'python-3.X' in runtime.txt, not {runtime!r}"
    assert int(match.group(1)) >= 10, "the package requires Python >= 3.10"


def test_start_is_executable_and_execs_its_arguments() -> None:
    start = BINDER / "start"
    assert start.stat().st_mode & stat.S_IXUSR, "binder/start must be executable (chmod +x)"
    text = start.read_text(encoding="utf-8")
    assert text.startswith("#!"), "binder/start needs a shebang line"
    assert re.search(r"^export CODEX_NOTEBOOK_BACKEND=demo\s*$", text, re.M)
    assert re.search(r'^exec "\$@"\s*$', text, re.M), 'binder/start must end with exec "$@"'


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_start_selects_the_demo_backend_for_what_it_runs() -> None:
    env = dict(os.environ, CODEX_NOTEBOOK_BACKEND="codex")
    shown = subprocess.run(
        [
            "bash",
            str(BINDER / "start"),
            sys.executable,
            "-c",
            "import os; print(os.environ['CODEX_NOTEBOOK_BACKEND'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert shown.stdout.strip() == "demo"


def test_no_secrets_in_binder() -> None:
    files = sorted(p for p in BINDER.rglob("*") if p.is_file())
    assert files
    for path in files:
        assert path.name not in ("auth.json", ".env"), f"binder/{path.name} must not be shipped"
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in SECRET_PATTERNS:
            found = pattern.search(text)
            assert found is None, f"binder/{path.name}: looks like a secret: {found.group()!r}"
