"""Which cell is running: IPython's numbering, read at the right moment.

While a cell runs, IPython's ``execution_count`` has already moved on to the
next cell's number (it is incremented before the code executes), so reading
it from a magic is off by one.  A ``pre_run_cell`` hook records the number of
the cell that is starting instead.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["CellTracker"]


class CellTracker:
    """The number of the cell running now (None outside a numbered cell).

    Written by the kernel's main thread only (IPython's event hooks run there).
    """

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self.current: int | None = None
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)

    def _pre_run_cell(self, info: Any) -> None:
        stored = getattr(info, "store_history", True)
        self.current = self._shell.execution_count - 1 if stored else None

    def _post_run_cell(self, result: Any) -> None:
        self.current = None

    def close(self) -> None:
        for event, hook in (
            ("pre_run_cell", self._pre_run_cell),
            ("post_run_cell", self._post_run_cell),
        ):
            with contextlib.suppress(ValueError):
                self._shell.events.unregister(event, hook)
