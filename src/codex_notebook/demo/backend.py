"""The demo backend: a demo model server plus a throw-away CODEX_HOME and scratch workspace.

Whoever spawns ``codex app-server`` (the client library, the notebook session, a test) gets
from here everything that makes the real binary talk to the built-in model instead of OpenAI:
the environment (``CODEX_HOME`` set, credentials removed, loopback exempt from proxies), a
directory to run in, and the effective sandbox mode.

Sandbox probe: codex confines commands with bubblewrap, which needs unprivileged user
namespaces. Some containers (Binder hosts among them) forbid those, and then every command the
demo runs fails with ``bwrap: Creating new namespace failed``. :meth:`DemoBackend.start` runs
one tiny command through ``codex sandbox -P :read-only`` (~50 ms); if bubblewrap cannot start,
the backend switches this demo CODEX_HOME to ``danger-full-access`` (the demo's commands are
scripted, harmless and aimed at the scratch workspace), sets :attr:`~DemoBackend.sandbox_fallback`
and explains it in :attr:`~DemoBackend.notice`. This never touches the user's own codex setup.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from codex_notebook.demo.home import check_policy, write_codex_home
from codex_notebook.demo.script import APPROVAL_COMMAND_ARGV
from codex_notebook.demo.server import DemoModelServer, DemoServerProcess
from codex_notebook.errors import BinaryNotFoundError
from codex_notebook.transport import resolve_codex_bin as _resolve

__all__ = ["DemoBackend", "SandboxProbe", "probe_sandbox", "resolve_codex_bin"]

_PROBE_MARKER = "codex-notebook-sandbox-ok"
_SANDBOX_FAILURE_RE = re.compile(
    r"bwrap|bubblewrap|namespace|landlock|seccomp|sandbox|operation not permitted|"
    r"permission denied|EPERM|ENOSPC",
    re.I,
)
_CREDENTIAL_PREFIXES = ("OPENAI_", "AZURE_OPENAI", "CODEX_")
_CREDENTIAL_SUFFIXES = ("_API_KEY", "_TOKEN", "_SECRET", "_SECRET_KEY", "_ACCESS_KEY", "_PASSWORD")
_LOOPBACK_NO_PROXY = ("127.0.0.1", "localhost", "::1")

_T = TypeVar("_T")


class _State(enum.Enum):
    UNSTARTED = "unstarted"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True)
class SandboxProbe:
    """Outcome of running one command under codex's own sandbox.

    ``works`` is True (sandbox usable), False (it cannot start here) or None (could not tell:
    no binary, an unfamiliar CLI, a timeout). ``detail`` is the evidence, for humans.
    """

    works: bool | None
    detail: str


def resolve_codex_bin(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The codex binary, found as the client finds it; None if there is none (no probe then)."""
    try:
        return _resolve(explicit)
    except BinaryNotFoundError:
        return None


def probe_sandbox(
    codex_bin: str,
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    timeout: float = 20.0,
) -> SandboxProbe:
    """Run ``ls`` under ``codex sandbox -P :read-only`` and classify the result.

    The same binary and code path (bundled bubblewrap + seccomp) that confine the app-server's
    commands, minus the app-server: fast, and no model call involved.
    """
    argv = [
        codex_bin,
        "sandbox",
        "-P",
        ":read-only",
        "-C",
        os.fspath(cwd),
        "--",
        "/bin/sh",
        "-c",
        f"ls >/dev/null && echo {_PROBE_MARKER}",
    ]
    try:
        proc = subprocess.run(
            argv,
            env=dict(env),
            cwd=os.fspath(cwd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return SandboxProbe(None, f"sandbox probe timed out after {timeout:g} s")
    except OSError as exc:
        return SandboxProbe(None, f"could not run {codex_bin!r}: {exc}")
    if proc.returncode == 0 and _PROBE_MARKER in proc.stdout:
        return SandboxProbe(True, "codex sandbox ran `ls` read-only")
    lines = [
        line.strip()
        for line in (proc.stderr + "\n" + proc.stdout).splitlines()
        if line.strip() and "could not create PATH aliases" not in line
    ]
    evidence = next((line for line in lines if _SANDBOX_FAILURE_RE.search(line)), None)
    usage_error = any(line.startswith(("error:", "Usage:")) for line in lines)
    if evidence is not None and not usage_error:
        return SandboxProbe(False, evidence)
    summary = lines[0] if lines else f"exit status {proc.returncode}"
    return SandboxProbe(None, f"sandbox probe inconclusive: {summary}")


def _cleanup(server: DemoModelServer | DemoServerProcess, owned_root: str | None) -> None:
    """Stop the server and delete the temporary directories (also run by weakref.finalize)."""
    server.stop()
    if owned_root is not None:
        shutil.rmtree(owned_root, ignore_errors=True)


class DemoBackend:
    """The real codex, pointed at the built-in demo model, in a scratch directory.

    ::

        with DemoBackend(approval_policy="on-request") as backend:
            subprocess.Popen([codex, "app-server"], env=backend.env(), cwd=backend.workspace, ...)

    ``codex_home`` / ``workspace`` default to fresh temporary directories, deleted by
    :meth:`close`; directories passed in are kept (a fixed ``codex_home`` lets demo threads be
    resumed after a kernel restart). ``approval_policy`` and ``sandbox_mode`` are the defaults
    written to ``config.toml``; threads may still override them in ``thread/start``.
    ``probe_sandbox=False`` skips the sandbox check (see the module docstring).
    """

    def __init__(
        self,
        *,
        approval_policy: str = "never",
        sandbox_mode: str = "workspace-write",
        codex_bin: str | os.PathLike[str] | None = None,
        codex_home: str | os.PathLike[str] | None = None,
        workspace: str | os.PathLike[str] | None = None,
        probe_sandbox: bool = True,
        probe_timeout: float = 20.0,
        server_process: bool = False,
    ) -> None:
        check_policy(approval_policy, sandbox_mode)
        self._server_process = server_process
        self._approval_policy = approval_policy
        self._requested_sandbox = sandbox_mode
        self._sandbox_mode = sandbox_mode
        self._codex_bin = resolve_codex_bin(codex_bin)
        self._given_home = Path(codex_home).resolve() if codex_home is not None else None
        self._given_workspace = Path(workspace).resolve() if workspace is not None else None
        self._probe_enabled = probe_sandbox
        self._probe_timeout = probe_timeout
        self._lock = threading.Lock()
        self._state = _State.UNSTARTED
        self._root: Path | None = None
        self._home: Path | None = None
        self._workspace: Path | None = None
        self._server: DemoModelServer | DemoServerProcess | None = None
        self._finalizer: (
            weakref.finalize[[DemoModelServer | DemoServerProcess, str | None], DemoBackend] | None
        ) = None
        self._probe: SandboxProbe | None = None
        self._fallback = False
        self._notice: str | None = None

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> DemoBackend:
        """Create the directories, start the model server, write config.toml, probe the sandbox.

        Idempotent while running; a closed backend cannot be restarted.
        """
        with self._lock:
            if self._state is _State.RUNNING:
                return self
            if self._state is _State.CLOSED:
                raise RuntimeError("DemoBackend was closed; create a new one")
            owned_root: str | None = None
            if self._given_home is None or self._given_workspace is None:
                owned_root = tempfile.mkdtemp(prefix="codex-notebook-demo-")
            try:
                root = Path(owned_root) if owned_root else None
                home = self._given_home or (Path(owned_root or "") / "codex-home")
                workspace = self._given_workspace or (Path(owned_root or "") / "workspace")
                workspace.mkdir(parents=True, exist_ok=True)
                _seed_workspace(workspace)
                server_class = DemoServerProcess if self._server_process else DemoModelServer
                server = server_class(workspace=str(workspace)).start()
            except BaseException:
                if owned_root is not None:
                    shutil.rmtree(owned_root, ignore_errors=True)
                raise
            self._root, self._home, self._workspace, self._server = root, home, workspace, server
            self._finalizer = weakref.finalize(self, _cleanup, server, owned_root)
            try:
                self._write_config()
                self._check_sandbox()
            except BaseException:
                self._finalizer()
                self._state = _State.CLOSED
                raise
            self._state = _State.RUNNING
        return self

    def close(self) -> None:
        """Stop the server and delete the temporary directories. Idempotent."""
        with self._lock:
            self._state = _State.CLOSED
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()

    stop = close

    def __enter__(self) -> DemoBackend:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_config(self) -> None:
        assert self._home is not None
        assert self._workspace is not None
        assert self._server is not None
        write_codex_home(
            self._home,
            base_url=self._server.base_url,
            approval_policy=self._approval_policy,
            sandbox_mode=self._sandbox_mode,
            writable_roots=[self._workspace],
            prompt_prefixes=[APPROVAL_COMMAND_ARGV],
        )

    def _check_sandbox(self) -> None:
        if self._sandbox_mode == "danger-full-access" or not self._probe_enabled:
            return
        if self._codex_bin is None:
            self._probe = SandboxProbe(None, "no codex binary found; sandbox not probed")
            return
        assert self._workspace is not None
        self._probe = probe_sandbox(
            self._codex_bin, env=self.env(), cwd=self._workspace, timeout=self._probe_timeout
        )
        if self._probe.works is False:
            self._fallback = True
            self._sandbox_mode = "danger-full-access"
            self._write_config()
            self._notice = (
                "Demo backend: codex's sandbox cannot start in this environment "
                f"({self._probe.detail}). The demo model's scripted, harmless commands run "
                f"unsandboxed in the scratch workspace {self._workspace}. "
                "Your own codex setup is not affected."
            )

    # what a spawner needs ------------------------------------------------------------------

    def env(self, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child environment for ``codex app-server``.

        Starts from *base_env* (default ``os.environ``), removes credentials (``OPENAI_*``,
        ``CODEX_*``, ``*_API_KEY``, ``*_TOKEN``...) so nothing can reach a real account, sets
        ``CODEX_HOME``, and adds the loopback addresses to ``NO_PROXY`` so a configured HTTP
        proxy cannot swallow the requests to the demo model.
        """
        home = self.codex_home
        source = os.environ if base_env is None else base_env
        out = {key: value for key, value in source.items() if not _is_credential(key)}
        out["CODEX_HOME"] = str(home)
        for key in ("NO_PROXY", "no_proxy"):
            present = [p.strip() for p in out.get(key, "").split(",") if p.strip()]
            present += [host for host in _LOOPBACK_NO_PROXY if host not in present]
            out[key] = ",".join(present)
        return out

    @property
    def codex_home(self) -> Path:
        """The demo CODEX_HOME (holds the generated config.toml)."""
        return self._require(self._home)

    @property
    def workspace(self) -> Path:
        """The scratch workspace: run ``codex app-server`` here (or pass it as the thread cwd)."""
        return self._require(self._workspace)

    @property
    def config_path(self) -> Path:
        """``codex_home / "config.toml"``."""
        return self.codex_home / "config.toml"

    @property
    def server(self) -> DemoModelServer | DemoServerProcess:
        """The running demo model server."""
        server = self._server
        if server is None or self._state is _State.CLOSED:
            raise RuntimeError(f"DemoBackend is {self._state.value}; use it inside start()/close()")
        return server

    @property
    def base_url(self) -> str:
        """The model server's ``http://127.0.0.1:<port>/v1``."""
        return self.server.base_url

    @property
    def port(self) -> int:
        """The model server's port."""
        return self.server.port

    @property
    def codex_bin(self) -> str | None:
        """The codex binary used for the sandbox probe (the same resolution order as the client)."""
        return self._codex_bin

    @property
    def approval_policy(self) -> str:
        """The approval policy written to config.toml."""
        return self._approval_policy

    @property
    def sandbox_mode(self) -> str:
        """The effective sandbox mode in config.toml (``danger-full-access`` after a fallback)."""
        return self._sandbox_mode

    @property
    def requested_sandbox_mode(self) -> str:
        """The sandbox mode asked for at construction."""
        return self._requested_sandbox

    @property
    def sandbox_fallback(self) -> bool:
        """True when the sandbox could not start and the demo runs commands unsandboxed."""
        return self._fallback

    @property
    def sandbox_probe(self) -> SandboxProbe | None:
        """The probe's outcome (None when not probed)."""
        return self._probe

    @property
    def notice(self) -> str | None:
        """A human-readable notice to show the user (set on sandbox fallback), else None."""
        return self._notice

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._state is _State.RUNNING

    def _require(self, value: _T | None) -> _T:
        if value is None or self._state is _State.CLOSED:
            raise RuntimeError(f"DemoBackend is {self._state.value}; use it inside start()/close()")
        return value

    def __repr__(self) -> str:
        extra = ""
        if self._state is _State.RUNNING and self._server is not None:
            extra = f" {self._server.base_url} sandbox={self._sandbox_mode}"
            if self._fallback:
                extra += " (fallback)"
        return f"<DemoBackend {self._state.value}{extra}>"


def _is_credential(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(_CREDENTIAL_PREFIXES) or upper.endswith(_CREDENTIAL_SUFFIXES)


def _seed_workspace(workspace: Path) -> None:
    """Give ``ls`` something to show and tell a curious user what the directory is."""
    readme = workspace / "README.md"
    if not readme.exists():
        readme.write_text(
            "# Demo workspace\n\n"
            "Scratch directory of the codex-notebook demo model. Files the demo creates\n"
            "(such as hello_demo.py) land here; it is deleted when the demo backend closes.\n",
            encoding="utf-8",
        )
