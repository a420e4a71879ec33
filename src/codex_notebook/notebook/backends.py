"""Which codex a notebook session talks to: the user's own, the demo model, or a remote server.

``codex``: the user's CODEX_HOME / ~/.codex / OPENAI_API_KEY, untouched.
``demo``: the same real binary pointed at the built-in scripted model on
127.0.0.1, with a CODEX_HOME of its own under the notebook's state folder (so
named threads survive a kernel restart there too).
``remote``: a running ``codex app-server --listen ws://…`` (``$CODEX_APP_SERVER_URL``
or ``%codex connect URL``); nothing is started here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._endpoint import parse_endpoint
from ..remote import TOKEN_FILE_ENV, URL_ENV

__all__ = [
    "BACKENDS",
    "BackendRuntime",
    "RemoteTarget",
    "choose_backend",
    "has_credentials",
    "remote_from_env",
    "store_key",
]

BACKENDS = ("demo", "codex", "remote")
ENV_BACKEND = "CODEX_NOTEBOOK_BACKEND"


@dataclass(frozen=True)
class RemoteTarget:
    """Where a remote app-server listens.  ``url`` never carries credentials; the token
    comes from ``token_file``, else ``$CODEX_APP_SERVER_TOKEN`` / ``…_TOKEN_FILE``."""

    url: str
    token_file: str | None = None

    @classmethod
    def parse(cls, url: str, token_file: str | None = None) -> RemoteTarget:
        """Checked at once (a bad URL is the user's error to see now, not at the next cell)."""
        return cls(parse_endpoint(url).url, token_file)


def remote_from_env() -> RemoteTarget | None:
    url = os.environ.get(URL_ENV)
    return RemoteTarget.parse(url, os.environ.get(TOKEN_FILE_ENV)) if url else None


def has_credentials(env: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """True when the user's own codex setup can authenticate (key or stored login)."""
    env = os.environ if env is None else env
    if env.get("OPENAI_API_KEY") or env.get("CODEX_API_KEY"):
        return True
    home = Path(env.get("CODEX_HOME") or Path.home() / ".codex")
    return (home / "auth.json").is_file()


def choose_backend(requested: str | None = None, *, remote: RemoteTarget | None = None) -> str:
    """Explicit choice, else ``$CODEX_NOTEBOOK_BACKEND``, else remote when a server URL is
    known, else demo unless credentials exist."""
    choice = (requested or os.environ.get(ENV_BACKEND) or "auto").strip().lower()
    if choice == "auto":
        if remote is not None or os.environ.get(URL_ENV):
            return "remote"
        return "codex" if has_credentials() else "demo"
    if choice not in BACKENDS:
        raise ValueError(
            f"unknown backend {choice!r} (from {'argument' if requested else ENV_BACKEND}); "
            f"use one of {', '.join(BACKENDS)}"
        )
    if choice == "remote" and remote is None and not os.environ.get(URL_ENV):
        raise ValueError(
            f"the remote backend needs a server: set ${URL_ENV} (and ${TOKEN_FILE_ENV}), "
            "or run %codex connect ws://HOST:PORT --token-file FILE"
        )
    return choice


def store_key(name: str, state_dir: Path, remote: RemoteTarget | None = None) -> str:
    """Which conversation store a backend uses: thread ids are only valid within one."""
    if name == "codex":
        return "codex:" + (os.environ.get("CODEX_HOME") or str(Path.home() / ".codex"))
    if name == "remote":
        target = remote or remote_from_env()
        return f"remote:{target.url if target else '?'}"
    return f"demo:{(state_dir / 'demo-home').resolve()}"


@dataclass
class BackendRuntime:
    """A started backend: what to pass to ``Codex(...)`` and how to stop it."""

    name: str
    key: str  # identifies the conversation store, for the thread-name map
    client_kwargs: dict[str, Any] = field(default_factory=dict)
    notice: str | None = None
    demo: Any = None  # the DemoBackend, when name == "demo"
    remote: RemoteTarget | None = None

    @property
    def badge(self) -> str:
        """Where turns run, as the widget's header says it."""
        if self.remote is not None:
            return f"remote · {self.remote.url}"
        return "demo model" if self.name == "demo" else ""

    @classmethod
    def start(
        cls,
        name: str,
        state_dir: Path,
        *,
        codex_bin: str | None = None,
        remote: RemoteTarget | None = None,
    ) -> BackendRuntime:
        if name == "remote":
            target = remote or remote_from_env()
            if target is None:
                raise ValueError(choose_backend.__doc__ or "no remote server")
            key = store_key(name, state_dir, target)
            return cls(
                "remote", key, {"url": target.url, "token_file": target.token_file}, remote=target
            )
        if name == "codex":
            return cls("codex", store_key(name, state_dir), {"codex_bin": codex_bin})
        from ..demo import DemoBackend

        demo_home = state_dir / "demo-home"
        workspace = state_dir / "demo-workspace"
        backend = DemoBackend(
            approval_policy="on-request",
            sandbox_mode="workspace-write",
            codex_bin=codex_bin,
            codex_home=demo_home,
            workspace=workspace,
            server_process=True,  # keep the model's work off the kernel's GIL
        ).start()
        kwargs = {
            "codex_bin": codex_bin,
            "env": backend.env(),
            "cwd": str(backend.workspace),
        }
        return cls("demo", store_key(name, state_dir), kwargs, backend.notice, backend)

    def close(self) -> None:
        if self.demo is not None:
            self.demo.close()
