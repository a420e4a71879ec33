"""Thread names -> codex thread ids, kept in a small JSON file beside the notebook.

So ``-t analysis`` resumes the same conversation after a kernel restart.  The
map is kept per backend (conversation store): a demo thread id means nothing
to the user's own codex home and vice versa.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path

__all__ = ["ThreadMap"]


class ThreadMap:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, store: str, name: str) -> str | None:
        with self._lock:
            value = self._load().get(store, {}).get(name)
        return value if isinstance(value, str) else None

    def names(self, store: str) -> dict[str, str]:
        with self._lock:
            return dict(self._load().get(store, {}))

    def set(self, store: str, name: str, thread_id: str | None) -> None:
        """Record (or with None, forget) a name. Written atomically."""
        with self._lock:
            data = self._load()
            names = data.setdefault(store, {})
            if thread_id is None:
                names.pop(name, None)
            else:
                names[name] = thread_id
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".threads-")
            try:
                with os.fdopen(fd, "w") as out:
                    json.dump(data, out, indent=2, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
