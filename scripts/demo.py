#!/usr/bin/env python3
"""``make demo``: JupyterLab on a working copy of the demo notebooks, opened at the quickstart.

Opening a notebook in Lab rewrites its metadata and autosave writes outputs, so Lab must never
serve the tracked ``notebooks/``. This script keeps a working copy in ``demo-notebooks/``
(git-ignored) and serves that folder as Lab's root; the kernels run there too, so everything a
demo session makes stays inside it: ``.codex_notebook/`` (thread names, the demo model's
CODEX_HOME and its scratch workspace) and whatever the notebooks write.

The copy is refreshed from ``notebooks/`` by this rule (``demo-notebooks/.codex-demo.json``
remembers the hash of each original when it was copied and of the copy as written):

* a file missing from the copy is copied;
* an original that has not changed since it was copied leaves the copy alone, edits, outputs
  and all;
* an original that changed replaces the copy when the copy is untouched; when the user changed
  the copy (opening it in Lab is enough), that copy first moves to
  ``demo-notebooks/previous/<name>.<timestamp>.ipynb`` and the script says so — nothing is
  overwritten silently;
* ``--reset`` treats every original as changed (fresh copies, changed ones kept under
  ``previous/``).

Then it starts ``python -m jupyterlab`` on 127.0.0.1 with a token it chose (passed in the
environment, not on the command line), waits until the server answers, prints the one URL to
open (``http://127.0.0.1:PORT/lab/tree/quickstart.ipynb?token=...``), opens it when this machine
has a graphical browser, and waits. Lab's own log keeps going to stderr; it shows the token only
as ``...`` because we chose it. Stop with Ctrl-C twice (Lab asks for confirmation) or
``jupyter lab stop PORT`` from another terminal. No browser is needed on this machine: open the
URL from anywhere that reaches its 127.0.0.1 (for example through ``ssh -L PORT:127.0.0.1:PORT``).

Options: ``--port`` (default 8888, the next free one if taken), ``--no-browser`` (also
``CODEX_NOTEBOOK_NO_BROWSER=1``), ``--reset``, ``--prepare-only`` (refresh the copy, print what
happened, do not start Lab), ``--source`` / ``--dir`` (for tests).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO_ROOT / "notebooks"
COPY_DIR = REPO_ROOT / "demo-notebooks"
MANIFEST_NAME = ".codex-demo.json"
PREVIOUS_DIR = "previous"
START_NOTEBOOK = "quickstart.ipynb"
DEFAULT_PORT = 8888
PORT_ATTEMPTS = 20
READY_TIMEOUT_S = 180.0
# Never copied: Jupyter's and our own per-folder state, caches.
SKIP_NAMES = frozenset({".ipynb_checkpoints", ".codex_notebook", "__pycache__", ".DS_Store"})


@dataclass
class SyncReport:
    """What :func:`sync_copy` did, per relative path."""

    copied: list[str] = field(default_factory=list)  # new in the copy
    kept: list[str] = field(default_factory=list)  # original unchanged: copy left alone
    updated: list[str] = field(default_factory=list)  # original changed, copy was untouched
    moved: dict[str, str] = field(default_factory=dict)  # user-changed copy -> previous/...

    def lines(self) -> list[str]:
        """Human-readable lines, only for what changed."""
        out = [f"  new copy        {path}" for path in self.copied]
        out += [f"  updated         {path} (its original changed)" for path in self.updated]
        out += [
            f"  updated         {path} (its original changed); your edited copy is now {old}"
            for path, old in self.moved.items()
        ]
        return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_files(source: Path) -> Iterator[Path]:
    """The files to copy, relative to *source*, in a stable order (hidden files skipped)."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part in SKIP_NAMES or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            yield relative


def _load_manifest(target: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((target / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _save_manifest(target: Path, files: dict[str, dict[str, str]]) -> None:
    path = target / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"version": 1, "files": files}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _move_aside(target: Path, relative: Path, stamp: str) -> str:
    """Move the user's copy to previous/<name>.<stamp><suffix>; returns its relative path."""
    folder = target / PREVIOUS_DIR / relative.parent
    destination = folder / f"{relative.stem}.{stamp}{relative.suffix}"
    counter = 1
    while destination.exists():
        counter += 1
        destination = destination.with_name(f"{relative.stem}.{stamp}-{counter}{relative.suffix}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(target / relative, destination)
    return destination.relative_to(target).as_posix()


def sync_copy(
    source: Path, target: Path, *, reset: bool = False, now: datetime | None = None
) -> SyncReport:
    """Bring the working copy *target* up to date with *source* (rules in the module docstring)."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(target)
    report = SyncReport()
    for relative in source_files(source):
        key = relative.as_posix()
        original, copy = source / relative, target / relative
        source_hash = _sha256(original)
        entry = manifest.get(key, {})
        if copy.exists():
            copy_hash = _sha256(copy)
            if copy_hash == source_hash:
                manifest[key] = {"source": source_hash, "copy": copy_hash}
                if key not in report.kept:
                    report.kept.append(key)
                continue
            if not reset and entry.get("source") == source_hash:
                report.kept.append(key)
                continue
            if entry.get("copy") == copy_hash:
                report.updated.append(key)
            else:
                report.moved[key] = _move_aside(target, relative, stamp)
        else:
            report.copied.append(key)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, copy)
        manifest[key] = {"source": source_hash, "copy": source_hash}
    _save_manifest(target, manifest)
    return report


def demo_url(port: int, token: str, notebook: str = START_NOTEBOOK) -> str:
    """The URL that opens *notebook* (relative to Lab's root) in JupyterLab."""
    return f"http://127.0.0.1:{port}/lab/tree/{quote(notebook)}?token={quote(token)}"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_port(preferred: int) -> int:
    """*preferred*, else the next free port after it (as Jupyter's port_retries would)."""
    if preferred == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for port in range(preferred, preferred + PORT_ATTEMPTS):
        if port_is_free(port):
            return port
    raise SystemExit(f"no free port in {preferred}..{preferred + PORT_ATTEMPTS - 1}; use --port")


def lab_command(root: Path, port: int, *, python: str = sys.executable) -> list[str]:
    """``python -m jupyterlab`` serving *root* on 127.0.0.1:*port* (the token comes from the
    environment, so it never shows in ``ps``)."""
    command = [
        python,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.default_url=/lab/tree/{START_NOTEBOOK}",
        "--ServerApp.open_browser=False",
        # The demo must work offline: no news feed, no update check.
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")  # containers often run as root
    return command


def wait_until_ready(proc: subprocess.Popen[bytes], port: int, token: str, timeout: float) -> bool:
    """Poll ``/api/status`` until it answers; False if Lab exits or *timeout* passes."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"}
    )
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(request, timeout=2) as response,
        ):
            if response.status == 200:
                return True
        time.sleep(0.2)
    return False


def has_graphical_browser() -> bool:
    """Whether opening a URL would show a browser window (never a console browser in our tty)."""
    if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    console = ("lynx", "w3m", "links", "elinks", "www-browser")
    return getattr(browser, "name", "") not in console


def banner(url: str, port: int, target: Path) -> str:
    rule = "=" * 78
    return "\n".join(
        [
            "",
            rule,
            "  codex-notebook demo: JupyterLab is running. Open this URL in a browser:",
            "",
            f"      {url}",
            "",
            "  It opens quickstart.ipynb. No browser on this machine? Open it from anywhere that",
            f"  reaches its 127.0.0.1, e.g. after `ssh -L {port}:127.0.0.1:{port} <this host>`.",
            f"  The notebooks are working copies in {target} (git-ignored).",
            f"  Stop: Ctrl-C twice here, or `jupyter lab stop {port}` in another terminal.",
            rule,
            "",
        ]
    )


def serve(target: Path, port: int, *, open_browser: bool) -> int:
    """Run Lab on *target* until it exits; returns its exit status."""
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "JUPYTER_TOKEN": token}
    proc = subprocess.Popen(lab_command(target, port), cwd=target, env=env)
    # Ctrl-C reaches Lab (same process group), which asks to confirm; we wait for its decision.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)

    def forward(signum: int, frame: object) -> None:
        proc.terminate()  # `kill <this script>` stops Lab too

    signal.signal(signal.SIGTERM, forward)
    try:
        if wait_until_ready(proc, port, token, READY_TIMEOUT_S):
            url = demo_url(port, token)
            print(banner(url, port, target), flush=True)
            if open_browser and has_graphical_browser():
                with contextlib.suppress(webbrowser.Error, OSError):
                    webbrowser.open(url)
        elif proc.poll() is None:
            print(f"JupyterLab did not answer within {READY_TIMEOUT_S:g} s; stopping it.")
            proc.terminate()
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 = any free port")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")
    parser.add_argument("--reset", action="store_true", help="fresh copies of every notebook")
    parser.add_argument("--prepare-only", action="store_true", help="refresh the copy; no Lab")
    parser.add_argument("--source", type=Path, default=SOURCE_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, default=COPY_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    source, target = args.source.resolve(), args.dir.resolve()
    report = sync_copy(source, target, reset=args.reset)
    changes = report.lines()
    print(f"Demo notebooks: {target}" + ("" if changes else " (up to date)"))
    if changes:
        print("\n".join(changes))
    if args.prepare_only:
        return 0
    no_browser = args.no_browser or os.environ.get("CODEX_NOTEBOOK_NO_BROWSER", "") not in ("", "0")
    return serve(target, choose_port(args.port), open_browser=not no_browser)


if __name__ == "__main__":
    sys.exit(main())
