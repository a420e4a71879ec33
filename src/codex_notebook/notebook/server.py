"""The kernel's app-server: started on first use, restarted after a crash, closed once.

Starting a server is slow I/O (a process, a handshake, maybe the demo model),
so it happens on a turn's driver thread, serialized by ``_start_lock`` — a
lock the kernel's main thread never takes.  ``_lock`` guards the fields and is
held only to read or swap them, never across I/O; so a ``%%codex`` cell, the
status table and ``%codex restart`` never wait for a server to start.

A restart bumps ``generation``: a start that was under way when it happened
closes what it made and fails its turn, instead of publishing a client the
user asked to be rid of.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ..client import Codex
from ..errors import TransportClosedError
from ..transport import SubprocessTransport
from .backends import BackendRuntime, RemoteTarget, choose_backend, remote_from_env, store_key
from .logs import LogLine, classify_notification

__all__ = ["AGENT_NICENESS", "ServerRuntime"]

log = logging.getLogger("codex_notebook")

#: The agent yields the CPU to the kernel under contention: cells stay snappy while turns stream.
AGENT_NICENESS = 10
#: Notifications kept for ``%codex log``.
LOG_LINES = 200
_LOGGED = ("warning", "configWarning", "error", "deprecationNotice")


class ServerRuntime:
    """One kernel's backend and app-server client."""

    def __init__(
        self,
        state_dir: Path,
        backend: str | None = None,
        *,
        codex_bin: str | None = None,
        client_factory: Callable[[BackendRuntime], Codex] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.codex_bin = codex_bin
        # appended by any thread (deque appends are atomic); classified for ``%codex log``
        self.log: deque[LogLine | str] = deque(maxlen=LOG_LINES)
        self._factory = client_factory or self._spawn
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._remote = remote_from_env()  # %codex connect replaces it
        self._backend_name = choose_backend(backend, remote=self._remote)
        self._generation = 0
        self._client: Codex | None = None
        self._backend: BackendRuntime | None = None
        self._closed = False

    # -- facts (any thread, no I/O)

    @property
    def backend_name(self) -> str:
        with self._lock:
            return self._backend_name

    @property
    def store(self) -> str:
        """Which conversation store thread ids belong to (a remote server is one)."""
        with self._lock:
            return store_key(self._backend_name, self.state_dir, self._remote)

    @property
    def remote(self) -> RemoteTarget | None:
        """The server turns run on when the backend is remote."""
        with self._lock:
            return self._remote if self._backend_name == "remote" else None

    def current(self) -> Codex | None:
        """The running client, if any (never starts one)."""
        with self._lock:
            client = self._client
        return client if client is not None and not client.closed else None

    @property
    def server_version(self) -> str | None:
        client = self.current()
        return client.server_version if client is not None else None

    @property
    def notice(self) -> str | None:
        with self._lock:
            backend = self._backend
        return backend.notice if backend is not None else None

    @property
    def default_cwd(self) -> str | None:
        """Where the backend wants the agent to work: the demo's scratch workspace; for a
        remote server, its own default (our paths mean nothing there); else None."""
        with self._lock:
            backend = self._backend
        cwd = backend.client_kwargs.get("cwd") if backend is not None else None
        return str(cwd) if cwd else None

    @property
    def local(self) -> bool:
        """Whether turns run in a server this kernel started (not a remote one)."""
        return self.backend_name != "remote"

    @property
    def badge(self) -> str:
        """Where turns run, for the widget's header (never a credential)."""
        remote = self.remote
        if remote is not None:
            return f"remote · {remote.url}"
        return "demo model" if self.backend_name == "demo" else ""

    @property
    def where(self) -> str:
        """For ``%codex status``: the server's URL, or the local process."""
        remote = self.remote
        if remote is not None:
            return remote.url
        client = self.current()
        pid = client.pid if client is not None else None
        return f"local app-server (pid {pid})" if pid else "local app-server (not started)"

    def stderr_tail(self) -> str:
        with self._lock:
            client = self._client
        return client.stderr_tail() if client is not None else ""

    # -- the driver threads

    def client(self) -> Codex:
        """The live client, starting the server if needed (slow I/O)."""
        with self._lock:
            self._check_open()
            if self._client is not None and not self._client.closed:
                return self._client
        with self._start_lock:
            with self._lock:
                self._check_open()
                if self._client is not None and not self._client.closed:
                    return self._client
                dead, self._client = self._client, None
                generation, backend = self._generation, self._backend
                name = self._backend_name
            if dead is not None:
                self.log.append(f"app-server died; restarting. Last stderr:\n{dead.stderr_tail()}")
                dead.close()
            made_backend = backend is None
            if backend is None:
                with self._lock:
                    remote = self._remote
                backend = BackendRuntime.start(
                    name, self.state_dir, codex_bin=self.codex_bin, remote=remote
                )
                if backend.notice:
                    self.log.append(backend.notice)
            try:
                client = self._factory(backend)
            except BaseException:
                if made_backend:
                    backend.close()
                raise
            with self._lock:
                current = generation == self._generation and not self._closed
                if current:
                    self._client, self._backend = client, backend
            if not current:
                client.close()
                if made_backend:
                    backend.close()
                raise TransportClosedError("the codex session was restarted while it started")
        threading.Thread(
            target=self._drain_notifications,
            args=(client,),
            name="codex-notifications",
            daemon=True,
        ).start()
        return client

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError("the codex session was unloaded")

    def _spawn(self, backend: BackendRuntime) -> Codex:
        if backend.remote is not None:
            return Codex(**backend.client_kwargs, experimental_api=True)
        transport = SubprocessTransport(**backend.client_kwargs, nice=AGENT_NICENESS)
        return Codex(transport=transport, experimental_api=True)

    def _drain_notifications(self, client: Codex) -> None:
        """Keep warnings for ``%codex log``; the global channel stays drained."""
        for note in client.notifications():
            if note.method in _LOGGED:
                self.log.append(classify_notification(note.method, note.params_dict))

    # -- the main thread

    def check(self, backend: str | None = None, *, remote: RemoteTarget | None = None) -> None:
        """Raise the ``ValueError`` :meth:`restart` would raise for this choice, changing
        nothing (so a refused switch stops no turn)."""
        if backend is not None:
            with self._lock:
                target = remote or self._remote
            choose_backend(backend, remote=target)

    def restart(self, backend: str | None = None, *, remote: RemoteTarget | None = None) -> None:
        """Stop (or disconnect from) the server; the next turn starts a fresh one — maybe of
        another backend, or on the remote server ``remote``."""
        with self._lock:
            target = remote or self._remote
            name = choose_backend(backend, remote=target) if backend is not None else None
            self._generation += 1
            client, self._client = self._client, None
            old, self._backend = self._backend, None
            self._remote = target
            if name is not None:
                self._backend_name = name
        self._stop(client, old)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._generation += 1
            client, self._client = self._client, None
            old, self._backend = self._backend, None
        self._stop(client, old)

    @staticmethod
    def _stop(client: Codex | None, backend: BackendRuntime | None) -> None:
        if client is not None:
            client.close()
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.close()
