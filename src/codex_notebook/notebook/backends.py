"""Which codex setup a notebook session talks to: the user's own, or the demo model.

``codex``: the user's CODEX_HOME / ~/.codex / OPENAI_API_KEY, untouched.
``demo``: the same real binary pointed at the built-in scripted model on
127.0.0.1, with a CODEX_HOME of its own under the notebook's state folder (so
named threads survive a kernel restart there too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BACKENDS", "BackendRuntime", "choose_backend", "has_credentials", "store_key"]

BACKENDS = ("demo", "codex")
ENV_BACKEND = "CODEX_NOTEBOOK_BACKEND"


def has_credentials(env: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """True when the user's own codex setup can authenticate (key or stored login)."""
    env = os.environ if env is None else env
    if env.get("OPENAI_API_KEY") or env.get("CODEX_API_KEY"):
        return True
    home = Path(env.get("CODEX_HOME") or Path.home() / ".codex")
    return (home / "auth.json").is_file()


def choose_backend(requested: str | None = None) -> str:
    """Explicit choice, else ``$CODEX_NOTEBOOK_BACKEND``, else demo unless credentials exist."""
    choice = (requested or os.environ.get(ENV_BACKEND) or "auto").strip().lower()
    if choice == "auto":
        return "codex" if has_credentials() else "demo"
    if choice not in BACKENDS:
        raise ValueError(
            f"unknown backend {choice!r} (from {'argument' if requested else ENV_BACKEND}); "
            "use 'demo' or 'codex'"
        )
    return choice


def store_key(name: str, state_dir: Path) -> str:
    """Which conversation store a backend uses: thread ids are only valid within one."""
    if name == "codex":
        return "codex:" + (os.environ.get("CODEX_HOME") or str(Path.home() / ".codex"))
    return f"demo:{(state_dir / 'demo-home').resolve()}"


@dataclass
class BackendRuntime:
    """A started backend: what to pass to ``Codex(...)`` and how to stop it."""

    name: str
    key: str  # identifies the conversation store, for the thread-name map
    client_kwargs: dict[str, Any] = field(default_factory=dict)
    notice: str | None = None
    demo: Any = None  # the DemoBackend, when name == "demo"

    @classmethod
    def start(cls, name: str, state_dir: Path, *, codex_bin: str | None = None) -> BackendRuntime:
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
