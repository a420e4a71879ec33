"""``make demo`` (scripts/demo.py): a working copy of the notebooks, and a clean repository.

The refresh rules are checked on temporary folders; one test then runs the script exactly as
the Makefile does (only the copy's folder differs, so a developer's own demo-notebooks/ is left
alone), opens and saves the quickstart through Lab's REST API the way Lab's autosave does, runs
a ``%%codex`` cell in a kernel started for that notebook, stops Lab with ``jupyter lab stop``,
and asserts that every tracked notebook is byte-identical and ``git status`` is clean.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "demo.py"
NOTEBOOKS = REPO / "notebooks"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("codex_notebook_demo_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


demo = _load_script()
NOW = datetime(2026, 1, 2, 3, 4, 5)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "a.ipynb").write_text('{"a": 1}')
    (folder / "data").mkdir()
    (folder / "data" / "sales.csv").write_text("price\n1\n")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("{}")
    return folder


def _sync(source: Path, target: Path, **kwargs: Any) -> Any:
    return demo.sync_copy(source, target, now=NOW, **kwargs)


# --- refresh rules ------------------------------------------------------------------------------


def test_first_sync_copies_every_file_but_checkpoints(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    report = _sync(source, target)
    assert report.copied == ["a.ipynb", "data/sales.csv"]
    assert (target / "a.ipynb").read_text() == '{"a": 1}'
    assert not (target / ".ipynb_checkpoints").exists()


def test_user_edits_survive_while_the_original_is_unchanged(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    _sync(source, target)
    (target / "a.ipynb").write_text('{"a": 1, "outputs": "mine"}')
    report = _sync(source, target)
    assert report.kept == ["a.ipynb", "data/sales.csv"]
    assert (target / "a.ipynb").read_text() == '{"a": 1, "outputs": "mine"}'


def test_changed_original_replaces_an_untouched_copy(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    _sync(source, target)
    (source / "a.ipynb").write_text('{"a": 2}')
    report = _sync(source, target)
    assert report.updated == ["a.ipynb"]
    assert (target / "a.ipynb").read_text() == '{"a": 2}'
    assert not (target / "previous").exists()


def test_changed_original_moves_an_edited_copy_aside(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    _sync(source, target)
    (target / "a.ipynb").write_text('{"a": 1, "mine": true}')
    (source / "a.ipynb").write_text('{"a": 2}')
    report = _sync(source, target)
    assert report.moved == {"a.ipynb": "previous/a.20260102-030405.ipynb"}
    assert (target / "a.ipynb").read_text() == '{"a": 2}'
    assert (target / "previous" / "a.20260102-030405.ipynb").read_text() == '{"a": 1, "mine": true}'
    assert any(
        "your edited copy is now previous/a.20260102-030405.ipynb" in line
        for line in report.lines()
    )


def test_a_copy_without_a_record_is_never_overwritten(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    target.mkdir()
    (target / "a.ipynb").write_text("my own work")
    report = _sync(source, target)
    assert report.moved == {"a.ipynb": "previous/a.20260102-030405.ipynb"}
    assert (target / "previous" / "a.20260102-030405.ipynb").read_text() == "my own work"


def test_reset_gives_fresh_copies_and_keeps_edited_ones(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    _sync(source, target)
    (target / "a.ipynb").write_text("edited")
    report = _sync(source, target, reset=True)
    assert report.moved == {"a.ipynb": "previous/a.20260102-030405.ipynb"}
    assert (target / "a.ipynb").read_text() == '{"a": 1}'
    assert report.kept == ["data/sales.csv"]


def test_a_second_move_on_the_same_second_gets_its_own_name(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    _sync(source, target)
    for version in (2, 3):
        (target / "a.ipynb").write_text(f"edit {version}")
        (source / "a.ipynb").write_text(f'{{"a": {version}}}')
        _sync(source, target)
    assert sorted(p.name for p in (target / "previous").iterdir()) == [
        "a.20260102-030405-2.ipynb",
        "a.20260102-030405.ipynb",
    ]


# --- the URL and the command -------------------------------------------------------------------


def test_the_url_opens_the_quickstart_with_the_token() -> None:
    assert demo.demo_url(8888, "t0k") == "http://127.0.0.1:8888/lab/tree/quickstart.ipynb?token=t0k"


def test_lab_serves_the_copy_on_loopback_and_keeps_the_token_out_of_argv(tmp_path: Path) -> None:
    command = demo.lab_command(tmp_path, 9999)
    assert command[1:3] == ["-m", "jupyterlab"]
    assert "--ServerApp.ip=127.0.0.1" in command
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert not any("token" in arg.lower() for arg in command)


def test_no_console_browser_without_a_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert demo.has_graphical_browser() is False


# --- make demo end to end ----------------------------------------------------------------------


def _tracked_state() -> tuple[dict[str, str], str | None]:
    hashes = {
        p.relative_to(REPO).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(NOTEBOOKS.rglob("*"))
        if p.is_file()
    }
    status = None
    if shutil.which("git") and (REPO / ".git").exists():
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--", "notebooks"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    return hashes, status


class Launched:
    """scripts/demo.py running in the background, its stdout read line by line."""

    def __init__(self, target: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--dir", str(target), "--port", "0", "--no-browser"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if "/lab/tree/quickstart.ipynb?token=" in line:
                return line.strip()
        pytest.fail(f"no demo URL printed; output so far: {self.seen}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "CODEX_API_KEY")}
    for var, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        env[var] = str(tmp_path / "jupyter" / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["CODEX_NOTEBOOK_BACKEND"] = "demo"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def launched(tmp_path: Path, isolated_env: dict[str, str]) -> Iterator[Launched]:
    running = Launched(tmp_path / "demo-notebooks", isolated_env)
    try:
        yield running
    finally:
        running.stop()


def _api(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def _run_in_kernel(runtime: Path, kernel_id: str, cells: list[str]) -> list[dict[str, Any]]:
    """Execute *cells* in the server's kernel through its connection file; returns replies."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        return [client.execute_interactive(cell, timeout=120)["content"] for cell in cells]
    finally:
        client.stop_channels()


@pytest.mark.kernel
@pytest.mark.timeout(300)
def test_make_demo_leaves_the_tracked_notebooks_untouched(
    launched: Launched, tmp_path: Path, isolated_env: dict[str, str]
) -> None:
    before = _tracked_state()
    target = tmp_path / "demo-notebooks"
    url = launched.url(timeout=180)
    base, _, query = url.partition("/lab/tree/quickstart.ipynb?")
    token = query.removeprefix("token=")
    with urllib.request.urlopen(url, timeout=30) as page:
        assert page.status == 200

    # Lab opens the notebook: a kernel session in the notebook's folder...
    session = _api(
        base,
        token,
        "POST",
        "/api/sessions",
        {"path": "quickstart.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    kernel_id = session["kernel"]["id"]
    runtime = Path(isolated_env["JUPYTER_RUNTIME_DIR"])
    replies = _run_in_kernel(
        runtime,
        kernel_id,
        ["import os; print(os.getcwd())", "%load_ext codex_notebook", "%%codex --wait\nDELTAS:3"],
    )
    assert [reply["status"] for reply in replies] == ["ok", "ok", "ok"], replies
    # ...whose state (thread names, the demo's CODEX_HOME and workspace) lands in the copy.
    assert (target / ".codex_notebook" / "threads.json").is_file()
    assert (target / ".codex_notebook" / "demo-workspace").is_dir()

    # ...and autosave writes metadata and outputs back: into the copy.
    model = _api(base, token, "GET", "/api/contents/quickstart.ipynb?content=1")
    notebook = model["content"]
    notebook["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    first_code = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    first_code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "saved\n"}]
    first_code["execution_count"] = 1
    _api(
        base,
        token,
        "PUT",
        "/api/contents/quickstart.ipynb",
        {"type": "notebook", "format": "json", "content": notebook},
    )
    assert b"saved" in (target / "quickstart.ipynb").read_bytes()

    # The README's way to stop it.
    port = base.rsplit(":", 1)[1]
    stop = subprocess.run(
        [sys.executable, "-m", "jupyterlab", "stop", port],
        env=isolated_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stop.returncode == 0, stop.stderr
    assert launched.proc.wait(60) == 0
    assert _processes_in(target, timeout=30) == []

    assert _tracked_state() == before  # byte-identical, and `git status notebooks/` unchanged
    assert not (NOTEBOOKS / ".codex_notebook").exists()


def _processes_in(folder: Path, timeout: float) -> list[psutil.Process]:
    """Processes whose working directory is inside *folder*, once they had *timeout* to exit."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for proc in psutil.process_iter():
            try:
                if Path(proc.cwd()).is_relative_to(folder):
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
