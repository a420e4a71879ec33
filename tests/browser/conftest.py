"""JupyterLab served on 127.0.0.1 and driven in Debian's Chromium through playwright.

Nothing is downloaded at test time but, when missing and we are root, Debian's ``chromium``
package (``apt-get install -y chromium``); playwright never fetches a browser of its own here,
it launches ``/usr/bin/chromium``.

Every process started here is ended by its id in a finalizer, even when a test fails:
Chromium (and playwright's driver), the JupyterLab server (its whole process group), the
kernels, and what the kernels started (``codex app-server``, the demo model server).
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.processes import alive, cmdline

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO / "notebooks"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
# Flags that work on this kind of machine (no sandbox as root, no GPU, closed network).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
LAB_START_TIMEOUT_S = 90


# ----------------------------------------------------------------------------- processes


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def is_codex_process(proc: psutil.Process) -> bool:
    """An app-server or the demo model server a kernel started (both outlive a careless kernel)."""
    args = cmdline(proc)
    return "app-server" in args or "codex_notebook.demo" in args


def end_processes(procs: list[psutil.Process], grace_s: float = 5) -> list[psutil.Process]:
    """SIGTERM what is still running, then SIGKILL what outlived ``grace_s``; returns the
    processes that had to be ended (each by its own id)."""
    left = alive(procs)
    for proc in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, stubborn = psutil.wait_procs(left, timeout=grace_s)
    for proc in stubborn:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(stubborn, timeout=grace_s)
    return left


def describe(procs: list[psutil.Process]) -> str:
    lines = []
    for proc in procs:
        try:
            lines.append(f"{proc.pid}: {' '.join(proc.cmdline())[:160]}")
        except psutil.Error:
            lines.append(f"{proc.pid}: (gone)")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----------------------------------------------------------------------------- chromium


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium; installed with apt-get when missing and we are root, else skip.

    ``CODEX_NOTEBOOK_SKIP_BROWSER=1`` skips the browser tests without installing anything.
    """
    if os.environ.get("CODEX_NOTEBOOK_SKIP_BROWSER", "").strip().lower() not in ("", "0", "false"):
        pytest.skip("CODEX_NOTEBOOK_SKIP_BROWSER is set: browser tests skipped")
    if not CHROMIUM.exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip(
                f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get): "
                "run `apt-get install -y chromium` to enable the browser tests"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=600, check=False
            )
            if done.returncode != 0:
                pytest.skip(
                    f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr[-800:]}"
                )
        if not CHROMIUM.exists():
            pytest.skip(f"`apt-get install -y chromium` did not provide {CHROMIUM}")
    return str(CHROMIUM)


@dataclass
class Chromium:
    playwright: Playwright
    browser: Browser
    procs: list[psutil.Process]  # playwright's driver and the browser, for the finalizer


@pytest.fixture(scope="module")
def chromium(chromium_path: str) -> Iterator[Chromium]:
    """One headless Chromium for the module (playwright gives it a fresh, temporary profile).

    Afterwards playwright's driver and every process below it (the browser, its renderers)
    are ended by pid, whatever happened."""
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    pw = sync_playwright().start()
    drivers = [p for p in me.children() if p.pid not in before]
    procs = drivers + [d for driver in drivers for d in descendants(driver.pid)]
    try:
        browser = pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        procs += [d for driver in drivers for d in descendants(driver.pid)]
        yield Chromium(pw, browser, procs)
    finally:
        procs += [d for driver in drivers for d in descendants(driver.pid)]  # renderers too
        try:
            with contextlib.suppress(Exception):
                browser.close()
        finally:
            with contextlib.suppress(Exception):
                pw.stop()
            end_processes(procs)


# ----------------------------------------------------------------------------- jupyterlab


@dataclass
class Lab:
    proc: subprocess.Popen[bytes]
    base_url: str
    token: str
    root: Path
    log_path: Path
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def kernels(self) -> list[dict[str, Any]]:
        return list(self.api("GET", "/api/kernels"))

    def remember_descendants(self) -> list[psutil.Process]:
        """Every process below the server now (kernels, app-servers, demo model servers):
        app-servers start in their own session, so a process-group kill would miss them."""
        found = descendants(self.proc.pid)
        for proc in found:
            self.seen.setdefault(proc.pid, proc)
        return found

    def codex_processes(self) -> list[psutil.Process]:
        self.remember_descendants()
        return [p for p in alive(list(self.seen.values())) if is_codex_process(p)]

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def lab_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CODEX_NOTEBOOK_BACKEND"] = "demo"
    for name in ("OPENAI_API_KEY", "CODEX_API_KEY"):
        env.pop(name, None)
    # Keep the user's Jupyter / IPython configuration, data and runtime files out of it.
    for var, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        env[var] = str(home / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_lab_settings(settings: Path) -> None:
    """No news / update toasts over the notebook (they would also try the network)."""
    target = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


# The Jupyter frontends the browser tests drive: (python -m <module>, its app's config class).
FRONTENDS = {"lab": ("jupyterlab", "LabApp"), "notebook7": ("notebook", "JupyterNotebookApp")}


@contextlib.contextmanager
def serve(home: Path, frontend: str = "lab") -> Iterator[Lab]:
    """``jupyter lab`` (or Notebook 7) on 127.0.0.1 (free port, token), root dir = a copy of
    ``notebooks/``; the application object is exposed as ``window.jupyterapp`` so tests can
    read the notebook model, not only the DOM."""
    module, app = FRONTENDS[frontend]
    root = home / "notebooks"
    shutil.copytree(NOTEBOOKS_DIR, root)
    settings = home / "settings"
    write_lab_settings(settings)
    port = free_port()
    token = secrets.token_hex(16)
    log_path = home / f"{frontend}.log"
    command = [
        sys.executable,
        "-m",
        module,
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={root}",
        f"--{app}.expose_app_in_browser=True",
        "--allow-root",
    ]
    # Notebook 7 also loads JupyterLab's server extension, whose handlers serve the settings:
    # both apps get the same folders.
    for name in dict.fromkeys((app, "LabApp")):
        command += [
            f"--{name}.user_settings_dir={settings}",
            f"--{name}.workspaces_dir={home / 'workspaces'}",
        ]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            command,
            cwd=root,
            env=lab_env(home),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: ended as a whole below
        )
    server = Lab(proc, f"http://127.0.0.1:{port}", token, root, log_path)
    try:
        wait_for_lab(server)
        yield server
    finally:
        stop_lab(server)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab, for the module."""
    with serve(tmp_path_factory.mktemp("lab"), "lab") as server:
        yield server


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Notebook 7 (the ``notebook`` package of the browser extra), for the module."""
    with serve(tmp_path_factory.mktemp("notebook7"), "notebook7") as server:
        yield server


def wait_for_lab(server: Lab) -> None:
    deadline = time.monotonic() + LAB_START_TIMEOUT_S
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"jupyter lab exited with {server.proc.returncode}:\n{server.log_tail()}"
            )
        try:
            server.api("GET", "/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"jupyter lab did not answer in time:\n{server.log_tail()}")
        time.sleep(0.2)  # the server is starting; nothing to wait on but its port


def stop_lab(server: Lab) -> None:
    """Shut the server down cleanly (kernels first), then end whatever is left, by pid.

    Fails (as a teardown error) if a ``codex app-server`` outlived its kernel's shutdown."""
    server.remember_descendants()
    with contextlib.suppress(Exception):
        for kernel in server.kernels():
            server.api("DELETE", f"/api/kernels/{kernel['id']}")
    with contextlib.suppress(Exception):
        server.api("POST", "/api/shutdown")
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGTERM)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=10)
    # The group may still hold a kernel; app-servers and demo servers have their own sessions.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(
            server.log_path, ARTIFACTS / server.log_path.name.replace("lab.", "jupyterlab.")
        )
    procs = list(server.seen.values())
    codex = [p for p in alive(procs) if is_codex_process(p)]
    _, still = psutil.wait_procs(codex, timeout=10)
    end_processes(procs)
    if still:
        raise AssertionError(
            "codex processes outlived the JupyterLab shutdown:\n" + describe(still)
        )


# ----------------------------------------------------------------------------- pages


@pytest.fixture
def context(chromium: Chromium) -> Iterator[BrowserContext]:
    ctx = chromium.browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        with contextlib.suppress(Exception):
            ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@contextlib.contextmanager
def kernels_cleaned(server: Lab) -> Iterator[None]:
    """Shut down the kernels started inside the block (each test starts its own)."""
    before = {k["id"] for k in server.kernels()}
    try:
        yield
    finally:
        server.remember_descendants()
        for kernel in server.kernels():
            if kernel["id"] not in before:
                with contextlib.suppress(Exception):
                    server.api("DELETE", f"/api/kernels/{kernel['id']}")


@pytest.fixture(scope="module", params=["lab", "notebook7"])
def frontend(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs in JupyterLab and in Notebook 7."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(frontend: str, request: pytest.FixtureRequest) -> Lab:
    """The Jupyter server of ``frontend``."""
    lab: Lab = request.getfixturevalue(frontend)
    return lab


@pytest.fixture
def nb_page(server: Lab, page: Page) -> Iterator[Page]:
    """A page on ``server``; the kernels the test starts are shut down after it."""
    with kernels_cleaned(server):
        yield page


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """``shot(page, "step")`` saves test-artifacts/browser/<test>-<nn>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))
    test = request.node.name.removeprefix("test_")
    for old in ARTIFACTS.glob(f"{test}-*.png"):  # from an earlier run
        old.unlink()

    def take(page: Page, step: str) -> Path:
        path = ARTIFACTS / f"{test}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path))
        return path

    return take
