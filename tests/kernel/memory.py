"""Counting what a kernel keeps alive after many %%codex turns (test and soak share it)."""

from __future__ import annotations

import json
from typing import Any

from tests.kernel.conftest import KernelHarness

#: Runs in the kernel: live objects of the kinds a finished turn must let go of.
PROBE = """
import gc as _gc, json as _json, os as _os, psutil as _psutil
from ipywidgets.widgets.widget import _instances as _comms
from codex_notebook.notebook.widget import TurnWidget as _TW
from codex_notebook.notebook.turn import NotebookTurn as _NT
from codex_notebook.notebook.transcript import Transcript as _TR
from codex_notebook._turnlog import TurnLog as _TL
from codex_notebook.messages import Notification as _NO
from codex_notebook.notebook.extension import current_session as _cs
_gc.collect()
_kept = 0
for _t in _cs().select(None):  # what the history keeps of finished turns
    _w = _t.widget
    _kept += sum(len(v) for v in getattr(_w, "bundle", {}).values())
    _kept += len(_json.dumps(_t.result().items)) if _t.done() and _t.error is None else 0
_objs = _gc.get_objects()
print(_json.dumps({
    "rss_kib": _psutil.Process(_os.getpid()).memory_info().rss // 1024,
    "widgets": sum(isinstance(o, _TW) for o in _objs),
    "open_comms": len(_comms),
    "turns": sum(isinstance(o, _NT) for o in _objs),
    "transcripts": sum(isinstance(o, _TR) for o in _objs),
    "turn_logs": sum(isinstance(o, _TL) for o in _objs),
    "notifications": sum(isinstance(o, _NO) for o in _objs),
    "history_kib": _kept // 1024,
}))
del _objs
"""


def run_turns(kernel: KernelHarness, count: int, *, deltas: int, names: int = 4) -> None:
    """``count`` turns of ``deltas`` deltas, ``names`` at a time on different thread names,
    each batch ended by ``%codex wait all`` (as a notebook would)."""
    done = 0
    while done < count:
        batch = min(names, count - done)
        for i in range(batch):
            kernel.execute(f"%%codex -t t{(done + i) % names}\nDELTAS:{deltas}")
        _, reply = kernel.execute("%codex wait all --timeout 120", timeout=180)
        assert reply["status"] == "ok", reply
        done += batch


def counts(kernel: KernelHarness) -> dict[str, Any]:
    probe, _ = kernel.execute(PROBE)
    return dict(json.loads(kernel.text(probe).strip().splitlines()[-1]))
