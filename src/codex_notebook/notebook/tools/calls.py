"""One function per read/run tool, taking the shell explicitly: what a tool handler calls.

Each builds the answer the model gets for one call of ``variables``, ``inspect``, ``cells``,
``last_error`` or ``run_python``, with a :class:`~.secrets.Scrubber` that knows the secret values
held in the namespace at that moment.  Arguments come from the model and are not validated by
codex (PROTOCOL.md): they are coerced here, and a bad one becomes an ``ERROR:`` answer, never an
exception.

All of these call user code: run them on the kernel's main thread, e.g.
``main_queue().call(lambda: calls.inspect_name(shell, name), timeout=...)``.
"""

from __future__ import annotations

from typing import Any, Final

from .answer import Answer
from .describe import DEFAULT_VARIABLES, describe, list_variables
from .execute import RunOutcome, run_code
from .kernel_state import DEFAULT_CELLS, CellWatcher, cells_answer, last_error_answer
from .namespace import ResolveError, resolve, snapshot, user_variables
from .secrets import Scrubber

__all__ = [
    "CELLS_BUDGET",
    "INSPECT_BUDGET",
    "VARIABLES_BUDGET",
    "cells",
    "inspect_name",
    "last_error",
    "run_python",
    "scrubber_for",
    "variables",
]

#: Default time budgets (seconds) for the read-only tools' calls into user objects.
VARIABLES_BUDGET: Final = 2.0
INSPECT_BUDGET: Final = 3.0
CELLS_BUDGET: Final = 2.0


def scrubber_for(shell: Any) -> Scrubber:
    """A scrubber that knows the namespace's credential values and the environment's."""
    return Scrubber.for_namespace(snapshot(shell))


def _int(value: Any, default: int, *, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return max(low, min(number, high))


def variables(
    shell: Any,
    *,
    pattern: Any = None,
    limit: Any = DEFAULT_VARIABLES,
    budget: float | None = VARIABLES_BUDGET,
) -> Answer:
    """The ``variables`` tool: the user's variables (modules left out), one row each."""
    if pattern is not None and not isinstance(pattern, str):
        return Answer.error("pattern must be a glob string such as 'df*'")
    items = snapshot(shell)
    return list_variables(
        user_variables(shell, items).items(),
        pattern=pattern or None,
        limit=_int(limit, DEFAULT_VARIABLES, low=1, high=1000),
        budget=budget,
        scrubber=Scrubber.for_namespace(items),
    )


def inspect_name(shell: Any, name: Any, *, budget: float | None = INSPECT_BUDGET) -> Answer:
    """The ``inspect`` tool: one variable or dotted attribute (``df``, ``model.coef_``)."""
    if not isinstance(name, str) or not name.strip():
        return Answer.error("name must be a variable name or a dotted attribute path")
    scrubber = scrubber_for(shell)
    try:
        value = resolve(shell.user_ns, name)
    except ResolveError as exc:
        return Answer.error(scrubber(str(exc)))
    return describe(name.strip(), value, budget=budget, scrubber=scrubber)


def cells(
    shell: Any,
    *,
    last: Any = DEFAULT_CELLS,
    watcher: CellWatcher | None = None,
    budget: float | None = CELLS_BUDGET,
) -> Answer:
    """The ``cells`` tool: the last cells' sources and results."""
    return cells_answer(
        shell,
        last=_int(last, DEFAULT_CELLS, low=1, high=20),
        watcher=watcher,
        scrubber=scrubber_for(shell),
        budget=budget,
    )


def last_error(shell: Any, *, watcher: CellWatcher | None = None) -> Answer:
    """The ``last_error`` tool: the last exception a cell raised, with the cell and traceback."""
    return last_error_answer(shell, watcher=watcher, scrubber=scrubber_for(shell))


def run_python(shell: Any, code: Any, *, budget: float | None = None) -> RunOutcome:
    """The ``run_python`` tool, once the user approved: run ``code`` (see :func:`.run_code`).

    The outcome's :meth:`~.RunOutcome.answer` is what the model gets; ``changes()`` is what the
    widget says.  A non-string ``code`` gives an ``error`` outcome without running anything.
    """
    if not isinstance(code, str):
        return RunOutcome(status="error", error="code must be a string of Python source")
    return run_code(shell, code, budget=budget)
