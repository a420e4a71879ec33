"""Thread names -> codex thread ids, kept in a small JSON file beside the notebook.

So ``-t analysis`` resumes the same conversation after a kernel restart.  The
map is kept per notebook (two notebooks in one folder each have their own
``main``) and per conversation store (a demo thread id means nothing to the
user's own codex home, nor to a remote server).  A kernel that does not know
its notebook (a headless runner) keeps its names in memory only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Scope", "ThreadMap"]


@dataclass(frozen=True)
class Scope:
    """Whose names: one conversation store, one notebook (None: this kernel only)."""

    store: str
    notebook: str | None

    @property
    def key(self) -> str:
        return f"{self.store} | {self.notebook}"


class ThreadMap:
    """The file's one owner in this kernel: ``_lock`` guards the cache and serializes
    every read-modify-write of the file; an advisory lock on ``threads.json.lock``
    serializes them with the other kernels of the folder (POSIX; elsewhere a write
    racing another kernel's can lose its name).

    A scope is read from disk once and then served from memory (binding a cell
    to a name must not wait for the disk); writes go to both.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, str]] = {}  # scope key -> names (memory-only scopes too)

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _names(self, scope: Scope) -> dict[str, str]:
        """Lock held: the cached names of a scope, loaded on first use."""
        names = self._cache.get(scope.key)
        if names is None:
            stored = self._load().get(scope.key, {}) if scope.notebook else {}
            names = {k: v for k, v in stored.items() if isinstance(v, str)}
            self._cache[scope.key] = names
        return names

    def names(self, scope: Scope) -> dict[str, str]:
        with self._lock:
            return dict(self._names(scope))

    def get(self, scope: Scope, name: str) -> str | None:
        return self.names(scope).get(name)

    def set(
        self,
        scope: Scope,
        name: str,
        thread_id: str | None,
        *,
        only_if: Callable[[], bool] = lambda: True,
    ) -> bool:
        """Record (or with None, forget) a name, if ``only_if()`` still holds once the
        file is ours (so a stale writer cannot overwrite a newer binding).  Written
        atomically.  Returns whether it wrote."""
        with self._lock:
            if not only_if():
                return False
            _put(self._names(scope), name, thread_id)
            if not scope.notebook:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _file_lock(self.path.with_name(self.path.name + ".lock")):
                data = self._load()
                names = data.setdefault(scope.key, {})
                _put(names, name, thread_id)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".threads-")
                try:
                    with os.fdopen(fd, "w") as out:
                        json.dump(data, out, indent=2, sort_keys=True)
                    os.replace(tmp, self.path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
            return True


#: How long a write waits for another kernel's (which takes milliseconds) before going ahead.
LOCK_WAIT_S = 2.0


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` while another kernel's write waits; after
    :data:`LOCK_WAIT_S` (a stuck holder) go ahead without it."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-kernel lock
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _put(names: dict[str, str], name: str, thread_id: str | None) -> None:
    if thread_id is None:
        names.pop(name, None)
    else:
        names[name] = thread_id
